/**
 * CRLs against the openssl 3.0 CLI: full and delta CRLs made by buildCrl (one streamed from an async
 * iterable) are printed by `openssl crl -text`, verified by `openssl crl -verify`, and used by
 * `openssl verify -crl_check` (and `-use_deltas`) to accept or refuse real certificates.
 *
 * The certificates are made here with the openssl CLI; the commands run are in SETUP below.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { children, readOnly } from '../../pki/der-reader.ts';
import { toPem } from '../../pki/der.ts';
import { buildCrl, type BuildCrlParams, type CrlEntry } from '../../pki/crl.ts';
import { parseCrl } from '../../pki/crl-reader.ts';
import { keyIdentifier } from '../../pki/key-pair.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import type { Signer } from '../../pki/signer.ts';

const CRL_URL = 'http://crl.xiangtan.intranet/t1.crl';
const DELTA_URL = 'http://crl.xiangtan.intranet/t1-delta.crl';
const P256 = ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const leafExt = (crlUrl: string) =>
  [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid',
    `crlDistributionPoints=URI:${crlUrl}`,
  ].join('\n');

/** The leaves: file name → serial given to openssl. */
const LEAVES = {
  revoked: '0xc0ffee01', // keyCompromise in the full CRL (serial with its high bit set)
  good: '0x2002', // never listed
  hold: '0x2003', // certificateHold in the full CRL, removeFromCRL in the delta
  late: '0x2004', // revoked after the full CRL: only in the delta
  elsewhere: '0x2005', // its CRL distribution point is another CRL's
} as const;

