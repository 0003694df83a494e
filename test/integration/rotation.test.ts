// Rotation on a fake clock: a small hierarchy (one domain, short tier lifetimes) is walked through more
// than one lifetime of every tier. At each step `rotate due` must list exactly the certificates past
// their tier's renewal point, `rotate run` must renew exactly the ones the server may renew (and report
// the holder-only tier as waiting for its holders, who then renew by signature), and afterwards every
// live certificate validates with `openssl verify -attime` and answers `good` at `openssl ocsp`, every
// superseded one `revoked (superseded)` once its grace is over. CRLs and OCSP responders are kept fresh
// by the status scheduler alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FixedClock } from '../../server/clock.ts';
import { knexOf } from '../../server/storage/knex-store.ts';
import { EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { call, startTestTierca, type TestTierca } from '../helpers/tierca.ts';
import { TempDir } from '../helpers/openssl.ts';
import { opensslCsr } from '../helpers/pki-fixtures.ts';
import { Readable } from 'node:stream';
import { DAY_MS, caPem, issueLeaf, leafOf, ocspAt, signedRenewal, smallConfig, verifyAt, type IssuedLeaf } from '../helpers/rotation.ts';
import { run as tierca } from '../../cli/main.ts';

const START = new Date('2027-02-01T06:00:00Z');
const clock = new FixedClock(START);
const GRACE_DAYS: Record<string, number> = { t1: 4, t2: 0, t3: 1 };
let t: TestTierca;
const tmp = new TempDir();
let root: string;
let domain: string;
const tierPem: Record<string, string> = {};

interface Tracked extends IssuedLeaf {
  renewAt: number;
}
interface Superseded {
  leaf: IssuedLeaf;
  supersedeAt: number;
  by: string;
}

const live = new Map<string, Tracked>();
let superseded: Superseded[] = [];

const track = (leaf: IssuedLeaf): Tracked => {
  const nb = Date.parse(leaf.notBefore);
  const na = Date.parse(leaf.notAfter);
  const tracked = { ...leaf, renewAt: Math.floor((nb + (2 / 3) * (na - nb)) / 1000) * 1000 };
  live.set(leaf.serial, tracked);
  return tracked;
};

beforeAll(async () => {
  t = await startTestTierca({ clock, configData: smallConfig() });
  root = await caPem(t, 'root');
  domain = await caPem(t, 'yuhu');
  for (const tier of ['t1', 't2', 't3']) tierPem[tier] = await caPem(t, `yuhu-${tier}`);
  track(await issueLeaf(t, tmp, { kind: 'device', tier: 't1' })); // 30 d, renewed by the server
  track(await issueLeaf(t, tmp, { kind: 'organ', tier: 't1' })); // 45 d
  track(await issueLeaf(t, tmp, { kind: 'device', tier: 't2' })); // 15 d, no grace
  track(await issueLeaf(t, tmp, { kind: 'user', tier: 't2', profile: 'user-enc', generate: true })); // escrowed key
  track(await issueLeaf(t, tmp, { kind: 'device', tier: 't3' })); // 9 d, holder-only keys: the holder renews
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

const dueSerials = (items: any[]) => items.filter((i) => i.kind === 'certificate').map((i) => i.serial).sort();

describe('rotate due', () => {
  it('lists nothing at issuance, and with --within exactly what passes its renewal point in that window', async () => {
    const now = await call(t, 'admin', 'GET', '/api/v1/rotation/due');
    expect(now.status).toBe(200);
    expect(dueSerials(now.body.items)).toEqual([]);
    const soon = await call(t, 'officer', 'GET', '/api/v1/rotation/due?within=25d');
    const horizon = clock.now().getTime() + 25 * DAY_MS;
    const expected = [...live.values()].filter((l) => l.renewAt <= horizon).map((l) => l.serial).sort();
    expect(expected).toHaveLength(4); // all but the 45-day organ
    expect(dueSerials(soon.body.items)).toEqual(expected);
    const t3 = soon.body.items.find((i: any) => i.kind === 'certificate' && i.tier === 't3');
    expect(t3).toMatchObject({ action: 'wait-for-holder', profile: 'device' });
    expect(t3.why).toContain('rekeys at renewal');
    expect(soon.body.items.filter((i: any) => i.kind === 'certificate' && i.tier !== 't3').every((i: any) => i.action === 'renew')).toBe(true);
    const t2only = await call(t, 'auditor', 'GET', '/api/v1/rotation/due?within=25d&tier=t2');
    expect(dueSerials(t2only.body.items)).toEqual([...live.values()].filter((l) => l.tier === 't2').map((l) => l.serial).sort());
    // The tier CAs (1 year) can give a full lifetime for a long while yet; within 400 days they cannot.
    expect(soon.body.items.some((i: any) => i.kind === 'ca')).toBe(false);
    const later = await call(t, 'admin', 'GET', '/api/v1/rotation/due?within=400d');
    const cas = later.body.items.filter((i: any) => i.kind === 'ca');
    expect(cas.map((c: any) => c.caId).sort()).toEqual(['yuhu', 'yuhu-t1', 'yuhu-t2', 'yuhu-t3']);
    expect(cas.every((c: any) => c.action === 'rollover')).toBe(true);
    expect((await call(t, 'admin', 'GET', '/api/v1/rotation/due?within=5y')).status).toBe(400);
    // Durations are read by pki/duration.ts: seconds are not a unit here, and 100 years is the most.
    const seconds = await call(t, 'admin', 'GET', '/api/v1/rotation/due?within=30s');
    expect(seconds.status).toBe(400);
    expect(seconds.body.detail).toMatch(/within: .*d, h, m/);
    expect((await call(t, 'admin', 'GET', '/api/v1/rotation/due?within=36501d')).status).toBe(400);
    expect((await call(t, 'admin', 'GET', '/api/v1/certificates?expiringWithin=0d')).status).toBe(400);
    expect((await call(t, 'admin', 'GET', '/api/v1/rotation/due?tier=t9')).status).toBe(400);
    expect((await call(t, 'officer', 'POST', '/api/v1/rotation/run', {})).status).toBe(403);
  });
});

describe('a fake clock walks more than one lifetime of every tier', () => {
  it('renews exactly what is due at every step; live certificates verify and answer good, superseded ones revoked after their grace', async () => {
    const STEP = 3 * DAY_MS;
    const STEPS = 17; // 51 days: more than the longest lifetime here (45 days)
    const renewedByTier: Record<string, number> = { t1: 0, t2: 0, t3: 0 };
    const seen = { revoked: 0, goodInGrace: 0, verified: 0, byTimer: 0 };
    for (let step = 1; step <= STEPS; step++) {
      clock.advance(STEP);
      const now = clock.now();
      // What the status scheduler's timer does by itself.
      await t.service.services.scheduler.runOnce();
      for (const tier of ['t1', 't2', 't3']) {
        // Replaced before they expire: more than half of each one's validity is left.
        const crl = (await t.store.crls.latest(`yuhu-${tier}`, false))!;
        expect(crl.nextUpdate.getTime() - now.getTime(), `CRL of yuhu-${tier} at step ${step}`)
          .toBeGreaterThanOrEqual((crl.nextUpdate.getTime() - crl.thisUpdate.getTime()) / 2);
        const responder = (await t.store.responders.current(`yuhu-${tier}`, now))!;
        expect(responder, `responder of yuhu-${tier} at step ${step}`).toBeDefined();
        expect(responder.notAfter.getTime() - now.getTime()).toBeGreaterThan((responder.notAfter.getTime() - responder.notBefore.getTime()) / 2);
      }

      const expected = [...live.values()].filter((l) => l.renewAt <= now.getTime());
      const due = await call(t, 'admin', 'GET', '/api/v1/rotation/due');
      expect(dueSerials(due.body.items), `due at step ${step}`).toEqual(expected.map((l) => l.serial).sort());

      const run = await call(t, 'admin', 'POST', '/api/v1/rotation/run', { requestId: `walk-${step}` });
      expect(run.status, JSON.stringify(run.body)).toBe(200);
      const renewed = run.body.items.filter((i: any) => i.outcome === 'renewed');
      const waiting = run.body.items.filter((i: any) => i.outcome === 'waiting-for-holder');
      expect(run.body.items.filter((i: any) => i.outcome === 'failed')).toEqual([]);
      expect(renewed.map((i: any) => i.target).sort(), `renewed at step ${step}`)
        .toEqual(expected.filter((l) => l.tier !== 't3').map((l) => `certificate:${l.issuerId}/${l.serial}`).sort());
      expect(waiting.map((i: any) => i.target).sort()).toEqual(expected.filter((l) => l.tier === 't3').map((l) => `certificate:${l.issuerId}/${l.serial}`).sort());
      // Superseded certificates whose grace ended were revoked by this run (or by the rotation timer just before).
      const graceOver = superseded.filter((s) => s.supersedeAt <= now.getTime() && GRACE_DAYS[s.leaf.tier] > 0);
      const revokedByRun = run.body.items.filter((i: any) => i.outcome === 'superseded').map((i: any) => i.target);
      for (const s of graceOver) {
        const renewal = await t.store.renewals.getByOld(s.leaf.issuerId, s.leaf.serial);
        expect(renewal!.supersededAt, `supersession of ${s.leaf.serial}`).not.toBeNull();
        if (!revokedByRun.includes(`certificate:${s.leaf.issuerId}/${s.leaf.serial}`)) seen.byTimer++;
      }

      for (const item of renewed) {
        const old = live.get(item.target.split('/')[1])!;
        const detail = await call(t, 'admin', 'GET', `/api/v1/certificates/${item.successor.serial}`);
        const successor = track(leafOf({ certificate: detail.body, pem: detail.body.pem, chain: detail.body.chain }, { subjectId: old.subjectId, keyPath: old.keyPath }));
        expect(successor).toMatchObject({ tier: old.tier, profile: old.profile, subjectId: old.subjectId, keyAlgorithm: old.keyAlgorithm });
        live.delete(old.serial);
        superseded.push({ leaf: old, supersedeAt: now.getTime() + GRACE_DAYS[old.tier] * DAY_MS, by: successor.serial });
        renewedByTier[old.tier]++;
      }
      // The holders of the holder-only tier renew themselves, with a new key, signed by the current one.
      for (const item of waiting) {
        const old = live.get(item.target.split('/')[1])!;
        const { csrPem, keyPath } = await opensslCsr(tmp, `holder-${step}-${old.serial}`, 'P-384');
        const signed = signedRenewal({ ...old, keyPath: old.keyPath! }, { signedAt: now, csr: csrPem });
        const res = await call(t, null, 'POST', `/api/v1/certificates/${old.serial}/renew`, signed.body, signed.headers);
        expect(res.status, JSON.stringify(res.body)).toBe(201);
        expect(res.body.mode).toBe('rekey');
        const successor = track(leafOf(res.body, { subjectId: old.subjectId, keyPath }));
        live.delete(old.serial);
        superseded.push({ leaf: old, supersedeAt: now.getTime() + GRACE_DAYS.t3 * DAY_MS, by: successor.serial });
        renewedByTier.t3++;
      }

      // Every live certificate: openssl verify with the tier policy, and good at openssl ocsp.
      await Promise.all([...live.values()].map(async (l) => {
        expect(Date.parse(l.notAfter), `live ${l.serial} expired`).toBeGreaterThan(now.getTime());
        const v = await verifyAt(tmp, { leafPem: l.pem, anchors: [root], untrusted: [tierPem[l.tier], domain], at: now, policy: EXAMPLE_TIER_OIDS[l.tier] });
        expect(v.ok, `verify ${l.tier} ${l.profile} ${l.serial} at step ${step}: ${v.stdout}${v.stderr}`).toBe(true);
        const o = await ocspAt(t, tmp, { leafPem: l.pem, issuerPem: tierPem[l.tier], root, chain: [tierPem[l.tier], domain], at: now });
        expect(o.status, `ocsp ${l.serial} at step ${step}: ${o.stdout}${o.stderr}`).toBe('good');
        expect(o.verified).toBe(true);
        seen.verified++;
      }));
      // Superseded ones: good during their grace, revoked (superseded) after it; then no longer watched.
      await Promise.all(superseded.filter((s) => Date.parse(s.leaf.notAfter) > now.getTime()).map(async (s) => {
        const o = await ocspAt(t, tmp, { leafPem: s.leaf.pem, issuerPem: tierPem[s.leaf.tier], root, chain: [tierPem[s.leaf.tier], domain], at: now });
        const over = s.supersedeAt <= now.getTime();
        expect(o.status, `superseded ${s.leaf.tier} ${s.leaf.serial} at step ${step} (grace over: ${over})`).toBe(over ? 'revoked' : 'good');
        if (over) expect(o.reason).toBe('superseded');
        expect(o.verified).toBe(true);
        seen[over ? 'revoked' : 'goodInGrace']++;
      }));
      superseded = superseded.filter((s) => s.supersedeAt > now.getTime());
    }
    // Every tier went round more than once.
    expect(renewedByTier.t1).toBeGreaterThanOrEqual(3);
    expect(renewedByTier.t2).toBeGreaterThanOrEqual(6);
    expect(renewedByTier.t3).toBeGreaterThanOrEqual(7);
    expect(seen.verified).toBeGreaterThanOrEqual(STEPS * 5);
    expect(seen.revoked).toBeGreaterThanOrEqual(10);
    expect(seen.goodInGrace).toBeGreaterThanOrEqual(3);
  });

  it('audits each renewal and each supersession with what it replaced', async () => {
    const rows = await knexOf(t.store)('audit_log').whereIn('action', ['certificate.renew', 'certificate.revoke', 'rotation.run']).where({ outcome: 'success' });
    const renewals = rows.filter((r: any) => r.action === 'certificate.renew').map((r: any) => JSON.parse(r.detail));
    const supersessions = rows.filter((r: any) => r.action === 'certificate.revoke').map((r: any) => JSON.parse(r.detail));
    expect(renewals.length).toBeGreaterThan(15);
    expect(renewals.every((d: any) => /^yuhu-t\d\/[0-9a-f]+$/.test(d.replaced) && ['renew', 'rekey'].includes(d.mode))).toBe(true);
    expect(supersessions.length).toBeGreaterThan(10);
    expect(supersessions.every((d: any) => d.reason === 4 && /^yuhu-t\d\/[0-9a-f]+$/.test(d.supersededBy))).toBe(true);
    const runs = rows.filter((r: any) => r.action === 'rotation.run').map((r: any) => JSON.parse(r.detail));
    expect(runs.some((d: any) => (d.summary.renewed ?? 0) > 0)).toBe(true);
  });

  it('a dry run changes nothing; limit leaves the rest for the next call; two runs at once with one request id renew each certificate once', async () => {
    const serverRenewed = [...live.values()].filter((l) => l.tier !== 't3');
    clock.set(new Date(Math.max(...serverRenewed.map((l) => l.renewAt)) + 1000));
    const before = await t.store.certificates.count({});
    const dry = await call(t, 'admin', 'POST', '/api/v1/rotation/run', { dryRun: true });
    expect(dry.body.dryRun).toBe(true);
    const would = dry.body.items.filter((i: any) => i.outcome === 'would-renew').map((i: any) => i.target).sort();
    expect(would).toEqual(serverRenewed.map((l) => `certificate:${l.issuerId}/${l.serial}`).sort());
    expect(await t.store.certificates.count({})).toBe(before);

    const limited = await call(t, 'admin', 'POST', '/api/v1/rotation/run', { requestId: 'together', limit: 1 });
    expect(limited.body.items.filter((i: any) => i.outcome === 'renewed')).toHaveLength(1);
    expect(limited.body.remaining).toBe(would.length - 1);
    const [a, b] = await Promise.all([
      call(t, 'admin', 'POST', '/api/v1/rotation/run', { requestId: 'together' }),
      call(t, 'admin', 'POST', '/api/v1/rotation/run', { requestId: 'together' }),
    ]);
    expect(await t.store.certificates.count({})).toBe(before + would.length);
    const successors = (r: any) => Object.fromEntries(r.body.items.filter((i: any) => i.successor && i.kind === 'certificate').map((i: any) => [i.target, i.successor.serial]));
    const fromA = successors(a);
    const fromB = successors(b);
    for (const target of Object.keys(fromA)) if (fromB[target]) expect(fromB[target]).toBe(fromA[target]);
    expect(Object.keys({ ...fromA, ...fromB }).sort()).toEqual(would.filter((w: string) => !limited.body.items.some((i: any) => i.target === w)).sort());
    expect([...a.body.items, ...b.body.items].filter((i: any) => i.outcome === 'failed')).toEqual([]);
  });
});

describe('the tierca CLI: rotate due, rotate run, cert renew, ca rollover', () => {
  async function cli(role: 'admin' | 'officer', args: string[], tty = false) {
    let stdout = '';
    let stderr = '';
    const tokenFile = tmp.file(`${role}.token`, t.tokens[role]);
    const code = await tierca(['--server', t.url, '--token-file', tokenFile, ...args], {
      stdout: { write: (s: string) => (stdout += s), isTTY: false },
      stderr: { write: (s: string) => (stderr += s), isTTY: tty },
      env: {},
      stdin: Object.assign(Readable.from([]), { isTTY: false }),
    });
    return { code, stdout, stderr };
  }

  it('rotate due prints a table, --json the API answer; --within must be a duration', async () => {
    const json = await cli('admin', ['rotate', 'due', '--within', '400d', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const plan = JSON.parse(json.stdout);
    expect(plan.items.filter((i: any) => i.kind === 'ca').map((i: any) => i.caId).sort()).toEqual(['yuhu', 'yuhu-t1', 'yuhu-t2', 'yuhu-t3']);
    const table = await cli('officer', ['rotate', 'due', '--within', '400d', '--tier', 't1']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^KIND\s+TARGET\s+DOMAIN\s+TIER\s+DUE\s+ACTION\s+NOTE$/);
    expect(table.stdout).toMatch(/\nca\s+yuhu-t1\s+yuhu\s+t1\s+\S+ \S+\s+rollover/);
    expect((await cli('admin', ['rotate', 'due', '--within', 'soon'])).code).toBe(2);
  });

  it('rotate run without --execute changes nothing; rotate run --execute renews with a progress bar and a summary', async () => {
    clock.advance(12 * DAY_MS); // the t2 certificates renewed above (15 days) are due again
    const before = await t.store.certificates.count({});
    const dry = await cli('admin', ['rotate', 'run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/dry run, nothing changed: .*would renew \d+.*\nrun again with --execute to do it\n$/);
    expect(await t.store.certificates.count({})).toBe(before);
    const real = await cli('admin', ['rotate', 'run', '--execute', '--request-id', 'cli-run-1', '--batch', '1'], true);
    expect(real.code, real.stderr).toBe(0);
    const renewed = (await t.store.certificates.count({})) - before;
    expect(renewed).toBeGreaterThanOrEqual(2);
    expect(real.stderr).toContain(`renewing [${'#'.repeat(30)}] ${renewed}/${renewed}`);
    expect(real.stdout).toMatch(new RegExp(`run cli-run-1: renewed ${renewed}`));
    const again = await cli('admin', ['rotate', 'run', '--execute', '--request-id', 'cli-run-1', '--json']);
    expect(JSON.parse(again.stdout).summary.renewed).toBeUndefined();
    expect(await t.store.certificates.count({})).toBe(before + renewed);
    expect((await cli('officer', ['rotate', 'run'])).code).toBe(4);
    expect((await cli('officer', ['rotate', 'run', '--execute'])).code).toBe(4);
  });

  it('cert renew renews once per request id and writes the new certificate', async () => {
    const leaf = await issueLeaf(t, tmp, { kind: 'device', tier: 't1' });
    const out = tmp.file('cli-renewed.pem');
    const first = await cli('officer', ['cert', 'renew', leaf.serial, '--request-id', 'cli-renew-1', '--out', out]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`^renewed \\(same key\\): yuhu-t1/${leaf.serial} → yuhu-t1/[0-9a-f]+, valid until`));
    expect(first.stdout).toContain('the old certificate stays good until');
    expect(tmp.read('cli-renewed.pem').toString()).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const again = await cli('officer', ['cert', 'renew', leaf.serial, '--request-id', 'cli-renew-1', '--out', tmp.file('cli-renewed-2.pem')]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^already renewed: /);
    expect(tmp.read('cli-renewed-2.pem').equals(tmp.read('cli-renewed.pem'))).toBe(true);
    const conflict = await cli('officer', ['cert', 'renew', leaf.serial]);
    expect(conflict.code).toBe(5);
    expect(conflict.stderr).toContain('already renewed');
  });

  it('ca rollover shows its plan, asks under dual control with --execute, and insists on --ceremony for the root', async () => {
    const plan = await cli('admin', ['ca', 'rollover', 'yuhu-t1']);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('would ask to roll CA yuhu-t1');
    expect(await t.store.requests.list({ status: 'pending' })).toHaveLength(0);
    const root = await cli('admin', ['ca', 'rollover', 'root', '--execute']);
    expect(root.code).toBe(2);
    expect(root.stderr).toContain('--ceremony');
    const asked = await cli('admin', ['ca', 'rollover', 'yuhu-t1', '--execute']);
    expect(asked.code, asked.stderr).toBe(0);
    const id = /request (req-[0-9a-f-]+)/.exec(asked.stdout)![1];
    expect(asked.stdout).toContain(`tierca request approve ${id}`);
    expect((await cli('admin', ['ca', 'links', 'yuhu-t1'])).stdout).toContain('has not been rolled over');
    expect((await call(t, 'admin2', 'POST', `/api/v1/requests/${id}/approve`)).status).toBe(200);
    const links = await cli('admin', ['ca', 'links', 'yuhu-t1']);
    expect(links.stdout).toMatch(/# old-with-new: yuhu-t1 ↔ yuhu-t1-g2/);
    expect(links.stdout).toMatch(/# new-with-old: yuhu-t1 ↔ yuhu-t1-g2/);
    expect(links.stdout.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
  });
});
