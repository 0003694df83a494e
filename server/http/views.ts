/**
 * JSON shapes of the API (docs/api.md). Records in, plain objects out; nothing secret goes out.
 */
import type { CertificateRecord, RequestRecord, SubjectRecord } from '../storage/storage.ts';
import type { LoadedCa } from '../ca/ca-directory.ts';
import type { CertificateStatus } from '../ca/status-source.ts';
import { caUrls } from '../ca/urls.ts';
import { certificateToPem } from '../../pki/pem.ts';
import { reasonName } from '../../pki/revocation-reason.ts';
import { formatName, decodeName } from '../../pki/name.ts';

export function caSummary(ca: LoadedCa, publicUrl: string) {
  const r = ca.record;
  return {
    id: r.id,
    name: r.name,
    layer: r.layer,
    domain: r.domain,
    tier: r.tier,
    parent: r.parentId,
    status: r.status,
    // A generation a rollover replaced (docs/decisions/0006-ca-rollover.md): it still serves status for what it issued.
    ...(r.successorId ? { successor: r.successorId } : {}),
    notBefore: r.notBefore.toISOString(),
    notAfter: r.notAfter.toISOString(),
    fingerprint: r.fingerprint,
    serial: r.serial,
    keyAlgorithm: ca.keyAlgorithm,
    urls: caUrls(publicUrl, r.id),
    // A root kept offline (docs/offline-root.md): when its CRL and OCSP answers end, and the warning.
    ...(ca.offline ? { offline: ca.offlineWatch?.current ?? null } : {}),
  };
}

export function caDetail(ca: LoadedCa, all: readonly LoadedCa[], publicUrl: string) {
  return {
    ...caSummary(ca, publicUrl),
    subject: formatName(decodeName(ca.fields.subject)),
    issuer: formatName(decodeName(ca.fields.issuer)),
    revokedAt: ca.record.revokedAt?.toISOString() ?? null,
    pem: certificateToPem(ca.record.certificate),
    children: all.filter((c) => c.record.parentId === ca.record.id).map((c) => c.record.id),
  };
}

export function certificateSummary(c: CertificateRecord) {
  return {
    serial: c.serial,
    issuerId: c.issuerId,
    subjectId: c.subjectId,
    profile: c.profile,
    tier: c.tier,
    domain: c.domain,
    subject: c.subjectDn,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    status: c.status,
    revokedAt: c.revokedAt?.toISOString() ?? null,
    reason: c.revocationReason == null ? null : reasonName(c.revocationReason),
    invalidityDate: c.invalidityDate?.toISOString() ?? null,
    fingerprint: c.fingerprint,
    keyAlgorithm: c.keyAlgorithm,
    // SM2 CSRs only: the signer identity the proof of possession verified with (`default` or `empty`).
    ...(c.popIdentity ? { popIdentity: c.popIdentity } : {}),
  };
}

/** `GET /status/{issuer}/{serial}`: the status OCSP gives, as JSON (reason as its RFC 5280 name). */
export function statusView(s: CertificateStatus, now: Date) {
  const base = { issuer: s.ca.record.id, serial: s.serial, status: s.status };
  if (s.status === 'unknown') return base;
  return {
    ...base,
    revokedAt: s.revokedAt?.toISOString() ?? null,
    reason: s.reason == null ? null : reasonName(s.reason),
    notAfter: s.certificate?.notAfter.toISOString() ?? null,
    expired: s.certificate ? s.certificate.notAfter.getTime() < now.getTime() : null,
  };
}

export function subjectView(s: SubjectRecord) {
  return {
    id: s.id,
    kind: s.kind,
    domain: s.domain,
    organ: s.organ,
    tier: s.tier,
    name: s.name,
    dns: s.dnsNames,
    ips: s.ipAddresses,
    emails: s.emails,
    status: s.status,
    createdBy: s.createdBy,
    createdAt: s.createdAt.toISOString(),
  };
}

export function requestView(r: RequestRecord) {
  return {
    id: r.id,
    action: r.action,
    subjectId: r.subjectId,
    domain: r.domain,
    tier: r.tier,
    profile: (r.payload as { profile?: string }).profile ?? null,
    requestedBy: r.requestedBy,
    approvals: r.approvals,
    approvalsRequired: r.approvalsRequired,
    status: r.status,
    result: r.result,
    createdAt: r.createdAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
  };
}

/**
 * A CA chain as PEM. Chains are the CA directory's own arrays, the same for every certificate of a
 * CA: their PEM is made once per array (an issuance answer carries three or four of them).
 */
export function pemChain(chain: readonly Buffer[]): string[] {
  let pems = chainPems.get(chain);
  if (!pems) {
    pems = chain.map((c) => certificateToPem(c));
    chainPems.set(chain, pems);
  }
  return [...pems];
}

const chainPems = new WeakMap<readonly Buffer[], string[]>();
