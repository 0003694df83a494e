// CRLs worth fetching: with an injected clock, a revocation is published in a delta CRL that names its
// base full CRL's number and lists it — read by `openssl crl -text`, applied by `openssl verify
// -crl_check -use_deltas`, and read by Python's cryptography (deltaCRLIndicator, the entry, the
// signature) — while the full CRL is republished only on its period (half the tier's status validity),
// then lists every revocation, and the delta against it starts empty.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { startTestTierca, call, type TestTierca } from '../helpers/tierca.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';
import { FixedClock } from '../../server/clock.ts';
import type { CrlRecord } from '../../server/storage/storage.ts';

const CA = 'yuhu-t1'; // t1: CRLs valid 24 h, a full CRL every 12 h
const HOUR_MS = 3_600_000;
const clock = new FixedClock(new Date(Math.floor(Date.now() / 1000) * 1000));
let t: TestTierca;
const tmp = new TempDir();
let rootPem: string;
let issuerPem: string;
let chainPem: string;
let n = 0;
let fetched = 0;

beforeAll(async () => {
  t = await startTestTierca({ clock });
  rootPem = tmp.file('root.pem', (await call(t, null, 'GET', '/ca/root.pem')).raw);
  issuerPem = tmp.file(`${CA}.pem`, (await call(t, null, 'GET', `/ca/${CA}.pem`)).raw);
  chainPem = tmp.file('chain.pem', Buffer.concat([(await call(t, null, 'GET', `/ca/${CA}.pem`)).raw, (await call(t, null, 'GET', '/ca/yuhu.pem')).raw]));
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

async function issueDevice(): Promise<{ serial: string; certPath: string }> {
  const i = ++n;
  const subject = await call(t, 'officer', 'POST', '/api/v1/subjects', {
    kind: 'device', domain: 'yuhu', organ: 'court', tier: 't1', name: `delta-${i}`, dns: [`delta-${i}.yuhu.xiangtan.intranet`],
  });
  const { csrPem } = await opensslCsr(tmp, `delta-${i}`, 'P-256');
  const res = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: subject.body.id, csr: csrPem });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { serial: res.body.certificate.serial, certPath: tmp.file(`delta-${i}.pem`, res.body.pem) };
}

const latest = async (delta: boolean): Promise<CrlRecord> => (await t.store.crls.latest(CA, delta))!;

