/**
 * The storage interfaces of tierca. `server/ra` and `server/ca` reach the database only through
 * these; `*.repository.knex.ts` implement them over knex for SQLite and PostgreSQL.
 *
 * Times are `Date` here and ISO-8601 UTC text in the database. Serials are lowercase hex.
 */
import type { DomainCaRequest } from '../../pki/offline-ceremony.ts';

export type CaLayer = 'root' | 'domain' | 'tier';
export type CaStatus = 'active' | 'revoked' | 'retired';
export type SubjectKind = 'organ' | 'device' | 'user';
export type CertificateProfile = 'organ' | 'organ-enc' | 'device' | 'device-enc' | 'user-sign' | 'user-enc' | 'ocsp';
export type CertificateStatus = 'good' | 'revoked' | 'hold';
export type Role = 'sysadmin' | 'officer' | 'auditor' | 'device';
/** `offline`: only the public key is here; the private key is on the offline root machine (docs/decisions/0026-offline-root.md). */
export type KeyCustody = 'software' | 'pkcs11' | 'offline';
/** `offline-root`: the public half of a root key kept on the offline machine; never loaded into a keystore. */
export type KeyPurpose = 'ca' | 'ocsp' | 'escrow' | 'audit' | 'offline-root';

export interface DomainRecord {
  slug: string;
  name: string;
  locality: string;
  dnsSuffix: string;
  emailSuffix: string;
  parent: string | null;
}

export interface OrganRecord {
  domain: string;
  slug: string;
  name: string;
}

export interface KeyRecord {
  id: string;
  algorithm: string;
  custody: KeyCustody;
  /** Sealed PKCS#8 (software custody); never plaintext. */
  sealed: Buffer | null;
  pkcs11Label: string | null;
  publicKeyInfo: Buffer;
  purpose: KeyPurpose;
  createdAt: Date;
}

export interface CaRecord {
  id: string;
  layer: CaLayer;
  domain: string | null;
  tier: string | null;
  parentId: string | null;
  name: string;
  keyId: string;
  certificate: Buffer;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint: string;
  keyHashSha1: string;
  nameHashSha1: string;
  status: CaStatus;
  revokedAt: Date | null;
  revocationReason: number | null;
  createdAt: Date;
  /**
   * The stable name of the CA across key generations: the first generation's id (`yuhu-t2`). Each key
   * rollover adds a row (`yuhu-t2-g2`, …) with the same lineage (docs/decisions/0006-ca-rollover.md).
   * Default: `id`.
   */
  lineage?: string;
  /** 1 for the CA made by the ceremony, +1 per rollover. Default 1. */
  generation?: number;
  /** The generation that replaced this one (null or absent: this is the current generation). */
  successorId?: string | null;
  /** When a superseded generation stopped signing (status 'retired'). */
  retiredAt?: Date | null;
}

export interface SubjectRecord {
  id: string;
  kind: SubjectKind;
  domain: string;
  organ: string;
  tier: string;
  name: string;
  dnsNames: string[];
  ipAddresses: string[];
  emails: string[];
  status: 'active' | 'revoked';
  createdBy: string | null;
  createdAt: Date;
}

export interface SubjectFilter {
  domain?: string;
  tier?: string;
  kind?: SubjectKind;
  limit?: number;
}

export interface CertificateRecord {
  issuerId: string;
  serial: string;
  subjectId: string | null;
  profile: CertificateProfile;
  tier: string | null;
  domain: string | null;
  subjectDn: string;
  notBefore: Date;
  notAfter: Date;
  status: CertificateStatus;
  revokedAt: Date | null;
  revocationReason: number | null;
  invalidityDate: Date | null;
  fingerprint: string;
  der: Buffer;
  keyAlgorithm: string;
  requestId: string | null;
  createdAt: Date;
  /** SM2 CSRs: the signer identity the proof of possession verified with (migration 0006); else null/absent. */
  popIdentity?: 'default' | 'empty' | null;
}

