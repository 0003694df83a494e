// The pure parts of the later ceremonies begun online (docs/decisions/0032-offline-root-online-requests.md):
// the request payload's optional `revoke` member, the offline root's check and application of the
// revocations a request asks for, and the check of a domain added to a stored configuration.
import { describe, expect, it } from 'vitest';
import { readRequestPayload } from '../../pki/offline-ceremony.ts';
import { readOrRefuse } from '../../pki/offline-bundle.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { checkRevocations, findIssued, revokeIssued, type IssuedCertificate } from '../../server/offline-root/root-revocation.ts';
import { checkNewDomain } from '../../server/ca/domain-ceremony.ts';
import { buildConfig } from '../../server/config/load-config.ts';
import { exampleConfigData } from '../helpers/config.ts';

const issued: IssuedCertificate[] = [
  { ca: 'yuhu', serial: '0a1b', certificate: 'AA==', notAfter: '2036-01-01T00:00:00.000Z', status: 'good', revokedAt: null, reason: null },
  { ca: 'xiangtan', serial: '0c2d', certificate: 'AA==', notAfter: '2036-01-01T00:00:00.000Z', status: 'revoked', revokedAt: '2026-01-01T00:00:00.000Z', reason: 1 },
];

describe('the request payload\'s revocations', () => {
  it('are optional; when present each names a CA, a lowercase hex serial and a reason code that revokes', () => {
    expect(readRequestPayload({ certify: [] })).toEqual({ certify: [] });
    expect(readRequestPayload({ certify: [], revoke: [{ ca: 'yuhu', serial: '0a1b', reason: 1 }] }).revoke).toEqual([{ ca: 'yuhu', serial: '0a1b', reason: 1 }]);
    const bad = 'request bundle: revoke[0] is not { ca, serial (lowercase hex), reason (an RFC 5280 reason code, not removeFromCRL) }';
    for (const r of [{ ca: 'yuhu', serial: '0A1B', reason: 1 }, { ca: 'yuhu', serial: '0a1b', reason: 7 }, { ca: 'yuhu', serial: '0a1b', reason: 8 }, { serial: '0a1b', reason: 1 }]) {
      expect(() => readRequestPayload({ certify: [], revoke: [r] })).toThrow(bad);
    }
    expect(() => readRequestPayload({ certify: [], revoke: {} })).toThrow('request bundle: payload.revoke is not a list');
  });
});

describe('readOrRefuse', () => {
  it('turns a PkiError into the caller\'s refusal and lets any other error through', () => {
    const refuse = (m: string) => new Error(`refused: ${m}`);
    expect(readOrRefuse(() => 7, refuse)).toBe(7);
    expect(() => readOrRefuse(() => { throw new PkiError('malformed', 'not a bundle'); }, refuse)).toThrow('refused: not a bundle');
    expect(() => readOrRefuse(() => { throw new TypeError('a bug'); }, refuse)).toThrow(TypeError);
  });
});

describe('revocations on the offline root', () => {
  it('a request may revoke only what the root issued; one revoked already is noted, not refused', () => {
    const refuse = (m: string) => new Error(m);
    expect(checkRevocations(issued, [{ ca: 'yuhu', serial: '0a1b', reason: 1 }, { ca: 'xiangtan', serial: '0c2d', reason: 1 }], refuse)).toEqual([
      { ca: 'yuhu', serial: '0a1b', reason: 1, already: false }, { ca: 'xiangtan', serial: '0c2d', reason: 1, already: true },
    ]);
    expect(() => checkRevocations(issued, [{ ca: 'yuhu', serial: 'ffff', reason: 1 }], refuse)).toThrow('the request asks to revoke yuhu serial ffff, which this root did not issue');
  });

  it('revokeIssued changes the one certificate, at whole seconds, with its reason', () => {
    const { issued: next, revoked } = revokeIssued(issued, findIssued(issued, 'yuhu'), new Date('2026-05-01T10:00:00.750Z'), 2);
    expect(next[0]).toEqual({ ...issued[0], status: 'revoked', revokedAt: '2026-05-01T10:00:00.000Z', reason: 2 });
    expect(next[1]).toBe(issued[1]);
    expect(revoked).toEqual([issued[0]]);
    expect(findIssued(issued, '0C2D').ca).toBe('xiangtan');
    expect(() => findIssued(issued, 'shaoshan')).toThrow('the root has issued no certificate for shaoshan');
  });

  it('after a root rollover, revoking a domain CA revokes its key under both root generations', () => {
    const rolled: IssuedCertificate[] = [
      ...issued,
      { issuer: 'root-g2', ca: 'yuhu', serial: '0e3f', certificate: 'AA==', notAfter: '2040-01-01T00:00:00.000Z', status: 'good', revokedAt: null, reason: null },
    ];
    // Named by the new certificate's serial (as an online request names it), the old one goes too.
    const { issued: next, revoked } = revokeIssued(rolled, findIssued(rolled, '0e3f'), new Date('2026-06-01T00:00:00Z'), 1);
    expect(revoked.map((i) => i.serial).sort()).toEqual(['0a1b', '0e3f']);
    expect(next.filter((i) => i.ca === 'yuhu').every((i) => i.status === 'revoked' && i.reason === 1)).toBe(true);
    // The other CA, revoked earlier, keeps its own time and reason.
    expect(next[1]).toBe(rolled[1]);
  });
});

describe('a domain added to the stored configuration', () => {
  const data = exampleConfigData();
  const stored = JSON.stringify({ ...data, domains: data.domains.slice(0, 2) });
  const yuetang = data.domains[2]!;
  const domain = { slug: yuetang.slug, name: yuetang.name, dnsSuffix: yuetang.dnsSuffix, emailSuffix: yuetang.emailSuffix, ipRanges: [...(yuetang.ipRanges ?? [])] };

  it('is checked by the configuration\'s own rules and returned with its organs', () => {
    const { config, stored: next } = checkNewDomain(stored, domain);
    expect(config).toMatchObject({ slug: 'yuetang', dnsSuffix: 'yuetang.xiangtan.intranet', ipRanges: domain.ipRanges });
    expect(config.organs.length).toBe(data.organs.length);
    expect(buildConfig(next).domains.map((d) => d.slug)).toEqual(['xiangtan', 'yuhu', 'yuetang']);
  });

  it('a slug or suffix used already, or ranges that overlap another domain\'s, are refused with what is wrong', () => {
    expect(() => checkNewDomain(stored, { ...domain, slug: 'yuhu' })).toThrow('domain yuhu exists already');
    expect(() => checkNewDomain(stored, { ...domain, dnsSuffix: 'yuhu.xiangtan.intranet' })).toThrow('the new domain is refused: domains.2.dnsSuffix: yuhu.xiangtan.intranet appears twice');
    expect(() => checkNewDomain(stored, { ...domain, ipRanges: ['10.21.5.0/24'] })).toThrow('the new domain is refused: domains.2.ipRanges.0: 10.21.5.0/24 overlaps 10.21.0.0/16 of yuhu');
  });
});
