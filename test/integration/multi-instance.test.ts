// Two real `tierca serve` processes on one database — PostgreSQL in the postgres pass, one shared
// SQLite file in the sqlite pass — checked with real HTTP and the openssl CLI: concurrent issuance
// through both gives distinct serials, a revocation through one is `revoked` at the other's OCSP
// within 2 s, CRL numbers never repeat or go backwards, the audit log stays one chain, and killing
// one instance in the middle of a load loses nothing and leaves the other answering.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { nodeCsr } from '../helpers/pki-fixtures.ts';
import { freePort } from '../helpers/tierca.ts';
import { testEngine } from '../helpers/database.ts';
import {
  freshDatabase, http, initHierarchyFor, sleep, startServe, waitFor,
  type HttpAnswer, type ProcessDatabase, type ProcessRole, type ServeProcess,
} from '../helpers/processes.ts';
import { readCertificate, type CertificateFields } from '../../pki/certificate-reader.ts';
import { buildOcspRequest, certIdFor } from '../../pki/ocsp-request.ts';
import { parseOcspResponse } from '../../pki/ocsp-response.ts';
import { parseCrl } from '../../pki/crl-reader.ts';
import { decodePemOrDer } from '../../pki/pem.ts';
import { verifyAuditChain } from '../../server/audit/audit-log.ts';
import { knexOf } from '../../server/storage/knex-store.ts';
import type { Store } from '../../server/storage/storage.ts';

const engine = testEngine();
const ISSUER = 'yuhu-t1';
const tmp = new TempDir();

let db: ProcessDatabase;
let a: ServeProcess;
let b: ServeProcess;
let tokens: Record<ProcessRole, string>;
let issuer: CertificateFields;
let files: { root: string; issuer: string; chain: string };

beforeAll(async () => {
  db = await freshDatabase();
  const portA = await freePort();
  tokens = await initHierarchyFor(db, { publicUrl: `http://127.0.0.1:${portA}` });
  // Both entry points: `tierca serve` and `npm start` (server/main.ts), started at the same moment.
  [a, b] = await Promise.all([startServe({ env: db.env, port: portA }), startServe({ env: db.env, entry: 'npm' })]);
  const pem = async (id: string) => (await http(a.url, 'GET', `/ca/${id}.pem`)).raw;
  const [root, domain, tier] = await Promise.all([pem('root'), pem('yuhu'), pem(ISSUER)]);
  files = { root: tmp.file('root.pem', root), issuer: tmp.file('issuer.pem', tier), chain: tmp.file('chain.pem', Buffer.concat([tier, domain])) };
  issuer = readCertificate(decodePemOrDer(tier, 'CERTIFICATE'));
});

afterAll(async () => {
  await Promise.all([a?.kill(), b?.kill()]);
  await db?.cleanup();
  tmp.cleanup();
});

