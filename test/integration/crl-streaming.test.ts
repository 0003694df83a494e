/**
 * Full CRLs streamed from storage (issue #4): the CrlPublisher reads a tier CA's revoked and held
 * certificates page by page (`certificates.revokedEntryPages`, keyset pages in serial order) and
 * feeds them to buildCrl as they arrive. On the engine chosen by TIERCA_TEST_DB, with pages of 7 and
 * 60-odd listed rows among rows that must not be listed (good, expired beyond the archive window, the
 * boundary itself, another CA's):
 * - the CRL lists exactly the right serials with their reasons and invalidity dates;
 * - its TBSCertList is byte for byte the one the array path (listRevoked → buildCrl, one unpaged read) makes;
 * - `openssl crl` prints and verifies it, `openssl verify -crl_check` refuses the revoked and held
 *   leaves and accepts a good one;
 * - the page size changes nothing in the CRL, and the pages are what they say.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, call, type TestTierca } from '../helpers/tierca.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';
import { knexOf } from '../../server/storage/knex-store.ts';
import { CrlPublisher, DEFAULT_PAGE_SIZE } from '../../server/ca/crl-publisher.ts';
import { caUrls } from '../../server/ca/urls.ts';
import { FixedClock } from '../../server/clock.ts';
import { buildCrl, type CrlEntry } from '../../pki/crl.ts';
import { parseCrl, type ParsedCrl } from '../../pki/crl-reader.ts';
import { keyIdentifier } from '../../pki/key-pair.ts';
import { toPem } from '../../pki/der.ts';
import type { LoadedCa } from '../../server/ca/ca-directory.ts';
import type { CertificateRecord, RevokedEntryRecord } from '../../server/storage/storage.ts';

const DAY = 24 * 3600 * 1000;
const CA = 'yuhu-t1';

let t: TestTierca;
const tmp = new TempDir();
let ca: LoadedCa;
let clock: FixedClock;
let notAfterAfter: Date;
let rootPem: string;
let chainPem: string;
const leaves: Record<'good' | 'revoked' | 'held', { serial: string; path: string }> = {} as never;
/** What the CRL must list: serial → reason (null when no reasonCode) and invalidityDate (whole seconds). */
const expected = new Map<string, { reason: number | null; invalidityDate: Date | null }>();

const seconds = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);
/** A fresh serial as tierca writes them: lowercase hex, no leading zero (CRLs carry the INTEGER). */
const newSerial = (octets = 16) => `5${randomBytes(octets).toString('hex').slice(1)}`;

async function issueDevice(name: string): Promise<{ serial: string; path: string }> {
  const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', {
    kind: 'device', domain: 'yuhu', organ: 'court', tier: 't1', name, dns: [`${name}.yuhu.xiangtan.intranet`],
  });
  expect(subject.status).toBe(201);
  const { csrPem } = await opensslCsr(tmp, name, 'P-256');
  const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem });
  expect(res.status).toBe(201);
  return { serial: res.body.certificate.serial, path: tmp.file(`${name}.pem`, res.body.pem) };
}

function publisher(pageSize?: number): CrlPublisher {
  const { services } = t.service;
  return new CrlPublisher({ store: t.store, cas: services.cas, tiers: services.config.tiers, clock, publicUrl: services.config.publicUrl, pageSize });
}

/** The stored CRL with this number (the running service may publish its own in between). */
async function storedCrl(number: bigint): Promise<Buffer> {
  const row = await knexOf(t.store)('crls').where({ ca_id: CA, number: Number(number) }).first();
  expect(row, `CRL ${number} of ${CA}`).toBeDefined();
  return Buffer.from(row.der);
}

/** The publisher's mapping of a row, as it was before streaming. */
function entryOf(r: RevokedEntryRecord): CrlEntry {
  return { serial: r.serial, revokedAt: r.revokedAt!, reason: r.status === 'hold' ? 6 : r.revocationReason, invalidityDate: r.invalidityDate };
}

