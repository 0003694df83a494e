/**
 * The CAs this instance runs, loaded at start: each CA's record, its parsed certificate fields, its
 * chain up to the root and its signer (from the keystore). Lookups by id and by RFC 6960
 * issuerKeyHash are O(1) because the OCSP path uses them per request.
 *
 * A CA may have several key generations (docs/decisions/0006-ca-rollover.md): each is its own entry,
 * found by its id and its key hash; `current(lineage)` is the newest one, which issues. A retired
 * generation stays listed (its certificate and last CRL are still served) but leaves the key-hash
 * index, so OCSP no longer answers for it.
 */
import { createHash } from 'node:crypto';
import type { CaRecord } from '../storage/storage.ts';
import type { Signer } from '../../pki/signer.ts';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import { readCertificate, type CertificateFields } from '../../pki/certificate-reader.ts';
import type { KeyAlgorithm, RsaPadding } from '../../pki/algorithms.ts';
import { subjectPublicKeyBits } from '../../pki/key-pair.ts';
import { REVOCATION_REASONS } from '../../pki/revocation-reason.ts';
import { TiercaError } from '../errors.ts';
import type { OfflineRootWatch } from './offline-root-watch.ts';

/** How deep a chain may be (root → domain → tier is 3); a longer walk means a loop. */
const MAX_DEPTH = 8;

/**
 * What a CA's own status and every CA above it make of it. `active`: it and all its ancestors are
 * active. Otherwise `blockedBy` is the nearest CA (itself or an ancestor) that is revoked, retired or
 * not loaded, and `revokedAt`/`reason` are what every certificate under it answers (RFC 5280 §5.3.1):
 * cACompromise for a CA revoked as compromised (keyCompromise, cACompromise, unspecified or no
 * reason) or not loaded, the CA's own reason otherwise (superseded, cessationOfOperation, …), and
 * cessationOfOperation for a retired generation (everything it issued has expired).
 */
export type EffectiveStatus =
  | { readonly status: 'active' }
  | { readonly status: 'revoked' | 'retired' | 'missing'; readonly blockedBy: string; readonly revokedAt: Date | null; readonly reason: number };

const ACTIVE: EffectiveStatus = { status: 'active' };

/** The order in which a CA's status may move: it is never set back (see {@link CaDirectory.takeNewer}). */
const STATUS_ORDER: Record<CaRecord['status'], number> = { active: 0, retired: 1, revoked: 2 };

export interface LoadedCa {
  readonly record: CaRecord;
  readonly fields: CertificateFields;
  readonly keyAlgorithm: KeyAlgorithm;
  /** DER certificates from this CA up to and including the root. */
  readonly chain: readonly Buffer[];
  readonly signer: Signer;
  /** The CA's key is on the offline machine (docs/offline-root.md): its signer refuses, its CRL and OCSP answers come in bundles. */
  readonly offline?: boolean;
  /** For an offline root: when its CRL and pre-signed OCSP answers end, and the warning they call for. */
  readonly offlineWatch?: OfflineRootWatch;
}

export class CaDirectory {
  private readonly byId = new Map<string, LoadedCa>();
  private readonly byKeyHash = new Map<string, LoadedCa>();
  private readonly byKeyHashSha256 = new Map<string, LoadedCa>();
  /** Generations by lineage, oldest first (issuance looks the current one up per certificate). */
  private readonly byLineage = new Map<string, LoadedCa[]>();
  /** Tier CA id → the domain CA it waits for, under an offline root that has not certified it yet. */
  private readonly awaiting = new Map<string, string>();
  /** Domain CAs whose revocation was decided online and waits for the offline root (they issue nothing meanwhile). */
  private readonly revocationAwaited = new Set<string>();
  /** effectiveStatus by CA id; emptied whenever a CA is added or changes (the OCSP path asks per request). */
  private readonly effective = new Map<string, EffectiveStatus>();

