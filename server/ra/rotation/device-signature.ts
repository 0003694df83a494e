/**
 * A device renews its own certificate, authenticated by its current key instead of a token: the
 * request body is signed with the certificate's key (`Tierca-Signature`), the certificate travels
 * beside it (`Tierca-Certificate`), and the body names the serial and the time of signing. Once the
 * signature, the certificate and the body are checked, the renewal follows the officers' rules
 * (renewal.service.ts). Every refusal is audited.
 */
import { verifySm2Signature } from '../../../pki/sm2-verifier.ts';
import { keyAlgorithmOf } from '../../../pki/key-pair.ts';
import { signatureAlgorithmIdentifier } from '../../../pki/algorithms.ts';
import { readCertificate, verifySignature } from '../../../pki/certificate-reader.ts';
import { normaliseSerial } from '../../../pki/serial.ts';
import type { CertificateRecord, Store } from '../../storage/storage.ts';
import type { Clock } from '../../clock.ts';
import { appendAudit } from '../../audit/audit-log.ts';
import { TiercaError } from '../../errors.ts';
import type { CaDirectory } from '../../ca/ca-directory.ts';
import type { Authorizer } from '../authorizer.ts';
import { runAudited } from '../audited.ts';
import type { Principal, RequestContext } from '../permissions.ts';
import type { RenewalAuthority, RenewResult } from './renewal.service.ts';

/** How far the `signedAt` of a device's signed renewal may be from the server's clock. */
export const SIGNATURE_MAX_SKEW_MS = 5 * 60 * 1000;
/** Profiles whose key signs (digitalSignature), so it can authenticate its own renewal. */
const SIGNING_PROFILES: ReadonlySet<string> = new Set(['organ', 'device', 'user-sign']);

/** A device's signed renewal request, as it came over HTTP. */
export interface SignedRenewal {
  /** The serial in the URL. */
  serial: string;
  /** The request body exactly as received: what the signature covers. */
  body: Buffer;
  /** Base64 signature over `body` by the certificate's key (`Tierca-Signature`). */
  signature: string;
  /** Base64 DER of the certificate being renewed (`Tierca-Certificate`). */
  certificate: string;
  source: string | null;
}

export interface DeviceRenewalDeps {
  store: Pick<Store, 'certificates' | 'audit'>;
  cas: Pick<CaDirectory, 'get' | 'effectiveStatus'>;
  authorizer: Pick<Authorizer, 'require'>;
  renewals: Pick<RenewalAuthority, 'renewChecked'>;
  clock: Clock;
}

export class DeviceRenewal {
  constructor(private readonly deps: DeviceRenewalDeps) {}

