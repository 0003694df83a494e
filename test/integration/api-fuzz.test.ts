// A request fuzzer over every /api/v1 route (issue 13): seeded, bounded in count and time, on
// loopback. Each POST gets mutated JSON bodies — wrong types, unknown keys, huge strings (over the
// field limits and over the 64 KiB body limit), odd Unicode (lone surrogates, NUL, bidi controls,
// zero-width), deep nesting, arrays for objects, non-JSON — with a token of a role that may call it;
// every answer must be a 4xx problem document, never a 5xx, and no row may change (audit records of
// refused writes aside). GET routes get mutated query strings and bodies: never a 5xx, no row changed.
// Reproduce a failure with TIERCA_FUZZ_SEED=<seed printed in the assertion>.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { startTestTierca, type TestTierca, type RoleName } from '../helpers/tierca.ts';
import { snapshotCounts } from '../helpers/database.ts';
import { createApp } from '../../server/http/app.ts';
import { listRoutes, ROUTE_PERMISSIONS, type ListedRoute } from '../../server/http/authenticate.ts';
import { ROLE_PERMISSIONS } from '../../server/ra/permissions.ts';

const SEED = Number(process.env.TIERCA_FUZZ_SEED ?? 20261203);
/** Mutated requests per route; with ~36 routes about 1,000 requests. */
const PER_ROUTE = Number(process.env.TIERCA_FUZZ_PER_ROUTE ?? 24);
/** Wall-clock budget of one run: the fuzzer stops sending (and says so) past it. */
const BUDGET_MS = 90_000;

/**
 * Cases that found a 5xx inside server/ra (not fixed here: the registration authority is being split
 * by another helper). Each entry is `METHOD /path mutation-name`; the lead empties this list after
 * wiring the RA side of issue 13. Empty = every case is checked.
 */
const KNOWN_RA_5XX: ReadonlySet<string> = new Set<string>([]);

/** Routes that read no body: any body is accepted, so they may succeed; checked for no 5xx only. */
const NO_BODY: ReadonlySet<string> = new Set(['POST /audit/checkpoints']);

/**
 * Base bodies: well-formed but refused by the RA (unknown ids, a name outside the domain), so no
 * mutation that keeps the schema valid can succeed either.
 */
const BASE: Record<string, Record<string, unknown>> = {
  'POST /subjects': { kind: 'device', domain: 'yuhu', organ: 'government', tier: 't1', name: 'fuzz gw', dns: ['gw.outside.example'] },
  'POST /principals': { name: 'fuzz', role: 'officer', domains: ['no-such-domain'] },
  'POST /certificates': { subjectId: 'no-such-subject', generate: { algorithm: 'P-256', passphrase: 'fuzz-pass-1' }, profile: 'device' },
  'POST /crls': { ca: 'no-such-ca' },
  'POST /rotation/run': { domain: 'no-such-domain', tier: 't1', dryRun: true },
  'POST /cas/:id/revoke': { reason: 'keyCompromise' },
  'POST /cas/:id/rollover': { ceremony: true },
  'POST /subjects/:id/revoke': { reason: 'keyCompromise' },
  'POST /certificates/:serial/revoke': { reason: 'keyCompromise', issuer: 'yuhu-t1' },
  'POST /certificates/:serial/hold': { issuer: 'yuhu-t1' },
  'POST /certificates/:serial/release': { issuer: 'yuhu-t1' },
  'POST /certificates/:serial/renew': { issuer: 'yuhu-t1', generate: { algorithm: 'P-256' } },
  'POST /principals/:id/certificate': { csr: 'MIIB', days: 30 },
  'POST /escrow/:issuer/:serial/recover': { reason: 'lost card' },
  'POST /kmc/rotate-master': { execute: false },
};

