// CA key rollover seen by real clients. A tier CA, then the root (as a ceremony), its domain CA and the
// tier CA again are rolled over under dual control, while certificates from every generation stay in
// use. `openssl verify` must accept certificates issued before and after each rollover: against the
// root they were issued under, and — through the RFC 4210 link certificates old-with-new and
// new-with-old — against ONLY the old root or ONLY the new one (and against a tier CA pinned as the
// anchor). `openssl ocsp` must answer good for old and new certificates alike, CRLs are per
// generation, and an old generation is retired once the last certificate it issued has expired.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../server/clock.ts';
import { EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { call, startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { TempDir, openssl } from '../helpers/openssl.ts';
import { knexOf } from '../../server/storage/knex-store.ts';
import { DAY_MS, caPem, issueLeaf, ocspAt, smallConfig, verifyAt, pemBlocks, type IssuedLeaf } from '../helpers/rotation.ts';

const clock = new FixedClock(new Date('2027-03-01T09:00:00Z'));
const T2 = EXAMPLE_TIER_OIDS.t2;
let t: TestTierca;
const tmp = new TempDir();
const pem: Record<string, string> = {};
let leafA: IssuedLeaf; // issued by yuhu-t2 (generation 1) before any rollover
let leafA2: IssuedLeaf; // the same, revoked later
let leafB: IssuedLeaf; // issued by yuhu-t2-g2
let leafC: IssuedLeaf; // issued by yuhu-t2-g3, under yuhu-g2, under root-g2
let tierLinks: { oldWithNew: string; newWithOld: string };
let rootLinks: { oldWithNew: string; newWithOld: string };

beforeAll(async () => {
  t = await startTestTierca({ clock, configData: smallConfig() });
  for (const id of ['root', 'yuhu', 'yuhu-t2']) pem[id] = await caPem(t, id);
  leafA = await issueLeaf(t, tmp, { kind: 'device', tier: 't2' });
  leafA2 = await issueLeaf(t, tmp, { kind: 'device', tier: 't2' });
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

/** Asks for a rollover as `admin`, approves it as `admin2`; returns the approval's result. */
async function rollover(ca: string, body: Record<string, unknown> = {}) {
  const asked = await call(t, 'admin', 'POST', `/api/v1/cas/${ca}/rollover`, body);
  expect(asked.status, JSON.stringify(asked.body)).toBe(202);
  expect(asked.body.request).toMatchObject({ action: 'ca.rollover', status: 'pending' });
  const approved = await call(t, 'admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
  expect(approved.status, JSON.stringify(approved.body)).toBe(200);
  expect(approved.body.request.status).toBe('done');
  return approved.body.result as { previous: string; current: string; links: string[] };
}

async function linksOf(ca: string): Promise<{ oldWithNew: string; newWithOld: string }> {
  const res = await call(t, 'admin', 'GET', `/api/v1/cas/${ca}/links`);
  expect(res.status).toBe(200);
  const newest = res.body.slice(-2);
  return {
    oldWithNew: newest.find((l: any) => l.kind === 'old-with-new').pem,
    newWithOld: newest.find((l: any) => l.kind === 'new-with-old').pem,
  };
}

describe('tier CA rollover', () => {
  it('needs a second sysadmin, then makes generation 2 with the same name and a new key; new issuance moves to it at once', async () => {
    const asked = await call(t, 'admin', 'POST', '/api/v1/cas/yuhu-t2/rollover', {});
    expect(asked.status).toBe(202);
    const self = await call(t, 'admin', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect(self.status).toBe(422);
    expect(self.body.type).toBe('urn:tierca:problem:policy-self-approval');
    expect((await call(t, 'officer', 'POST', '/api/v1/cas/yuhu-t2/rollover', {})).status).toBe(403);
    const approved = await call(t, 'admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body.result).toMatchObject({ previous: 'yuhu-t2', current: 'yuhu-t2-g2' });

    pem['yuhu-t2-g2'] = await caPem(t, 'yuhu-t2-g2');
    const oldText = (await openssl(['x509', '-noout', '-subject', '-issuer', '-nameopt', 'utf8'], { input: pem['yuhu-t2'] })).stdout;
    const newText = (await openssl(['x509', '-noout', '-subject', '-issuer', '-nameopt', 'utf8'], { input: pem['yuhu-t2-g2'] })).stdout;
    expect(newText).toBe(oldText);
    const keyOf = async (p: string) => (await openssl(['x509', '-noout', '-pubkey'], { input: p })).stdout;
    expect(await keyOf(pem['yuhu-t2-g2'])).not.toBe(await keyOf(pem['yuhu-t2']));

    leafB = await issueLeaf(t, tmp, { kind: 'device', tier: 't2' });
    expect(leafB.issuerId).toBe('yuhu-t2-g2');
    expect(leafB.chain[0]).toBe(pem['yuhu-t2-g2']);
    const text = (await openssl(['x509', '-noout', '-text'], { input: leafB.pem })).stdout;
    expect(text).toContain(`CA Issuers - URI:${t.url}/ca/yuhu-t2-g2.crt`);
    expect(text).toContain(`URI:${t.url}/crl/yuhu-t2-g2.crl`);

    const audit = await knexOf(t.store)('audit_log').where({ action: 'ca.rollover', outcome: 'success', target: 'ca:yuhu-t2' }).first();
    expect(JSON.parse(audit.detail)).toMatchObject({ replaced: 'yuhu-t2', current: 'yuhu-t2-g2', generation: 2, request: asked.body.request.id });
    tierLinks = await linksOf('yuhu-t2');
    const bundle = pemBlocks((await call(t, null, 'GET', '/ca/yuhu-t2-links.pem')).raw.toString());
    expect(bundle.sort()).toEqual([tierLinks.oldWithNew, tierLinks.newWithOld].sort());
  });

  it('openssl verifies certificates of both generations against the root, with the tier policy', async () => {
    for (const leaf of [leafA, leafB]) {
      const v = await verifyAt(tmp, { leafPem: leaf.pem, anchors: [pem.root], untrusted: [pem['yuhu-t2'], pem['yuhu-t2-g2'], pem.yuhu], at: clock.now(), policy: T2 });
      expect(v.ok, v.stdout + v.stderr).toBe(true);
    }
  });

  it('openssl verifies through the link certificates with only one generation of the tier CA as anchor', async () => {
    const at = clock.now();
    // Pinned to the OLD tier CA: the new generation's certificates chain through new-with-old.
    const newUnderOld = await verifyAt(tmp, { leafPem: leafB.pem, anchors: [pem['yuhu-t2']], untrusted: [tierLinks.newWithOld], at, partial: true, policy: T2 });
    expect(newUnderOld.ok, newUnderOld.stdout + newUnderOld.stderr).toBe(true);
    expect((await verifyAt(tmp, { leafPem: leafB.pem, anchors: [pem['yuhu-t2']], at, partial: true })).ok).toBe(false);
    // Pinned to the NEW one: the old generation's certificates chain through old-with-new.
    const oldUnderNew = await verifyAt(tmp, { leafPem: leafA.pem, anchors: [pem['yuhu-t2-g2']], untrusted: [tierLinks.oldWithNew], at, partial: true, policy: T2 });
    expect(oldUnderNew.ok, oldUnderNew.stdout + oldUnderNew.stderr).toBe(true);
    expect((await verifyAt(tmp, { leafPem: leafA.pem, anchors: [pem['yuhu-t2-g2']], at, partial: true })).ok).toBe(false);
  });

  it('answers good at openssl ocsp for old and new certificates, each signed for its own generation', async () => {
    const at = clock.now();
    const old = await ocspAt(t, tmp, { leafPem: leafA.pem, issuerPem: pem['yuhu-t2'], root: pem.root, chain: [pem['yuhu-t2'], pem.yuhu], at });
    expect(old.status, old.stdout + old.stderr).toBe('good');
    expect(old.verified).toBe(true);
    const fresh = await ocspAt(t, tmp, { leafPem: leafB.pem, issuerPem: pem['yuhu-t2-g2'], root: pem.root, chain: [pem['yuhu-t2-g2'], pem.yuhu], at, nonce: true });
    expect(fresh.status, fresh.stdout + fresh.stderr).toBe('good');
    expect(fresh.verified).toBe(true);
  });

  it('keeps a CRL per generation: a revocation under the old key is listed by the old key', async () => {
    await call(t, 'officer', 'POST', `/api/v1/certificates/${leafA2.serial}/revoke`, { reason: 'keyCompromise' });
    expect((await call(t, 'admin', 'POST', '/api/v1/crls', {})).status).toBe(201);
    const crls: string[] = [];
    for (const id of ['yuhu-t2', 'yuhu-t2-g2']) {
      const res = await call(t, null, 'GET', `/crl/${id}.crl`);
      expect(res.status).toBe(200);
      crls.push((await openssl(['crl', '-inform', 'DER', '-outform', 'PEM'], { input: res.raw })).stdout);
    }
    const oldCrl = (await openssl(['crl', '-noout', '-text'], { input: crls[0] })).stdout;
    expect(oldCrl).toContain(`Serial Number: ${leafA2.serial.toUpperCase()}`);
    const untrusted = [pem['yuhu-t2'], pem['yuhu-t2-g2'], pem.yuhu];
    const at = clock.now();
    const revoked = await verifyAt(tmp, { leafPem: leafA2.pem, anchors: [pem.root], untrusted, at, crls });
    expect(revoked.ok).toBe(false);
    expect(revoked.stdout + revoked.stderr).toContain('certificate revoked');
    for (const leaf of [leafA, leafB]) {
      const ok = await verifyAt(tmp, { leafPem: leaf.pem, anchors: [pem.root], untrusted, at, crls });
      expect(ok.ok, ok.stdout + ok.stderr).toBe(true);
    }
  });

  it('renews a certificate of the old generation from the new one', async () => {
    const res = await call(t, 'officer', 'POST', `/api/v1/certificates/${leafA.serial}/renew`, {});
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.certificate.issuerId).toBe('yuhu-t2-g2');
    expect(res.body.replaced.issuerId).toBe('yuhu-t2');
  });
});

describe('root rollover (a ceremony), then the domain and tier CAs under it', () => {
  beforeAll(async () => {
    const refused = await call(t, 'admin', 'POST', '/api/v1/cas/root/rollover', {});
    expect(refused.status).toBe(400);
    expect(refused.body.detail).toContain('ceremony');
    expect(await rollover('root', { ceremony: true })).toMatchObject({ previous: 'root', current: 'root-g2' });
    rootLinks = await linksOf('root');
    expect(await rollover('yuhu')).toMatchObject({ previous: 'yuhu', current: 'yuhu-g2' });
    expect(await rollover('yuhu-t2')).toMatchObject({ previous: 'yuhu-t2-g2', current: 'yuhu-t2-g3' });
    for (const id of ['root-g2', 'yuhu-g2', 'yuhu-t2-g3']) pem[id] = await caPem(t, id);
    leafC = await issueLeaf(t, tmp, { kind: 'device', tier: 't2' });
    expect(leafC.issuerId).toBe('yuhu-t2-g3');
    expect(leafC.chain).toEqual([pem['yuhu-t2-g3'], pem['yuhu-g2'], pem['root-g2']]);
  });

  it('verifies a certificate issued after the rollover with ONLY the old root, through new-with-old', async () => {
    const at = clock.now();
    const v = await verifyAt(tmp, { leafPem: leafC.pem, anchors: [pem.root], untrusted: [pem['yuhu-t2-g3'], pem['yuhu-g2'], rootLinks.newWithOld], at, policy: T2 });
    expect(v.ok, v.stdout + v.stderr).toBe(true);
    const without = await verifyAt(tmp, { leafPem: leafC.pem, anchors: [pem.root], untrusted: [pem['yuhu-t2-g3'], pem['yuhu-g2']], at });
    expect(without.ok).toBe(false);
    const direct = await verifyAt(tmp, { leafPem: leafC.pem, anchors: [pem['root-g2']], untrusted: [pem['yuhu-t2-g3'], pem['yuhu-g2']], at, policy: T2 });
    expect(direct.ok, direct.stdout + direct.stderr).toBe(true);
  });

  it('verifies certificates issued before it with ONLY the new root, through old-with-new', async () => {
    const at = clock.now();
    for (const [leaf, tier] of [[leafA, 'yuhu-t2'], [leafB, 'yuhu-t2-g2']] as const) {
      const v = await verifyAt(tmp, { leafPem: leaf.pem, anchors: [pem['root-g2']], untrusted: [pem[tier], pem.yuhu, rootLinks.oldWithNew], at, policy: T2 });
      expect(v.ok, `${leaf.issuerId}: ${v.stdout}${v.stderr}`).toBe(true);
      const without = await verifyAt(tmp, { leafPem: leaf.pem, anchors: [pem['root-g2']], untrusted: [pem[tier], pem.yuhu], at });
      expect(without.ok).toBe(false);
      const old = await verifyAt(tmp, { leafPem: leaf.pem, anchors: [pem.root], untrusted: [pem[tier], pem.yuhu], at, policy: T2 });
      expect(old.ok).toBe(true);
    }
    // A relying party holding both anchors and every certificate sorts it out too.
    const everything = [pem['yuhu-t2'], pem['yuhu-t2-g2'], pem['yuhu-t2-g3'], pem.yuhu, pem['yuhu-g2'], rootLinks.oldWithNew, rootLinks.newWithOld];
    for (const leaf of [leafA, leafB, leafC]) {
      for (const anchor of [pem.root, pem['root-g2']]) {
        const v = await verifyAt(tmp, { leafPem: leaf.pem, anchors: [anchor], untrusted: everything, at, policy: T2 });
        expect(v.ok, `${leaf.issuerId}: ${v.stdout}${v.stderr}`).toBe(true);
      }
    }
  });

  it('answers good at openssl ocsp for certificates of every generation, verified to either root', async () => {
    const at = clock.now();
    const c = await ocspAt(t, tmp, { leafPem: leafC.pem, issuerPem: pem['yuhu-t2-g3'], root: pem['root-g2'], chain: [pem['yuhu-t2-g3'], pem['yuhu-g2']], at });
    expect(c.status, c.stdout + c.stderr).toBe('good');
    expect(c.verified).toBe(true);
    const cOld = await ocspAt(t, tmp, { leafPem: leafC.pem, issuerPem: pem['yuhu-t2-g3'], root: pem.root, chain: [pem['yuhu-t2-g3'], pem['yuhu-g2'], rootLinks.newWithOld], at });
    expect(cOld.status).toBe('good');
    expect(cOld.verified, cOld.stderr).toBe(true);
    const a = await ocspAt(t, tmp, { leafPem: leafA.pem, issuerPem: pem['yuhu-t2'], root: pem['root-g2'], chain: [pem['yuhu-t2'], pem.yuhu, rootLinks.oldWithNew], at });
    // leafA was renewed under t2's zero grace: its answer says so, signed by the old generation.
    expect(a.status, a.stdout + a.stderr).toBe('revoked');
    expect(a.reason).toBe('superseded');
    expect(a.verified, a.stderr).toBe(true);
    const b = await ocspAt(t, tmp, { leafPem: leafB.pem, issuerPem: pem['yuhu-t2-g2'], root: pem.root, chain: [pem['yuhu-t2-g2'], pem.yuhu], at });
    expect(b.status).toBe('good');
    expect(b.verified).toBe(true);
  });

  it('retires an old generation once everything it issued has expired; its OCSP stops, its last CRL stays', async () => {
    // Let the CRL republication that the last revocation scheduled (1 s debounce) happen before time jumps.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    clock.advance(20 * DAY_MS); // every t2 certificate here lived 15 days
    const due = await call(t, 'admin', 'GET', '/api/v1/rotation/due');
    const retirements = due.body.items.filter((i: any) => i.kind === 'retirement').map((i: any) => i.caId).sort();
    // The root and domain generation 1 still have live CA certificates under them.
    expect(retirements).toEqual(['yuhu-t2', 'yuhu-t2-g2']);
    const lastCrl = await t.store.crls.latest('yuhu-t2', false);
    const run = await call(t, 'admin', 'POST', '/api/v1/rotation/run', {});
    expect(run.body.items.filter((i: any) => i.outcome === 'retired').map((i: any) => i.target).sort()).toEqual(['ca:yuhu-t2', 'ca:yuhu-t2-g2']);
    expect((await t.store.cas.get('yuhu-t2'))!.status).toBe('retired');
    expect((await t.store.cas.get('yuhu-t2-g3'))!.status).toBe('active');
    await t.service.services.scheduler.runOnce();
    expect((await t.store.crls.latest('yuhu-t2', false))!.number).toBe(lastCrl!.number);
    expect((await call(t, null, 'GET', '/crl/yuhu-t2.crl')).status).toBe(200);
    const o = await ocspAt(t, tmp, { leafPem: leafA.pem, issuerPem: pem['yuhu-t2'], root: pem.root, chain: [pem['yuhu-t2'], pem.yuhu], at: clock.now() });
    expect(o.stdout + o.stderr).toMatch(/Responder Error: unauthorized/);
    const audit = await knexOf(t.store)('audit_log').where({ action: 'ca.retire' }).orderBy('seq');
    expect(audit.map((r: any) => JSON.parse(r.detail).retired).sort()).toEqual(['yuhu-t2', 'yuhu-t2-g2']);
  });
});