  /** Builds the directory from CA records whose keys are already loaded in `keystore`. */
  /**
   * Builds the directory from CA records whose keys are already loaded in `keystore`; `paddingOf`
   * says how each RSA CA signs (server/ca/ca-signature.ts; default PKCS#1 v1.5).
   */
  static build(
    records: readonly CaRecord[], keyAlgorithms: ReadonlyMap<string, KeyAlgorithm>, keystore: KeyStore,
    paddingOf: (record: CaRecord) => RsaPadding = () => 'pkcs1',
    offline: { keyIds: ReadonlySet<string>; signer: (record: CaRecord) => Signer } = { keyIds: new Set(), signer: () => { throw new Error('no offline CA'); } },
  ): CaDirectory {
    const dir = new CaDirectory();
    const recordsById = new Map(records.map((r) => [r.id, r]));
    for (const record of records) {
      const chain: Buffer[] = [];
      for (let cur: CaRecord | undefined = record; cur; cur = cur.parentId ? recordsById.get(cur.parentId) : undefined) {
        chain.push(cur.certificate);
        if (chain.length > 8) throw new Error(`CA ${record.id}: parent chain loops`);
      }
      const keyAlgorithm = keyAlgorithms.get(record.keyId);
      if (!keyAlgorithm) throw new Error(`CA ${record.id}: key ${record.keyId} is not in the keystore table`);
      const isOffline = offline.keyIds.has(record.keyId);
      dir.add({
        record, fields: readCertificate(record.certificate), keyAlgorithm, chain,
        signer: isOffline ? offline.signer(record) : keystore.signer(record.keyId, { rsaPadding: paddingOf(record) }),
        ...(isOffline ? { offline: true } : {}),
      });
    }
    return dir;
  }

  /** Adds a CA, or replaces the entry of the same id (a status or successor change). */
  add(ca: LoadedCa): void {
    this.byId.set(ca.record.id, ca);
    this.effective.clear();
    const lineage = lineageOf(ca.record);
    const generations = (this.byLineage.get(lineage) ?? []).filter((g) => g.record.id !== ca.record.id);
    generations.push(ca);
    generations.sort((a, b) => generationOf(a.record) - generationOf(b.record));
    this.byLineage.set(lineage, generations);
    const sha256 = createHash('sha256').update(subjectPublicKeyBits(ca.fields.publicKeyInfo)).digest('hex');
    if (ca.record.status === 'retired') {
      this.byKeyHash.delete(ca.record.keyHashSha1);
      this.byKeyHashSha256.delete(sha256);
    } else {
      this.byKeyHash.set(ca.record.keyHashSha1, ca);
      this.byKeyHashSha256.set(sha256, ca);
    }
  }

  /**
   * Takes a CA record read from the database by a sync (another instance's change) into its entry,
   * only when the record is ahead of the entry: a status moves active → retired → revoked and never
   * back, a successor once set stays. A read that began before this instance's own change committed
   * is behind it, and must not undo it (a revoked CA briefly answering active again). Returns whether
   * the entry changed.
   */
  takeNewer(record: CaRecord): boolean {
    const loaded = this.byId.get(record.id);
    if (!loaded) return false;
    const was = loaded.record;
    const statusAhead = STATUS_ORDER[record.status] > STATUS_ORDER[was.status];
    const successorAhead = !was.successorId && !!record.successorId;
    if (!statusAhead && !successorAhead) return false;
    this.add({
      ...loaded,
      record: {
        ...record,
        ...(statusAhead ? {} : { status: was.status, revokedAt: was.revokedAt, revocationReason: was.revocationReason, retiredAt: was.retiredAt }),
        successorId: was.successorId ?? record.successorId,
      },
    });
    return true;
  }