/** mulberry32: a small seeded PRNG, so a failing case is reproduced by its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ODD = ['\ud800', '\udfff', '\u0000', 'a\u0000b', '\u202e', '\u2066x\u2069', '\u200b', '\ufeff', '\r\n', '\u001b[2J', '💥'.repeat(40), 'Ze\u0301', '\u{10ffff}', '%00', '../../etc/passwd', "'; drop table subjects; --"];
const WRONG = [0, -1, 1e308, 3.5, true, false, null, [], [1, 'a'], {}, { a: { b: 1 } }, '', 'x'];

/** `n` levels of alternating arrays and objects around `leaf`, as JSON text (JSON.stringify would overflow the stack). */
function deep(n: number, leaf: unknown): string {
  const open = Array.from({ length: n }, (_, i) => (i % 2 ? '{"a":' : '[')).join('');
  const close = Array.from({ length: n }, (_, i) => (i % 2 ? '}' : ']')).reverse().join('');
  return `${open}${JSON.stringify(leaf)}${close}`;
}

interface Mutation {
  name: string;
  /** A JSON value to send, or raw text (`raw`). */
  body?: unknown;
  raw?: string;
}

/** One mutation of `base`, chosen by `rnd`. Each is invalid for a strict schema or refused downstream. */
function mutate(base: Record<string, unknown>, rnd: () => number): Mutation {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const keys = Object.keys(base);
  const key = keys.length ? pick(keys) : 'x';
  const kind = Math.floor(rnd() * 11);
  switch (kind) {
    case 0: {
      const k = pick(['zz_fuzz', '__proto__', 'constructor', 'prototype', '', ' ', 'toString', '\u0000', 'kind ']);
      return { name: `unknown key ${JSON.stringify(k)}`, raw: JSON.stringify(base).replace(/^\{/, `{${JSON.stringify(k)}:${JSON.stringify(pick(WRONG))}${keys.length ? ',' : ''}`) };
    }
    case 1: {
      const v = pick(WRONG.filter((w) => typeof w !== typeof base[key] || Array.isArray(w) !== Array.isArray(base[key])));
      return { name: `${key} of wrong type ${JSON.stringify(v)}`, body: { ...base, [key]: v } };
    }
    case 2:
      return { name: `${key} 40,000 characters`, body: { ...base, [key]: 'A'.repeat(40_000) } };
    case 3:
      return { name: `${key} 70,000 characters (over the body limit)`, body: { ...base, [key]: '湘'.repeat(70_000) } };
    case 4: {
      const odd = pick(ODD);
      const value = Array.isArray(base[key]) ? [odd] : typeof base[key] === 'object' && base[key] !== null ? { algorithm: odd } : `${String(base[key] ?? '')}${odd}`;
      return { name: `${key} with odd Unicode ${JSON.stringify(odd)}`, body: { ...base, [key]: value } };
    }
    case 5:
      return { name: `${key} nested 2,000 deep`, raw: JSON.stringify({ ...base, [key]: '@@' }).replace('"@@"', deep(2_000, 1)) };
    case 6:
      return { name: 'body nested 5,000 deep', raw: deep(5_000, base) };
    case 7:
      return { name: 'array for the object', body: [base] };
    case 8:
      return { name: `${key} as an array of the value`, body: { ...base, [key]: [base[key], base[key]] } };
    case 9: {
      // Not '': an empty body is a request with no options, valid where the body is optional.
      const raw = pick(['{', '{"a":', 'null', '"str"', '123', 'true', '[]', '{"a":1}{"b":2}', '\u0000', '{"a":"\\ud800"}', '{"a":1,"a":2}']);
      return { name: `raw body ${JSON.stringify(raw)}`, raw };
    }
    default:
      return { name: 'many unknown keys', body: { ...base, ...Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i])) } };
  }
}

let t: TestTierca;
let routes: ListedRoute[];

beforeAll(async () => {
  t = await startTestTierca();
  const s = t.service.services;
  const app = createApp({ ...s, publicUrl: s.config.publicUrl, log: pino({ level: 'silent' }), health: async () => undefined });
  routes = listRoutes((app as unknown as { router: Parameters<typeof listRoutes>[0] }).router).filter((r) => r.path.startsWith('/api/v1/'));
});
afterAll(async () => {
  await t?.close();
});