export interface CertificateFilter {
  issuerId?: string;
  subjectId?: string;
  domain?: string;
  tier?: string;
  profile?: CertificateProfile;
  status?: CertificateStatus;
  /** Only certificates whose notAfter is at or before this time. */
  notAfterBefore?: Date;
  /** Only certificates whose notAfter is after this time (not yet expired). */
  notAfterAfter?: Date;
  limit?: number;
  offset?: number;
}

/** A revoked or held certificate as a CRL lists it. */
export type RevokedEntryRecord = Pick<CertificateRecord, 'serial' | 'status' | 'revokedAt' | 'revocationReason' | 'invalidityDate'>;

export interface StatusChange {
  status: CertificateStatus;
  revokedAt: Date | null;
  revocationReason: number | null;
  invalidityDate: Date | null;
}

export interface RequestRecord {
  id: string;
  action: string;
  subjectId: string | null;
  domain: string | null;
  tier: string | null;
  payload: Record<string, unknown>;
  requestedBy: string;
  approvals: string[];
  approvalsRequired: number;
  status: 'pending' | 'done' | 'rejected' | 'expired' | 'failed';
  result: Record<string, unknown> | null;
  createdAt: Date;
  expiresAt: Date;
}

export interface PrincipalRecord {
  id: string;
  name: string;
  role: Role;
  domains: string[];
  disabled: boolean;
  createdAt: Date;
  /** The principal that asked for this one (null: made at the ceremony, or before migration 0005). */
  createdBy?: string | null;
  /** The dual-control request that made it, if any. */
  createdByRequest?: string | null;
}

export interface TokenRecord {
  id: string;
  principalId: string;
  /** SHA-256 of the token, hex. The token itself is never stored. */
  tokenHash: string;
  createdAt: Date;
}

export interface AuditRecord {
  seq: number;
  at: Date;
  principalId: string | null;
  role: string | null;
  source: string | null;
  action: string;
  target: string | null;
  outcome: 'success' | 'denied' | 'failure';
  requestId: string | null;
  detail: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/**
 * A signed audit checkpoint: the hash of record `seq` as it was when the audit key signed it
 * (server/audit/audit-checkpoints.ts). `periodic` ones fall on every multiple of the checkpoint
 * interval; `requested` ones were asked for by an auditor.
 */
export interface AuditCheckpointRecord {
  seq: number;
  hash: string;
  at: Date;
  kind: 'periodic' | 'requested';
  /** The key (purpose 'audit') that signed. */
  keyId: string;
  signature: Buffer;
}

export interface OcspResponseRecord {
  issuerId: string;
  serial: string;
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
}

export interface ResponderRecord {
  id: string;
  caId: string;
  keyId: string;
  certificate: Buffer;
  notBefore: Date;
  notAfter: Date;
  createdAt: Date;
}

export interface CrlRecord {
  caId: string;
  number: bigint;
  delta: boolean;
  baseNumber: bigint | null;
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
}

export interface RevocationEvent {
  seq: number;
  issuerId: string;
  serial: string;
  status: CertificateStatus;
  at: Date;
}

/** Which certificate a renewal replaced with which, and when the old one is revoked as superseded. */
export interface RenewalRecord {
  oldIssuerId: string;
  oldSerial: string;
  newIssuerId: string;
  newSerial: string;
  requestId: string;
  /** 'renew' keeps the key; 'rekey' certifies a new one (STYLE.md: words mean one thing). */
  mode: 'renew' | 'rekey';
  requestedBy: string | null;
  /** When the grace period of the tier ends and the old certificate is revoked (superseded). */
  supersedeAt: Date;
  /** When that revocation was done; null while the old certificate is still in its grace period. */
  supersededAt: Date | null;
  createdAt: Date;
}

/** An RFC 4210 §4.4 link certificate made by a CA key rollover. */
export interface CaLinkRecord {
  id: string;
  lineage: string;
  oldCaId: string;
  newCaId: string;
  /** 'old-with-new': the old public key signed by the new key; 'new-with-old': the new key signed by the old. */
  kind: 'old-with-new' | 'new-with-old';
  certificate: Buffer;
  notBefore: Date;
  notAfter: Date;
  createdAt: Date;
}

/** A completed renewal or rollover, by the caller's request id (idempotency). */
export interface RotationRequestRecord {
  id: string;
  /** 'issue': a first issuance keyed by `issue:<principal>:<the caller's requestId>` (POST /api/v1/certificates). */
  kind: 'renew' | 'rollover' | 'issue';
  target: string;
  principalId: string | null;
  result: Record<string, unknown>;
  createdAt: Date;
}

/** Certificates a rotation plan considers (see {@link RenewalRepository.listRenewable}). */
export interface RenewableFilter {
  domain?: string;
  tier?: string;
  /** Only certificates not yet expired at this time. */
  notAfterAfter: Date;
  /** Only certificates whose notAfter is at or before this time. */
  notAfterBefore: Date;
  limit: number;
  offset?: number;
}

/** Thrown by insert methods when a unique key (id, (issuer, serial), token hash, …) already exists. */
export class UniqueViolationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UniqueViolationError';
  }
}

