/**
 * The online side of an offline root (docs/offline-root.md, docs/decisions/0026-offline-root.md):
 * the request bundle written at `tierca init --offline-root`, and `tierca root import` of a response
 * bundle — which checks that the bundle is this hierarchy's, signed by its root, the next in sequence
 * and (when it answers a request) the answer to the request this service wrote, then installs it in
 * one transaction: the domain CA certificates (and the tier CAs waiting for them), revocations, the
 * root CRL, the root's pre-signed OCSP answers and the offline audit records. A refused bundle
 * changes nothing and says why with a stable code.
 */
import { createHash } from 'node:crypto';
import { readCertificate, verifyCertificateSignature } from '../../pki/certificate-reader.ts';
import { parseCrl } from '../../pki/crl-reader.ts';
import { subjectPublicKeyBits } from '../../pki/key-pair.ts';
import { bundleDigest, parseBundle, readOrRefuse, signBundle, verifyBundle, type BundleEnvelope } from '../../pki/offline-bundle.ts';
import { readResponsePayload, type DomainCaRequest, type RequestPayload, type ResponsePayload, type RootRevocationRequest } from '../../pki/offline-ceremony.ts';
import type { Signer } from '../../pki/signer.ts';
import { appendAudit, auditRecordHash, GENESIS_HASH } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import type { CaRecord, Repositories, Store } from '../storage/storage.ts';
import { generationOf, lineageOf, ROOT_CA_ID } from './ca-directory.ts';
import { checkRolloverMembers, installRollover, installRootStatus, refuseSupersededSigner } from './offline-root-rollover-import.ts';

/** The meta key that marks an installation whose root is offline, and what it keeps of it. */
export const OFFLINE_ROOT_META = 'offline-root';

export interface OfflineRootMeta {
  /** SHA-256 of the root certificate, hex: the `hierarchy` every bundle must carry. */
  fingerprint: string;
  caId: string;
  /** The last offline audit record imported (its seq and hash): the next must follow it. */
  lastOfflineAudit: { seq: number; hash: string };
  /** nextUpdate of the last imported root CRL, and the earliest of its pre-signed OCSP answers (ISO). */
  crlNextUpdate?: string;
  ocspNextUpdate?: string;
}

export async function readOfflineRootMeta(repos: Pick<Repositories, 'meta'>): Promise<OfflineRootMeta | undefined> {
  const text = await repos.meta.get(OFFLINE_ROOT_META);
  return text ? (JSON.parse(text) as OfflineRootMeta) : undefined;
}

/**
 * Writes request bundle `sequence` (signed by the audit key) and records it, in the caller's
 * transaction. Returns the file's bytes.
 */
export async function writeRequestBundle(tx: Repositories, p: {
  fingerprint: string; sequence: number; requests: DomainCaRequest[]; revoke?: RootRevocationRequest[]; signer: Signer; now: Date;
}): Promise<Buffer> {
  const payload: RequestPayload = { certify: p.requests, ...(p.revoke?.length ? { revoke: p.revoke } : {}) };
  const bytes = await signBundle({ kind: 'request', hierarchy: p.fingerprint, sequence: p.sequence, createdAt: p.now.toISOString(), payload }, p.signer);
  const digest = bundleDigest(bytes);
  await tx.offlineRoot.insertBundle({ direction: 'request', sequence: p.sequence, digest, bytes, createdAt: p.now, answeredBy: null });
  await appendAudit(tx.audit, p.now, {
    principalId: null, role: null, source: 'ceremony', action: 'offline-root.request', target: `bundle:request:${p.sequence}`, outcome: 'success',
    requestId: null, detail: { sequence: p.sequence, digest, certify: p.requests.map((r) => r.ca), ...(p.revoke?.length ? { revoke: p.revoke.map((r) => r.ca) } : {}) },
  });
  return bytes;
}

