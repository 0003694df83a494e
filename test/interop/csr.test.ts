/**
 * CSRs made by `openssl req` parse and verify with pki/csr.ts, and CSRs made by buildCsr are
 * accepted by `openssl req -verify`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCsr, parseCsr, verifyCsr } from '../../pki/csr.ts';
import { decodeName, encodeName, type DistinguishedName } from '../../pki/name.ts';
import { toPem } from '../../pki/der.ts';
import { generateKeyPair, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import type { KeyAlgorithm, RsaPadding } from '../../pki/algorithms.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { createPrivateKey } from 'node:crypto';

const dir = new TempDir();
const SUBJ = '/C=CN/ST=湖南省/L=雨湖区/O=中共雨湖区委员会/CN=张三';
const SUBJECT: DistinguishedName = [
  { type: 'C', value: 'CN' },
  { type: 'ST', value: '湖南省' },
  { type: 'L', value: '雨湖区' },
  { type: 'O', value: '中共雨湖区委员会' },
  { type: 'CN', value: '张三' },
];

interface KeySpec {
  name: string;
  genpkey: string[];
  reqArgs: string[];
  expected: KeyAlgorithm | null;
}

const KEYS: KeySpec[] = [
  { name: 'p256', genpkey: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], reqArgs: ['-sha256'], expected: 'P-256' },
  { name: 'p384', genpkey: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], reqArgs: ['-sha384'], expected: 'P-384' },
  { name: 'rsa2048', genpkey: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], reqArgs: ['-sha256'], expected: 'RSA-2048' },
  { name: 'rsa3072', genpkey: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072'], reqArgs: ['-sha512'], expected: 'RSA-3072' },
  { name: 'rsa1024', genpkey: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'], reqArgs: ['-sha256'], expected: null },
  { name: 'k256', genpkey: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1'], reqArgs: ['-sha256'], expected: null },
];

/** PEM CSRs made by openssl, by name; `rsa2048-pss` is signed with RSASSA-PSS. */
const csrs = new Map<string, string>();

async function run(args: string[]): Promise<string> {
  const r = await openssl(args);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  await Promise.all(
    KEYS.map(async (k) => {
      const key = dir.file(`${k.name}.key`);
      await run(['genpkey', ...k.genpkey, '-out', key]);
      await run(['req', '-new', '-utf8', '-key', key, '-subj', SUBJ, ...k.reqArgs, '-out', dir.file(`${k.name}.csr`)]);
      csrs.set(k.name, dir.read(`${k.name}.csr`).toString());
    }),
  );
  const rsa = dir.file('rsa2048.key');
  await run(['req', '-new', '-utf8', '-key', rsa, '-subj', SUBJ, '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-out', dir.file('pss.csr')]);
  csrs.set('rsa2048-pss', dir.read('pss.csr').toString());
}, 120_000);

afterAll(() => dir.cleanup());

function errorOf(fn: () => unknown): PkiError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PkiError);
    return err as PkiError;
  }
  throw new Error('did not throw');
}

