/**
 * What the bundles of an offline-root ceremony carry (pki/offline-bundle.ts is the envelope): the
 * request payload (domain CA certificates the root is asked to sign, each with a proof that the
 * online service holds its key) and the response payload (the certificates, the revocations, the
 * root CRL, pre-signed OCSP answers for the root's children and the offline audit records). Also the
 * one function that turns a domain CA request into a certificate, so the offline root builds exactly
 * what it showed the officers. Pure: no clock, no storage.
 */
import { buildCertificate } from './certificate.ts';
import { verifySignature } from './certificate-reader.ts';
import { parseCidr } from './ip-range.ts';
import { decodeName, formatName, type DistinguishedName, type NameAttributeType } from './name.ts';
import { domainCaExtensions } from './profiles.ts';
import { PkiError } from './pki-error.ts';
import { isReasonCode, REVOCATION_REASONS } from './revocation-reason.ts';
import { canonicalJson, sha256Hex } from './offline-bundle.ts';
import type { Signer } from './signer.ts';
import type { RootGenerationStatus, RootRolloverPayload } from './offline-root-rollover.ts';

/** A domain CA certificate the online service asks the root to sign. Binary members are base64 DER. */
export interface DomainCaRequest {
  /** The online CA id (the domain's slug, or `slug-gN` after a rollover). */
  ca: string;
  domain: string;
  /** DER Name. */
  subject: string;
  /** DER SubjectPublicKeyInfo of the domain CA key (held online). */
  publicKeyInfo: string;
  notBefore: string;
  notAfter: string;
  policyOids: string[];
  permitted: { directoryName: { type: NameAttributeType; value: string }[]; dnsSuffix: string; emailSuffix: string; ipRanges: string[] };
  links: { caIssuersUrl: string; crlUrl: string };
  /** The domain CA key's signature over {@link domainCaRequestProofBytes}: the online side holds the key. */
  proof: { signatureAlgorithm: string; signature: string };
}

/** A revocation the online side asks the root for (a domain CA it certified): its CA id, serial (lowercase hex) and RFC 5280 reason code. */
export interface RootRevocationRequest {
  ca: string;
  serial: string;
  reason: number;
}

export interface RequestPayload {
  certify: DomainCaRequest[];
  /** Revocations decided online under dual control (`ca revoke` of a domain CA); absent in the first ceremony's request. */
  revoke?: RootRevocationRequest[];
}