const ROLE_TOKENS: [RoleName, keyof typeof ROLE_PERMISSIONS][] = [['officer', 'officer'], ['admin', 'sysadmin'], ['auditor', 'auditor']];
function tokenFor(key: string): string {
  const allow = ROUTE_PERMISSIONS[key]?.allow ?? [];
  const found = ROLE_TOKENS.find(([, role]) => allow.some((p) => ROLE_PERMISSIONS[role].includes(p)));
  if (!found) throw new Error(`no test role may call ${key}`);
  return t.tokens[found[0]];
}

const GET_QUERIES = ['limit=abc', 'limit=-1', 'limit=1e9', 'limit=99999999999999999999', 'domain=%00', 'domain=%ED%A0%80', 'tier=%E2%80%AE', 'from=yesterday', 'to=2026-13-45',
  'fromSeq=-5', 'status=bogus', 'kind[]=a', 'a=1&a=2', `domain=${'x'.repeat(5000)}`, 'issuer=%F0%9F%92%A5', 'profile=ocsp', 'subject=..%2F..'];

interface Target {
  key: string;
  path: string;
  base: Record<string, unknown>;
}

/** Sends PER_ROUTE mutated requests to each target; returns what broke the rules. */
async function fuzz(targets: readonly Target[], rnd: () => number, started: number): Promise<{ failures: string[]; sent: number; skipped: number }> {
  const failures: string[] = [];
  let sent = 0;
  let skipped = 0;
  for (const { key, path, base } of targets) {
    const method = key.split(' ')[0];
    const token = tokenFor(key);
    const before = await snapshotCounts(t.store);
    for (let i = 0; i < PER_ROUTE && Date.now() - started < BUDGET_MS; i++) {
      let m: Mutation;
      let url = `${t.url}${path}`;
      if (method === 'GET') {
        const q = GET_QUERIES[Math.floor(rnd() * GET_QUERIES.length)];
        m = { ...mutate({ x: 1 }, rnd), name: `?${q}` };
        url += `?${q}`;
      } else {
        m = mutate(base, rnd);
      }
      const label = `${key} ${m.name}`;
      if (KNOWN_RA_5XX.has(label)) {
        skipped++;
        continue;
      }
      const res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
        body: method === 'POST' ? m.raw ?? JSON.stringify(m.body) : undefined,
      });
      const text = await res.text();
      sent++;
      const type = res.headers.get('content-type') ?? '';
      let problemType: unknown;
      try {
        problemType = type === 'application/problem+json' ? JSON.parse(text).type : undefined;
      } catch {
        problemType = undefined;
      }
      const isProblem = typeof problemType === 'string' && problemType.startsWith('urn:tierca:problem:');
      const ok = method === 'GET' || NO_BODY.has(key)
        ? res.status < 500 && (res.status < 400 || isProblem)
        : res.status >= 400 && res.status < 500 && isProblem;
      if (!ok) failures.push(`${label} → ${res.status} ${type} ${text.slice(0, 300)}`);
    }
    const after = await snapshotCounts(t.store);
    const changed = Object.keys(after).filter((k) => k !== 'audit_log' && after[k] !== before[k]);
    if (changed.length) failures.push(`${key} (${path}): rows changed in ${changed.map((k) => `${k} ${before[k]}→${after[k]}`).join(', ')}`);
  }
  return { failures, sent, skipped };
}

