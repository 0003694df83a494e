/**
 * CMS SignedData (RFC 5652 §5) with one signer and encapsulated content — the signed layer of EST's
 * encrypted server-generated key (RFC 7030 §4.4.2, RFC 5958 §4: sign the AsymmetricKeyPackage, then
 * envelope it). The signer is tierca's one {@link Signer} interface, so a CA key in a PKCS#11 token
 * signs the same way. Signed attributes are always present (contentType, messageDigest,
 * signingTime): RFC 5652 §5.3 requires them when eContentType is not id-data, and the signature is
 * then over the DER SET OF attributes (§5.4), never over bytes a caller chose.
 */
import { createHash } from 'node:crypto';
import { implicitConstructed, integer, octetString, oid, sequence, setOf, explicit, utcTime } from './der.ts';
import { children, decodeOid, readOnly } from './der-reader.ts';
import { readCertificate } from './certificate-reader.ts';
import { OID as ALG } from './algorithms.ts';
import { PkiError } from './pki-error.ts';
import type { Signer } from './signer.ts';

const SIGNED_DATA = '1.2.840.113549.1.7.2';
const DATA = '1.2.840.113549.1.7.1';
const ATTR = { contentType: '1.2.840.113549.1.9.3', messageDigest: '1.2.840.113549.1.9.4', signingTime: '1.2.840.113549.1.9.5' } as const;
const SHA512 = '2.16.840.1.101.3.4.2.3';

/** The digest (RFC 5754) that goes with a signature algorithm, by its OID. */
const DIGEST_OF_SIGNATURE: Readonly<Record<string, { name: 'sha256' | 'sha384' | 'sha512'; oid: string }>> = {
  [ALG.ecdsaWithSha256]: { name: 'sha256', oid: ALG.sha256 },
  [ALG.ecdsaWithSha384]: { name: 'sha384', oid: ALG.sha384 },
  '1.2.840.10045.4.3.4': { name: 'sha512', oid: SHA512 },
  [ALG.sha256WithRSA]: { name: 'sha256', oid: ALG.sha256 },
  [ALG.sha384WithRSA]: { name: 'sha384', oid: ALG.sha384 },
  '1.2.840.113549.1.1.13': { name: 'sha512', oid: SHA512 },
};
const BY_DIGEST_OID = new Map(Object.values(DIGEST_OF_SIGNATURE).map((d) => [d.oid, d]));

/** The digest of a signer's signature AlgorithmIdentifier (for RSASSA-PSS, its hashAlgorithm), or PkiError('unsupported-algorithm'). */
export function digestOfSignatureAlgorithm(algorithmIdentifier: Buffer): { name: 'sha256' | 'sha384' | 'sha512'; oid: string } {
  const [algorithm, params] = children(readOnly(algorithmIdentifier, 0x30));
  const dotted = decodeOid(algorithm);
  const direct = DIGEST_OF_SIGNATURE[dotted];
  if (direct) return direct;
  if (dotted === ALG.rsaPss && params) {
    // RSASSA-PSS-params { hashAlgorithm [0] … } (RFC 4055 §3.1); tierca's PSS signers always write it.
    const hash = children(params).find((c) => c.tag === 0xa0);
    const digest = hash && BY_DIGEST_OID.get(decodeOid(children(children(hash)[0])[0]));
    if (digest) return digest;
  }
  throw new PkiError('unsupported-algorithm', `CMS SignedData is signed with ECDSA or RSA over SHA-2, not ${dotted}`);
}

/** What {@link buildSignedData} takes. */
export interface SignedDataParams {
  /** The eContent octets. */
  content: Buffer;
  /** The eContentType OID; default id-data. */
  contentType?: string;
  signer: Signer;
  /** The signer's certificate (DER): named by issuerAndSerialNumber, and its key must be the signer's. */
  signerCertificate: Buffer;
  /** Certificates to carry (the signer's and its chain, for a verifier); default the signer's alone. */
  certificates?: readonly Buffer[];
  /** The signingTime attribute. */
  signingTime: Date;
}

/** ContentInfo { contentType, [0] EXPLICIT content } (RFC 5652 §3) around an encoded content. */
export const contentInfo = (contentType: string, content: Buffer): Buffer => sequence(oid(contentType), explicit(0, content));

/**
 * A SignedData v3 (v3 because eContentType is not id-data; v1 for id-data) with one SignerInfo v1
 * (issuerAndSerialNumber) — the bare structure, as an EnvelopedData of content type id-signedData
 * encrypts it (RFC 5652 §6.1); {@link contentInfo} wraps it for a file of its own.
 *
 * @throws PkiError('invalid-argument') when the certificate's key is not the signer's;
 * PkiError('unsupported-algorithm') for a signature algorithm without a SHA-2 digest (SM2).
 */
export async function buildSignedData(p: SignedDataParams): Promise<Buffer> {
  const cert = readCertificate(p.signerCertificate);
  if (!cert.publicKeyInfo.equals(p.signer.publicKeyInfo)) throw new PkiError('invalid-argument', 'the signer certificate is not for the signing key');
  const digest = digestOfSignatureAlgorithm(p.signer.signatureAlgorithm);
  const contentType = p.contentType ?? DATA;
  const attribute = (type: string, value: Buffer) => sequence(oid(type), setOf(value));
  const signedAttrs = setOf(
    attribute(ATTR.contentType, oid(contentType)),
    attribute(ATTR.signingTime, utcTime(p.signingTime)), // RFC 5652 §11.3: UTCTime through 2049
    attribute(ATTR.messageDigest, octetString(createHash(digest.name).update(p.content).digest())),
  );
  // §5.4: the signature is over the DER of the SET OF, then the attributes are written as [0] IMPLICIT.
  const signature = await p.signer.sign(signedAttrs);
  const signedAttrsTagged = Buffer.from(signedAttrs);
  signedAttrsTagged[0] = 0xa0;
  const digestAlgorithm = sequence(oid(digest.oid)); // RFC 5754 §2: parameters absent
  const signerInfo = sequence(
    integer(1),
    sequence(cert.issuer, integer(Buffer.from(cert.serial, 'hex'))),
    digestAlgorithm,
    signedAttrsTagged,
    p.signer.signatureAlgorithm,
    octetString(signature),
  );
  return sequence(
    integer(contentType === DATA ? 1 : 3),
    setOf(digestAlgorithm),
    sequence(oid(contentType), explicit(0, octetString(p.content))),
    implicitConstructed(0, [...(p.certificates ?? [p.signerCertificate])]),
    setOf(signerInfo),
  );
}

export const SIGNED_DATA_OID = SIGNED_DATA;