/** What an import installed. */
export interface ImportOutcome {
  sequence: number;
  answered: number | null;
  certified: string[];
  activated: string[];
  revoked: string[];
  crlNextUpdate: Date;
  ocspAnswers: number;
  auditRecords: number;
  /** A root rollover: the new root generation (now pinned) and the domain CAs re-certified under it. */
  rolledOver?: { root: string; fingerprint: string; recertified: string[] };
}

const refuse = (code: 'bundle-invalid' | 'bundle-foreign' | 'bundle-replayed' | 'bundle-out-of-order', message: string, detail: Record<string, unknown> = {}) =>
  new TiercaError(code, `${message}; nothing was changed`, { detail });

/**
 * Imports a response bundle (`tierca root import`). Everything is checked before anything is
 * written; the writes are one transaction, so a refusal — or a failure half-way — changes no row.
 *
 * @throws TiercaError `bundle-invalid` (not a bundle, a request, altered, a signature that does not
 *   verify, a certificate that is not the one asked for), `bundle-foreign` (another hierarchy),
 *   `bundle-replayed` (imported already), `bundle-out-of-order` (a bundle before it is missing), or
 *   `not-found` when this installation's root is not offline.
 */
export async function importResponseBundle(store: Store, bytes: Buffer, now: Date): Promise<ImportOutcome> {
  try {
    return await importChecked(store, bytes, now);
  } catch (err) {
    // A refusal is audited (decision 0026): one record, written after the import's transaction was
    // rolled back, so it is the only row a refused bundle adds.
    if (err instanceof TiercaError) {
      await appendAudit(store.audit, now, {
        principalId: null, role: null, source: 'local', action: 'offline-root.import', target: 'bundle:response', outcome: err.code.startsWith('bundle-') ? 'denied' : 'failure',
        requestId: null, detail: { code: err.code, digest: bundleDigest(bytes), reason: err.message },
      });
    }
    throw err;
  }
}

