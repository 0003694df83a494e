// A revocation racing the OCSP answers of the same certificate must never be lost (found by CI: on
// PostgreSQL the rotation walk once saw a superseded certificate answer `good` after its revocation
// had committed). Two races, each made certain by a hook at the exact point between the read and the
// write: the status scheduler re-signing an answer whose nextUpdate is near, and the OCSP responder
// caching the answer it read. Both verified with `openssl ocsp`. Runs on SQLite and PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../server/clock.ts';
import type { OcspResponseRecord } from '../../server/storage/storage.ts';
import { startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { TempDir } from '../helpers/openssl.ts';
import { caPem, issueLeaf, ocspAt, smallConfig, type IssuedLeaf } from '../helpers/rotation.ts';

const clock = new FixedClock(new Date('2027-03-01T08:00:00Z'));
const tmp = new TempDir();
let t: TestTierca;
let root = '';
let domain = '';
let tier = '';

beforeAll(async () => {
  t = await startTestTierca({ clock, configData: smallConfig() });
  root = await caPem(t, 'root');
  domain = await caPem(t, 'yuhu');
  tier = await caPem(t, 'yuhu-t2');
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

const ask = (leaf: IssuedLeaf) => ocspAt(t, tmp, { leafPem: leaf.pem, issuerPem: tier, root, chain: [tier, domain], at: clock.now() });

function revoke(leaf: IssuedLeaf) {
  return t.service.services.revocation.apply(leaf.issuerId, leaf.serial, { kind: 'revoke', reason: 1, invalidityDate: null }, clock.now(), {
    principalId: null, role: null, source: 'test', requestId: null,
  });
}

describe('a revocation racing the OCSP answers of its certificate', () => {
  it('the scheduler re-signing the answer meanwhile does not store good over it', async () => {
    const { services } = t.service;
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't2' });
    const first = (await services.store.ocspResponses.get(leaf.issuerId, leaf.serial))!;
    // Within half a validity of its nextUpdate, the answer is the scheduler's to re-sign.
    clock.set(new Date(first.nextUpdate.getTime() - 60_000));
    // The revocation commits after the scheduler has read the certificate as good, before it signs:
    // at its responder look-up, which comes between the two.
    const staleList = services.store.ocspResponses.listStale.bind(services.store.ocspResponses);
    const forCa = services.responders.forCa.bind(services.responders);
    let armed = false;
    let revoked = false;
    services.store.ocspResponses.listStale = async (...args) => {
      armed = true;
      return staleList(...args);
    };
    services.responders.forCa = async (caId, now) => {
      if (armed && !revoked && caId === leaf.issuerId) {
        revoked = true;
        expect((await revoke(leaf)).changed).toBe(true);
      }
      return forCa(caId, now);
    };
    try {
      await services.scheduler.runOnce();
    } finally {
      services.store.ocspResponses.listStale = staleList;
      services.responders.forCa = forCa;
    }
    expect(revoked).toBe(true);
    const stored = (await services.store.ocspResponses.get(leaf.issuerId, leaf.serial))!;
    expect(stored.thisUpdate.getTime()).toBeGreaterThan(first.thisUpdate.getTime());
    const answer = await ask(leaf);
    expect(answer.status, answer.stdout + answer.stderr).toBe('revoked');
    expect(answer.reason).toBe('keyCompromise');
    expect(answer.verified).toBe(true);
  });

  it('an answer read while the revocation commits is not cached: the next request answers revoked', async () => {
    const { services } = t.service;
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't2' });
    // The revocation commits (and tells the cache) after the responder read the good answer, before it cached it.
    const get = services.store.ocspResponses.get.bind(services.store.ocspResponses);
    let raced = false;
    services.store.ocspResponses.get = async (issuerId, serial): Promise<OcspResponseRecord | undefined> => {
      const read = await get(issuerId, serial);
      if (!raced && issuerId === leaf.issuerId && serial === leaf.serial) {
        raced = true;
        expect((await revoke(leaf)).changed).toBe(true);
      }
      return read;
    };
    try {
      const during = await ask(leaf);
      // Read before the change committed: good is a true answer for that instant.
      expect(during.status, during.stdout + during.stderr).toBe('good');
    } finally {
      services.store.ocspResponses.get = get;
    }
    expect(raced).toBe(true);
    const after = await ask(leaf);
    expect(after.status, after.stdout + after.stderr).toBe('revoked');
    expect(after.reason).toBe('keyCompromise');
    expect(after.verified).toBe(true);
  });
});
