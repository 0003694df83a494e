// The issuance preparer over in-memory fakes (no database, no CA keys): the key rules, the usable
// issuer, validity, the subject DN, the permitted subtrees, and the one-time domain/organ reads.
import { describe, expect, it } from 'vitest';
import { IssuancePreparer, PRINCIPAL_OU, type PrepareInput } from '../../server/ra/issuance-preparer.ts';
import { DEFAULT_TIERS, type TierPolicy } from '../../server/config/tier-policy.ts';
import { TiercaError, type ErrorCode } from '../../server/errors.ts';
import type { LoadedCa } from '../../server/ca/ca-directory.ts';
import type { DomainRecord, OrganRecord, SubjectRecord } from '../../server/storage/storage.ts';
import { decodeName } from '../../pki/name.ts';
import { publicKeyInfoOf } from '../../pki/key-pair.ts';
import { nodeCsr } from '../helpers/pki-fixtures.ts';

const NOW = new Date('2026-06-01T10:00:00.400Z');
const CA_NOT_AFTER = new Date('2026-09-01T00:00:00Z');
const tier = (id: 't1' | 't3'): TierPolicy => ({ ...DEFAULT_TIERS[id], id, oid: `1.3.6.1.4.1.32473.1.${id.slice(1)}` });

const YUHU: DomainRecord = { slug: 'yuhu', name: '雨湖区', locality: '雨湖区', dnsSuffix: 'yuhu.xiangtan.intranet', emailSuffix: 'yuhu.xiangtan.intranet', parent: 'xiangtan' };
const COURT: OrganRecord = { domain: 'yuhu', slug: 'court', name: '雨湖区人民法院' } as OrganRecord;

/** The fakes, with a count of every repository read. */
function fakes(blocked: Set<string> = new Set()) {
  const reads = { domains: 0, organs: 0 };
  const preparer = new IssuancePreparer({
    config: { country: 'CN', province: '湖南省', organisation: '湘潭市电子政务内网' },
    cas: {
      usableIssuer(domain: string, tierId: string): LoadedCa {
        if (blocked.has(domain)) throw new TiercaError('ca-unavailable', `the issuing CA ${domain}-${tierId} cannot issue: its CA ${domain} is revoked`);
        return { record: { id: `${domain}-${tierId}`, notAfter: CA_NOT_AFTER }, chain: [] } as unknown as LoadedCa;
      },
    },
    domains: { get: async (slug: string) => (reads.domains++, slug === 'yuhu' ? YUHU : undefined) },
    organs: { get: async (domain: string, slug: string) => (reads.organs++, domain === 'yuhu' && slug === 'court' ? COURT : undefined) },
  });
  return { preparer, reads };
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<ErrorCode | string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err instanceof TiercaError ? err.code : (err as { code?: string }).code ?? String(err);
  }
  return 'no error';
}

const subject = (over: Partial<SubjectRecord> = {}): SubjectRecord => ({
  id: 'sub-1', kind: 'user', domain: 'yuhu', organ: 'court', tier: 't1', name: 'zhangsan', dnsNames: [], ipAddresses: [],
  emails: ['zhangsan@yuhu.xiangtan.intranet'], status: 'active', createdBy: null, createdAt: NOW, ...over,
});

function input(over: Partial<PrepareInput> & Pick<PrepareInput, 'key'>): PrepareInput {
  return {
    tier: tier('t1'), domain: 'yuhu', profile: 'user-sign', holderKind: 'user', name: { kind: 'subject', subject: subject() }, subjectId: 'sub-1',
    names: { dns: [], ip: [], email: ['zhangsan@yuhu.xiangtan.intranet'] }, requestId: null, now: NOW, ...over,
  };
}

describe('IssuancePreparer.checkKey', () => {
  it('takes exactly one of a CSR and generate', async () => {
    const { preparer } = fakes();
    const { csrPem } = await nodeCsr('P-256');
    expect(await codeOf(preparer.checkKey(tier('t1'), 'user-sign', {}))).toBe('bad-request');
    expect(await codeOf(preparer.checkKey(tier('t1'), 'user-sign', { csr: csrPem, generate: {} }))).toBe('bad-request');
  });

  it('accepts a verified CSR with an allowed algorithm and keeps its DER and key', async () => {
    const { preparer } = fakes();
    const { csrPem, privateKey } = await nodeCsr('P-256');
    const key = await preparer.checkKey(tier('t1'), 'user-sign', { csr: csrPem });
    expect(key.kind).toBe('csr');
    if (key.kind !== 'csr') return;
    expect(key.keyAlgorithm).toBe('P-256');
    expect(key.publicKeyInfo.equals(publicKeyInfoOf(privateKey))).toBe(true);
  });

  it('refuses a tampered CSR, an algorithm the tier does not allow, and server-made keys where the tier wants the holder', async () => {
    const { preparer } = fakes();
    const { csrPem } = await nodeCsr('P-256');
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    der[der.length - 5] ^= 0x01;
    expect(await codeOf(preparer.checkKey(tier('t1'), 'user-sign', { csr: der }))).toBe('bad-csr-signature');
    expect(await codeOf(preparer.checkKey(tier('t3'), 'user-sign', { csr: csrPem }))).toBe('policy-key-algorithm');
    expect(await codeOf(preparer.checkKey(tier('t3'), 'user-sign', { generate: { algorithm: 'P-384' } }))).toBe('policy-server-keygen');
    expect(await codeOf(preparer.checkKey(tier('t1'), 'user-sign', { generate: { algorithm: 'ED25519' } }))).toBe('policy-key-algorithm');
    expect(await preparer.checkKey(tier('t1'), 'user-sign', { generate: {} })).toEqual({ kind: 'generate', keyAlgorithm: 'P-256' });
  });
});