async function importChecked(store: Store, bytes: Buffer, now: Date): Promise<ImportOutcome> {
  const meta = await readOfflineRootMeta(store);
  if (!meta) throw new TiercaError('not-found', 'this installation\'s root is not offline: it was not made with `tierca init --offline-root`');
  const root = await store.cas.get(meta.caId);
  if (!root) throw new TiercaError('internal', `the offline root ${meta.caId} is not in the database`);
  const envelope: BundleEnvelope = readOrRefuse(() => parseBundle(bytes), (m) => refuse('bundle-invalid', m));
  if (envelope.kind !== 'response') throw refuse('bundle-invalid', `this is a ${envelope.kind} bundle: import takes the root's response bundle`, { kind: envelope.kind });
  const rootKey = readCertificate(root.certificate).publicKeyInfo;
  if (!verifyBundle(envelope, rootKey)) {
    if (envelope.hierarchy !== meta.fingerprint) {
      throw refuse('bundle-foreign', `the bundle belongs to the hierarchy of root ${envelope.hierarchy}, not this one (${meta.fingerprint})`, { hierarchy: envelope.hierarchy });
    }
    await refuseSupersededSigner(store, root, envelope);
    throw refuse('bundle-invalid', 'the bundle\'s signature does not verify with this hierarchy\'s root key: it was altered or not signed by the root');
  }
  if (envelope.hierarchy !== meta.fingerprint) throw refuse('bundle-foreign', `the bundle names the hierarchy ${envelope.hierarchy}, not this one`);
  const last = await store.offlineRoot.lastSequence('response');
  if (envelope.sequence <= last) throw refuse('bundle-replayed', `response bundle ${envelope.sequence} was imported already (the last imported is ${last})`, { sequence: envelope.sequence, last });
  if (envelope.sequence !== last + 1) {
    throw refuse('bundle-out-of-order', `response bundle ${envelope.sequence} cannot come before ${last + 1}: import ${last + 1} first`, { sequence: envelope.sequence, expected: last + 1 });
  }
  const payload: ResponsePayload = readOrRefuse(() => readResponsePayload(envelope.payload), (m) => refuse('bundle-invalid', m));
  if (payload.inReplyTo) {
    const asked = await store.offlineRoot.getBundle('request', payload.inReplyTo.sequence);
    if (!asked || asked.digest !== payload.inReplyTo.digest) {
      throw refuse('bundle-invalid', `the response answers request ${payload.inReplyTo.sequence} ${payload.inReplyTo.digest.slice(0, 16)}…, which this service did not write`);
    }
    if (asked.answeredBy !== null) throw refuse('bundle-replayed', `request ${asked.sequence} was answered already by response ${asked.answeredBy}`);
  }

  // A rollover (its new root, links and re-certified domain CAs) and the status of superseded root generations.
  const { rollover, previousRoots } = await checkRolloverMembers(store, root, payload, now);
  const statusCa = rollover?.root.id ?? meta.caId;

  // Certificates: each must be the one asked for — the key and subject of a CA waiting here, signed by the root.
  const pending = await store.offlineRoot.listPending();
  const rootFields = readCertificate(root.certificate);
  const toInstall: { domain: CaRecord; tiers: CaRecord[] }[] = [];
  for (const { ca, certificate } of payload.certificates) {
    const der = Buffer.from(certificate, 'base64');
    const waiting = pending.find((p) => p.record.id === ca && p.certifiedBy === ca);
    if (!waiting) throw refuse('bundle-invalid', `the bundle certifies ${ca}, which is not waiting for the root`, { ca });
    let fields;
    try {
      fields = readCertificate(der);
    } catch {
      throw refuse('bundle-invalid', `the certificate of ${ca} is not a certificate`, { ca });
    }
    const keyHash = createHash('sha1').update(subjectPublicKeyBits(fields.publicKeyInfo)).digest('hex');
    const nameHash = createHash('sha1').update(fields.subject).digest('hex');
    if (keyHash !== waiting.record.keyHashSha1 || nameHash !== waiting.record.nameHashSha1 || !fields.issuer.equals(rootFields.subject) || !verifyCertificateSignature(der, rootKey)) {
      throw refuse('bundle-invalid', `the certificate of ${ca} is not the one asked for (key, subject or root signature differ)`, { ca });
    }
    toInstall.push({
      domain: {
        ...waiting.record, certificate: der, serial: fields.serial, notBefore: fields.notBefore, notAfter: fields.notAfter,
        fingerprint: createHash('sha256').update(der).digest('hex'), createdAt: now,
      },
      tiers: pending.filter((p) => p.certifiedBy === ca && p.record.id !== ca).map((p) => p.record),
    });
  }
  let crlFields;
  try {
    crlFields = parseCrl(Buffer.from(payload.crl.der, 'base64'));
  } catch {
    throw refuse('bundle-invalid', 'the root CRL is not a CRL');
  }
  if (!crlFields.issuer.equals(rootFields.subject)) throw refuse('bundle-invalid', 'the root CRL is not the root\'s');
  // The offline audit chain continues where the last import left it.
  let prev = meta.lastOfflineAudit;
  for (const r of payload.audit) {
    const { hash, ...rest } = r;
    if (r.seq !== prev.seq + 1 || r.prevHash !== prev.hash || auditRecordHash({ ...rest, at: new Date(r.at) }) !== hash) {
      throw refuse('bundle-invalid', `offline audit record ${r.seq} does not follow record ${prev.seq} of the offline chain`, { seq: r.seq });
    }
    prev = { seq: r.seq, hash: r.hash };
  }

  const outcome: ImportOutcome = {
    sequence: envelope.sequence, answered: payload.inReplyTo?.sequence ?? null, certified: toInstall.map((i) => i.domain.id),
    activated: toInstall.flatMap((i) => i.tiers.map((t) => t.id)), revoked: [], crlNextUpdate: crlFields.nextUpdate ?? new Date(payload.crl.nextUpdate),
    ocspAnswers: payload.ocsp.length, auditRecords: payload.audit.length,
    ...(rollover ? { rolledOver: { root: rollover.root.id, fingerprint: rollover.root.fingerprint, recertified: rollover.recertified.map((c) => c.id) } } : {}),
  };
  await store.transaction(async (tx) => {
    await tx.offlineRoot.insertBundle({ direction: 'response', sequence: envelope.sequence, digest: bundleDigest(bytes), bytes: null, createdAt: now, answeredBy: null });
    if (payload.inReplyTo && !(await tx.offlineRoot.markAnswered(payload.inReplyTo.sequence, envelope.sequence))) {
      throw refuse('bundle-replayed', `request ${payload.inReplyTo.sequence} was answered already`);
    }
    for (const { domain, tiers } of toInstall) {
      await tx.cas.insert(domain);
      // A domain CA's next generation (an online rollover the root has now certified) replaces the current one.
      const replaced = generationOf(domain) > 1 ? (await tx.cas.list()).find((c) => c.id !== domain.id && lineageOf(c) === lineageOf(domain) && !c.successorId) : undefined;
      if (replaced) await tx.cas.setSuccessor(replaced.id, domain.id);
      for (const t of tiers) await tx.cas.insert(t);
      await tx.offlineRoot.deletePending(domain.id);
    }
    if (rollover) await installRollover(tx, root, rollover);
    for (const r of payload.revocations) {
      const ca = await tx.cas.get(r.ca);
      if (!ca || (ca.parentId !== meta.caId && ca.parentId !== statusCa) || ca.serial !== r.serial) continue;
      if (ca.status === 'revoked') continue;
      await tx.cas.updateStatus(ca.id, 'revoked', new Date(r.revokedAt), r.reason);
      outcome.revoked.push(ca.id);
    }
    const revoked = new Set(payload.revocations.map((r) => r.serial));
    await installRootStatus(tx, { caId: statusCa, crl: payload.crl, ocsp: payload.ocsp, revoked, now });
    for (const g of previousRoots) await installRootStatus(tx, { caId: g.ca, crl: g.crl, ocsp: g.ocsp, revoked, now });
    // The offline records join this chain: each one an online record that carries it whole, so the
    // online chain's hashes cover the offline ones and `audit verify` re-checks their links.
    for (const r of payload.audit) {
      await appendAudit(tx.audit, now, {
        principalId: null, role: null, source: 'offline-root', action: `offline.${r.action}`, target: r.target, outcome: r.outcome, requestId: null,
        detail: { offline: r },
      });
    }
    await appendAudit(tx.audit, now, {
      principalId: null, role: null, source: 'local', action: 'offline-root.import', target: `bundle:response:${envelope.sequence}`, outcome: 'success',
      requestId: null, detail: { sequence: envelope.sequence, answered: outcome.answered, certified: outcome.certified, revoked: outcome.revoked, crlNumber: payload.crl.number, ...(outcome.rolledOver ? { rolledOver: outcome.rolledOver } : {}) },
    });
    const ocspNextUpdate = payload.ocsp.map((o) => o.nextUpdate).sort()[0];
    await tx.meta.set(OFFLINE_ROOT_META, JSON.stringify({
      ...meta, caId: statusCa, lastOfflineAudit: prev, crlNextUpdate: payload.crl.nextUpdate, ...(ocspNextUpdate ? { ocspNextUpdate } : {}),
    } satisfies OfflineRootMeta));
  });
  return outcome;
}

/** The meta value of a new offline-root installation. */
export function newOfflineRootMeta(fingerprint: string): OfflineRootMeta {
  return { fingerprint, caId: ROOT_CA_ID, lastOfflineAudit: { seq: 0, hash: GENESIS_HASH } };
}
