/**
 * Signed checkpoints over the hash-chained audit log, and the verification of both.
 *
 * The chain alone (audit-log.ts) catches a record changed, removed or moved — unless whoever changed
 * it also recomputed every hash after it, which needs no secret. A checkpoint closes that gap: the
 * hash of record `seq`, signed with the audit key, which lives in the keystore sealed like a CA key
 * (purpose 'audit'), so a database writer cannot make one. Checkpoints are made
 * - periodically: at every multiple of {@link AUDIT_CHECKPOINT_EVERY} records, by a timer on every
 *   instance (a second instance signing the same seq loses on the primary key and moves on);
 * - on demand: an auditor asks (`POST /api/v1/audit/checkpoints`).
 * What `verify` proves and what it cannot is in docs/decisions/0005-audit-log.md.
 */
import { createPublicKey, randomBytes, verify as verifySignature, type KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { type KeyStore, custodyOf } from '../../pki/keystore/keystore.ts';
import { digestFor, isKeyAlgorithm, type KeyAlgorithm } from '../../pki/algorithms.ts';
import { UniqueViolationError, type AuditCheckpointRecord, type AuditRecord, type KeyRecord, type Store } from '../storage/storage.ts';
import type { Clock } from '../clock.ts';
import { ChainVerifier, type ChainProblem } from './audit-log.ts';

/** Records between two periodic checkpoints. */
export const AUDIT_CHECKPOINT_EVERY = 100;
/** The audit key's algorithm: ECDSA P-256 with SHA-256, which every verifier (and `openssl dgst`) knows. */
export const AUDIT_KEY_ALGORITHM: KeyAlgorithm = 'P-256';
/** How often each instance looks for periodic checkpoints to sign. */
export const AUDIT_CHECKPOINT_INTERVAL_MS = 2_000;
const PAGE = 2_000;

/**
 * The bytes a checkpoint signature covers: a versioned, line-oriented text whose every field has a
 * fixed alphabet (digits, hex, ISO time, a word, a key id), so no two checkpoints share one encoding.
 * `openssl dgst -sha256 -verify audit-key.pem -signature sig payload` checks it.
 */
export function checkpointPayload(c: Pick<AuditCheckpointRecord, 'seq' | 'hash' | 'at' | 'kind' | 'keyId'>): Buffer {
  return Buffer.from(
    `tierca-audit-checkpoint-v1\nseq=${c.seq}\nhash=${c.hash}\nat=${c.at.toISOString()}\nkind=${c.kind}\nkey=${c.keyId}\n`,
    'utf8',
  );
}

/**
 * Makes a new audit key in `keystore` (usable at once) and returns the key row to store: sealed,
 * never plaintext. The ceremony calls it; {@link AuditCheckpoints} calls it for a database made
 * before audit keys existed.
 *
 * @param p.random id source; default crypto.randomBytes
 */
export async function generateAuditKey(p: { keystore: KeyStore; now: Date; random?: (n: number) => Buffer }): Promise<KeyRecord> {
  const id = `audit-${(p.random ?? randomBytes)(8).toString('hex')}`;
  const generated = await p.keystore.generate(id, AUDIT_KEY_ALGORITHM);
  return {
    id,
    algorithm: AUDIT_KEY_ALGORITHM,
    custody: custodyOf(generated),
    sealed: generated.sealed,
    pkcs11Label: generated.pkcs11Label,
    publicKeyInfo: generated.publicKeyInfo,
    purpose: 'audit',
    createdAt: p.now,
  };
}

/** Why verification stopped. Chain problems name a record; the others name a checkpoint's seq. */
export type AuditProblem =
  | ChainProblem
  /** The checkpoint's signature does not verify, or its key is not an audit key of this installation. */
  | 'checkpoint-signature'
  /** The record at the checkpoint's seq is not the one that was signed: a record up to it was changed and the chain recomputed. */
  | 'checkpoint-mismatch'
  /** No checkpoint at a multiple of the interval below the newest one: it was deleted. */
  | 'checkpoint-missing'
  /** The log ends before a checkpoint (or the anchor): records were cut from the end. */
  | 'truncated'
  /** The record at the anchor's seq does not have the anchor's hash. */
  | 'anchor-mismatch'
  /** An offline root's record carried into this log does not match its own hash or follow the one before it (docs/offline-root.md). */
  | 'offline-chain';

export interface AuditVerification {
  ok: boolean;
  /** Records whose link and hash were recomputed and matched. */
  checked: number;
  /** Checkpoints whose signature and hash matched. */
  checkpoints: number;
  /** The last record's seq (0 for an empty log). */
  lastSeq: number;
  /** The last record's hash when the whole log matched: keep it outside, and pass it back as an anchor. */
  lastHash?: string;
  /** Records after the newest matching checkpoint (or anchor): only the chain covers them yet. */
  unanchored: number;
  /** The first record (or checkpoint) that does not match. */
  firstBad?: { seq: number; problem: AuditProblem; detail: string };
}

/** A hash an auditor kept outside the database (from an earlier verify or checkpoint list). */
export interface AuditAnchor {
  seq: number;
  hash: string;
}

export interface AuditCheckpointsDeps {
  store: Store;
  keystore: KeyStore;
  clock: Clock;
  log?: Logger;
  /** Records between periodic checkpoints; default {@link AUDIT_CHECKPOINT_EVERY}. */
  every?: number;
  random?: (n: number) => Buffer;
}

/** Makes and checks audit checkpoints for one instance. */
export class AuditCheckpoints {
  readonly every: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private signingKey: KeyRecord | undefined;

  constructor(private readonly deps: AuditCheckpointsDeps) {
    this.every = deps.every ?? AUDIT_CHECKPOINT_EVERY;
    if (!Number.isSafeInteger(this.every) || this.every < 1) throw new Error('the audit checkpoint interval must be a positive integer');
  }

  /** Starts signing periodic checkpoints every `intervalMs` (default {@link AUDIT_CHECKPOINT_INTERVAL_MS}). */
  start(intervalMs = AUDIT_CHECKPOINT_INTERVAL_MS): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.catchUp()
        .catch((err) => this.deps.log?.warn({ err }, 'audit checkpoint failed; retrying'))
        .finally(() => (this.running = undefined));
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /**
   * Signs a periodic checkpoint at every multiple of {@link every} after the newest one, up to the
   * last record. Never fills a gap below the newest: a missing checkpoint there was deleted, and
   * verify must see that. Returns the checkpoints this call made.
   */
  async catchUp(): Promise<AuditCheckpointRecord[]> {
    const { store } = this.deps;
    const last = await store.audit.last();
    if (!last) return [];
    const highest = await store.auditCheckpoints.last('periodic');
    const start = (highest?.seq ?? 0) + this.every;
    if (start > last.seq) return [];
    const taken = new Set((await store.auditCheckpoints.list({ fromSeq: start })).map((c) => c.seq));
    const made: AuditCheckpointRecord[] = [];
    for (let seq = start; seq <= last.seq; seq += this.every) {
      if (taken.has(seq)) continue;
      const record = (await store.audit.list({ fromSeq: seq, limit: 1 }))[0];
      if (!record || record.seq !== seq) continue;
      const checkpoint = await this.sign(record, 'periodic');
      if (checkpoint) made.push(checkpoint);
    }
    return made;
  }

  /** Signs a checkpoint at `record` now (an auditor asked). Returns the existing one when `record` already has one. */
  async checkpoint(record: AuditRecord): Promise<AuditCheckpointRecord> {
    const made = await this.sign(record, 'requested');
    if (made) return made;
    const existing = (await this.deps.store.auditCheckpoints.list({ fromSeq: record.seq, limit: 1 }))[0];
    if (!existing) throw new Error(`audit checkpoint at ${record.seq} vanished`);
    return existing;
  }

  /** Every checkpoint, oldest first. */
  list(fromSeq?: number): Promise<AuditCheckpointRecord[]> {
    return this.deps.store.auditCheckpoints.list({ fromSeq });
  }

  /** The audit keys' public halves (DER SubjectPublicKeyInfo), to check checkpoints elsewhere. */
  async publicKeys(): Promise<{ id: string; algorithm: string; publicKeyInfo: Buffer; createdAt: Date }[]> {
    return (await this.deps.store.keys.list('audit')).map((k) => ({ id: k.id, algorithm: k.algorithm, publicKeyInfo: k.publicKeyInfo, createdAt: k.createdAt }));
  }

  /**
   * Recomputes the whole chain, checks every checkpoint's signature and hash, that no periodic
   * checkpoint below the newest is missing, and, when given, that the record at `anchor.seq` still
   * has `anchor.hash`. Stops at the first problem in seq order and names it.
   */
  async verify(options: { anchor?: AuditAnchor } = {}): Promise<AuditVerification> {
    const { store } = this.deps;
    const keys = new Map<string, { key: KeyObject; algorithm: KeyAlgorithm }>();
    for (const k of await store.keys.list('audit')) {
      if (isKeyAlgorithm(k.algorithm)) keys.set(k.id, { key: createPublicKey({ key: k.publicKeyInfo, format: 'der', type: 'spki' }), algorithm: k.algorithm });
    }
    const checkpoints = await store.auditCheckpoints.list({});
    const bySeq = new Map(checkpoints.map((c) => [c.seq, c]));
    // Periodic positions below the newest checkpoint at such a position must all be taken.
    const highestPeriodic = checkpoints.reduce((m, c) => (c.seq % this.every === 0 && c.seq > m ? c.seq : m), 0);
    const anchor = options.anchor;

    const chain = new ChainVerifier();
    // The offline root's records join this log inside online records (source offline-root); their own chain is checked too.
    const offlineChain = new ChainVerifier();
    let matched = 0;
    let lastGood = 0; // seq of the newest checkpoint or anchor that matched
    let lastSeq = 0;
    const fail = (seq: number, problem: AuditProblem, detail: string): AuditVerification => ({
      ok: false, checked: chain.result().checked, checkpoints: matched, lastSeq, unanchored: Math.max(0, lastSeq - lastGood),
      firstBad: { seq, problem, detail },
    });

    for (let fromSeq = 1; ; ) {
      const page = await store.audit.list({ fromSeq, limit: PAGE });
      for (const record of page) {
        lastSeq = record.seq;
        if (!chain.push(record)) {
          const bad = chain.result().firstBad!;
          return fail(bad.seq, bad.problem, chainDetail(bad.seq, bad.problem));
        }
        const carried = record.source === 'offline-root' ? (record.detail as { offline?: AuditRecord & { at: string } }).offline : undefined;
        if (carried && !offlineChain.push({ ...carried, at: new Date(carried.at) })) {
          return fail(record.seq, 'offline-chain', `record ${record.seq} carries offline root record ${carried.seq}, which does not match its hash or does not follow the offline record before it`);
        }
        const cp = bySeq.get(record.seq);
        if (cp) {
          const key = keys.get(cp.keyId);
          if (!key || !verifySignature(digestFor(key.algorithm), checkpointPayload(cp), { key: key.key, dsaEncoding: 'der' }, cp.signature)) {
            return fail(cp.seq, 'checkpoint-signature', key
              ? `the signature of checkpoint ${cp.seq} does not verify with audit key ${cp.keyId}`
              : `checkpoint ${cp.seq} names ${cp.keyId}, which is not an audit key of this installation`);
          }
          if (cp.hash !== record.hash) {
            return fail(cp.seq, 'checkpoint-mismatch',
              `record ${cp.seq} is not the one signed at ${cp.at.toISOString()}: a record from ${lastGood + 1} to ${cp.seq} was changed and the chain after it recomputed`);
          }
          matched++;
          lastGood = cp.seq;
        } else if (record.seq % this.every === 0 && record.seq < highestPeriodic) {
          return fail(record.seq, 'checkpoint-missing', `the checkpoint at record ${record.seq} was deleted`);
        }
        if (anchor && anchor.seq === record.seq) {
          if (anchor.hash !== record.hash) {
            return fail(record.seq, 'anchor-mismatch', `record ${record.seq} no longer has the hash ${anchor.hash} kept outside the database`);
          }
          lastGood = Math.max(lastGood, record.seq);
        }
      }
      if (page.length < PAGE) break;
      fromSeq = page[page.length - 1].seq + 1;
    }
    const beyond = Math.max(checkpoints.at(-1)?.seq ?? 0, anchor?.seq ?? 0);
    if (beyond > lastSeq) {
      return fail(lastSeq + 1, 'truncated', `the log ends at record ${lastSeq}, but record ${beyond} was signed or kept: records from ${lastSeq + 1} were deleted`);
    }
    return { ok: true, checked: chain.result().checked, checkpoints: matched, lastSeq, lastHash: chain.lastHash, unanchored: lastSeq - lastGood };
  }

  /** Signs a checkpoint at `record`; undefined when one exists there already. */
  private async sign(record: AuditRecord, kind: AuditCheckpointRecord['kind']): Promise<AuditCheckpointRecord | undefined> {
    const key = await this.key();
    const unsigned = { seq: record.seq, hash: record.hash, at: this.deps.clock.now(), kind, keyId: key.id };
    const signature = await this.deps.keystore.signer(key.id).sign(checkpointPayload(unsigned));
    const checkpoint: AuditCheckpointRecord = { ...unsigned, signature };
    try {
      await this.deps.store.auditCheckpoints.insert(checkpoint);
      return checkpoint;
    } catch (err) {
      if (err instanceof UniqueViolationError) return undefined;
      throw err;
    }
  }

  /** The newest audit key, loaded into the keystore; made (and stored) when the installation has none. */
  private async key(): Promise<KeyRecord> {
    if (this.signingKey) return this.signingKey;
    const { store, keystore, clock } = this.deps;
    const stored = (await store.keys.list('audit'))
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1))
      .at(-1);
    let key: KeyRecord;
    if (stored) {
      if (!isKeyAlgorithm(stored.algorithm)) throw new Error(`audit key ${stored.id} has unknown algorithm ${stored.algorithm}`);
      if (!keystore.has(stored.id)) {
        await keystore.load({ id: stored.id, algorithm: stored.algorithm, sealed: stored.sealed, pkcs11Label: stored.pkcs11Label });
      }
      key = stored;
    } else {
      // A database made before audit keys were part of the ceremony.
      key = await generateAuditKey({ keystore, now: clock.now(), random: this.deps.random });
      await store.keys.insert(key);
      this.deps.log?.info({ key: key.id }, 'made the audit checkpoint key');
    }
    this.signingKey = key;
    return key;
  }
}

function chainDetail(seq: number, problem: ChainProblem): string {
  switch (problem) {
    case 'hash-mismatch':
      return `record ${seq} was changed: its hash does not match its fields`;
    case 'broken-link':
      return `record ${seq} does not follow record ${seq - 1}: a record was removed, replaced or moved`;
    case 'sequence-gap':
      return `record ${seq} is missing: deleted or renumbered`;
  }
}
