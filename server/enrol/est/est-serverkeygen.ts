/**
 * EST `/serverkeygen` (RFC 7030 §4.4) for the encryption half of a user's or a device's dual
 * certificate (GM/T 0034; devices where their tier gives them one, decision 0027): the holder
 * authenticates over mutual TLS with its signing certificate (`user-sign`, `device`), the
 * key-management centre makes and escrows the encryption key, the CA certifies it, and the answer
 * carries the private key once beside the certificate: an `application/pkcs8` part protected by the
 * TLS session to the authenticated holder (§4.4.2), or — when the CSR carries an
 * AsymmetricDecryptKeyIdentifier naming the holder's key (§4.4.1.2) — CMS EnvelopedData to that key
 * around a SignedData by the issuing CA (est-key-encryption.ts). Where the holder
 * still has a live encryption certificate it is refused: revoke that one first (a lost token), and
 * the old key stays escrowed and recoverable.
 */
import type { Store } from '../../storage/storage.ts';
import type { TierPolicy } from '../../config/tier-policy.ts';
import type { Clock } from '../../clock.ts';
import type { CaDirectory } from '../../ca/ca-directory.ts';
import type { Principal, RequestContext } from '../../ra/permissions.ts';
import { issueEncryptionHalf, type EncryptionPairDeps } from '../../ra/encryption-pair.ts';
import { encryptionProfileOf, signingProfileOf } from '../../ra/encryption-profiles.ts';
import { appendAudit } from '../../audit/audit-log.ts';
import { TiercaError } from '../../errors.ts';
import { readCertificate } from '../../../pki/certificate-reader.ts';
import { encryptServerKey, keyProtectionOf, type KeyProtection } from './est-key-encryption.ts';

export interface ServerKeygenDeps {
  store: Pick<Store, 'certificates' | 'subjects' | 'audit'>;
  tiers: ReadonlyMap<string, TierPolicy>;
  cas: Pick<CaDirectory, 'get' | 'current' | 'effectiveStatus'>;
  pair: EncryptionPairDeps;
  clock: Clock;
}

/**
 * A server-made encryption key and its certificate, for one answer: the key as PKCS#8 (TLS is its
 * protection) or as a ContentInfo of CMS EnvelopedData (`smime-type=server-generated-key`).
 */
export type ServerKey = { certificate: Buffer } & ({ pkcs8: Buffer; encrypted?: undefined } | { encrypted: Buffer; pkcs8?: undefined });

export async function serverKeygen(deps: ServerKeygenDeps, p: { label: string; client: Buffer | null; csr: Buffer; source: string | null }): Promise<ServerKey> {
  const now = deps.clock.now();
  const refuse = async (why: string, principalId: string | null = null): Promise<never> => {
    await appendAudit(deps.store.audit, now, {
      principalId, role: 'device', source: p.source, action: 'est.serverkeygen', target: `est:${p.label}`, outcome: 'denied', requestId: null, detail: { reason: why },
    });
    throw new TiercaError('unauthenticated', `the client certificate is not accepted: ${why}`);
  };
  if (!p.client) return refuse('serverkeygen needs the holder\'s signing certificate as the TLS client certificate');
  const fields = readCertificate(p.client);
  const cert = (await deps.store.certificates.findBySerial(fields.serial)).find((c) => c.der.equals(p.client!));
  if (!cert || !deps.cas.get(cert.issuerId)) return refuse('the certificate is not one tierca issued');
  const principalId = `certificate:${cert.issuerId}/${cert.serial}`;
  if (cert.status !== 'good') return refuse(`the certificate is ${cert.status}`, principalId);
  if (deps.cas.effectiveStatus(cert.issuerId).status !== 'active') return refuse('its CA is not active', principalId);
  if (now.getTime() < cert.notBefore.getTime() || now.getTime() >= cert.notAfter.getTime()) return refuse('the certificate is not within its validity', principalId);
  if (cert.profile !== 'user-sign' && cert.profile !== 'device') {
    return refuse(`serverkeygen gives a user's or a device's encryption key; this is a ${cert.profile} certificate`, principalId);
  }
  if (`${cert.domain}-${cert.tier}` !== p.label) return refuse(`the certificate is of ${cert.domain}-${cert.tier}, not ${p.label}`, principalId);
  const subject = cert.subjectId ? await deps.store.subjects.get(cert.subjectId) : undefined;
  const tier = cert.tier ? deps.tiers.get(cert.tier) : undefined;
  if (!subject || subject.status !== 'active' || !tier) return refuse('its subject is not active', principalId);
  if (signingProfileOf(subject.kind) !== cert.profile) return refuse(`a ${cert.profile} certificate of a ${subject.kind}`, principalId);
  if (tier.encryptionCertificate[subject.kind] === 'none') {
    throw new TiercaError('policy-profile', `tier ${tier.id} issues no encryption certificates${subject.kind === 'user' ? '' : ` to a ${subject.kind}`}`);
  }
  const live = await deps.store.certificates.findLive(subject.id, encryptionProfileOf(subject.kind), now);
  if (live.length > 0) {
    throw new TiercaError('already-holds-certificate', `subject ${subject.id} holds a live encryption certificate (${live[0].serial}); revoke it first (a lost token), its key stays recoverable`);
  }
  // Before any key is made: what protection the CSR asks for, and that tierca can give it.
  const tierCa = deps.cas.current(p.label);
  if (!tierCa) throw new TiercaError('ca-unavailable', `no current CA for ${p.label}`);
  let protection: KeyProtection;
  try {
    protection = keyProtectionOf(p.csr, p.client, tierCa);
  } catch (err) {
    await appendAudit(deps.store.audit, now, {
      principalId, role: 'device', source: p.source, action: 'est.serverkeygen', target: `subject:${subject.id}`, outcome: 'denied', requestId: null,
      detail: { reason: err instanceof TiercaError ? err.message : 'the key protection could not be read' },
    });
    throw err;
  }
  const principal: Principal = { id: principalId, name: cert.subjectDn, role: 'device', domains: [subject.domain] };
  const ctx: RequestContext = { principal, source: p.source ? `est ${p.source}` : 'est', requestId: `est-keygen-${cert.serial}-${now.getTime()}` };
  const half = await issueEncryptionHalf(deps.pair, ctx, { tier, subject, signing: cert, requestId: null, now, pkcs8: true });
  let encrypted: Buffer | undefined;
  if (protection.kind === 'cms') {
    const issuer = deps.cas.get(half.certificate.issuerId)!;
    try {
      encrypted = await encryptServerKey({ pkcs8: half.pkcs8!, ca: issuer, recipient: p.client, recipientKeyId: protection.recipientKeyId, now });
    } finally {
      half.pkcs8!.fill(0);
    }
  }
  await appendAudit(deps.store.audit, now, {
    principalId, role: 'device', source: p.source, action: 'est.serverkeygen', target: `subject:${subject.id}`, outcome: 'success', requestId: null,
    detail: {
      issuerId: half.certificate.issuerId, serial: half.certificate.serial, escrowedKey: half.keyId, pairOf: cert.serial,
      protection: protection.kind === 'cms' ? { cms: 'enveloped-signed', recipientKeyId: protection.recipientKeyId.toString('hex') } : 'tls',
    },
  });
  return encrypted ? { encrypted, certificate: half.certificate.der } : { pkcs8: half.pkcs8!, certificate: half.certificate.der };
}