describe('the API fuzzer', () => {
  it(`answers every mutated request to every route with a 4xx problem and changes no row (seed ${SEED})`, async () => {
    const started = Date.now();
    const targets = routes.map((r) => {
      const key = `${r.method} ${r.path.slice('/api/v1'.length)}`;
      return { key, path: r.path.replace(/:[A-Za-z]+/g, (p) => `no-such-${p.slice(1)}`), base: BASE[key] ?? {} };
    });
    const { failures, sent, skipped } = await fuzz(targets, prng(SEED), started);
    expect({ seed: SEED, failures }).toEqual({ seed: SEED, failures: [] });
    // Bounded, and not vacuous: nearly every planned request went out within the budget.
    expect(sent + skipped).toBeGreaterThan(targets.length * PER_ROUTE * 0.9);
    expect(Date.now() - started).toBeLessThan(BUDGET_MS + 30_000);
  }, BUDGET_MS + 60_000);

  it(`reaches the registration authority with real ids behind the paths, and still only 4xx (seed ${SEED + 1})`, async () => {
    // Real things to act on: a subject with a certificate, a principal, a CA. Base bodies stay
    // refused (an unknown reason or issuer, a CSR that is no CSR), so no mutation can succeed.
    const officer = { authorization: `Bearer ${t.tokens.officer}`, 'content-type': 'application/json' };
    const subject = await (await fetch(`${t.url}/api/v1/subjects`, { method: 'POST', headers: officer, body: JSON.stringify({ kind: 'device', domain: 'yuhu', organ: 'government', tier: 't1', name: 'fuzz target', dns: ['fuzz.yuhu.xiangtan.intranet'] }) })).json();
    const issued = await fetch(`${t.url}/api/v1/certificates`, { method: 'POST', headers: officer, body: JSON.stringify({ subjectId: subject.id, generate: { algorithm: 'P-256', passphrase: 'fuzz-pass-1' } }) });
    expect(issued.status).toBe(201);
    const serial = (await issued.json()).certificate.serial as string;
    const principal = (await (await fetch(`${t.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${t.tokens.auditor}` } })).json()).id as string;
    const targets: Target[] = [
      { key: 'POST /subjects/:id/revoke', path: `/api/v1/subjects/${subject.id}/revoke`, base: { reason: 'fuzzReason' } },
      { key: 'POST /certificates', path: '/api/v1/certificates', base: { subjectId: subject.id, csr: 'MIIBfuzz', profile: 'device' } },
      { key: 'POST /certificates/:serial/revoke', path: `/api/v1/certificates/${serial}/revoke`, base: { reason: 'fuzzReason', issuer: 'yuhu-t1' } },
      { key: 'POST /certificates/:serial/hold', path: `/api/v1/certificates/${serial}/hold`, base: { issuer: 'no-such-ca' } },
      { key: 'POST /certificates/:serial/release', path: `/api/v1/certificates/${serial}/release`, base: { issuer: 'yuhu-t1' } },
      { key: 'POST /certificates/:serial/renew', path: `/api/v1/certificates/${serial}/renew`, base: { issuer: 'no-such-ca', csr: 'MIIBfuzz' } },
      { key: 'POST /principals/:id/certificate', path: `/api/v1/principals/${principal}/certificate`, base: { csr: 'MIIBfuzz', days: 30 } },
      { key: 'POST /escrow/:issuer/:serial/recover', path: `/api/v1/escrow/yuhu-t1/${serial}/recover`, base: { reason: 'device keys are not escrowed' } },
      { key: 'POST /cas/:id/revoke', path: '/api/v1/cas/yuhu-t1/revoke', base: { reason: 'fuzzReason' } },
      { key: 'GET /subjects/:id', path: `/api/v1/subjects/${subject.id}`, base: {} },
      { key: 'GET /certificates/:serial', path: `/api/v1/certificates/${serial}`, base: {} },
      { key: 'GET /crls/:ca', path: '/api/v1/crls/yuhu-t1', base: {} },
    ];
    for (const target of targets) expect(Object.keys(ROUTE_PERMISSIONS)).toContain(target.key);
    const started = Date.now();
    const { failures, sent, skipped } = await fuzz(targets, prng(SEED + 1), started);
    expect({ seed: SEED + 1, failures }).toEqual({ seed: SEED + 1, failures: [] });
    expect(sent + skipped).toBeGreaterThan(targets.length * PER_ROUTE * 0.9);
  }, BUDGET_MS + 60_000);
});