  /**
   * Takes a CA record whose certificate changed but not its key (a domain CA re-certified by a new
   * root generation) into its entry, and rebuilds the chains of every CA below it. Returns whether
   * the entry changed.
   */
  takeRecertified(record: CaRecord): boolean {
    const loaded = this.byId.get(record.id);
    if (!loaded || loaded.fields.der.equals(record.certificate) || loaded.record.keyHashSha1 !== record.keyHashSha1) return false;
    const rechain = (ca: LoadedCa, parent: LoadedCa | undefined) => {
      const entry = { ...ca, chain: [ca.record.certificate, ...(parent?.chain ?? [])] };
      this.add(entry);
      for (const child of this.list().filter((c) => c.record.parentId === ca.record.id)) rechain(child, entry);
    };
    rechain({ ...loaded, record: { ...loaded.record, ...record, status: loaded.record.status }, fields: readCertificate(record.certificate) }, record.parentId ? this.byId.get(record.parentId) : undefined);
    return true;
  }

  get(id: string): LoadedCa | undefined {
    return this.byId.get(id);
  }

  /**
   * Refuses a rollover whose new certificate the offline root would have to sign here: of the root
   * itself (its new key belongs on the offline machine) or, when `issuerToo`, of a CA it certifies
   * (a domain CA; the online API asks the root for it in a request bundle instead). Returns otherwise.
   */
  refuseOfflineRollover(ca: LoadedCa, issuerToo: boolean): void {
    const parent = ca.record.parentId ? this.byId.get(ca.record.parentId) : undefined;
    const root = ca.offline ? ca : issuerToo && parent?.offline ? parent : undefined;
    if (!root) return;
    throw new TiercaError('ca-unavailable', `CA ${ca.record.id} cannot be rolled over online: ${root === ca ? 'it is' : `its issuer ${root.record.id} is`} the offline root, whose key is not on this machine`, {
      detail: { ca: ca.record.id, blockedBy: root.record.id, caStatus: 'offline' },
    });
  }

  /** Notes CAs that wait for the offline root to certify their domain CA (`caId` → that domain CA), for a clear refusal. */
  setAwaitingRoot(waiting: ReadonlyMap<string, string>): void {
    this.awaiting.clear();
    for (const [id, by] of waiting) this.awaiting.set(id, by);
  }

  /**
   * Notes the CAs whose revocation the offline root is asked for (docs/decisions/0032): nothing is
   * issued under them from now on, while their status (OCSP, CRLs) changes only when the root's
   * revocation is imported.
   */
  setRevocationAwaited(ids: Iterable<string>): void {
    this.revocationAwaited.clear();
    for (const id of ids) this.revocationAwaited.add(id);
  }

  /** The CA `caId` or the nearest CA above it whose revocation waits for the offline root, if any. */
  revocationAwaitedFor(caId: string): string | undefined {
    let id: string | null = caId;
    for (let depth = 0; id && depth < MAX_DEPTH; depth++) {
      if (this.revocationAwaited.has(id)) return id;
      id = this.byId.get(id)?.record.parentId ?? null;
    }
    return undefined;
  }

  /** The CA whose public key hashes (SHA-1 of the key bits) to `keyHashSha1` hex. */
  findByKeyHash(keyHashSha1: string): LoadedCa | undefined {
    return this.byKeyHash.get(keyHashSha1);
  }

  /** The CA whose public key hashes (SHA-256 of the key bits) to `keyHashSha256` hex. */
  findByKeyHashSha256(keyHashSha256: string): LoadedCa | undefined {
    return this.byKeyHashSha256.get(keyHashSha256);
  }

  list(): LoadedCa[] {
    return [...this.byId.values()];
  }

  /** Every generation of the CA named `nameOrId` (a lineage name or any generation's id), oldest first. */
  generations(nameOrId: string): LoadedCa[] {
    const known = this.byId.get(nameOrId);
    return [...(this.byLineage.get(known ? lineageOf(known.record) : nameOrId) ?? [])];
  }

  /** The current generation of the CA named `nameOrId`: the one no rollover has replaced. */
  current(nameOrId: string): LoadedCa | undefined {
    const known = this.byId.get(nameOrId);
    const all = this.byLineage.get(known ? lineageOf(known.record) : nameOrId);
    if (!all) return undefined;
    return all.find((ca) => !ca.record.successorId) ?? all[all.length - 1];
  }

