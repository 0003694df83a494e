/**
 * Online requests to the offline root after the first ceremony (docs/decisions/0032-offline-root-online-requests.md):
 * what the online side decides under dual control and the root must sign — a domain CA's revocation,
 * a domain CA's next generation (a rollover), a new domain's CA — is recorded as a pending root
 * request (`offline_root_requests`) until `tierca root request` writes every pending one into the
 * next request bundle, signed by the audit key as `init --offline-root` does. Meanwhile a CA being
 * revoked issues nothing (CaDirectory.setRevocationAwaited) and a CA being certified waits in
 * `offline_pending_cas` as after `init`.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import type { Signer } from '../../pki/signer.ts';
import { sha256Hex } from '../../pki/offline-bundle.ts';
import { appendAudit } from '../audit/audit-log.ts';
import type { TiercaConfig } from '../config/load-config.ts';
import { TiercaError } from '../errors.ts';
import type { Repositories, RootRequestRecord, Store } from '../storage/storage.ts';
import { generationOf, lineageOf, type CaDirectory, type LoadedCa } from './ca-directory.ts';
import { addYears } from './validity.ts';
import { storedIpRanges } from './domain-ip-ranges.ts';
import { awaitingRecord, caMaker, domainCaRequest } from './hierarchy-ceremony.ts';
import { readOfflineRootMeta, writeRequestBundle } from './offline-root-import.ts';
import type { AuditActor } from './renewal.ts';

/** The offline root above `ca` that must sign its certificate (its issuer), or undefined. */
export function offlineIssuerOf(cas: Pick<CaDirectory, 'get'>, ca: LoadedCa): LoadedCa | undefined {
  const parent = ca.record.parentId ? cas.get(ca.record.parentId) : undefined;
  return parent?.offline ? parent : undefined;
}

/**
 * Brings a directory's view of what waits for the offline root up to date with the database: the CAs
 * waiting for their certificates and the CAs whose revocation is asked for (until the root's
 * revocation is imported). Every instance runs it with its sync (CaRollover.sync).
 */
export async function refreshRootWaits(store: Pick<Store, 'offlineRoot'>, cas: CaDirectory): Promise<void> {
  if (!cas.list().some((c) => c.offline)) return;
  const [pending, requests] = await Promise.all([store.offlineRoot.listPending(), store.offlineRoot.listRootRequests()]);
  cas.setAwaitingRoot(new Map(pending.map((p) => [p.record.id, p.certifiedBy])));
  cas.setRevocationAwaited(requests.filter((r) => r.kind === 'revoke' && cas.get(r.ca)?.record.status !== 'revoked').map((r) => r.ca));
}

/**
 * Records, in the caller's transaction, that the offline root is asked to revoke domain CA `ca`.
 *
 * @throws TiercaError `conflict` when its revocation is asked for already.
 */
export async function askRootRevocation(tx: Repositories, p: { ca: LoadedCa; reason: number; now: Date }): Promise<void> {
  const id = `revoke:${p.ca.record.id}`;
  if ((await tx.offlineRoot.listRootRequests()).some((r) => r.id === id)) {
    throw new TiercaError('conflict', `the revocation of CA ${p.ca.record.id} is asked of the offline root already`, { detail: { ca: p.ca.record.id } });
  }
  await tx.offlineRoot.insertRootRequest({ id, kind: 'revoke', ca: p.ca.record.id, body: { serial: p.ca.record.serial, reason: p.reason }, createdAt: p.now, requestSequence: null });
}

/** What an online rollover of a domain CA under an offline root made: the generation that waits. */
export interface RootRolloverRequested {
  previous: string;
  awaitingRoot: string;
  keyFingerprint: string;
}

/**
 * A domain CA's rollover under an offline root: the new key is made and sealed here, its certificate
 * is asked of the root (a signed domain CA request), and the new generation waits in
 * `offline_pending_cas` until `root import` installs it as the lineage's current generation. One
 * transaction: key, waiting record, root request, `inTransaction` (the approval), audit.
 */
