/**
 * PKCS#12 files from pki/pkcs12.ts, read by the openssl 3.0 CLI (without -legacy) and by Node's tls.
 * Test certificates are made with the openssl CLI (commands below), independent of tierca's builder.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createPrivateKey, createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { createSecureContext, createServer, connect, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { buildPkcs12, generatePassphrase, DEFAULT_PKCS12_ITERATIONS } from '../../pki/pkcs12.ts';
import { children, readOnly, decodeOid } from '../../pki/der-reader.ts';
import { PkiError } from '../../pki/pki-error.ts';

const FAST = 2048; // OpenSSL's own default count: keeps these tests quick; the default is tested once.

const tmp = new TempDir();
afterAll(() => tmp.cleanup());

async function run(args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  const r = await openssl(args, { cwd: tmp.path, input });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

const pemBlocks = (text: string, label: string): string[] =>
  text.match(new RegExp(`-----BEGIN ${label}-----[\\s\\S]+?-----END ${label}-----`, 'g')) ?? [];

interface Holder {
  key: KeyObject;
  certificate: Buffer;
  pem: string;
}

const der = (pem: string): Buffer => Buffer.from(new X509Certificate(pem).raw);

let rootPem: string;
let intermediatePem: string;
const holders: Record<'P-256' | 'RSA-2048', Holder> = {} as never;

/** `openssl x509 -req` a CSR for `name` with the extensions in `ext`, signed by `ca`. */
async function issue(name: string, keyFile: string, subject: string, ext: string, ca: string, serial: number): Promise<string> {
  tmp.file(`${name}.ext`, ext);
  await run(['req', '-new', '-key', keyFile, '-subj', subject, '-out', `${name}.csr`]);
  await run(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-set_serial', String(serial),
    '-days', '30', '-sha256', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
  return tmp.read(`${name}.pem`).toString('utf8');
}

beforeAll(async () => {
  const caExt = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n';
  const eeExt = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n' +
    'extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost\n';
  await run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'root.key',
    '-out', 'root.pem', '-subj', '/C=CN/O=tierca test/CN=Test Root', '-days', '30', '-sha256']);
  rootPem = tmp.read('root.pem').toString('utf8');
  await run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'int.key']);
  intermediatePem = await issue('int', 'int.key', '/C=CN/O=tierca test/CN=Test Issuing CA', caExt, 'root', 2);
  await run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'ec.key']);
  await run(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'rsa.key']);
  for (const [alg, file, serial] of [['P-256', 'ec', 3], ['RSA-2048', 'rsa', 4]] as const) {
    const pem = await issue(`${file}-ee`, `${file}.key`, `/C=CN/O=tierca test/CN=holder ${alg}`, eeExt, 'int', serial);
    holders[alg] = { key: createPrivateKey(tmp.read(`${file}.key`)), certificate: der(pem), pem };
  }
});

let fileCount = 0;
function writeP12(p12: Buffer): string {
  return tmp.file(`out-${++fileCount}.p12`, p12);
}

/** The lines `openssl pkcs12 -info -noout` prints (to stderr), exit code checked. */
async function info(file: string, passphrase: string): Promise<string[]> {
  const r = await run(['pkcs12', '-info', '-noout', '-in', file, '-passin', `pass:${passphrase}`]);
  return r.stderr.trim().split('\n');
}

const expectedInfo = (iterations: number, certificates: number): string[] => [
  `MAC: sha256, Iteration ${iterations}`,
  'MAC length: 32, salt length: 16',
  `PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration ${iterations}, PRF hmacWithSHA256`,
  ...Array<string>(certificates).fill('Certificate bag'),
  'PKCS7 Data',
  `Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration ${iterations}, PRF hmacWithSHA256`,
];