export interface MetaRepository {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
}

export interface DomainRepository {
  insert(domain: DomainRecord): Promise<void>;
  get(slug: string): Promise<DomainRecord | undefined>;
  list(): Promise<DomainRecord[]>;
}

export interface OrganRepository {
  insert(organ: OrganRecord): Promise<void>;
  get(domain: string, slug: string): Promise<OrganRecord | undefined>;
  list(domain?: string): Promise<OrganRecord[]>;
}

export interface KeyRepository {
  insert(key: KeyRecord): Promise<void>;
  get(id: string): Promise<KeyRecord | undefined>;
  list(purpose?: KeyPurpose): Promise<KeyRecord[]>;
}

export interface CaRepository {
  insert(ca: CaRecord): Promise<void>;
  get(id: string): Promise<CaRecord | undefined>;
  /** Finds a CA by the SHA-1 hash of its public key (RFC 6960 issuerKeyHash), hex. */
  findByKeyHash(keyHashSha1: string): Promise<CaRecord | undefined>;
  list(): Promise<CaRecord[]>;
  updateStatus(id: string, status: CaStatus, revokedAt: Date | null, reason: number | null): Promise<void>;
  /**
   * Marks `id` as replaced by `successorId`; only when it has no successor yet. Returns false (and
   * changes nothing) when another rollover got there first.
   */
  setSuccessor(id: string, successorId: string): Promise<boolean>;
  /** Sets status 'retired' and retiredAt. */
  retire(id: string, at: Date): Promise<void>;
  /**
   * Replaces a CA's certificate by one for the same key and subject from another issuer (a domain CA
   * re-certified by a new root generation, docs/decisions/0031-offline-root-rollover.md).
   */
  recertify(id: string, c: Pick<CaRecord, 'certificate' | 'serial' | 'notBefore' | 'notAfter' | 'fingerprint' | 'parentId'>): Promise<void>;
}

export interface SubjectRepository {
  insert(subject: SubjectRecord): Promise<void>;
  get(id: string): Promise<SubjectRecord | undefined>;
  list(filter: SubjectFilter): Promise<SubjectRecord[]>;
  setStatus(id: string, status: SubjectRecord['status']): Promise<void>;
  /**
   * Reads the subject and locks its row to the end of the transaction: `update` for a change of its
   * status (subject revocation), `share` for issuance's re-check (concurrent issuances do not wait on
   * each other). PostgreSQL: SELECT … FOR UPDATE / FOR SHARE, taken after the audit chain's lock so
   * that every transaction takes the two in the same order (no deadlock with a group commit that
   * already holds the chain). SQLite: the write transaction is the lock. Only inside `transaction`.
   */
  lock(id: string, mode: 'share' | 'update'): Promise<SubjectRecord | undefined>;
  /** {@link lock} reading the status alone (issuance's re-check needs nothing else). */
  lockStatus(id: string, mode: 'share' | 'update'): Promise<SubjectRecord['status'] | undefined>;
}