beforeAll(async () => {
  t = await startTestTierca();
  ca = t.service.services.cas.get(CA)!;
  rootPem = tmp.file('root.pem', (await call(t, null, 'GET', '/ca/root.pem')).raw);
  tmp.file('issuer.pem', (await call(t, null, 'GET', `/ca/${CA}.pem`)).raw);
  chainPem = tmp.file('chain.pem', Buffer.concat([(await call(t, null, 'GET', `/ca/${CA}.pem`)).raw, (await call(t, null, 'GET', '/ca/yuhu.pem')).raw]));

  // Real leaves, revoked and held through the API.
  leaves.good = await issueDevice('stream-good');
  leaves.revoked = await issueDevice('stream-revoked');
  leaves.held = await issueDevice('stream-held');
  const invalidity = '2026-01-02T03:04:05.678Z';
  expect((await call(t, 'officer', 'POST', `/api/v1/certificates/${leaves.revoked.serial}/revoke`, { reason: 'keyCompromise', invalidityDate: invalidity })).status).toBe(200);
  expect((await call(t, 'officer', 'POST', `/api/v1/certificates/${leaves.held.serial}/hold`)).status).toBe(200);
  expected.set(leaves.revoked.serial, { reason: 1, invalidityDate: seconds(new Date(invalidity)) });
  expected.set(leaves.held.serial, { reason: 6, invalidityDate: null });

  // Rows written straight into storage around them, with a real certificate's body.
  clock = new FixedClock(new Date());
  const now = clock.now().getTime();
  const archiveDays = t.service.services.config.tiers.get('t1')!.archiveDays;
  notAfterAfter = new Date(now - archiveDays * DAY);
  const template = (await t.store.certificates.get(CA, leaves.good.serial))!;
  const rows: CertificateRecord[] = [];
  const row = (over: Partial<CertificateRecord>): CertificateRecord => ({
    ...template, serial: newSerial(), subjectId: null, requestId: null, fingerprint: randomBytes(32).toString('hex'), ...over,
  });
  const listed = (over: Partial<CertificateRecord>, reason: number | null) => {
    const r = row(over);
    rows.push(r);
    expected.set(r.serial, { reason, invalidityDate: r.invalidityDate ? seconds(r.invalidityDate) : null });
  };
  const REASONS = [null, 0, 1, 3, 4, 5, 9, 10]; // 0 (unspecified) carries no reasonCode (RFC 5280 §5.3.1)
  for (let i = 0; i < 50; i++) {
    const revokedAt = new Date(now - (i + 1) * 3_600_000 - 123);
    const reason = REASONS[i % REASONS.length];
    listed({
      serial: newSerial(i % 5 === 0 ? 8 : 16), // mixed lengths: keyset order is the database's text order
      status: 'revoked', revokedAt, revocationReason: reason,
      invalidityDate: i % 4 === 0 ? new Date(revokedAt.getTime() - 86_400_000 - 456) : null,
    }, reason === 0 ? null : reason);
  }
  for (let i = 0; i < 6; i++) listed({ status: 'hold', revokedAt: new Date(now - i * 60_000), revocationReason: null }, 6);
  for (let i = 0; i < 4; i++) {
    listed({ status: 'revoked', revokedAt: new Date(now - 400 * DAY), revocationReason: 4, notAfter: new Date(now - (archiveDays - 1 - i) * DAY) }, 4);
  }
  listed({ status: 'revoked', revokedAt: new Date(now - 500 * DAY), revocationReason: 3, notAfter: new Date(notAfterAfter.getTime() + 1) }, 3);
  // Not listed: expired beyond the archive window (the boundary itself included), good, another CA's.
  rows.push(row({ status: 'revoked', revokedAt: new Date(now - 500 * DAY), revocationReason: 1, notAfter: notAfterAfter }));
  for (let i = 0; i < 5; i++) rows.push(row({ status: 'revoked', revokedAt: new Date(now - 900 * DAY), revocationReason: 1, notAfter: new Date(now - (archiveDays + 1 + i) * DAY) }));
  for (let i = 0; i < 5; i++) rows.push(row({ status: 'good' }));
  for (let i = 0; i < 5; i++) rows.push(row({ issuerId: 'yuhu-t2', status: 'revoked', revokedAt: new Date(now - DAY), revocationReason: 1 }));
  await t.store.transaction(async (tx) => {
    for (const r of rows) await tx.certificates.insert(r);
  });
  expect(expected.size).toBe(63);
});

afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