/** A TLS handshake against a server whose identity comes from the PKCS#12; returns the peer's certificate DER. */
async function handshake(pfx: Buffer, passphrase: string): Promise<Buffer> {
  const server = createServer({ pfx, passphrase }, (socket) => socket.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: rootPem });
    const peer = await new Promise<Buffer>((resolve, reject) => {
      socket.once('secureConnect', () => resolve(socket.getPeerCertificate().raw));
      socket.once('error', reject);
    });
    socket.destroy();
    return peer;
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('buildPkcs12, read by openssl pkcs12 (no -legacy) and Node tls', () => {
  for (const alg of ['P-256', 'RSA-2048'] as const) {
    describe(alg, () => {
      const passphrase = generatePassphrase();
      let file: string;
      let p12: Buffer;

      beforeAll(async () => {
        const holder = holders[alg];
        p12 = await buildPkcs12({
          privateKey: holder.key,
          certificate: holder.certificate,
          chain: [der(intermediatePem), der(rootPem)],
          passphrase,
          friendlyName: `holder ${alg}`,
          iterations: FAST,
        });
        file = writeP12(p12);
      });

      it('shows MAC sha256 and PBES2/PBKDF2/AES-256-CBC for both the certificate and the key bags', async () => {
        expect(await info(file, passphrase)).toEqual(expectedInfo(FAST, 3));
      });

      it('gives back a private key that matches the certificate', async () => {
        const keyOut = await run(['pkcs12', '-in', file, '-passin', `pass:${passphrase}`, '-nodes', '-nocerts']);
        const keys = pemBlocks(keyOut.stdout, 'PRIVATE KEY');
        expect(keys).toHaveLength(1);
        tmp.file(`extracted-${alg}.key`, keys[0]);
        const fromKey = await run(['pkey', '-in', `extracted-${alg}.key`, '-pubout']);
        const fromCert = await run(['x509', '-noout', '-pubkey'], holders[alg].pem);
        expect(fromKey.stdout).toBe(fromCert.stdout);
        expect(fromKey.stdout).toContain('-----BEGIN PUBLIC KEY-----');
        // the key bag carries the friendlyName and the SHA-1 localKeyID openssl pairs key and certificate by
        expect(keyOut.stdout).toContain(`friendlyName: holder ${alg}`);
        const localKeyId = createHash('sha1').update(holders[alg].certificate).digest('hex').toUpperCase().match(/../g)!.join(' ');
        expect(keyOut.stdout).toContain(`localKeyID: ${localKeyId}`);
      });

      it('gives back the holder certificate and the chain certificates, byte for byte', async () => {
        const client = await run(['pkcs12', '-in', file, '-passin', `pass:${passphrase}`, '-nokeys', '-clcerts']);
        expect(pemBlocks(client.stdout, 'CERTIFICATE').map(der)).toEqual([holders[alg].certificate]);
        const cas = await run(['pkcs12', '-in', file, '-passin', `pass:${passphrase}`, '-nokeys', '-cacerts']);
        expect(pemBlocks(cas.stdout, 'CERTIFICATE').map(der)).toEqual([der(intermediatePem), der(rootPem)]);
      });

      it('refuses a wrong passphrase', async () => {
        const r = await openssl(['pkcs12', '-info', '-noout', '-in', file, '-passin', `pass:${passphrase}x`], { cwd: tmp.path });
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain('Mac verify error: invalid password?');
        expect(() => createSecureContext({ pfx: p12, passphrase: `${passphrase}x` })).toThrow(/mac verify failure/);
      });

      it('is accepted by tls.createSecureContext and serves a TLS handshake with the holder certificate', async () => {
        expect(createSecureContext({ pfx: p12, passphrase }).context).toBeDefined();
        const peer = await handshake(p12, passphrase);
        expect(peer.equals(holders[alg].certificate)).toBe(true);
      });
    });
  }

  it(`works at the default ${DEFAULT_PKCS12_ITERATIONS} iterations`, async () => {
    const passphrase = generatePassphrase();
    const holder = holders['P-256'];
    const p12 = await buildPkcs12({ privateKey: holder.key, certificate: holder.certificate, passphrase });
    const file = writeP12(p12);
    expect(await info(file, passphrase)).toEqual(expectedInfo(600_000, 1));
    expect(createSecureContext({ pfx: p12, passphrase }).context).toBeDefined();
  });

  it('keeps a Chinese friendlyName as the same BMPString openssl writes for it', async () => {
    const name = '湘潭市人民政府 张三';
    const passphrase = generatePassphrase();
    const holder = holders['P-256'];
    const ours = writeP12(await buildPkcs12({ privateKey: holder.key, certificate: holder.certificate, passphrase, friendlyName: name, iterations: FAST }));
    // openssl's own export of the same key, certificate and name, for comparison
    tmp.file('cn.pem', holder.pem);
    await run(['pkcs12', '-export', '-in', 'cn.pem', '-inkey', 'ec.key', '-name', name, '-passout', `pass:${passphrase}`, '-out', 'openssl-cn.p12']);

    // 1. The attribute octets are identical to openssl's (UTF-8 name → BMPString), and decode to the name.
    const friendlyNameOf = (p12: Buffer): Buffer => {
      // PFX → authSafe ContentInfo → [0] EXPLICIT OCTET STRING, whose content is the AuthenticatedSafe
      const authSafeOctets = children(children(children(readOnly(p12))[1])[1])[0].content;
      const keyInfo = children(readOnly(authSafeOctets)).find((ci) => decodeOid(children(ci)[0]) === '1.2.840.113549.1.7.1')!;
      const safeContents = readOnly(children(children(keyInfo)[1])[0].content);
      const [bagId, , bagAttributes] = children(children(safeContents)[0]);
      expect(decodeOid(bagId)).toBe('1.2.840.113549.1.12.10.1.2'); // pkcs8ShroudedKeyBag
      const friendly = children(bagAttributes).find((a) => decodeOid(children(a)[0]) === '1.2.840.113549.1.9.20')!;
      const value = children(children(friendly)[1])[0];
      expect(value.tag).toBe(0x1e); // BMPString
      return value.content;
    };
    const oursBmp = friendlyNameOf(readFileSync(ours));
    expect(oursBmp.equals(friendlyNameOf(tmp.read('openssl-cn.p12')))).toBe(true);
    expect(Buffer.from(oursBmp).swap16().toString('utf16le')).toBe(name);

    // 2. openssl prints it exactly as it prints its own. OpenSSL 3.0's apps print BMPString
    // attributes with OPENSSL_uni2asc (the low octet of each UCS-2 character), so Chinese is shown
    // mangled for openssl's own files too; the expected line is computed the same way.
    const shown = async (file: string) =>
      (await run(['pkcs12', '-in', file, '-passin', `pass:${passphrase}`, '-nodes', '-nocerts'])).stdout
        .split('\n').find((l) => l.includes('friendlyName:'));
    const lowOctets = Buffer.from([...name].map((c) => c.charCodeAt(0) & 0xff)).toString('utf8');
    expect(await shown(ours)).toBe(`    friendlyName: ${lowOctets}`);
    expect(await shown(ours)).toBe(await shown('openssl-cn.p12'));
  });

  it('opens with a non-ASCII passphrase (UTF-8 for PBKDF2, BMPString for the MAC, as openssl does)', async () => {
    const passphrase = '口令 Ünïcode 2024';
    const holder = holders['P-256'];
    const p12 = await buildPkcs12({ privateKey: holder.key, certificate: holder.certificate, passphrase, iterations: FAST });
    const file = writeP12(p12);
    expect(await info(file, passphrase)).toEqual(expectedInfo(FAST, 1));
    const keyOut = await run(['pkcs12', '-in', file, '-passin', `pass:${passphrase}`, '-nodes', '-nocerts']);
    expect(pemBlocks(keyOut.stdout, 'PRIVATE KEY')).toHaveLength(1);
    expect(createSecureContext({ pfx: p12, passphrase }).context).toBeDefined();
  });

  it('is deterministic for a fixed random source, and draws salts and IVs from it', async () => {
    const holder = holders['P-256'];
    let counter = 0;
    const fixed = () => (n: number) => Buffer.alloc(n, ++counter % 256);
    counter = 0;
    const a = await buildPkcs12({ privateKey: holder.key, certificate: holder.certificate, passphrase: 'p', iterations: FAST, random: fixed() });
    counter = 0;
    const b = await buildPkcs12({ privateKey: holder.key, certificate: holder.certificate, passphrase: 'p', iterations: FAST, random: fixed() });
    expect(a.equals(b)).toBe(true);
    // the MAC salt (the fifth draw) is the MacData salt
    const macData = children(readOnly(a))[2];
    expect(children(macData)[1].content.equals(Buffer.alloc(16, 5))).toBe(true);
    const c = await buildPkcs12({ privateKey: holder.key, certificate: holder.certificate, passphrase: 'p', iterations: FAST });
    expect(c.equals(a)).toBe(false);
  });

  describe('refuses bad input', () => {
    const cases: Array<[string, () => Parameters<typeof buildPkcs12>[0], string, string]> = [
      ['a certificate of another key', () => ({ privateKey: holders['RSA-2048'].key, certificate: holders['P-256'].certificate, passphrase: 'p' }),
        'invalid-argument', 'the certificate does not belong to the private key'],
      ['an empty passphrase', () => ({ privateKey: holders['P-256'].key, certificate: holders['P-256'].certificate, passphrase: '' }),
        'invalid-argument', 'a PKCS#12 passphrase must not be empty'],
      ['too few iterations', () => ({ privateKey: holders['P-256'].key, certificate: holders['P-256'].certificate, passphrase: 'p', iterations: 999 }),
        'invalid-argument', 'PKCS#12 iterations must be an integer from 1000 to 10000000'],
      ['a friendlyName outside the BMP', () => ({ privateKey: holders['P-256'].key, certificate: holders['P-256'].certificate, passphrase: 'p', friendlyName: 'key 🔑' }),
        'invalid-argument', 'the friendlyName must be non-empty text within the Basic Multilingual Plane'],
      ['a chain entry that is not a certificate', () => ({ privateKey: holders['P-256'].key, certificate: holders['P-256'].certificate, passphrase: 'p', chain: [Buffer.from('nope')] }),
        'malformed', 'the chain certificate 1 is not an X.509 certificate'],
    ];
    for (const [name, params, code, message] of cases) {
      it(name, async () => {
        const err = await buildPkcs12(params()).then(() => null, (e: unknown) => e);
        expect(err).toBeInstanceOf(PkiError);
        expect(err).toMatchObject({ code, message });
      });
    }
  });
});

describe('generatePassphrase', () => {
  it('makes seven groups of four Crockford base32 characters (140 bits)', () => {
    const p = generatePassphrase();
    expect(p).toMatch(/^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){6}$/);
    expect(generatePassphrase()).not.toBe(p);
  });

  it('maps the random octets to characters 5 bits at a time, most significant first', () => {
    expect(generatePassphrase(() => Buffer.alloc(18, 0))).toBe('0000-0000-0000-0000-0000-0000-0000');
    expect(generatePassphrase(() => Buffer.alloc(18, 0xff))).toBe('zzzz-zzzz-zzzz-zzzz-zzzz-zzzz-zzzz');
    // 0x08 0x86 0x42 = 00001 00010 00011 00100 0010… → 1 2 3 4
    const bytes = Buffer.alloc(18, 0);
    bytes.set([0x08, 0x86, 0x42]);
    expect(generatePassphrase(() => bytes).slice(0, 4)).toBe('1234');
  });
});