export interface CertificateRepository {
  /** Inserts; throws {@link UniqueViolationError} on a duplicate (issuer, serial). */
  insert(cert: CertificateRecord): Promise<void>;
  get(issuerId: string, serial: string): Promise<CertificateRecord | undefined>;
  /** Every certificate with this serial, whatever its issuer (serials are unique only per issuer). */
  findBySerial(serial: string): Promise<CertificateRecord[]>;
  list(filter: CertificateFilter): Promise<CertificateRecord[]>;
  count(filter: CertificateFilter): Promise<number>;
  /** Certificates of a subject and profile whose status is good or hold and notAfter is after `now`. */
  findLive(subjectId: string, profile: CertificateProfile, now: Date): Promise<CertificateRecord[]>;
  /** Revoked or on-hold certificates of an issuer not expired before `notAfterAfter` (for CRLs). */
  listRevoked(issuerId: string, notAfterAfter: Date): Promise<CertificateRecord[]>;
  /**
   * The certificates of {@link listRevoked} with only the fields a CRL entry needs, in serial order, as pages of at most
   * `pageSize` read one statement at a time while the caller iterates: what the CRL publisher streams
   * into the CRL, so that memory does not grow with the number of revoked certificates. Inside a
   * transaction every page is read in it. Pages are never empty; only the last may be short.
   */
  revokedEntryPages(issuerId: string, notAfterAfter: Date, pageSize: number): AsyncIterable<RevokedEntryRecord[]>;
  updateStatus(issuerId: string, serial: string, change: StatusChange): Promise<void>;
  /**
   * Reads the certificate and holds its row against a change of status to the end of the
   * transaction (PostgreSQL: SELECT … FOR SHARE; SQLite: the write transaction is the lock), so an
   * answer signed from what it read cannot be stored over a revocation that committed meanwhile.
   * Only inside `transaction`.
   */
  lockShared(issuerId: string, serial: string): Promise<CertificateRecord | undefined>;
}

export interface EscrowRepository {
  insert(issuerId: string, serial: string, sealed: Buffer, createdAt: Date): Promise<void>;
  get(issuerId: string, serial: string): Promise<Buffer | undefined>;
}

export interface RequestRepository {
  insert(request: RequestRecord): Promise<void>;
  get(id: string): Promise<RequestRecord | undefined>;
  list(filter: { status?: RequestRecord['status']; domain?: string; limit?: number }): Promise<RequestRecord[]>;
  update(id: string, change: Partial<Pick<RequestRecord, 'approvals' | 'status' | 'result'>>): Promise<void>;
  /**
   * Locks the request row for the rest of the transaction if it is still pending; false when it is
   * not (any more). Two transactions approving one request at once: the second waits for the first
   * and then sees it is no longer pending (a no-op UPDATE takes the row lock on PostgreSQL).
   */
  lockPending(id: string): Promise<boolean>;
}

export interface PrincipalRepository {
  insert(principal: PrincipalRecord): Promise<void>;
  get(id: string): Promise<PrincipalRecord | undefined>;
  list(): Promise<PrincipalRecord[]>;
  setDisabled(id: string, disabled: boolean): Promise<void>;
}

export interface TokenRepository {
  insert(token: TokenRecord): Promise<void>;
  findByHash(tokenHash: string): Promise<TokenRecord | undefined>;
  /**
   * The token with this hash and its principal, read together (one statement per authentication),
   * or undefined when no token has this hash.
   */
  findWithPrincipal(tokenHash: string): Promise<{ token: TokenRecord; principal: PrincipalRecord } | undefined>;
}

export interface AuditRepository {
  /**
   * Appends one record to the single hash chain. Serialised across transactions and instances
   * (a lock on PostgreSQL): reads the last record, calls `build` with it, inserts what it returns.
   */
  appendChained(build: (last: AuditRecord | undefined) => AuditRecord): Promise<AuditRecord>;
  /** Records in seq order with seq ≥ fromSeq, since ≤ at < until, principalId = actor, action = action. */
  list(filter: { fromSeq?: number; since?: Date; until?: Date; actor?: string; action?: string; limit?: number }): Promise<AuditRecord[]>;
  last(): Promise<AuditRecord | undefined>;
}