/** Waits (real time: the scheduler's debounce is a real timer) until a delta newer than `after` is stored. */
async function nextDelta(after: bigint): Promise<CrlRecord> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const d = await latest(true);
    if (d.number > after) return d;
    if (Date.now() > deadline) throw new Error(`no delta CRL after #${after}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** What the served CRL files say to openssl (`crl -text`), from the public route. */
async function servedText(file: string): Promise<{ der: Buffer; text: string }> {
  const res = await call(t, null, 'GET', `/crl/${file}`);
  expect(res.status).toBe(200);
  const text = (await openssl(['crl', '-inform', 'DER', '-noout', '-text'], { input: res.raw })).stdout;
  return { der: res.raw, text };
}

const PY = `
import json, sys
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
crl = x509.load_der_x509_crl(open(sys.argv[1], 'rb').read())
issuer = x509.load_pem_x509_certificate(open(sys.argv[2], 'rb').read())
exts = {e.oid.dotted_string: e for e in crl.extensions}
delta = exts.get(ExtensionOID.DELTA_CRL_INDICATOR.dotted_string)
fresh = exts.get(ExtensionOID.FRESHEST_CRL.dotted_string)
def hexof(n):
  h = format(n, 'x')
  return '0' + h if len(h) % 2 else h  # tierca's form: whole octets, no leading zero octet
print(json.dumps({
  'number': crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number,
  'base': delta.value.crl_number if delta else None,
  'baseCritical': delta.critical if delta else None,
  'freshest': [n.value for dp in fresh.value for n in dp.full_name] if fresh else None,
  'entries': [{'serial': hexof(r.serial_number), 'reason': r.extensions.get_extension_for_class(x509.CRLReason).value.reason.name} for r in crl],
  'signatureValid': crl.is_signature_valid(issuer.public_key()),
}))
`;

/** The CRL as Python's cryptography reads it. */
function python(der: Buffer): Promise<{ number: number; base: number | null; baseCritical: boolean | null; freshest: string[] | null; entries: { serial: string; reason: string }[]; signatureValid: boolean }> {
  const file = tmp.file(`py-${Math.random().toString(36).slice(2)}.crl`, der);
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/python3', ['-c', PY, file, issuerPem], (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout))));
  });
}

/** `openssl verify -crl_check -use_deltas` of `certPath` with the full and delta CRLs served now, at the clock's time. */
async function verifyWithDeltas(certPath: string, withDelta = true) {
  const k = ++fetched;
  const full = tmp.file(`served-full-${k}.crl`, (await call(t, null, 'GET', `/crl/${CA}.crl`)).raw);
  const delta = tmp.file(`served-delta-${k}.crl`, (await call(t, null, 'GET', `/crl/${CA}-delta.crl`)).raw);
  const pem = async (der: string, name: string) => tmp.file(name, (await openssl(['crl', '-inform', 'DER', '-in', der])).stdout);
  return openssl(['verify', '-attime', String(Math.floor(clock.now().getTime() / 1000)), '-CAfile', rootPem, '-untrusted', chainPem,
    '-crl_check', '-use_deltas', '-CRLfile', await pem(full, `served-full-${k}.pem`),
    ...(withDelta ? ['-CRLfile', await pem(delta, `served-delta-${k}.pem`)] : []), certPath]);
}

describe('delta CRLs between full CRLs on their period', () => {
  let base: CrlRecord;
  let first: { serial: string; certPath: string };
  let second: { serial: string; certPath: string };

  it('lists a revocation in the next delta, which names its base, while the full CRL stays', async () => {
    base = await latest(false);
    const before = await latest(true);
    expect(before.baseNumber).toBe(base.number);
    first = await issueDevice();
    const good = await issueDevice();
    clock.advance(60_000);
    const revoked = await call(t, 'officer', 'POST', `/api/v1/certificates/${first.serial}/revoke`, { reason: 'keyCompromise' });
    expect(revoked.status).toBe(200);
    const delta = await nextDelta(before.number);
    expect(delta).toMatchObject({ delta: true, baseNumber: base.number });
    expect((await latest(false)).number).toBe(base.number); // the change did not republish the full CRL
    expect(delta.nextUpdate).toEqual(base.nextUpdate);

    const { der, text } = await servedText(`${CA}-delta.crl`);
    expect(text).toMatch(new RegExp(`X509v3 Delta CRL Indicator: critical\\s*\\n\\s*${base.number}\\b`));
    expect(text).toMatch(new RegExp(`X509v3 CRL Number:\\s*\\n\\s*${delta.number}\\b`));
    expect(text).toContain(`Serial Number: ${first.serial.toUpperCase()}`);
    expect(text).toContain('Key Compromise');
    expect(text).not.toContain(good.serial.toUpperCase());
    const py = await python(der);
    expect(py).toMatchObject({ number: Number(delta.number), base: Number(base.number), baseCritical: true, freshest: null, signatureValid: true });
    expect(py.entries).toEqual([{ serial: first.serial, reason: 'key_compromise' }]);
    // The full CRL does not list it yet; it names where its deltas live (freshestCRL, RFC 5280 §5.2.6).
    const full = await servedText(`${CA}.crl`);
    expect(full.text).not.toContain(first.serial.toUpperCase());
    expect((await python(full.der))).toMatchObject({ base: null, freshest: [`${t.url}/crl/${CA}-delta.crl`], entries: [], signatureValid: true });

    // openssl applies the delta to the full CRL: revoked with it, not yet without it; the good one passes.
    const withDelta = await verifyWithDeltas(first.certPath);
    expect(withDelta.code).not.toBe(0);
    expect(withDelta.stdout + withDelta.stderr).toContain('certificate revoked');
    const fullOnly = await verifyWithDeltas(first.certPath, false);
    expect(fullOnly.stdout.trim(), fullOnly.stderr).toBe(`${first.certPath}: OK`);
    const stillGood = await verifyWithDeltas(good.certPath);
    expect(stillGood.stdout.trim(), stillGood.stderr).toBe(`${good.certPath}: OK`);
  });

  it('keeps deltas cumulative: the next one lists both changes, holds included, against the same base', async () => {
    second = await issueDevice();
    const held = await issueDevice();
    clock.advance(60_000);
    const previous = await latest(true);
    expect((await call(t, 'officer', 'POST', `/api/v1/certificates/${second.serial}/revoke`, { reason: 'superseded' })).status).toBe(200);
    expect((await call(t, 'officer', 'POST', `/api/v1/certificates/${held.serial}/hold`, {})).status).toBe(200);
    let delta = await nextDelta(previous.number);
    // Both changes may land in one delta or in two (the debounce is per CA): wait for the one with all.
    const deadline = Date.now() + 10_000;
    while ((await python(delta.der)).entries.length < 3 && Date.now() < deadline) delta = await nextDelta(delta.number);
    expect(delta.baseNumber).toBe(base.number);
    const py = await python(delta.der);
    expect(py.entries.map((e) => [e.serial, e.reason]).sort()).toEqual(
      [[first.serial, 'key_compromise'], [second.serial, 'superseded'], [held.serial, 'certificate_hold']].sort(),
    );
    expect((await latest(false)).number).toBe(base.number);

    // Released from hold: the next delta says removeFromCRL (RFC 5280 §5.3.1), and openssl accepts it again.
    clock.advance(60_000);
    expect((await verifyWithDeltas(held.certPath)).code).not.toBe(0);
    const onHold = await latest(true);
    expect((await call(t, 'officer', 'POST', `/api/v1/certificates/${held.serial}/release`, {})).status).toBe(200);
    const released = await nextDelta(onHold.number);
    expect((await python(released.der)).entries).toContainEqual({ serial: held.serial, reason: 'remove_from_crl' });
    const ok = await verifyWithDeltas(held.certPath);
    expect(ok.stdout.trim(), ok.stderr).toBe(`${held.certPath}: OK`);
  });

  it('publishes the full CRL on its period only; it then lists every revocation and the new delta starts empty', async () => {
    // Before the period is over, the scheduler's pass publishes nothing.
    clock.advance(6 * HOUR_MS);
    const deltaBefore = await latest(true);
    await t.service.services.scheduler.runOnce();
    expect((await latest(false)).number).toBe(base.number);
    expect((await latest(true)).number).toBe(deltaBefore.number);

    clock.advance(6 * HOUR_MS); // 12 h after the base: its period (half of 24 h) is over
    await t.service.services.scheduler.runOnce();
    const full = await latest(false);
    expect(full.number).toBeGreaterThan(deltaBefore.number);
    expect(full.thisUpdate).toEqual(new Date(Math.floor(clock.now().getTime() / 1000) * 1000));
    expect(full.nextUpdate.getTime() - full.thisUpdate.getTime()).toBe(24 * HOUR_MS);
    const fullPy = await python(full.der);
    expect(fullPy.entries.map((e) => e.serial).sort()).toEqual([first.serial, second.serial].sort());
    const delta = await latest(true);
    expect(delta).toMatchObject({ baseNumber: full.number });
    expect(delta.number).toBeGreaterThan(full.number);
    expect((await python(delta.der))).toMatchObject({ base: Number(full.number), entries: [], signatureValid: true });
    // The next revocation is again in a delta against this base, not in a new full CRL.
    const third = await issueDevice();
    clock.advance(60_000);
    expect((await call(t, 'officer', 'POST', `/api/v1/certificates/${third.serial}/revoke`, { reason: 'cessationOfOperation' })).status).toBe(200);
    const after = await nextDelta(delta.number);
    expect(after.baseNumber).toBe(full.number);
    expect((await python(after.der)).entries).toEqual([{ serial: third.serial, reason: 'cessation_of_operation' }]);
    expect((await latest(false)).number).toBe(full.number);
  });
});