describe('a full CRL streamed from storage in pages of 7', () => {
  let published: Awaited<ReturnType<CrlPublisher['publishFull']>>;
  let der: Buffer;
  let crl: ParsedCrl;

  beforeAll(async () => {
    published = await publisher(7).publishFull(ca);
    der = await storedCrl(published.number);
    crl = parseCrl(der);
    tmp.file('streamed.der', der);
    tmp.file('streamed.pem', toPem(der, 'X509 CRL'));
  });

  it('lists exactly the revoked and held certificates within the archive window, with reasons and invalidity dates', () => {
    expect(published.entries).toBe(expected.size);
    expect(crl.crlNumber).toBe(published.number);
    expect(crl.entries.map((e) => e.serial).sort()).toEqual([...expected.keys()].sort());
    for (const e of crl.entries) {
      const want = expected.get(e.serial)!;
      expect({ serial: e.serial, reason: e.reason, invalidityDate: e.invalidityDate }).toEqual({ serial: e.serial, ...want });
    }
  });

  it('is, but for the signature, the CRL the array path makes from listRevoked', async () => {
    const rows = (await t.store.certificates.listRevoked(CA, notAfterAfter)).map(entryRecordOf);
    expect(rows).toHaveLength(expected.size);
    const fromArray = parseCrl(await buildCrl({
      issuer: ca.fields.subject,
      authorityKeyId: ca.fields.subjectKeyId ?? keyIdentifier(ca.fields.publicKeyInfo),
      thisUpdate: crl.thisUpdate,
      nextUpdate: crl.nextUpdate!,
      crlNumber: crl.crlNumber!,
      freshestCrl: caUrls(t.service.services.config.publicUrl, CA).deltaCrl,
      entries: rows.map(entryOf),
      signer: ca.signer,
    }));
    expect(crl.entries.map((e) => e.serial)).toEqual(rows.map((r) => r.serial));
    expect(crl.tbs.equals(fromArray.tbs)).toBe(true);
    expect(crl.signatureAlgorithm.equals(fromArray.signatureAlgorithm)).toBe(true);
  });

  it('is printed and verified by openssl crl', async () => {
    const verified = await openssl(['crl', '-inform', 'DER', '-in', 'streamed.der', '-noout', '-verify', '-CAfile', 'issuer.pem'], { cwd: tmp.path });
    expect(verified.stderr).toContain('verify OK');
    const text = (await openssl(['crl', '-inform', 'DER', '-in', 'streamed.der', '-noout', '-text'], { cwd: tmp.path })).stdout;
    const blocks = text.split('Serial Number: ').slice(1);
    expect(blocks).toHaveLength(expected.size);
    const block = (serial: string) => blocks.find((b) => b.startsWith(serial.toUpperCase()))!;
    expect(block(leaves.revoked.serial)).toMatch(/X509v3 CRL Reason Code: \n\s+Key Compromise\n/);
    expect(block(leaves.revoked.serial)).toMatch(/Invalidity Date: \n\s+Jan  2 03:04:05 2026 GMT\n/);
    expect(block(leaves.held.serial)).toMatch(/X509v3 CRL Reason Code: \n\s+Certificate Hold\n/);
    expect(text).not.toContain(leaves.good.serial.toUpperCase());
    expect(text).toMatch(new RegExp(`X509v3 CRL Number: \\n\\s+${published.number}\\n`));
  });

  it('makes openssl verify -crl_check refuse the revoked and the held leaf and accept the good one', async () => {
    const verify = (path: string) => openssl(['verify', '-CAfile', rootPem, '-untrusted', chainPem, '-crl_check', '-CRLfile', 'streamed.pem', path], { cwd: tmp.path });
    for (const leaf of [leaves.revoked, leaves.held]) {
      const r = await verify(leaf.path);
      expect(r.code).not.toBe(0);
      expect(r.stdout + r.stderr).toContain('error 23 at 0 depth lookup: certificate revoked');
    }
    const ok = await verify(leaves.good.path);
    expect(ok.stdout.trim(), ok.stderr).toBe(`${leaves.good.path}: OK`);
  });

  it('lists the same entries in the same order whatever the page size', async () => {
    for (const pageSize of [1, expected.size, expected.size - 1, DEFAULT_PAGE_SIZE]) {
      const other = await publisher(pageSize).publishFull(ca);
      expect(other.entries).toBe(expected.size);
      expect(parseCrl(await storedCrl(other.number)).entries).toEqual(crl.entries);
    }
  });
});

/** The CRL-entry fields of a stored certificate: the reference the paged read is checked against. */
function entryRecordOf(c: CertificateRecord): RevokedEntryRecord {
  return { serial: c.serial, status: c.status, revokedAt: c.revokedAt, revocationReason: c.revocationReason, invalidityDate: c.invalidityDate };
}

describe('certificates.revokedEntryPages', () => {
  it('gives keyset pages: none empty, none over the size, together the rows of listRevoked in order', async () => {
    const all = (await t.store.certificates.listRevoked(CA, notAfterAfter)).map(entryRecordOf);
    for (const pageSize of [7, expected.size, 1000]) {
      const pages: RevokedEntryRecord[][] = [];
      await t.store.transaction(async (tx) => {
        for await (const page of tx.certificates.revokedEntryPages(CA, notAfterAfter, pageSize)) pages.push(page);
      });
      expect(pages.map((p) => p.length)).toEqual(Array.from({ length: Math.ceil(all.length / pageSize) }, (_, i) => Math.min(pageSize, all.length - i * pageSize)));
      expect(pages.flat()).toEqual(all);
    }
  });

  it('leaves the transaction usable when the caller stops after the first page', async () => {
    const count = await t.store.transaction(async (tx) => {
      for await (const page of tx.certificates.revokedEntryPages(CA, notAfterAfter, 7)) {
        expect(page).toHaveLength(7);
        break;
      }
      return tx.crls.maxNumber(CA);
    });
    expect(count).toBeGreaterThan(0n);
  });

  it('refuses a page size that is not a positive integer', async () => {
    for (const pageSize of [0, -1, 2.5]) {
      const pages = t.store.certificates.revokedEntryPages(CA, notAfterAfter, pageSize);
      await expect(pages[Symbol.asyncIterator]().next()).rejects.toThrow(RangeError);
    }
  });
});