export interface AuditCheckpointRepository {
  /** Inserts; throws {@link UniqueViolationError} when a checkpoint at this seq exists. */
  insert(checkpoint: AuditCheckpointRecord): Promise<void>;
  /** Checkpoints in seq order with seq ≥ fromSeq (of one kind when given). */
  list(filter: { fromSeq?: number; kind?: AuditCheckpointRecord['kind']; limit?: number }): Promise<AuditCheckpointRecord[]>;
  /** The checkpoint with the highest seq (of one kind when given). */
  last(kind?: AuditCheckpointRecord['kind']): Promise<AuditCheckpointRecord | undefined>;
}

export interface OcspResponseRepository {
  upsert(response: OcspResponseRecord): Promise<void>;
  get(issuerId: string, serial: string): Promise<OcspResponseRecord | undefined>;
  /** Responses whose nextUpdate is before `before` (for the refresher), oldest first. */
  listStale(before: Date, limit: number): Promise<OcspResponseRecord[]>;
  /** Deletes every stored answer of an issuer (a retired CA generation signs no more); returns how many. */
  deleteByIssuer(issuerId: string): Promise<number>;
}

export interface ResponderRepository {
  insert(responder: ResponderRecord): Promise<void>;
  /** The newest responder certificate of a CA valid at `now`. */
  current(caId: string, now: Date): Promise<ResponderRecord | undefined>;
}

export interface CrlRepository {
  insert(crl: CrlRecord): Promise<void>;
  /** The newest CRL of a CA (full or delta). */
  latest(caId: string, delta: boolean): Promise<CrlRecord | undefined>;
  /** The highest CRL number used by a CA (full and delta share one sequence, RFC 5280 §5.2.4), or 0n. */
  maxNumber(caId: string): Promise<bigint>;
  /**
   * Serialises CRL publication for one CA until the enclosing transaction ends (PostgreSQL: an
   * advisory lock; SQLite transactions hold the write lock already). Only inside `transaction`.
   */
  lockCa(caId: string): Promise<void>;
}

export interface RenewalRepository {
  /** Inserts; a second renewal of the same old certificate throws {@link UniqueViolationError}. */
  insert(renewal: RenewalRecord): Promise<void>;
  /** The renewal that replaced (issuer, serial), if any. */
  getByOld(issuerId: string, serial: string): Promise<RenewalRecord | undefined>;
  /** The renewal that made (issuer, serial), if any. */
  getByNew(issuerId: string, serial: string): Promise<RenewalRecord | undefined>;
  /** Renewals whose old certificate is not yet superseded and whose grace ends at or before `before`, oldest first. */
  listPendingSupersession(before: Date, limit: number): Promise<RenewalRecord[]>;
  /**
   * Records that the old certificate was revoked as superseded, once: false (and nothing changed)
   * when it already was — another instance got there first.
   */
  markSuperseded(oldIssuerId: string, oldSerial: string, at: Date): Promise<boolean>;
  /**
   * Good end-entity certificates (not OCSP responders) that no renewal has replaced yet, in the
   * filter's notAfter window, ordered by notAfter then issuer and serial.
   */
  listRenewable(filter: RenewableFilter): Promise<CertificateRecord[]>;
  /** The latest notAfter of the certificates an issuer signed, or null when it signed none. */
  lastExpiryOf(issuerId: string): Promise<Date | null>;
}

export interface CaLinkRepository {
  insert(link: CaLinkRecord): Promise<void>;
  /** The link certificates of a lineage (every CA when omitted), oldest first. */
  list(lineage?: string): Promise<CaLinkRecord[]>;
}

export interface RotationRequestRepository {
  /** Inserts; a request id used before throws {@link UniqueViolationError}. */
  insert(request: RotationRequestRecord): Promise<void>;
  get(id: string): Promise<RotationRequestRecord | undefined>;
}

export interface RevocationEventRepository {
  append(event: Omit<RevocationEvent, 'seq'>): Promise<void>;
  since(seq: number, limit: number): Promise<RevocationEvent[]>;
  maxSeq(): Promise<number>;
}