export async function requestRootRollover(deps: { store: Store; cas: CaDirectory; keystore: KeyStore; config: TiercaConfig; random?: (n: number) => Buffer }, p: {
  caName: string; now: Date; actor: AuditActor; auditDetail?: Record<string, unknown>; inTransaction?: (tx: Repositories, result: Record<string, unknown>) => Promise<void>;
}): Promise<RootRolloverRequested> {
  const { store, cas, config } = deps;
  const old = cas.current(p.caName);
  if (!old) throw new TiercaError('not-found', `no CA ${p.caName}`);
  const root = offlineIssuerOf(cas, old);
  if (!root || old.record.layer !== 'domain') throw new TiercaError('internal', `CA ${old.record.id} is not a domain CA under the offline root`);
  if (old.record.status !== 'active') throw new TiercaError('conflict', `CA ${old.record.id} is ${old.record.status}; only an active CA is rolled over`);
  const lineage = lineageOf(old.record);
  if ((await store.offlineRoot.listPending()).some((w) => lineageOf(w.record) === lineage)) {
    throw new TiercaError('conflict', `a new generation of CA ${lineage} already awaits the offline root`, { detail: { ca: lineage } });
  }
  const domain = await store.domains.get(old.record.domain!);
  if (!domain) throw new TiercaError('internal', `domain ${old.record.domain} is missing`);
  const start = new Date(Math.floor(p.now.getTime() / 1000) * 1000);
  const generation = generationOf(old.record) + 1;
  const id = `${lineage}-g${generation}`;
  if (cas.get(id) || (await store.cas.get(id))) throw new TiercaError('conflict', `CA ${lineage} was rolled over meanwhile (${id} exists)`);
  const maker = caMaker({ config, keystore: deps.keystore, random: deps.random ?? randomBytes, start });
  const made = await maker.makeKey(id, config.domainCa.algorithm, 'domain');
  const notAfter = new Date(Math.min(addYears(start, config.domainCa.validityYears).getTime(), root.record.notAfter.getTime()));
  const ipRanges = (await storedIpRanges(store.meta, domain.slug)) ?? [];
  const request = await domainCaRequest({
    rootId: root.record.id, config, ca: id, domain: { slug: domain.slug, name: domain.locality, dnsSuffix: domain.dnsSuffix, emailSuffix: domain.emailSuffix, ipRanges },
    subject: old.fields.subject, publicKeyInfo: made.key.publicKeyInfo, notBefore: start, notAfter, signer: made.signer,
  });
  const record = {
    ...awaitingRecord({ id, domain: domain.slug, parentId: root.record.id, name: old.record.name, key: made.key, subject: old.fields.subject, start, notAfter }),
    lineage, generation, successorId: null, retiredAt: null,
  };
  const keyFingerprint = sha256Hex(made.key.publicKeyInfo);
  const result = { previous: old.record.id, awaitingRoot: id, keyFingerprint };
  await store.transaction(async (tx) => {
    await tx.keys.insert(made.key);
    await tx.offlineRoot.insertPending({ certifiedBy: id, requestSequence: 0, record });
    await tx.offlineRoot.insertRootRequest({ id: `certify:${id}`, kind: 'certify', ca: id, body: request, createdAt: p.now, requestSequence: null });
    if (p.inTransaction) await p.inTransaction(tx, result);
    await appendAudit(tx.audit, p.now, {
      ...p.actor, action: 'ca.rollover', target: `ca:${lineage}`, outcome: 'success',
      detail: { ...(p.auditDetail ?? {}), replaced: old.record.id, awaitingRoot: id, keyFingerprint, generation, notAfter: notAfter.toISOString() },
    });
  });
  await refreshRootWaits(store, cas);
  return result;
}


/**
 * The root requests no request bundle carries yet, oldest first.
 *
 * @throws TiercaError `conflict` when there is none: a request bundle is written only with something to sign.
 */
export async function unsentRootRequests(repos: Pick<Repositories, 'offlineRoot' | 'meta'>): Promise<RootRequestRecord[]> {
  if (!(await readOfflineRootMeta(repos))) throw new TiercaError('not-found', 'this installation\'s root is not offline: it was not made with `tierca init --offline-root`');
  const pending = await repos.offlineRoot.listRootRequests({ unsent: true });
  if (!pending.length) {
    throw new TiercaError('conflict', 'nothing is pending for the offline root: no domain CA revocation, rollover or new domain awaits it (a request bundle is written only with something to sign)');
  }
  return pending;
}

/** What `tierca root request` wrote. */
export interface RequestBundleWritten {
  bytes: Buffer;
  sequence: number;
  digest: string;
  certify: string[];
  revoke: string[];
}

/**
 * `tierca root request`: writes every pending root request into the next request bundle (the next
 * request sequence, signed by `signer`, the audit key) and records that it carries them, in one
 * transaction.
 *
 * @throws TiercaError `not-found` when the root is not offline; `conflict` when nothing is pending.
 */
export async function writeNextRequestBundle(store: Store, signer: Signer, now: Date): Promise<RequestBundleWritten> {
  const meta = await readOfflineRootMeta(store);
  return store.transaction(async (tx) => {
    const pending = await unsentRootRequests(tx);
    const sequence = (await tx.offlineRoot.lastSequence('request')) + 1;
    const certify = pending.flatMap((r) => (r.kind === 'certify' ? [r.body] : []));
    const revoke = pending.flatMap((r) => (r.kind === 'revoke' ? [{ ca: r.ca, ...r.body }] : []));
    const bytes = await writeRequestBundle(tx, { fingerprint: meta!.fingerprint, sequence, requests: certify, revoke, signer, now });
    await tx.offlineRoot.markRootRequestsSent(pending.map((r) => r.id), sequence);
    return { bytes, sequence, digest: createHash('sha256').update(bytes).digest('hex'), certify: certify.map((c) => c.ca), revoke: revoke.map((r) => r.ca) };
  });
}

/**
 * `tierca root request --again <n>`: request bundle `n` as it was written (the copy carried across may
 * be lost or unreadable; the bundle is signed and holds no secret, so it is kept whole). Only one no
 * response has answered: an answered one would be refused by `root sign` as a replay.
 *
 * @throws TiercaError `not-found` when the root is not offline or no request `n` was written;
 * `conflict` when a response answered it already.
 */
export async function requestBundleCopy(repos: Pick<Repositories, 'offlineRoot' | 'meta'>, sequence: number): Promise<{ bytes: Buffer; sequence: number; digest: string }> {
  if (!(await readOfflineRootMeta(repos))) throw new TiercaError('not-found', 'this installation\'s root is not offline: it was not made with `tierca init --offline-root`');
  const bundle = await repos.offlineRoot.getBundle('request', sequence);
  if (!bundle?.bytes) throw new TiercaError('not-found', `no request bundle ${sequence} was written here (the last is ${await repos.offlineRoot.lastSequence('request')})`, { detail: { sequence } });
  if (bundle.answeredBy !== null) {
    throw new TiercaError('conflict', `request bundle ${sequence} was answered already by response ${bundle.answeredBy}: the root would refuse it as a replay`, { detail: { sequence, answeredBy: bundle.answeredBy } });
  }
  return { bytes: bundle.bytes, sequence, digest: bundle.digest };
}