describe('CSRs made by openssl req', () => {
  for (const k of KEYS) {
    it(`${k.name}: parses with keyAlgorithm ${k.expected}, the Chinese subject and openssl's public key, and verifies`, async () => {
      const csr = parseCsr(csrs.get(k.name)!);
      expect(csr.keyAlgorithm).toBe(k.expected);
      expect(decodeName(csr.subject)).toEqual(SUBJECT);
      const spki = createPrivateKey(dir.read(`${k.name}.key`));
      expect(csr.publicKeyInfo.equals(publicKeyInfoOf(spki))).toBe(true);
      expect(() => verifyCsr(csr)).not.toThrow();
      // The DER form gives the same result.
      await run(['req', '-in', dir.file(`${k.name}.csr`), '-outform', 'DER', '-out', dir.file(`${k.name}.der`)]);
      const der = dir.read(`${k.name}.der`);
      expect(parseCsr(der).der.equals(csr.der)).toBe(true);
    });
  }

  it('an RSASSA-PSS signed CSR verifies', () => {
    const pem = csrs.get('rsa2048-pss')!;
    const csr = parseCsr(pem);
    expect(csr.keyAlgorithm).toBe('RSA-2048');
    expect(() => verifyCsr(csr)).not.toThrow();
    expect(csr.der.includes(Buffer.from('06092a864886f70d01010a', 'hex'))).toBe(true); // id-RSASSA-PSS
  });

  it('a SHA-1 signed CSR is refused with unsupported-algorithm', async () => {
    const file = dir.file('sha1.csr');
    await run(['req', '-new', '-utf8', '-key', dir.file('rsa2048.key'), '-subj', SUBJ, '-sha1', '-out', file]);
    const csr = parseCsr(dir.read('sha1.csr'));
    const err = errorOf(() => verifyCsr(csr));
    expect(err.code).toBe('unsupported-algorithm');
    expect(err.message).toBe('signature algorithm 1.2.840.113549.1.1.5 is not supported');
  });

  for (const name of ['p256', 'p384', 'rsa2048', 'rsa2048-pss']) {
    it(`${name}: one flipped signature byte fails with bad-signature`, () => {
      const der = parseCsr(csrs.get(name)!).der;
      const flipped = Buffer.from(der);
      flipped[flipped.length - 2] ^= 0x40;
      const err = errorOf(() => verifyCsr(parseCsr(flipped)));
      expect(err.code).toBe('bad-signature');
      expect(err.message).toBe('CSR signature does not verify');
    });
  }

  it('truncated, garbage and bad-base64 input is malformed', () => {
    const pem = csrs.get('p256')!;
    const der = parseCsr(pem).der;
    const body = pem.split('\n');
    body[2] = `${body[2].slice(0, 5)}%${body[2].slice(6)}`;
    const inputs: (string | Buffer)[] = [
      der.subarray(0, 40),
      der.subarray(0, der.length - 1),
      Buffer.concat([der, Buffer.from('garbage')]),
      `${pem}garbage`.replace('-----END CERTIFICATE REQUEST-----', ''),
      Buffer.from('not a csr at all'),
      body.join('\n'),
      pem.replace('CERTIFICATE REQUEST', 'X509 CRL'),
    ];
    for (const input of inputs) {
      const err = errorOf(() => parseCsr(input));
      expect(err.code).toBe('malformed');
    }
  });
});

describe('buildCsr output is accepted by openssl req -verify', () => {
  const cases: [KeyAlgorithm, RsaPadding | undefined][] = [
    ['P-256', undefined],
    ['P-384', undefined],
    ['RSA-2048', 'pkcs1'],
    ['RSA-2048', 'pss'],
  ];
  for (const [alg, padding] of cases) {
    it(`${alg}${padding ? ` ${padding}` : ''}`, async () => {
      const { privateKey } = await generateKeyPair(alg);
      const der = await buildCsr({ subject: encodeName(SUBJECT), signer: softwareSigner({ privateKey, algorithm: alg, rsaPadding: padding }) });
      const file = dir.file(`built-${alg}-${padding}.csr`, toPem(der, 'CERTIFICATE REQUEST'));
      const r = await openssl(['req', '-verify', '-noout', '-in', file, '-subject', '-nameopt', 'utf8,sep_comma_plus']);
      expect(r.code).toBe(0);
      expect(r.stdout + r.stderr).toContain('Certificate request self-signature verify OK');
      expect(r.stdout).toContain('subject=C=CN,ST=湖南省,L=雨湖区,O=中共雨湖区委员会,CN=张三');
      const csr = parseCsr(der);
      expect(csr.keyAlgorithm).toBe(alg);
      expect(() => verifyCsr(csr)).not.toThrow();
    });
  }
});