/** An offline audit record as it crosses (server/audit's record, times as ISO text). */
export interface CarriedAuditRecord {
  seq: number;
  at: string;
  principalId: string | null;
  role: string | null;
  source: string | null;
  action: string;
  target: string | null;
  outcome: 'success' | 'failure' | 'denied';
  requestId: string | null;
  detail: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export interface ResponsePayload {
  /** The request this response answers (its sequence and the SHA-256 of its file), or null for a ceremony the root began (a revocation, a CRL). */
  inReplyTo: { sequence: number; digest: string } | null;
  /** Domain CA certificates signed at this ceremony. */
  certificates: { ca: string; certificate: string }[];
  /** Every certificate the root has revoked so far (so a lost response is made good by the next). */
  revocations: { ca: string; serial: string; revokedAt: string; reason: number }[];
  /** The root CRL signed at this ceremony. */
  crl: { der: string; number: string; thisUpdate: string; nextUpdate: string };
  /** A pre-signed OCSP answer (signed by the root) for every certificate the root has issued. */
  ocsp: { ca: string; serial: string; der: string; thisUpdate: string; nextUpdate: string }[];
  /** The offline audit records made since the last response, in order. */
  audit: CarriedAuditRecord[];
  /** A root rollover (pki/offline-root-rollover.ts): the new root, its links and the domain CAs re-certified under it; `crl` and `ocsp` are then the new root's. */
  rollover?: RootRolloverPayload;
  /** The CRL and OCSP answers of superseded root generations, for what they issued that has not expired. */
  previousRoots?: RootGenerationStatus[];
}

/** The bytes a domain CA request's proof signs: the request without its proof, canonical. */
export function domainCaRequestProofBytes(request: Omit<DomainCaRequest, 'proof'>): Buffer {
  const { proof: _proof, ...rest } = request as DomainCaRequest;
  return Buffer.from(`tierca-domain-ca-request/1\n${canonicalJson(rest)}`, 'utf8');
}

/** Signs a domain CA request with the domain CA's own key (proof of possession). */
export async function signDomainCaRequest(request: Omit<DomainCaRequest, 'proof'>, signer: Signer): Promise<DomainCaRequest> {
  const signature = await signer.sign(domainCaRequestProofBytes(request));
  return { ...request, proof: { signatureAlgorithm: signer.signatureAlgorithm.toString('base64'), signature: signature.toString('base64') } };
}

const str = (v: unknown): v is string => typeof v === 'string';

/**
 * Checks a request payload's shape and every request's proof of possession.
 *
 * @throws PkiError('malformed') for a member missing or of the wrong type; PkiError('bad-signature')
 *   for a proof that does not verify with the request's key.
 */
export function readRequestPayload(payload: unknown): RequestPayload {
  const p = payload as { certify?: unknown; revoke?: unknown };
  if (!Array.isArray(p?.certify)) throw new PkiError('malformed', 'request bundle: payload.certify is not a list');
  if (p.revoke !== undefined) {
    if (!Array.isArray(p.revoke)) throw new PkiError('malformed', 'request bundle: payload.revoke is not a list');
    for (const [i, r] of (p.revoke as Partial<RootRevocationRequest>[]).entries()) {
      if (!r || !str(r.ca) || !str(r.serial) || !/^[0-9a-f]{1,40}$/.test(r.serial) || !isReasonCode(r.reason) || r.reason === REVOCATION_REASONS.removeFromCRL) {
        throw new PkiError('malformed', `request bundle: revoke[${i}] is not { ca, serial (lowercase hex), reason (an RFC 5280 reason code, not removeFromCRL) }`);
      }
    }
  }
  for (const [i, r] of (p.certify as Partial<DomainCaRequest>[]).entries()) {
    const at = `request bundle: certify[${i}]`;
    if (!r || !str(r.ca) || !str(r.domain) || !str(r.subject) || !str(r.publicKeyInfo) || !str(r.notBefore) || !str(r.notAfter)) {
      throw new PkiError('malformed', `${at} lacks ca, domain, subject, publicKeyInfo or validity`);
    }
    if (Number.isNaN(Date.parse(r.notBefore)) || Number.isNaN(Date.parse(r.notAfter)) || Date.parse(r.notAfter) <= Date.parse(r.notBefore)) {
      throw new PkiError('malformed', `${at}: the validity is not a time span`);
    }
    if (!Array.isArray(r.policyOids) || !r.policyOids.every((o) => str(o) && /^\d+(\.\d+)+$/.test(o))) throw new PkiError('malformed', `${at}: policyOids is not a list of OIDs`);
    const n = r.permitted;
    if (!n || !Array.isArray(n.directoryName) || !str(n.dnsSuffix) || !str(n.emailSuffix) || !Array.isArray(n.ipRanges) || !n.ipRanges.every(str)) {
      throw new PkiError('malformed', `${at}: permitted (name constraints) is incomplete`);
    }
    if (!r.links || !str(r.links.caIssuersUrl) || !str(r.links.crlUrl)) throw new PkiError('malformed', `${at}: links are incomplete`);
    if (!r.proof || !str(r.proof.signatureAlgorithm) || !str(r.proof.signature)) throw new PkiError('malformed', `${at}: no proof of possession`);
    decodeName(Buffer.from(r.subject, 'base64'));
    for (const range of n.ipRanges) parseCidr(range);
    const ok = verifySignature({
      algorithm: Buffer.from(r.proof.signatureAlgorithm, 'base64'),
      publicKeyInfo: Buffer.from(r.publicKeyInfo, 'base64'),
      data: domainCaRequestProofBytes(r as DomainCaRequest),
      signature: Buffer.from(r.proof.signature, 'base64'),
      cacheKey: false,
    });
    if (!ok) throw new PkiError('bad-signature', `${at} (${r.ca}): the proof of possession does not verify with its key`);
  }
  return p as RequestPayload;
}

/** What the officers are shown before they sign a request: one line group per certificate. */
export interface DomainCaSummary {
  ca: string;
  subject: string;
  keyFingerprint: string;
  notBefore: string;
  notAfter: string;
  policies: string[];
  nameConstraints: string[];
}

export function summariseDomainCaRequest(r: DomainCaRequest): DomainCaSummary {
  const dn = r.permitted.directoryName as DistinguishedName;
  return {
    ca: r.ca,
    subject: formatName(decodeName(Buffer.from(r.subject, 'base64'))),
    keyFingerprint: sha256Hex(Buffer.from(r.publicKeyInfo, 'base64')),
    notBefore: r.notBefore,
    notAfter: r.notAfter,
    policies: r.policyOids,
    nameConstraints: [
      `directoryName ${formatName(dn)}`,
      `DNS ${r.permitted.dnsSuffix}`,
      `email ${r.permitted.emailSuffix}`,
      ...(r.permitted.ipRanges.length ? r.permitted.ipRanges.map((x) => `IP ${x}`) : ['IP none (every address excluded)']),
    ],
  };
}

/**
 * The domain CA certificate for a request, signed by the root: the domain CA profile of
 * pki/profiles.ts (pathLen 1, critical name constraints, the tiers' policies, AIA and CDP under the
 * root), with the validity asked for cut to `rootNotAfter` (a child never outlives its issuer).
 */
export function buildDomainCaCertificate(p: {
  request: DomainCaRequest;
  serial: Buffer;
  rootSubject: Buffer;
  rootKeyId: Buffer;
  rootNotAfter: Date;
  signer: Signer;
}): Promise<Buffer> {
  const r = p.request;
  const notAfter = new Date(Math.min(Date.parse(r.notAfter), p.rootNotAfter.getTime()));
  const publicKeyInfo = Buffer.from(r.publicKeyInfo, 'base64');
  return buildCertificate({
    serial: p.serial,
    issuer: p.rootSubject,
    subject: Buffer.from(r.subject, 'base64'),
    notBefore: new Date(r.notBefore),
    notAfter,
    publicKeyInfo,
    extensions: domainCaExtensions({
      publicKeyInfo,
      issuerKeyId: p.rootKeyId,
      policyOids: r.policyOids,
      permitted: {
        directoryName: r.permitted.directoryName as DistinguishedName,
        dnsSuffix: r.permitted.dnsSuffix,
        emailSuffix: r.permitted.emailSuffix,
        ipRanges: r.permitted.ipRanges.map(parseCidr),
      },
      links: r.links,
    }),
    signer: p.signer,
  });
}

/**
 * Checks a response payload's shape (the signature over it is the envelope's).
 *
 * @throws PkiError('malformed') naming the first member that is wrong.
 */
export function readResponsePayload(payload: unknown): ResponsePayload {
  const p = payload as Partial<ResponsePayload>;
  const bad = (what: string) => new PkiError('malformed', `response bundle: ${what}`);
  if (p.inReplyTo !== null && (typeof p.inReplyTo !== 'object' || typeof p.inReplyTo?.sequence !== 'number' || !str(p.inReplyTo.digest))) throw bad('inReplyTo is neither null nor a request');
  if (!Array.isArray(p.certificates) || !p.certificates.every((c) => str(c?.ca) && str(c?.certificate))) throw bad('certificates is not a list of { ca, certificate }');
  if (!Array.isArray(p.revocations) || !p.revocations.every((r) => str(r?.ca) && str(r?.serial) && str(r?.revokedAt) && typeof r?.reason === 'number')) throw bad('revocations is malformed');
  if (!p.crl || !str(p.crl.der) || !str(p.crl.number) || !str(p.crl.thisUpdate) || !str(p.crl.nextUpdate)) throw bad('no root CRL');
  if (!Array.isArray(p.ocsp) || !p.ocsp.every((o) => str(o?.ca) && str(o?.serial) && str(o?.der) && str(o?.thisUpdate) && str(o?.nextUpdate))) throw bad('ocsp is malformed');
  if (!Array.isArray(p.audit) || !p.audit.every((a) => typeof a?.seq === 'number' && str(a?.hash) && str(a?.prevHash) && str(a?.action) && str(a?.at))) throw bad('audit is malformed');
  return p as ResponsePayload;
}
