// Syncing the CA directory from the database (another instance's changes) against this instance's
// own changes: a read that began before a revocation committed must not set the CA back to active.
// CI once saw GET /ca answer a just-revoked CA as active: the OCSP poll had listed the CAs just before
// the approval's transaction committed, and put its stale record over the new one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { CaDirectory, type LoadedCa } from '../../server/ca/ca-directory.ts';
import { OcspSource, type OcspSourceDeps } from '../../server/ca/ocsp-source.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { REVOCATION_REASONS } from '../../pki/revocation-reason.ts';
import type { CaRecord } from '../../server/storage/storage.ts';
import type { Signer } from '../../pki/signer.ts';

const tmp = new TempDir();
let certificate: Buffer;

beforeAll(async () => {
  const res = await openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=sync test CA',
    '-keyout', tmp.file('ca.key'), '-outform', 'DER', '-out', tmp.file('ca.der'), '-days', '30',
  ]);
  expect(res.code, res.stderr).toBe(0);
  certificate = tmp.read('ca.der');
});
afterAll(() => tmp.cleanup());

const at = new Date('2026-06-01T08:00:00Z');

function record(change: Partial<CaRecord> = {}): CaRecord {
  return {
    id: 'yuhu-t3', layer: 'tier', domain: 'yuhu', tier: 't3', parentId: null, name: 'CN=sync test CA', keyId: 'k1', certificate,
    serial: '01', notBefore: at, notAfter: at, fingerprint: 'f', keyHashSha1: 'a'.repeat(40), nameHashSha1: 'b'.repeat(40),
    status: 'active', revokedAt: null, revocationReason: null, createdAt: at, ...change,
  } as CaRecord;
}

function directoryWith(r: CaRecord): CaDirectory {
  const dir = new CaDirectory();
  const loaded: LoadedCa = { record: r, fields: readCertificate(certificate), keyAlgorithm: 'P-256', chain: [certificate], signer: {} as Signer };
  dir.add(loaded);
  return dir;
}

const revoked = (): Partial<CaRecord> => ({ status: 'revoked', revokedAt: at, revocationReason: REVOCATION_REASONS.keyCompromise });

describe('CaDirectory.takeNewer', () => {
  it('takes a revocation or a retirement made elsewhere', () => {
    const dir = directoryWith(record());
    expect(dir.takeNewer(record(revoked()))).toBe(true);
    expect(dir.get('yuhu-t3')!.record).toMatchObject({ status: 'revoked', revocationReason: REVOCATION_REASONS.keyCompromise });
    expect(dir.effectiveStatus('yuhu-t3').status).toBe('revoked');

    const other = directoryWith(record());
    expect(other.takeNewer(record({ status: 'retired', retiredAt: at, successorId: 'yuhu-t3-g2' }))).toBe(true);
    expect(other.get('yuhu-t3')!.record).toMatchObject({ status: 'retired', successorId: 'yuhu-t3-g2' });
  });

  it('never sets a status back, and keeps a successor once set', () => {
    const dir = directoryWith(record({ ...revoked(), successorId: 'yuhu-t3-g2' }));
    expect(dir.takeNewer(record())).toBe(false);
    expect(dir.takeNewer(record({ status: 'retired', retiredAt: at }))).toBe(false);
    expect(dir.get('yuhu-t3')!.record).toMatchObject({ status: 'revoked', successorId: 'yuhu-t3-g2' });
    expect(dir.effectiveStatus('yuhu-t3').status).toBe('revoked');
  });

  it('takes a new successor without setting the status back', () => {
    const dir = directoryWith(record({ status: 'retired', retiredAt: at }));
    expect(dir.takeNewer(record({ successorId: 'yuhu-t3-g2' }))).toBe(true);
    expect(dir.get('yuhu-t3')!.record).toMatchObject({ status: 'retired', retiredAt: at, successorId: 'yuhu-t3-g2' });
  });

  it('ignores a CA it does not hold', () => {
    expect(new CaDirectory().takeNewer(record(revoked()))).toBe(false);
  });
});

describe('OcspSource.pollOnce against a revocation made meanwhile by this instance', () => {
  it('keeps the CA revoked when its list of CAs was read before the revocation committed', async () => {
    const dir = directoryWith(record());
    let release!: (records: CaRecord[]) => void;
    const listed = new Promise<CaRecord[]>((resolve) => (release = resolve));
    const store = { cas: { list: () => listed }, revocationEvents: { since: async () => [] } };
    const source = new OcspSource({ store, cas: dir } as unknown as OcspSourceDeps);
    const poll = source.pollOnce();
    // The approval's transaction commits and this instance takes the revocation into its directory…
    dir.add({ ...dir.get('yuhu-t3')!, record: record(revoked()) });
    // …and only then does the poll's read, begun before the commit, come back.
    release([record()]);
    await poll;
    expect(dir.get('yuhu-t3')!.record.status).toBe('revoked');
    expect(dir.effectiveStatus('yuhu-t3').status).toBe('revoked');
  });
});
