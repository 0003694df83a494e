/**
 * Helpers of the rotation tests: a small config (one domain, short tier lifetimes), issuing through the
 * API, signed device renewals, and the two real clients that judge the result — `openssl verify` and
 * `openssl ocsp` — run at the FAKE time (`-attime`; OCSP answers carry fake times, so their
 * thisUpdate/nextUpdate window is widened with `-validity_period`).
 */
import { sign as nodeSign, createPrivateKey, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { exampleConfigData } from './config.ts';
import { call, type RoleName, type TestTierca } from './tierca.ts';
import { openssl, type TempDir } from './openssl.ts';
import { opensslCsr } from './pki-fixtures.ts';

export const DAY_MS = 24 * 3600 * 1000;

/** One domain (yuhu) and short lifetimes, so that a fake clock walks several lifetimes in few steps. */
export function smallConfig(tiers: Record<string, Record<string, unknown>> = {}): Record<string, any> {
  const data = exampleConfigData();
  data.domains = data.domains.filter((d: { slug: string }) => d.slug === 'yuhu');
  data.tierCa = { validityYears: 1 };
  data.domainCa = { ...data.domainCa, validityYears: 2 };
  data.root = { ...data.root, validityYears: 4 };
  data.tiers = {
    t1: { maxValidityDays: { user: 30, device: 30, organ: 45 }, supersedeGraceDays: 4, responderValidityDays: 7 },
    t2: { maxValidityDays: { user: 15, device: 15, organ: 30 }, supersedeGraceDays: 0, responderValidityDays: 3 },
    t3: { maxValidityDays: { user: 9, device: 9, organ: 12 }, supersedeGraceDays: 1, responderValidityDays: 1 },
    ...tiers,
  };
  return data;
}

let seq = 0;

export interface IssuedLeaf {
  subjectId: string;
  serial: string;
  issuerId: string;
  tier: string;
  profile: string;
  pem: string;
  chain: string[];
  /** The holder's key (PEM file) when the holder made it. */
  keyPath?: string;
  keyAlgorithm: string;
  notBefore: string;
  notAfter: string;
  body: any;
}

/** Registers a subject and issues its first certificate from an openssl CSR (or a server key with `generate`). */
export async function issueLeaf(
  t: TestTierca,
  tmp: TempDir,
  p: { kind: 'device' | 'organ' | 'user'; tier: string; alg?: 'P-256' | 'P-384'; profile?: string; generate?: boolean; role?: RoleName },
): Promise<IssuedLeaf> {
  const n = ++seq;
  const suffix = 'yuhu.xiangtan.intranet';
  const subject = await call(t, p.role ?? 'officer', 'POST', '/api/v1/subjects', {
    kind: p.kind, domain: 'yuhu', organ: 'government', tier: p.tier, name: `${p.kind}-${p.tier}-${n}`,
    ...(p.kind === 'device' ? { dns: [`host-${n}.${suffix}`], ips: [`10.21.9.${n % 250}`] } : { emails: [`someone${n}@${suffix}`] }),
  });
  expect(subject.status, JSON.stringify(subject.body)).toBe(201);
  const alg = p.alg ?? (p.tier === 't3' ? 'P-384' : 'P-256');
  let keyPath: string | undefined;
  const body: Record<string, unknown> = { subjectId: subject.body.id, ...(p.profile ? { profile: p.profile } : {}) };
  if (p.generate) body.generate = { algorithm: alg };
  else {
    const csr = await opensslCsr(tmp, `leaf-${n}`, alg);
    keyPath = csr.keyPath;
    body.csr = csr.csrPem;
  }
  let res = await call(t, p.role ?? 'officer', 'POST', '/api/v1/certificates', body);
  if (res.status === 202) res = await call(t, 'officer2', 'POST', `/api/v1/requests/${res.body.request.id}/approve`);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return leafOf(res.body, { subjectId: subject.body.id, keyPath });
}

/** An issuance or renewal answer as an {@link IssuedLeaf}. */
export function leafOf(body: any, extra: { subjectId?: string; keyPath?: string } = {}): IssuedLeaf {
  const c = body.certificate;
  return {
    subjectId: extra.subjectId ?? c.subjectId, serial: c.serial, issuerId: c.issuerId, tier: c.tier, profile: c.profile,
    pem: body.pem, chain: body.chain, keyPath: extra.keyPath, keyAlgorithm: c.keyAlgorithm, notBefore: c.notBefore,
    notAfter: c.notAfter, body,
  };
}

/** Headers and body of a device's renewal signed with its current key (docs/api.md "Renewal by a device"). */
export function signedRenewal(
  leaf: { serial: string; pem: string; keyPath: string; keyAlgorithm: string },
  p: { signedAt: Date; requestId?: string; csr?: string; serial?: string; extra?: Record<string, unknown> },
): { body: Buffer; headers: Record<string, string> } {
  const body = Buffer.from(JSON.stringify({
    serial: p.serial ?? leaf.serial,
    signedAt: p.signedAt.toISOString(),
    requestId: p.requestId ?? `dev-${randomUUID()}`,
    ...(p.csr ? { csr: p.csr } : {}),
    ...(p.extra ?? {}),
  }));
  const key = createPrivateKey(readFileSync(leaf.keyPath));
  const signature = nodeSign(leaf.keyAlgorithm === 'P-384' ? 'sha384' : 'sha256', body, key);
  const der = Buffer.from(leaf.pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return {
    body,
    headers: { 'content-type': 'application/json', 'tierca-signature': signature.toString('base64'), 'tierca-certificate': der.toString('base64') },
  };
}

export const epochOf = (date: Date): string => String(Math.floor(date.getTime() / 1000));

/**
 * `openssl verify` at `at` with only `anchors` trusted and `untrusted` offered for path building; the
 * tier policy is required when given (RFC 5280 §6.1 policy processing, as relying parties ask).
 */
export async function verifyAt(
  tmp: TempDir, p: { leafPem: string; anchors: string[]; untrusted?: string[]; at: Date; policy?: string; partial?: boolean; crls?: string[] },
) {
  const id = randomUUID();
  const leaf = tmp.file(`v-${id}-leaf.pem`, p.leafPem);
  const anchors = tmp.file(`v-${id}-anchors.pem`, p.anchors.join(''));
  const args = ['verify', '-attime', epochOf(p.at), '-purpose', 'any', '-CAfile', anchors];
  if (p.untrusted?.length) args.push('-untrusted', tmp.file(`v-${id}-untrusted.pem`, p.untrusted.join('')));
  if (p.policy) args.push('-policy', p.policy, '-explicit_policy');
  if (p.partial) args.push('-partial_chain');
  if (p.crls?.length) args.push('-crl_check', '-CRLfile', tmp.file(`v-${id}-crls.pem`, p.crls.join('')));
  args.push(leaf);
  const res = await openssl(args);
  return { ...res, ok: res.code === 0 && /: OK\s*$/.test(res.stdout) };
}

/**
 * `openssl ocsp` against the running responder for one certificate, verifying the answer against
 * `root` with `chain` as intermediates. Returns the status line (`good`, `revoked`, `unknown`), the
 * revocation reason, and whether the response verified.
 */
export async function ocspAt(
  t: TestTierca, tmp: TempDir, p: { leafPem: string; issuerPem: string; root: string; chain: string[]; at: Date; nonce?: boolean },
) {
  const id = randomUUID();
  const leaf = tmp.file(`o-${id}-leaf.pem`, p.leafPem);
  const args = [
    'ocsp', '-issuer', tmp.file(`o-${id}-issuer.pem`, p.issuerPem), '-cert', leaf, '-url', `${t.url}/ocsp`,
    '-CAfile', tmp.file(`o-${id}-root.pem`, p.root), '-verify_other', tmp.file(`o-${id}-chain.pem`, p.chain.join('')),
    '-attime', epochOf(p.at), '-validity_period', '300000000',
  ];
  if (!p.nonce) args.push('-no_nonce');
  const res = await openssl(args);
  const line = new RegExp(`${leaf.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (\\w+)`).exec(res.stdout);
  return {
    status: line?.[1] ?? null,
    reason: /Reason: (\w+)/.exec(res.stdout)?.[1] ?? null,
    verified: res.stderr.includes('Response verify OK'),
    stdout: res.stdout,
    stderr: res.stderr,
  };
}

/** The PEM of a CA generation (public route). */
export async function caPem(t: TestTierca, id: string): Promise<string> {
  const res = await call(t, null, 'GET', `/ca/${id}.pem`);
  expect(res.status).toBe(200);
  return res.raw.toString('utf8');
}

/** The PEM blocks in a bundle, each with its END line and a newline. */
export function pemBlocks(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)?.map((b) => (b.endsWith('\n') ? b : `${b}\n`)) ?? [];
}