/** Every repository, bound to one connection or one transaction. */
export interface Repositories {
  meta: MetaRepository;
  domains: DomainRepository;
  organs: OrganRepository;
  keys: KeyRepository;
  cas: CaRepository;
  subjects: SubjectRepository;
  certificates: CertificateRepository;
  escrow: EscrowRepository;
  requests: RequestRepository;
  principals: PrincipalRepository;
  tokens: TokenRepository;
  audit: AuditRepository;
  auditCheckpoints: AuditCheckpointRepository;
  ocspResponses: OcspResponseRepository;
  responders: ResponderRepository;
  crls: CrlRepository;
  revocationEvents: RevocationEventRepository;
  renewals: RenewalRepository;
  caLinks: CaLinkRepository;
  rotationRequests: RotationRequestRepository;
  offlineRoot: OfflineRootRepository;
}

/** A bundle that crossed the air gap (migrations/0010_offline_root.ts). */
export interface OfflineBundleRecord {
  direction: 'request' | 'response';
  sequence: number;
  /** SHA-256 of the bundle file, hex. */
  digest: string;
  /** The bundle file (requests, which a response must match); null for responses. */
  bytes: Buffer | null;
  createdAt: Date;
  /** For a request: the sequence of the response that answered it, else null. */
  answeredBy: number | null;
}

/** A CA made at `init --offline-root` that waits for the root to certify `certifiedBy` (a domain CA: itself or its parent). */
export interface PendingCaRecord {
  certifiedBy: string;
  requestSequence: number;
  /** The CA record to insert; a domain CA's certificate is empty until the root's arrives. */
  record: CaRecord;
}

export interface OfflineRootRepository {
  /** @throws UniqueViolationError when a bundle of that direction and sequence is recorded already. */
  insertBundle(bundle: OfflineBundleRecord): Promise<void>;
  getBundle(direction: OfflineBundleRecord['direction'], sequence: number): Promise<OfflineBundleRecord | undefined>;
  /** The highest sequence recorded in `direction`, 0 for none. */
  lastSequence(direction: OfflineBundleRecord['direction']): Promise<number>;
  /** Marks request `sequence` answered by response `response`; false when it was answered already. */
  markAnswered(sequence: number, response: number): Promise<boolean>;
  insertPending(pending: PendingCaRecord): Promise<void>;
  listPending(): Promise<PendingCaRecord[]>;
  /** Removes the CAs waiting for `certifiedBy`; returns how many. */
  deletePending(certifiedBy: string): Promise<number>;
  /** @throws UniqueViolationError when the root is asked for this kind and CA already. */
  insertRootRequest(request: RootRequestRecord): Promise<void>;
  /** The online requests to the root, oldest first; `unsent`: only those no request bundle carries yet. */
  listRootRequests(q?: { unsent?: boolean }): Promise<RootRequestRecord[]>;
  /** Records that request bundle `sequence` carries these requests (and the CAs waiting for their certificates). */
  markRootRequestsSent(ids: readonly string[], sequence: number): Promise<void>;
}

/** An online request to the offline root (migrations/0011_offline_root_requests.ts). */
export type RootRequestRecord = {
  /** `<kind>:<ca>`. */
  id: string;
  ca: string;
  createdAt: Date;
  /** The request bundle that carries it, or null until `tierca root request` writes one. */
  requestSequence: number | null;
} & ({ kind: 'certify'; body: DomainCaRequest } | { kind: 'revoke'; body: { serial: string; reason: number } });

export interface Store extends Repositories {
  readonly engine: 'sqlite' | 'postgres';
  /** Runs `fn` in one transaction: all of its writes commit together or none do. */
  transaction<T>(fn: (tx: Repositories) => Promise<T>): Promise<T>;
  /**
   * Runs several independent units in ONE transaction (one commit, one fsync), each in its own
   * savepoint: a unit that throws is rolled back alone and reported rejected; the others commit
   * together. If the commit itself fails, every unit is rejected. Group commit for hot write paths.
   */
  transactionBatch<T>(units: readonly ((tx: Repositories) => Promise<T>)[]): Promise<PromiseSettledResult<T>[]>;
  close(): Promise<void>;
}
