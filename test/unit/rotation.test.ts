// The pure parts of rotation: the renewal point, what the server may renew alone, how long before
// its end a CA is due, reading a certificate's names back, and the CLI's progress bar and summary.
import { describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { buildCertificate, randomSerial } from '../../pki/certificate.ts';
import { encodeName } from '../../pki/name.ts';
import { endEntityExtensions } from '../../pki/profiles.ts';
import { publicKeyInfoOf, keyIdentifier } from '../../pki/key-pair.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { buildConfig } from '../../server/config/load-config.ts';
import { caReserveMs, graceDaysOf, renewalPointOf, serverRenewal, DEFAULT_RENEW_AT_FRACTION } from '../../server/ca/rotation-planner.ts';
import { subjectAltNamesOf } from '../../server/ca/renewal.ts';
import type { LoadedCa } from '../../server/ca/ca-directory.ts';
import { ProgressBar, summaryLine, withinDuration } from '../../cli/commands/rotate.ts';
import { exampleConfigData } from '../helpers/config.ts';

const DAY = 24 * 3600 * 1000;
const config = buildConfig(exampleConfigData());
const t1 = config.tiers.get('t1')!;
const t2 = config.tiers.get('t2')!;
const t3 = config.tiers.get('t3')!;

describe('renewal point and grace', () => {
  const cert = { notBefore: new Date('2027-01-01T00:00:00Z'), notAfter: new Date('2027-01-31T00:00:00Z') };
  it('is two thirds of the lifetime by default, in whole seconds', () => {
    expect(DEFAULT_RENEW_AT_FRACTION).toBeCloseTo(2 / 3);
    expect(renewalPointOf(cert, t1).toISOString()).toBe('2027-01-21T00:00:00.000Z');
    expect(renewalPointOf(cert, undefined).toISOString()).toBe('2027-01-21T00:00:00.000Z');
    const odd = { notBefore: new Date('2027-01-01T00:00:00Z'), notAfter: new Date('2027-01-01T00:00:10Z') };
    expect(renewalPointOf(odd, t1).toISOString()).toBe('2027-01-01T00:00:06.000Z');
  });
  it('follows a tier override', () => {
    const half = buildConfig({ ...exampleConfigData(), tiers: { t1: { renewAtFraction: 0.5, supersedeGraceDays: 0 } } }).tiers.get('t1')!;
    expect(renewalPointOf(cert, half).toISOString()).toBe('2027-01-16T00:00:00.000Z');
    expect(graceDaysOf(half)).toBe(0);
    expect(graceDaysOf(t1)).toBe(7);
    expect(graceDaysOf(undefined)).toBe(0);
  });
  it('refuses fractions outside (0, 1) and negative grace in the config, naming the field', () => {
    expect(() => buildConfig({ ...exampleConfigData(), tiers: { t2: { renewAtFraction: 1 } } })).toThrow('tiers.t2.renewAtFraction');
    expect(() => buildConfig({ ...exampleConfigData(), tiers: { t2: { supersedeGraceDays: -1 } } })).toThrow('tiers.t2.supersedeGraceDays');
  });
});

describe('what the server may renew without the holder', () => {
  it('keeps keys where the tier lets the server make keys and still allows the algorithm', () => {
    expect(serverRenewal(t1, 'P-256')).toEqual({ ok: true });
    expect(serverRenewal(t2, 'RSA-2048')).toEqual({ ok: false, why: 'key RSA-2048 is no longer allowed at tier t2: the holder sends a CSR for a new key' });
    expect(serverRenewal(t3, 'P-384')).toEqual({ ok: false, why: 'tier t3 rekeys at renewal: the holder sends a CSR for a new key' });
  });
});

describe('when a CA is due', () => {
  const ca = (layer: 'root' | 'domain' | 'tier', tier: string | null = null) => ({ record: { layer, tier } }) as unknown as LoadedCa;
  it('is the longest validity it gives before its end', () => {
    expect(caReserveMs(ca('tier', 't1'), config)).toBe(1095 * DAY);
    expect(caReserveMs(ca('tier', 't3'), config)).toBe(365 * DAY);
    expect(caReserveMs(ca('domain'), config)).toBe(5 * 365.25 * DAY);
    expect(caReserveMs(ca('root'), config)).toBe(10 * 365.25 * DAY);
  });
});

describe('subjectAltNamesOf', () => {
  it('reads DNS names, IP addresses and e-mail addresses back from a certificate', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const spki = publicKeyInfoOf(privateKey);
    const name = encodeName([{ type: 'CN', value: 'x' }]);
    const der = await buildCertificate({
      serial: randomSerial(), issuer: name, subject: name, notBefore: new Date('2027-01-01Z'), notAfter: new Date('2027-02-01Z'), publicKeyInfo: spki,
      extensions: endEntityExtensions({
        profile: 'device', publicKeyInfo: spki, issuerKeyId: keyIdentifier(spki), policyOid: t1.oid,
        links: { caIssuersUrl: 'http://x/ca.crt', crlUrl: 'http://x/ca.crl' }, dns: ['a.yuhu.intranet', 'b.yuhu.intranet'], ip: ['10.0.0.1', '2001:db8::1'],
      }),
      signer: softwareSigner({ privateKey, algorithm: 'P-256' }),
    });
    const names = subjectAltNamesOf(der);
    expect(names.dns).toEqual(['a.yuhu.intranet', 'b.yuhu.intranet']);
    expect(names.ip.map((b) => b.toString('hex'))).toEqual(['0a000001', '20010db8000000000000000000000001']);
    expect(names.email).toEqual([]);
    expect(names.other).toBe(0);
  });
});

describe('rotate run output', () => {
  it('draws a progress bar only on a terminal, ending with a newline', () => {
    let tty = '';
    const bar = new ProgressBar({ write: (s: string) => (tty += s), isTTY: true }, 4, 'renewing');
    bar.update(1);
    bar.update(1);
    bar.update(4);
    bar.finish();
    expect(tty).toBe(`\rrenewing [########......................] 1/4\rrenewing [${'#'.repeat(30)}] 4/4\n`);
    let pipe = '';
    const quiet = new ProgressBar({ write: (s: string) => (pipe += s), isTTY: false }, 4, 'renewing');
    quiet.update(2);
    quiet.finish();
    expect(pipe).toBe('');
  });
  it('summarises outcomes in a fixed order, leaving out zeros', () => {
    expect(summaryLine({ failed: 1, renewed: 3, 'waiting-for-holder': 2, rotated: 0 })).toBe('renewed 3, waiting for the holder 2, failed 1');
    expect(summaryLine({})).toBe('nothing was due');
  });
  it('takes --within as days, hours or minutes', () => {
    expect(withinDuration('30d')).toBe('30d');
    expect(() => withinDuration('30s')).toThrow('expected a duration like 30d, 12h or 90m.');
  });
});