describe('IssuancePreparer with verifyWhenSigning (decision 0034)', () => {
  it('parses the CSR and applies the tier\'s rules, leaves the signature to the signing step, and the order carries the CSR to it', async () => {
    const { preparer } = fakes();
    const { csrPem } = await nodeCsr('P-256');
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    const tampered = Buffer.from(der);
    tampered[tampered.length - 5] ^= 0x01;
    const key = await preparer.checkKey(tier('t1'), 'user-sign', { csr: tampered }, { verifyWhenSigning: true });
    expect(key).toMatchObject({ kind: 'csr', keyAlgorithm: 'P-256', popIdentity: null, verifyWhenSigning: true });
    const { order } = await preparer.prepare(input({ key }));
    expect(order.csrToVerify?.equals(tampered)).toBe(true);
    // The rules still apply before anything is signed; an unparseable CSR is still refused here.
    expect(await codeOf(preparer.checkKey(tier('t3'), 'user-sign', { csr: csrPem }, { verifyWhenSigning: true }))).toBe('policy-key-algorithm');
    expect(await codeOf(preparer.checkKey(tier('t1'), 'user-sign', { csr: 'not a csr' }, { verifyWhenSigning: true }))).toBe('malformed-input');
    // Without it the CSR is verified now and the order carries none.
    const verified = await preparer.checkKey(tier('t1'), 'user-sign', { csr: der });
    expect(verified).not.toHaveProperty('verifyWhenSigning');
    expect((await preparer.prepare(input({ key: verified }))).order.csrToVerify).toBeUndefined();
  });
});

describe('IssuancePreparer.issuerAndValidity', () => {
  it('refuses an unusable CA and more days than the tier allows; otherwise whole seconds, back-dated, capped by the CA', () => {
    const { preparer } = fakes(new Set(['shaoshan']));
    expect(() => preparer.issuerAndValidity({ tier: tier('t1'), domain: 'shaoshan', holderKind: 'user', now: NOW })).toThrowError(/cannot issue: its CA shaoshan is revoked/);
    try {
      preparer.issuerAndValidity({ tier: tier('t1'), domain: 'yuhu', holderKind: 'user', days: 731, now: NOW });
      expect.unreachable();
    } catch (err) {
      expect((err as TiercaError).code).toBe('policy-validity');
    }
    const got = preparer.issuerAndValidity({ tier: tier('t1'), domain: 'yuhu', holderKind: 'user', days: 30, now: NOW });
    expect(got.ca.record.id).toBe('yuhu-t1');
    expect(got.notBefore.toISOString()).toBe('2026-06-01T09:59:00.000Z');
    expect(got.notAfter.toISOString()).toBe('2026-07-01T10:00:00.000Z');
    // 730 days would outlive the CA: the CA's end clamps it.
    expect(preparer.issuerAndValidity({ tier: tier('t1'), domain: 'yuhu', holderKind: 'user', now: NOW }).notAfter).toEqual(CA_NOT_AFTER);
  });
});

describe('IssuancePreparer.prepare', () => {
  it('builds the subject DN from the registered subject, never the CSR, with a common name Java cannot read as a host', async () => {
    const { preparer } = fakes();
    const { csrPem } = await nodeCsr('P-256');
    const key = await preparer.checkKey(tier('t1'), 'user-sign', { csr: csrPem });
    const { order, privateKey } = await preparer.prepare(input({ key }));
    expect(privateKey).toBeUndefined();
    expect(order.subjectDn).toBe('C=CN, ST=湖南省, L=雨湖区, O=雨湖区人民法院, CN=zhangsan (user)');
    expect(decodeName(order.subject).map((a) => a.type)).toEqual(['C', 'ST', 'L', 'O', 'CN']);
    expect(order.ca.record.id).toBe('yuhu-t1');
    expect(order.permitted).toEqual({ dns: ['yuhu.xiangtan.intranet'], email: ['yuhu.xiangtan.intranet'] });
    expect(order.names.email).toEqual(['zhangsan@yuhu.xiangtan.intranet']);
  });

  it('names a principal under the deployment organisation with the principal OU', async () => {
    const { preparer } = fakes();
    const { csrPem } = await nodeCsr('P-256');
    const key = await preparer.checkKey(tier('t1'), 'user-sign', { csr: csrPem });
    const { order } = await preparer.prepare(input({ key, name: { kind: 'principal', principalId: 'prn-0a1b', domain: 'yuhu' } }));
    expect(order.subjectDn).toBe(`C=CN, ST=湖南省, L=雨湖区, O=湘潭市电子政务内网, OU=${PRINCIPAL_OU}, CN=prn-0a1b (principal)`);
  });

  it('makes the server key for generate and hands it back with its public key in the order', async () => {
    const { preparer } = fakes();
    const { order, privateKey } = await preparer.prepare(input({ key: { kind: 'generate', keyAlgorithm: 'P-384' } }));
    expect(privateKey).toBeDefined();
    expect(order.publicKeyInfo.equals(publicKeyInfoOf(privateKey!))).toBe(true);
    expect(order.keyAlgorithm).toBe('P-384');
  });

  it('reads a domain and an organ once per instance', async () => {
    const { preparer, reads } = fakes();
    for (let i = 0; i < 3; i++) await preparer.prepare(input({ key: { kind: 'generate', keyAlgorithm: 'P-256' } }));
    expect(reads).toEqual({ domains: 1, organs: 1 });
  });
});
