/**
 * The encryption half of a dual certificate (GM/T 0034, issue 16): for a holder's signing certificate
 * at a tier that asks for it for the holder's kind (users; devices and organs where configured,
 * decision 0027), the key-management centre makes and escrows an encryption key, the CA certifies
 * it with the same subject, names and validity (profile `user-enc`, `device-enc` or `organ-enc`),
 * and the key is delivered once — a PKCS#12 under a one-time passphrase, and for SM2 also an
 * SM2EnvelopedKey to the holder's signing key (GM/T 0009 §7.4) — before the certificate is stored.
 */
import type { KeyAlgorithm } from '../../pki/algorithms.ts';
import { keyAlgorithmOf } from '../../pki/key-pair.ts';
import { buildSm2EnvelopedKey } from '../../pki/sm2-enveloped-key.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { encryptionKeyAlgorithms, type TierPolicy } from '../config/tier-policy.ts';
import type { CertificateIssuer } from '../ca/certificate-issuer.ts';
import type { KeyManagementCentre } from '../kmc/key-management-centre.ts';
import type { CertificateRecord, SubjectRecord } from '../storage/storage.ts';
import { actorOf } from './audited.ts';
import type { IssuancePreparer } from './issuance-preparer.ts';
import { deliverKey, type DeliveredKey } from './key-delivery.ts';
import type { RequestContext } from './permissions.ts';
import { encryptionProfileOf, signingProfileOf } from './encryption-profiles.ts';

/** What the holder receives for the encryption certificate, once. */
export interface EncryptionHalf {
  certificate: CertificateRecord;
  chain: readonly Buffer[];
  /** The KMC's id of the escrowed key. */
  keyId: string;
  pkcs12: Buffer;
  passphrase: string;
  /** SM2 keys only: the GM/T 0009 SM2EnvelopedKey, to the holder's signing key. */
  envelopedKey?: Buffer;
  /** Only when asked (`pkcs8: true`, EST serverkeygen): the private key as PKCS#8 DER, for this answer alone. */
  pkcs8?: Buffer;
}

export interface EncryptionPairDeps {
  kmc: Pick<KeyManagementCentre, 'generate' | 'bind'>;
  preparer: Pick<IssuancePreparer, 'prepare'>;
  issuer: Pick<CertificateIssuer, 'issue'>;
  random?: (n: number) => Buffer;
}

/**
 * Whether a signing certificate of `profile` for `subject` at `tier` comes with its encryption half:
 * the tier's rule for the subject's kind says `required`, or `optional` and the caller asked.
 */
export function wantsEncryptionHalf(tier: TierPolicy, subject: SubjectRecord, profile: string, asked: boolean | undefined): boolean {
  const rule = tier.encryptionCertificate[subject.kind];
  if (profile !== signingProfileOf(subject.kind) || rule === 'none') return false;
  return rule === 'required' || asked === true;
}

/**
 * The encryption key's algorithm: the signing key's when the kind may have it at the tier, else the
 * first the kind may have (a device's is never RSA: config refuses a tier with no other, decision 0027).
 */
function encryptionAlgorithm(tier: TierPolicy, subject: SubjectRecord, signing: CertificateRecord): KeyAlgorithm {
  const allowed = encryptionKeyAlgorithms(tier, subject.kind);
  const signingAlgorithm = keyAlgorithmOf(readCertificate(signing.der).publicKeyInfo);
  return signingAlgorithm && allowed.includes(signingAlgorithm) ? signingAlgorithm : allowed[0];
}

export async function issueEncryptionHalf(
  deps: EncryptionPairDeps, ctx: RequestContext,
  p: { tier: TierPolicy; subject: SubjectRecord; signing: CertificateRecord; requestId: string | null; now: Date; pkcs8?: boolean },
): Promise<EncryptionHalf> {
  const { tier, subject, signing, now } = p;
  const algorithm = encryptionAlgorithm(tier, subject, signing);
  const made = await deps.kmc.generate({ subjectId: subject.id, algorithm });
  const { order } = await deps.preparer.prepare({
    tier, domain: subject.domain, profile: encryptionProfileOf(subject.kind), holderKind: subject.kind, name: { kind: 'subject', subject }, subjectId: subject.id,
    names: { dns: subject.dnsNames, ip: subject.ipAddresses, email: subject.emails }, key: { kind: 'keep', publicKeyInfo: made.publicKeyInfo, keyAlgorithm: algorithm },
    requestId: p.requestId, now,
  });
  // The same validity as the signing certificate (the CA still nests it inside its own).
  const paired = { ...order, notBefore: signing.notBefore, notAfter: signing.notAfter };
  let delivered: DeliveredKey | undefined;
  let envelopedKey: Buffer | undefined;
  const signingKey = readCertificate(signing.der).publicKeyInfo;
  const issued = await deps.issuer.issue(paired, now, { ...actorOf(ctx), action: 'certificate.issue', detail: { pairOf: signing.serial, escrowedKey: made.keyId } }, {
    beforeStore: async (record) => {
      delivered = await deliverKey({ privateKey: made.privateKey, certificate: record.der, chain: order.ca.chain, holderName: subject.name, random: deps.random });
      if (algorithm === 'SM2' && keyAlgorithmOf(signingKey) === 'SM2') {
        envelopedKey = buildSm2EnvelopedKey({ privateKey: made.privateKey, recipientPublicKeyInfo: signingKey, random: deps.random });
      }
    },
  });
  await deps.kmc.bind(made.keyId, issued.record.issuerId, issued.record.serial);
  return {
    certificate: issued.record, chain: issued.chain, keyId: made.keyId, pkcs12: delivered!.pkcs12!, passphrase: delivered!.passphrase!,
    ...(envelopedKey ? { envelopedKey } : {}),
    ...(p.pkcs8 ? { pkcs8: made.privateKey.export({ type: 'pkcs8', format: 'der' }) } : {}),
  };
}