/** Every openssl command that makes the fixtures, in order (cwd: the temporary folder). */
const SETUP: string[][] = [
  [...P256, '-out', 'ca.key'],
  ['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '30', '-utf8', '-subj', '/C=CN/ST=湖南省/L=湘潭市/O=Tierca Test/CN=Test Tier CA',
    '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.pem'],
  [...P256, '-out', 'other.key'],
  ...Object.entries(LEAVES).flatMap(([name, serial]) => [
    [...P256, '-out', `${name}.key`],
    ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${name}`, '-out', `${name}.csr`],
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', serial, '-days', '10',
      '-extfile', name === 'elsewhere' ? 'elsewhere.ext' : 'leaf.ext', '-out', `${name}.pem`],
  ]),
];

let tmp: TempDir;
let signer: Signer;
let issuer: Buffer;
let aki: Buffer;
const serial: Record<keyof typeof LEAVES, string> = { revoked: '', good: '', hold: '', late: '', elsewhere: '' };

async function run(args: string[]): Promise<string> {
  const r = await openssl(args, { cwd: tmp.path });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** openssl's ASN1_TIME_print form: "Mar  4 05:06:07 2026 GMT" (never fractions). */
function opensslTime(d: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()} GMT`;
}

const truncated = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);
const colonHex = (b: Buffer) => b.toString('hex').toUpperCase().match(/../g)!.join(':');

// Times with milliseconds on purpose: the CRL must carry whole seconds.
const NOW = Date.now();
const thisUpdate = new Date(NOW - 60_000 - 321);
const nextUpdate = new Date(NOW + 86_400_000 + 789);
const revokedAt = new Date(NOW - 7_200_000 - 555);
const invalidityDate = new Date(NOW - 3 * 86_400_000 - 444);

async function writeCrl(name: string, p: Partial<BuildCrlParams> & Pick<BuildCrlParams, 'entries'>): Promise<Buffer> {
  const der = await buildCrl({ issuer, authorityKeyId: aki, thisUpdate, nextUpdate, crlNumber: 7n, signer, distributionPoint: CRL_URL, ...p });
  tmp.file(`${name}.der`, der);
  tmp.file(`${name}.pem`, toPem(der, 'X509 CRL'));
  return der;
}

function fullEntries(): CrlEntry[] {
  return [
    { serial: serial.revoked, revokedAt, reason: 1, invalidityDate },
    { serial: serial.hold, revokedAt, reason: 6 },
    { serial: 'a1b2c3', revokedAt, reason: 0 }, // unspecified: no reasonCode extension
    { serial: 'a1b2c4', revokedAt, reason: 3 },
  ];
}

beforeAll(async () => {
  tmp = new TempDir();
  tmp.file('leaf.ext', leafExt(CRL_URL));
  tmp.file('elsewhere.ext', leafExt('http://crl.elsewhere.intranet/x.crl'));
  for (const args of SETUP) await run(args);
  const ca = new X509Certificate(tmp.read('ca.pem'));
  const tbs = children(children(readOnly(ca.raw, 0x30))[0]);
  issuer = tbs[tbs[0].tag === 0xa0 ? 5 : 4].raw;
  signer = softwareSigner({ privateKey: createPrivateKey(tmp.read('ca.key')), algorithm: 'P-256' });
  aki = keyIdentifier(signer.publicKeyInfo);
  for (const name of Object.keys(LEAVES) as (keyof typeof LEAVES)[]) {
    serial[name] = new X509Certificate(tmp.read(`${name}.pem`)).serialNumber.toLowerCase().replace(/^(00)+(?=..)/, '');
  }
  await writeCrl('full', { entries: fullEntries(), freshestCrl: DELTA_URL });
  await writeCrl('delta', {
    crlNumber: 8n,
    baseCrlNumber: 7n,
    entries: [
      { serial: serial.late, revokedAt: truncated(new Date(NOW - 30_000)), reason: 4 },
      { serial: serial.hold, revokedAt, reason: 8 },
    ],
  });
  tmp.file('full+delta.pem', Buffer.concat([tmp.read('full.pem'), tmp.read('delta.pem')]));
});

afterAll(() => tmp?.cleanup());

describe('openssl crl reads a full CRL', () => {
  it('prints version 2, CRL Number, AKI, IDP, Freshest CRL, reason codes and the Invalidity Date', async () => {
    const text = await run(['crl', '-inform', 'DER', '-in', 'full.der', '-text', '-noout']);
    expect(text).toContain('Version 2 (0x1)');
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(text).toMatch(/X509v3 CRL Number: \n\s+7\n/);
    // the AKI is the CA's subject key identifier as openssl computed it for the certificate
    const ski = (await run(['x509', '-in', 'ca.pem', '-noout', '-ext', 'subjectKeyIdentifier'])).split('\n')[1].trim();
    expect(colonHex(aki)).toBe(ski);
    expect(text).toMatch(new RegExp(`X509v3 Authority Key Identifier: \\n\\s+${ski}\\n`));
    expect(text).toMatch(/X509v3 Issuing Distribution Point: critical\n\s+Full Name:\n\s+URI:http:\/\/crl\.xiangtan\.intranet\/t1\.crl\n/);
    expect(text).toMatch(/X509v3 Freshest CRL: \n\s+Full Name:\n\s+URI:http:\/\/crl\.xiangtan\.intranet\/t1-delta\.crl\n/);
    expect(text).not.toContain('Delta CRL Indicator');

    const blocks = text.split('Serial Number: ').slice(1);
    expect(blocks.map((b) => b.split('\n')[0])).toEqual(['C0FFEE01', '2003', 'A1B2C3', 'A1B2C4']);
    expect(blocks[0]).toContain(`Revocation Date: ${opensslTime(revokedAt)}`);
    expect(blocks[0]).toMatch(/X509v3 CRL Reason Code: \n\s+Key Compromise\n/);
    expect(blocks[0]).toMatch(new RegExp(`Invalidity Date: \\n\\s+${opensslTime(invalidityDate)}\\n`));
    expect(blocks[1]).toMatch(/X509v3 CRL Reason Code: \n\s+Certificate Hold\n/);
    expect(blocks[2]).not.toContain('CRL entry extensions'); // unspecified leaves reasonCode out (RFC 5280 §5.3.1)
    expect(blocks[3]).toMatch(/X509v3 CRL Reason Code: \n\s+Affiliation Changed\n/);
  });

  it('prints whole-second lastUpdate / nextUpdate and the CRL number (-lastupdate -nextupdate -crlnumber)', async () => {
    const out = await run(['crl', '-inform', 'DER', '-in', 'full.der', '-noout', '-lastupdate', '-nextupdate', '-crlnumber']);
    expect(out).toBe(`lastUpdate=${opensslTime(thisUpdate)}\nnextUpdate=${opensslTime(nextUpdate)}\ncrlNumber=0x07\n`);
    expect(out).not.toMatch(/\d\d:\d\d:\d\d\./);
    expect(parseCrl(tmp.read('full.der')).thisUpdate).toEqual(truncated(thisUpdate));
  });

  it('verifies the CRL signature with the CA certificate (openssl crl -verify)', async () => {
    const r = await openssl(['crl', '-inform', 'DER', '-in', 'full.der', '-noout', '-verify', '-CAfile', 'ca.pem'], { cwd: tmp.path });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('verify OK');
  });

  it('refuses a CRL signed by another key (openssl crl -verify: verify failure)', async () => {
    const other = softwareSigner({ privateKey: createPrivateKey(tmp.read('other.key')), algorithm: 'P-256' });
    await writeCrl('forged', { entries: [], signer: other });
    const r = await openssl(['crl', '-inform', 'DER', '-in', 'forged.der', '-noout', '-verify', '-CAfile', 'ca.pem'], { cwd: tmp.path });
    // openssl crl 3.0 exits 0 even then; the verdict is on stderr.
    expect(r.stderr).toContain('verify failure');
    expect(r.stderr).not.toContain('verify OK');
    const v = await openssl(['verify', '-crl_check', '-CRLfile', 'forged.pem', '-CAfile', 'ca.pem', 'good.pem'], { cwd: tmp.path });
    expect(v.code).not.toBe(0);
    expect(v.stdout + v.stderr).toContain('CRL signature failure');
  });

  it('an empty CRL prints "No Revoked Certificates." and verifies', async () => {
    await writeCrl('empty', { entries: [], crlNumber: 9n });
    const text = await run(['crl', '-inform', 'DER', '-in', 'empty.der', '-text', '-noout']);
    expect(text).toContain('No Revoked Certificates.');
    const r = await openssl(['crl', '-inform', 'DER', '-in', 'empty.der', '-noout', '-verify', '-CAfile', 'ca.pem'], { cwd: tmp.path });
    expect(r.stderr).toContain('verify OK');
  });
});

describe('openssl verify -crl_check with our CRLs', () => {
  const verify = (leaf: string, crlFile: string, extra: string[] = []) =>
    openssl(['verify', '-crl_check', ...extra, '-CRLfile', crlFile, '-CAfile', 'ca.pem', `${leaf}.pem`], { cwd: tmp.path });

  it('fails a listed leaf with "certificate revoked"', async () => {
    const r = await verify('revoked', 'full.pem');
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('error 23 at 0 depth lookup: certificate revoked');
  });

  it('fails a held leaf too (certificateHold)', async () => {
    const r = await verify('hold', 'full.pem');
    expect(r.stdout + r.stderr).toContain('certificate revoked');
  });

  it('passes an unlisted leaf', async () => {
    const r = await verify('good', 'full.pem');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('good.pem: OK\n');
  });

  it('accepts a CRL streamed from an async iterable over several 1 MiB chunks (40,000 entries, the leaf in the middle)', async () => {
    // What the CRL publisher hands over: entries arriving page by page from storage.
    const filler = (i: number): CrlEntry => ({ serial: `7f${i.toString(16).padStart(30, '0')}`, revokedAt, reason: [1, 3, 4, 5][i % 4] });
    async function* pages(): AsyncGenerator<CrlEntry> {
      for (let i = 0; i < 40_000; i += 1000) {
        await new Promise((resolve) => setImmediate(resolve));
        for (let j = i; j < i + 1000; j++) {
          if (j === 20_000) yield { serial: serial.revoked, revokedAt, reason: 1, invalidityDate };
          yield filler(j);
        }
      }
    }
    const der = await writeCrl('streamed', { entries: pages(), crlNumber: 10n });
    expect(der.length).toBeGreaterThan(1024 * 1024); // two chunks at least
    const r = await openssl(['crl', '-inform', 'DER', '-in', 'streamed.der', '-noout', '-verify', '-CAfile', 'ca.pem'], { cwd: tmp.path });
    expect(r.stderr).toContain('verify OK');
    const text = await run(['crl', '-inform', 'DER', '-in', 'streamed.der', '-text', '-noout']);
    expect(text.split('Serial Number: ').length - 1).toBe(40_001);
    expect(text).toMatch(/X509v3 CRL Number: \n\s+10\n/);
    const revoked = await verify('revoked', 'streamed.pem');
    expect(revoked.stdout + revoked.stderr).toContain('error 23 at 0 depth lookup: certificate revoked');
    const good = await verify('good', 'streamed.pem');
    expect(good.stdout).toBe('good.pem: OK\n');
  });

  it('does not apply the CRL to a leaf whose distribution point is not the CRL\'s IDP (RFC 5280 §5.2.5)', async () => {
    const r = await verify('elsewhere', 'full.pem');
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('error 44 at 0 depth lookup: different CRL scope');
  });
});

describe('delta CRLs', () => {
  it('openssl crl shows the critical Delta CRL Indicator with the base number and Remove From CRL', async () => {
    const text = await run(['crl', '-inform', 'DER', '-in', 'delta.der', '-text', '-noout']);
    expect(text).toMatch(/X509v3 CRL Number: \n\s+8\n/);
    expect(text).toMatch(/X509v3 Delta CRL Indicator: critical\n\s+7\n/);
    expect(text).toMatch(/X509v3 CRL Reason Code: \n\s+Superseded\n/);
    expect(text).toMatch(/X509v3 CRL Reason Code: \n\s+Remove From CRL\n/);
    expect(text).not.toContain('Freshest CRL');
    const r = await openssl(['crl', '-inform', 'DER', '-in', 'delta.der', '-noout', '-verify', '-CAfile', 'ca.pem'], { cwd: tmp.path });
    expect(r.stderr).toContain('verify OK');
    const parsed = parseCrl(tmp.read('delta.der'));
    expect([parsed.crlNumber, parsed.baseCrlNumber]).toEqual([8n, 7n]);
  });

  it('with -use_deltas openssl applies the delta: a late revocation is caught, a released hold passes', async () => {
    const lateFull = await openssl(['verify', '-crl_check', '-CRLfile', 'full.pem', '-CAfile', 'ca.pem', 'late.pem'], { cwd: tmp.path });
    expect(lateFull.stdout).toBe('late.pem: OK\n');
    const lateDelta = await openssl(['verify', '-crl_check', '-use_deltas', '-CRLfile', 'full+delta.pem', '-CAfile', 'ca.pem', 'late.pem'], { cwd: tmp.path });
    expect(lateDelta.code).not.toBe(0);
    expect(lateDelta.stdout + lateDelta.stderr).toContain('certificate revoked');

    const holdDelta = await openssl(['verify', '-crl_check', '-use_deltas', '-CRLfile', 'full+delta.pem', '-CAfile', 'ca.pem', 'hold.pem'], { cwd: tmp.path });
    expect(holdDelta.code).toBe(0);
    expect(holdDelta.stdout).toBe('hold.pem: OK\n');
    const revokedDelta = await openssl(['verify', '-crl_check', '-use_deltas', '-CRLfile', 'full+delta.pem', '-CAfile', 'ca.pem', 'revoked.pem'], { cwd: tmp.path });
    expect(revokedDelta.stdout + revokedDelta.stderr).toContain('certificate revoked');
  });
});