  /** The issuing (tier) CA of a domain and tier: its current generation, whatever its status. */
  issuingCa(domain: string, tier: string): LoadedCa | undefined {
    return this.current(tierCaId(domain, tier));
  }

  /**
   * THE answer to "may this CA's certificates be trusted?": the CA `caId` with every CA above it
   * (see {@link EffectiveStatus}). Issuance, renewal, OCSP, CRLs and `/status` all ask here.
   */
  effectiveStatus(caId: string): EffectiveStatus {
    const known = this.effective.get(caId);
    if (known) return known;
    let result: EffectiveStatus = ACTIVE;
    let id: string | null = caId;
    for (let depth = 0; id; depth++) {
      const ca: LoadedCa | undefined = depth < MAX_DEPTH ? this.byId.get(id) : undefined;
      if (!ca) {
        result = { status: 'missing', blockedBy: id, revokedAt: null, reason: REVOCATION_REASONS.cACompromise };
        break;
      }
      const r: CaRecord = ca.record;
      if (r.status === 'revoked') {
        result = { status: 'revoked', blockedBy: r.id, revokedAt: r.revokedAt, reason: inheritedReason(r.revocationReason) };
        break;
      }
      if (r.status === 'retired') {
        result = { status: 'retired', blockedBy: r.id, revokedAt: r.retiredAt ?? null, reason: REVOCATION_REASONS.cessationOfOperation };
        break;
      }
      id = r.parentId;
    }
    this.effective.set(caId, result);
    return result;
  }

  /**
   * The CA that issues for `domain` and `tier` now: the current generation of the tier CA, when it
   * and every CA above it are active. Otherwise throws `ca-unavailable`, naming the CA that stops it.
   */
  usableIssuer(domain: string, tier: string): LoadedCa {
    const id = tierCaId(domain, tier);
    const ca = this.current(id);
    const waitsFor = ca ? undefined : this.awaiting.get(id);
    if (waitsFor) {
      throw new TiercaError('ca-unavailable', `the issuing CA ${id} cannot issue yet: its domain CA ${waitsFor} awaits its certificate from the offline root (tierca root sign on the offline machine, then tierca root import here)`, {
        detail: { ca: id, blockedBy: waitsFor, caStatus: 'awaiting-root' },
      });
    }
    if (!ca) throw new TiercaError('ca-unavailable', `there is no issuing CA for ${domain} ${tier}`, { detail: { ca: id } });
    const status = this.effectiveStatus(ca.record.id);
    if (status.status !== 'active') {
      const whose = status.blockedBy === ca.record.id ? 'it' : `its CA ${status.blockedBy}`;
      throw new TiercaError('ca-unavailable', `the issuing CA ${ca.record.id} of ${domain} ${tier} cannot issue: ${whose} is ${status.status}`, {
        detail: { ca: ca.record.id, blockedBy: status.blockedBy, caStatus: status.status },
      });
    }
    const revoking = this.revocationAwaitedFor(ca.record.id);
    if (revoking) {
      throw new TiercaError('ca-unavailable', `the issuing CA ${ca.record.id} of ${domain} ${tier} cannot issue: the revocation of ${revoking === ca.record.id ? 'it' : `its CA ${revoking}`} was decided and awaits the offline root (tierca root request, root sign, root import)`, {
        detail: { ca: ca.record.id, blockedBy: revoking, caStatus: 'revocation-awaiting-root' },
      });
    }
    return ca;
  }
}

/** The reason a certificate inherits from its revoked CA (see {@link EffectiveStatus}). */
function inheritedReason(caReason: number | null): number {
  const { unspecified, keyCompromise, cACompromise } = REVOCATION_REASONS;
  return caReason == null || caReason === unspecified || caReason === keyCompromise ? cACompromise : caReason;
}

export const tierCaId = (domain: string, tier: string): string => `${domain}-${tier}`;
/** The stable name of a CA across its key generations (the first generation's id). */
export const lineageOf = (record: CaRecord): string => record.lineage ?? record.id;
export const generationOf = (record: CaRecord): number => record.generation ?? 1;
export const ROOT_CA_ID = 'root';