  /**
   * A device renews its own certificate: `Tierca-Certificate` is the certificate (exactly as tierca
   * issued it, good and within its validity), `Tierca-Signature` a signature over the exact request
   * body with its key — ECDSA with SHA-256 (P-256) or SHA-384 (P-384), or RSA PKCS#1 v1.5 with
   * SHA-256 — and the body `{ serial, signedAt, requestId, csr? }` names the same serial and was signed
   * within {@link SIGNATURE_MAX_SKEW_MS} of now. Without `csr` the key is kept; when the certificate
   * was already renewed that way (e.g. by `rotate run`), the existing successor is returned.
   */
  async renewBySignature(p: SignedRenewal): Promise<RenewResult> {
    const now = this.deps.clock.now();
    const refuse = async (why: string, principalId: string | null = null): Promise<never> => {
      await appendAudit(this.deps.store.audit, now, {
        principalId, role: 'device', source: p.source, action: 'certificate.renew', target: `certificate:${p.serial}`.slice(0, 200),
        outcome: 'denied', requestId: null, detail: { reason: why, via: 'signature' },
      }).catch(() => undefined);
      throw new TiercaError('unauthenticated', `the renewal signature is not accepted: ${why}`);
    };
    let der: Buffer;
    let fields: ReturnType<typeof readCertificate>;
    try {
      der = Buffer.from(p.certificate, 'base64');
      fields = readCertificate(der);
    } catch {
      return refuse('Tierca-Certificate is not a base64 DER certificate');
    }
    const { cert, principalId } = await this.holder(der, fields, now, refuse);
    if (normaliseSerial(p.serial) !== cert.serial) return refuse('the certificate is not the one named in the URL', principalId);
    const keyAlgorithm = keyAlgorithmOf(fields.publicKeyInfo);
    if (!keyAlgorithm) return refuse('the key algorithm cannot sign a renewal', principalId);
    let verified = false;
    try {
      const signature = Buffer.from(p.signature, 'base64');
      // SM2: the standard signer identity only (GM/T 0009 §10), as a device's SM2 stack signs; Node's
      // verify would check the empty one (decision 0017).
      verified = keyAlgorithm === 'SM2'
        ? verifySm2Signature({ publicKeyInfo: fields.publicKeyInfo, data: p.body, signature })
        : verifySignature({ algorithm: signatureAlgorithmIdentifier(keyAlgorithm), publicKeyInfo: fields.publicKeyInfo, data: p.body, signature, cacheKey: false });
    } catch {
      verified = false;
    }
    if (!verified) return refuse('the signature does not verify with the certificate key', principalId);
    const body = await this.signedBody(p, cert, now, principalId, refuse);
    const principal: Principal = { id: principalId, name: cert.subjectDn, role: 'device', domains: cert.domain ? [cert.domain] : [] };
    // The device's request id scopes idempotency to this certificate, so one device cannot replay another's.
    const ctx: RequestContext = { principal, source: p.source, requestId: body.requestId };
    const target = `certificate:${cert.issuerId}/${cert.serial}`;
    await this.deps.authorizer.require(ctx, 'certificate:renew', 'certificate.renew', target, cert.domain);
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, 'certificate.renew', target, () =>
      this.deps.renewals.renewChecked(ctx, cert, { csr: body.csr }, `${principalId}:${body.requestId}`, true),
    );
  }

  /**
   * A device renews its own certificate over mutual TLS (EST simplereenroll, RFC 7030 §4.2.2): the
   * TLS handshake proved the key, `certificate` is the client certificate it verified. The same
   * checks as a signed renewal, then a rekey with `csr` (or a renewal of the same key, where the tier
   * allows that). Every refusal is audited.
   */
  async renewByCertificate(p: { certificate: Buffer; csr: Buffer; source: string | null; requestId: string }): Promise<RenewResult> {
    const now = this.deps.clock.now();
    const refuse = async (why: string, principalId: string | null = null): Promise<never> => {
      await appendAudit(this.deps.store.audit, now, {
        principalId, role: 'device', source: p.source, action: 'certificate.renew', target: principalId ?? 'certificate:unknown',
        outcome: 'denied', requestId: null, detail: { reason: why, via: 'tls' },
      }).catch(() => undefined);
      throw new TiercaError('unauthenticated', `the client certificate is not accepted: ${why}`);
    };
    let fields: ReturnType<typeof readCertificate>;
    try {
      fields = readCertificate(p.certificate);
    } catch {
      return refuse('the client certificate does not parse');
    }
    const { cert, principalId } = await this.holder(p.certificate, fields, now, refuse);
    const principal: Principal = { id: principalId, name: cert.subjectDn, role: 'device', domains: cert.domain ? [cert.domain] : [] };
    const ctx: RequestContext = { principal, source: p.source, requestId: p.requestId };
    const target = `certificate:${cert.issuerId}/${cert.serial}`;
    await this.deps.authorizer.require(ctx, 'certificate:renew', 'certificate.renew', target, cert.domain);
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, 'certificate.renew', target, () =>
      this.deps.renewals.renewChecked(ctx, cert, { csr: p.csr }, `${principalId}:${p.requestId}`, true),
    );
  }

  /** The certificate a device presents, if tierca issued it, it is good under an active CA, within its validity, and its key signs. */
  private async holder(
    der: Buffer, fields: ReturnType<typeof readCertificate>, now: Date, refuse: (why: string, principalId?: string | null) => Promise<never>,
  ): Promise<{ cert: CertificateRecord; principalId: string }> {
    const cert = (await this.deps.store.certificates.findBySerial(fields.serial)).find((c) => c.der.equals(der));
    if (!cert || !this.deps.cas.get(cert.issuerId)) return refuse('the certificate is not one tierca issued');
    const principalId = `certificate:${cert.issuerId}/${cert.serial}`;
    if (cert.status !== 'good') return refuse(`the certificate is ${cert.status}`, principalId);
    const chain = this.deps.cas.effectiveStatus(cert.issuerId);
    if (chain.status !== 'active') return refuse(`its CA ${chain.blockedBy} is ${chain.status}`, principalId);
    if (now.getTime() < cert.notBefore.getTime() || now.getTime() >= cert.notAfter.getTime()) return refuse('the certificate is not within its validity', principalId);
    if (!SIGNING_PROFILES.has(cert.profile)) return refuse(`a ${cert.profile} key does not sign`, principalId);
    return { cert, principalId };
  }

  /**
   * The body of a signed renewal, checked: `{ serial, signedAt, requestId, csr? }` and nothing else, the
   * serial of the certificate, signed within {@link SIGNATURE_MAX_SKEW_MS}. A malformed body (the
   * signature was good: the holder sent it) is audited as a failure before it is refused.
   */
  private async signedBody(
    p: SignedRenewal, cert: CertificateRecord, now: Date, principalId: string, refuse: (why: string, principalId: string | null) => Promise<never>,
  ): Promise<{ requestId: string; csr?: string }> {
    const invalid = async (code: 'bad-request' | 'malformed-input', message: string): Promise<never> => {
      await appendAudit(this.deps.store.audit, now, {
        principalId, role: 'device', source: p.source, action: 'certificate.renew', target: principalId, outcome: 'failure',
        requestId: null, detail: { error: code, via: 'signature' },
      }).catch(() => undefined);
      throw new TiercaError(code, message);
    };
    let body: { serial?: unknown; signedAt?: unknown; requestId?: unknown; csr?: unknown };
    try {
      body = JSON.parse(p.body.toString('utf8')) as typeof body;
    } catch {
      return invalid('malformed-input', 'the request body is not valid JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return invalid('bad-request', 'the request body must be a JSON object');
    const extra = Object.keys(body).filter((k) => !['serial', 'signedAt', 'requestId', 'csr'].includes(k));
    if (extra.length) return invalid('bad-request', `invalid request: unknown field ${extra.join(', ')}`);
    if (typeof body.serial !== 'string' || normaliseSerial(body.serial) !== cert.serial) return refuse('the signed body names another serial', principalId);
    const signedAt = typeof body.signedAt === 'string' ? Date.parse(body.signedAt) : NaN;
    if (!Number.isFinite(signedAt) || Math.abs(signedAt - now.getTime()) > SIGNATURE_MAX_SKEW_MS) {
      return refuse(`signedAt must be within ${SIGNATURE_MAX_SKEW_MS / 60_000} minutes of the server's time`, principalId);
    }
    if (typeof body.requestId !== 'string' || !/^[\w.:-]{8,64}$/.test(body.requestId)) {
      return invalid('bad-request', 'invalid request: requestId must be 8 to 64 letters, digits, or . _ : -');
    }
    if (body.csr !== undefined && (typeof body.csr !== 'string' || body.csr.length > 32 * 1024)) {
      return invalid('bad-request', 'invalid request: csr must be a PEM or base64 DER string');
    }
    return { requestId: body.requestId, ...(body.csr !== undefined ? { csr: body.csr as string } : {}) };
  }
}