let subjects = 0;
/** Registers a device subject in yuhu t1 through `via`; returns its id. */
async function addSubject(via: ServeProcess): Promise<string> {
  const n = ++subjects;
  const res = await http(via.url, 'POST', '/api/v1/subjects', {
    token: tokens.officer,
    body: { kind: 'device', domain: 'yuhu', organ: 'court', tier: 't1', name: `node-${n}`, dns: [`node-${n}.yuhu.xiangtan.intranet`] },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id as string;
}

function issue(via: ServeProcess, subjectId: string, csrPem: string, timeoutMs?: number): Promise<HttpAnswer> {
  return http(via.url, 'POST', '/api/v1/certificates', { token: tokens.officer, body: { subjectId, csr: csrPem }, timeoutMs });
}

function revoke(via: ServeProcess, serial: string, timeoutMs?: number): Promise<HttpAnswer> {
  return http(via.url, 'POST', `/api/v1/certificates/${serial}/revoke`, { token: tokens.officer, body: { reason: 'keyCompromise', issuer: ISSUER }, timeoutMs });
}

/** The OCSP status of `serial` at `via`, over GET /ocsp/{base64} (the cached, RFC 5019 path). */
async function ocspStatus(via: ServeProcess, serial: string): Promise<{ status: string; etag: string | null; cacheControl: string | null }> {
  const req = buildOcspRequest({ certIds: [certIdFor({ issuerName: issuer.subject, issuerPublicKeyInfo: issuer.publicKeyInfo, serial })] });
  const res = await fetch(`${via.url}/ocsp/${encodeURIComponent(req.toString('base64'))}`, { signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  const parsed = parseOcspResponse(Buffer.from(await res.arrayBuffer()));
  expect(parsed.responseStatus).toBe('successful');
  return { status: parsed.responses[0].certStatus.status, etag: res.headers.get('etag'), cacheControl: res.headers.get('cache-control') };
}

/** `openssl ocsp` against `via` (POST, no nonce: the pre-signed answer), verified up to the root. */
function opensslOcsp(via: ServeProcess, certPath: string) {
  return openssl(['ocsp', '-issuer', files.issuer, '-cert', certPath, '-url', `${via.url}/ocsp`, '-no_nonce', '-CAfile', files.root, '-verify_other', files.chain]);
}

/** Runs `fn` with a fresh store on the shared database (a third client, as an operator would). */
async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await db.openStore();
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

interface Issued {
  serial: string;
  subjectId: string;
  pem: string;
  via: 'a' | 'b';
}
const issued: Issued[] = [];

describe(`two tierca serve processes on one ${engine === 'postgres' ? 'PostgreSQL database' : 'SQLite file'}`, () => {
  it('gives 500 concurrent issuances spread over both instances 500 distinct serials', async () => {
    const N = 500;
    const [ids, csrs] = await Promise.all([
      Promise.all(Array.from({ length: N }, (_, i) => addSubject(i % 2 ? b : a))),
      Promise.all(Array.from({ length: N }, () => nodeCsr('P-256'))),
    ]);
    const results = await Promise.all(ids.map((id, i) => issue(i % 2 ? b : a, id, csrs[i].csrPem, 60_000)));
    const failed = results.filter((r) => r.status !== 201).map((r) => JSON.stringify(r.body));
    expect(failed).toEqual([]);
    results.forEach((r, i) => issued.push({ serial: r.body.certificate.serial, subjectId: ids[i], pem: r.body.pem, via: i % 2 ? 'b' : 'a' }));
    const serials = new Set(issued.map((c) => c.serial));
    expect(serials.size).toBe(N);
    for (const s of serials) expect(s).toMatch(/^[0-9a-f]{16,40}$/);

    // The database holds exactly these, each with its pre-signed OCSP answer.
    await withStore(async (store) => {
      const rows = await store.certificates.list({ issuerId: ISSUER, profile: 'device', limit: 10_000 });
      expect(new Set(rows.map((r) => r.serial))).toEqual(serials);
      const answers = await knexOf(store)('ocsp_responses').where({ issuer_id: ISSUER }).whereIn('serial', [...serials]).count({ n: '*' }).first();
      expect(Number(answers?.n)).toBe(N);
    });

    // One certificate from each instance, as a relying party checks it.
    for (const via of ['a', 'b'] as const) {
      const cert = issued.find((c) => c.via === via)!;
      const path = tmp.file(`issued-${via}.pem`, cert.pem);
      const res = await openssl(['verify', '-CAfile', files.root, '-untrusted', files.chain, path]);
      expect(res.stdout.trim(), res.stderr).toBe(`${path}: OK`);
    }
  }, 120_000);

  it('serves the same cacheable OCSP answer from both instances, so any HTTP cache can sit in front', async () => {
    const { serial } = issued[2];
    const [fromA, fromB] = await Promise.all([ocspStatus(a, serial), ocspStatus(b, serial)]);
    expect(fromA.status).toBe('good');
    expect(fromB).toEqual(fromA);
    expect(fromA.cacheControl).toMatch(/^max-age=\d+, public, no-transform, must-revalidate$/);
    expect(fromA.etag).toMatch(/^"[0-9a-f]{40}"$/);
    // A validator from one node is good at the other (RFC 5019 §6.2 / RFC 9111 revalidation).
    const req = buildOcspRequest({ certIds: [certIdFor({ issuerName: issuer.subject, issuerPublicKeyInfo: issuer.publicKeyInfo, serial })] });
    const revalidated = await fetch(`${b.url}/ocsp/${encodeURIComponent(req.toString('base64'))}`, { headers: { 'if-none-match': fromA.etag! } });
    expect(revalidated.status).toBe(304);
  });

  it('answers a revocation made through one instance as revoked at the other within 2 seconds (openssl ocsp)', async () => {
    for (const [through, other, cert] of [[a, b, issued[0]], [b, a, issued[1]]] as const) {
      const certPath = tmp.file(`cross-${cert.serial}.pem`, cert.pem);
      // The other instance has the good answer in its cache before the revocation.
      const before = await opensslOcsp(other, certPath);
      expect(before.stdout, before.stderr).toContain(`${certPath}: good`);
      expect(before.stderr).toContain('Response verify OK');

      const res = await revoke(through, cert.serial);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toMatchObject({ serial: cert.serial, status: 'revoked', reason: 'keyCompromise' });
      const { value, ms } = await waitFor(async () => {
        const r = await opensslOcsp(other, certPath);
        return r.stdout.includes(`${certPath}: revoked`) ? r : null;
      }, 2000, 20);
      expect(ms).toBeLessThan(2000);
      expect(value!.stdout).toContain('Reason: keyCompromise');
      expect(value!.stderr).toContain('Response verify OK');
    }
  });

  it('never repeats a CRL number nor lets it go backwards while both instances publish at once', async () => {
    const seen: Record<'a' | 'b', bigint[]> = { a: [], b: [] };
    let polling = true;
    const poll = async (via: ServeProcess, into: bigint[]) => {
      while (polling) {
        const res = await http(via.url, 'GET', `/crl/${ISSUER}.crl`);
        expect(res.status).toBe(200);
        into.push(parseCrl(res.raw).crlNumber!);
      }
    };
    const pollers = [poll(a, seen.a), poll(b, seen.b)];
    const publish = (via: ServeProcess) => http(via.url, 'POST', '/api/v1/crls', { token: tokens.admin, body: { ca: ISSUER } });
    const published = await Promise.all(Array.from({ length: 12 }, (_, i) => publish(i % 2 ? b : a)));
    polling = false;
    await Promise.all(pollers);

    expect(published.map((p) => p.status)).toEqual(Array(12).fill(201));
    const numbers = published.flatMap((p) => (p.body as { number: string }[]).map((c) => BigInt(c.number)));
    expect(numbers).toHaveLength(24);
    expect(new Set(numbers).size).toBe(24);
    for (const list of [seen.a, seen.b]) {
      expect(list.length).toBeGreaterThan(0);
      for (let i = 1; i < list.length; i++) expect(list[i] >= list[i - 1], `CRL number went from ${list[i - 1]} to ${list[i]}`).toBe(true);
    }

    // Every number is used once, each delta names an earlier full CRL, and both instances now serve
    // the newest full CRL, which openssl verifies against the issuer.
    const rows = await withStore(async (store) => knexOf(store)('crls').where({ ca_id: ISSUER }).select('number', 'delta', 'base_number', 'this_update'));
    // In number order, thisUpdate never goes back either: a higher number is never older content.
    const byNumber = [...rows].sort((x, y) => (BigInt(x.number) < BigInt(y.number) ? -1 : 1));
    for (let i = 1; i < byNumber.length; i++) expect(byNumber[i].this_update >= byNumber[i - 1].this_update).toBe(true);
    const isDelta = (r: { delta: unknown }) => r.delta === true || r.delta === 1; // PostgreSQL boolean, SQLite 0/1
    const fulls = new Set(rows.filter((r) => !isDelta(r)).map((r) => BigInt(r.number)));
    expect(fulls.size).toBeGreaterThanOrEqual(12);
    for (const r of rows) {
      if (isDelta(r)) {
        expect(fulls.has(BigInt(r.base_number))).toBe(true);
        expect(BigInt(r.base_number) < BigInt(r.number)).toBe(true);
      }
    }
    // Both instances now serve a full CRL at least as new as the newest one published above (a
    // background publication after the earlier revocations may add a newer one), which openssl
    // verifies against the issuer.
    const newestPublished = published
      .flatMap((p) => (p.body as { number: string; delta: boolean }[]).filter((c) => !c.delta).map((c) => BigInt(c.number)))
      .reduce((m, x) => (x > m ? x : m));
    for (const via of [a, b]) {
      const path = tmp.file(`final-${via.port}.crl`, (await http(via.url, 'GET', `/crl/${ISSUER}.crl`)).raw);
      const text = await openssl(['crl', '-inform', 'DER', '-in', path, '-CAfile', files.chain, '-noout', '-crlnumber']);
      expect(text.stderr).toContain('verify OK');
      const served = BigInt(`0x${text.stdout.trim().replace(/^crlNumber=(0x)?/, '')}`);
      expect(served >= newestPublished, `served ${served}, published ${newestPublished}`).toBe(true);
      expect(fulls.has(served) || served > [...fulls].reduce((m, x) => (x > m ? x : m))).toBe(true);
    }
  });

  it('keeps the audit appends of both instances in one unbroken chain', async () => {
    const records = await withStore((store) => store.audit.list({}));
    const result = verifyAuditChain(records);
    expect(result).toEqual({ ok: true, checked: records.length });
    // Every issuance above left its record, whichever instance did it.
    const issuedRecords = records.filter((r) => r.action === 'certificate.issue' && r.outcome === 'success');
    expect(issuedRecords.length).toBe(issued.length);
    expect(records.at(-1)!.seq).toBe(records.length);
  });

  it('loses nothing when one instance is killed in the middle of a load, and the other keeps answering', async () => {
    const LOAD = 60;
    // Certificates to revoke and fresh subjects to issue for, all through A.
    const victims = issued.slice(10, 10 + LOAD);
    const [ids, csrs] = await Promise.all([
      Promise.all(Array.from({ length: LOAD }, () => addSubject(b))),
      Promise.all(Array.from({ length: LOAD }, () => nodeCsr('P-256'))),
    ]);
    // B's OCSP cache holds the victims' good answers, so what it answers later proves the invalidation.
    for (const v of victims.slice(0, 5)) expect((await ocspStatus(b, v.serial)).status).toBe('good');

    // B answers OCSP and health checks the whole time.
    let watching = true;
    const watchFailures: string[] = [];
    let watchAnswers = 0;
    const watch = (async () => {
      while (watching) {
        try {
          const [health, status] = await Promise.all([http(b.url, 'GET', '/healthz', { timeoutMs: 5000 }), ocspStatus(b, issued[3].serial)]);
          if (health.status !== 200 || status.status !== 'good') watchFailures.push(`${health.status} ${status.status}`);
          watchAnswers++;
        } catch (err) {
          watchFailures.push(String(err));
        }
        await sleep(20);
      }
    })();

    type Outcome = { kind: 'issue' | 'revoke'; index: number; status: number | 'lost'; serial?: string };
    let answered = 0;
    const track = (kind: Outcome['kind'], index: number, p: Promise<HttpAnswer>): Promise<Outcome> =>
      p.then(
        (r) => {
          answered++;
          return { kind, index, status: r.status, serial: kind === 'issue' ? r.body?.certificate?.serial : victims[index].serial };
        },
        () => ({ kind, index, status: 'lost' as const }),
      );
    const load = [
      ...ids.map((id, i) => track('issue', i, issue(a, id, csrs[i].csrPem, 20_000))),
      ...victims.map((v, i) => track('revoke', i, revoke(a, v.serial, 20_000))),
    ];
    await waitFor(async () => answered >= 10, 20_000, 1);
    await a.kill();
    const outcomes = await Promise.all(load);
    await sleep(1500); // beyond B's 500 ms poll of revocation events
    watching = false;
    await watch;

    // The kill did land in the middle: some requests were answered, some were cut.
    const acknowledged = outcomes.filter((o) => o.status !== 'lost');
    const lost = outcomes.filter((o) => o.status === 'lost');
    expect(acknowledged.length).toBeGreaterThanOrEqual(10);
    expect(lost.length).toBeGreaterThan(0);
    expect(acknowledged.filter((o) => (o.kind === 'issue' ? o.status !== 201 : o.status !== 200))).toEqual([]);
    expect(watchFailures).toEqual([]);
    expect(watchAnswers).toBeGreaterThan(0);

    await withStore(async (store) => {
      const knex = knexOf(store);
      const certs = await store.certificates.list({ issuerId: ISSUER, profile: 'device', limit: 10_000 });
      const bySerial = new Map(certs.map((c) => [c.serial, c]));
      const answers = new Set((await knex('ocsp_responses').where({ issuer_id: ISSUER }).select('serial')).map((r) => r.serial as string));
      const audit = await store.audit.list({});
      const auditedIssue = new Set(audit.filter((r) => r.action === 'certificate.issue' && r.outcome === 'success').map((r) => r.target));
      const auditedRevoke = new Set(audit.filter((r) => r.action === 'certificate.revoke' && r.outcome === 'success' && !r.detail.unchanged).map((r) => r.target));
      const events = new Set((await store.revocationEvents.since(0, 100_000)).map((e) => `${e.issuerId}/${e.serial}`));

      // No half-issued certificate: every row has its OCSP answer and its audit record; every
      // acknowledged issuance is there; an unacknowledged one is there whole or not at all.
      for (const c of certs) {
        expect(answers.has(c.serial), `OCSP answer of ${c.serial}`).toBe(true);
        expect(auditedIssue.has(`certificate:${ISSUER}/${c.serial}`), `audit record of ${c.serial}`).toBe(true);
      }
      expect(auditedIssue.size).toBe(certs.length);
      for (const o of acknowledged.filter((x) => x.kind === 'issue')) expect(bySerial.has(o.serial!)).toBe(true);
      const perSubject = new Map<string, number>();
      for (const c of certs) perSubject.set(c.subjectId!, (perSubject.get(c.subjectId!) ?? 0) + 1);
      for (const id of ids) expect(perSubject.get(id) ?? 0).toBeLessThanOrEqual(1);

      // No lost revocation: every acknowledged one is stored with its event and audit record; every
      // certificate is revoked exactly when its event and audit record exist.
      for (const o of acknowledged.filter((x) => x.kind === 'revoke')) expect(bySerial.get(o.serial!)?.status).toBe('revoked');
      for (const c of certs) {
        const key = `${ISSUER}/${c.serial}`;
        const revoked = c.status === 'revoked';
        expect(events.has(key), `event of ${c.serial}`).toBe(revoked);
        expect(auditedRevoke.has(`certificate:${key}`), `revoke audit of ${c.serial}`).toBe(revoked);
      }
      expect(verifyAuditChain(audit)).toEqual({ ok: true, checked: audit.length });

      // The survivor answers `revoked` for everything that is revoked, cached or not.
      const revokedVictims = victims.filter((v) => bySerial.get(v.serial)?.status === 'revoked');
      expect(revokedVictims.length).toBeGreaterThanOrEqual(acknowledged.filter((x) => x.kind === 'revoke').length);
      for (const v of revokedVictims) expect((await ocspStatus(b, v.serial)).status, v.serial).toBe('revoked');
      for (const v of victims.filter((x) => bySerial.get(x.serial)?.status === 'good')) expect((await ocspStatus(b, v.serial)).status).toBe('good');
    });

    // And B still issues: a subject whose request was cut gets its certificate now, or is told it has one.
    const cut = outcomes.find((o) => o.kind === 'issue' && o.status === 'lost');
    const retry = await issue(b, ids[cut ? cut.index : 0], csrs[cut ? cut.index : 0].csrPem);
    expect([201, 409]).toContain(retry.status);
    if (retry.status === 409) expect(retry.body.type).toBe('urn:tierca:problem:already-holds-certificate');
    const fresh = await issue(b, await addSubject(b), (await nodeCsr('P-256')).csrPem);
    expect(fresh.status).toBe(201);
    expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' });
  });
});
