/**
 * PKCS#10 certification requests (RFC 2986): parse, check proof of possession, build.
 *
 * Parsing is by hand with ./der-reader.ts because the CSR is on the issuance hot path. Following
 * cfssl's rule that "CSRs are not trusted", only the subject and the public key are taken from a
 * CSR for issuance; requested extensions never reach a certificate — the RA and the profile decide
 * them. {@link requestedNames} reads the names a CSR asks for only so that ACME can hold a CSR to its
 * order (RFC 8555 §7.4).
 */
import { bitString, implicitConstructed, integer, sequence } from './der.ts';
import { children, DerError, decodeOid, expectTag, readOnly } from './der-reader.ts';
import { readGeneralNames } from './general-names.ts';
import { OID, type KeyAlgorithm } from './algorithms.ts';
import { verifySignature } from './certificate-reader.ts';
import { keyAlgorithmOf } from './key-pair.ts';
import { decodePemOrDerOf } from './pem.ts';
import { PkiError } from './pki-error.ts';
import type { Signer } from './signer.ts';
import { sm2IdentityThatVerifies, type Sm2Identity } from './sm2-verifier.ts';

/** What tierca takes from a CSR. */
export interface ParsedCsr {
  /** The whole CertificationRequest, DER. */
  der: Buffer;
  /** Raw DER subject Name. */
  subject: Buffer;
  /** DER SubjectPublicKeyInfo. */
  publicKeyInfo: Buffer;
  /** The key's algorithm, or null when it is not one tierca knows (e.g. RSA-1024, secp256k1). */
  keyAlgorithm: KeyAlgorithm | null;
}

const CSR_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'] as const;

interface CsrParts {
  info: Buffer;
  subject: Buffer;
  publicKeyInfo: Buffer;
  signatureAlgorithm: Buffer;
  signature: Buffer;
}

/**
 * Parses a CSR given as PEM (`CERTIFICATE REQUEST`, or the older `NEW CERTIFICATE REQUEST`), bare
 * base64 or DER. Its signature is NOT checked here: call {@link verifyCsr}.
 *
 * @throws PkiError('malformed') for anything else: bad armour or base64, truncated DER, trailing
 * bytes, a version other than v1 (0), a structure that is not a CertificationRequest, or a public
 * key Node cannot load.
 */
export function parseCsr(input: string | Buffer): ParsedCsr {
  const der = decodePemOrDerOf(input, CSR_LABELS);
  const parts = csrParts(der);
  let keyAlgorithm: KeyAlgorithm | null;
  try {
    keyAlgorithm = keyAlgorithmOf(parts.publicKeyInfo);
  } catch {
    throw new PkiError('malformed', 'malformed CSR: unreadable public key');
  }
  return { der, subject: parts.subject, publicKeyInfo: parts.publicKeyInfo, keyAlgorithm };
}

function csrParts(der: Buffer): CsrParts {
  try {
    const [infoEl, algEl, sigEl, extra] = children(readOnly(der, 0x30));
    if (extra) throw new PkiError('malformed', 'malformed CSR: extra fields after the signature');
    expectTag(algEl, 0x30, 'signatureAlgorithm');
    const sig = expectTag(sigEl, 0x03, 'signature');
    if (sig.content.length < 2 || sig.content[0] !== 0) throw new PkiError('malformed', 'malformed CSR: signature BIT STRING has unused bits');
    const [version, subject, spki, attributes, extraInfo] = children(expectTag(infoEl, 0x30, 'certificationRequestInfo'));
    const v = expectTag(version, 0x02, 'version').content;
    if (v.length !== 1 || v[0] !== 0) throw new PkiError('malformed', 'malformed CSR: version is not v1 (0)');
    expectTag(subject, 0x30, 'subject');
    const algorithm = children(expectTag(spki, 0x30, 'subjectPKInfo'));
    expectTag(algorithm[0], 0x30, 'subjectPKInfo algorithm');
    expectTag(algorithm[1], 0x03, 'subjectPublicKey');
    // attributes [0] IMPLICIT SET OF Attribute; tolerated when absent (some encoders omit the empty set).
    if (attributes) children(expectTag(attributes, 0xa0, 'attributes'));
    if (extraInfo) throw new PkiError('malformed', 'malformed CSR: extra fields in certificationRequestInfo');
    return {
      info: infoEl.raw,
      subject: subject.raw,
      publicKeyInfo: spki.raw,
      signatureAlgorithm: algEl.raw,
      signature: sig.content.subarray(1),
    };
  } catch (err) {
    if (err instanceof PkiError && !(err instanceof DerError)) throw err;
    throw new PkiError('malformed', `malformed CSR: ${(err as Error).message}`);
  }
}

/** What {@link verifyCsr} learnt while checking the proof of possession. */
export interface CsrProofOfPossession {
  /**
   * For an SM2 CSR, the signer identity its signature verified with: 'default' (`1234567812345678`,
   * GM/T 0009-2012 §10) or 'empty' (OpenSSL 3.0's `req -sm3` without `-sigopt distid:…`); null for
   * other algorithms. The CA records it with the certificate.
   */
  popIdentity: Sm2Identity | null;
}

/**
 * Checks the CSR's proof of possession: its self-signature under its own public key. Supports
 * ECDSA P-256/P-384 (SHA-256/384/512), RSA PKCS#1 v1.5 (SHA-256/384/512), RSASSA-PSS, and SM2 with
 * SM3 (1.2.156.10197.1.501). See {@link checkCsrProofOfPossession} for what it learns.
 *
 * @throws PkiError('bad-signature', 'CSR signature does not verify'); PkiError('unsupported-algorithm')
 * for other signature algorithms.
 */
export function verifyCsr(csr: ParsedCsr): void {
  checkCsrProofOfPossession(csr);
}

/**
 * {@link verifyCsr}, returning what the check learnt: an SM2 signature is tried with the standard
 * identity first, then the empty one, and the one that verified is returned.
 *
 * @throws as {@link verifyCsr}
 */
export function checkCsrProofOfPossession(csr: Pick<ParsedCsr, 'der'>): CsrProofOfPossession {
  const parts = csrParts(csr.der);
  if (isSm2WithSm3(parts.signatureAlgorithm)) {
    const popIdentity = sm2IdentityThatVerifies({ publicKeyInfo: parts.publicKeyInfo, data: parts.info, signature: parts.signature });
    if (!popIdentity) throw new PkiError('bad-signature', 'CSR signature does not verify');
    return { popIdentity };
  }
  const ok = verifySignature({
    algorithm: parts.signatureAlgorithm,
    publicKeyInfo: parts.publicKeyInfo,
    data: parts.info,
    signature: parts.signature,
    cacheKey: false, // a CSR key is seen once; it must not push issuer keys out of the cache
  });
  if (!ok) throw new PkiError('bad-signature', 'CSR signature does not verify');
  return { popIdentity: null };
}

/**
 * Whether a signature AlgorithmIdentifier is SM2-with-SM3. Its parameters are absent as GM/T 0006 and
 * OpenSSL write them; a NULL is tolerated (some encoders add it), anything else is malformed.
 */
function isSm2WithSm3(algorithm: Buffer): boolean {
  try {
    const [algOid, params, extra] = children(readOnly(algorithm, 0x30));
    if (decodeOid(algOid) !== OID.sm2WithSm3) return false;
    if (extra || (params && !(params.tag === 0x05 && params.content.length === 0))) {
      throw new PkiError('malformed', 'malformed CSR: SM2-with-SM3 takes no parameters');
    }
    return true;
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('malformed', `malformed CSR: bad signature algorithm: ${(err as Error).message}`);
  }
}

/**
 * A DER CSR for `subject` (DER Name) and the signer's key, without attributes — for tests, the CLI
 * and benchmarks.
 */
export async function buildCsr(p: { subject: Buffer; signer: Signer }): Promise<Buffer> {
  try {
    readOnly(p.subject, 0x30);
  } catch {
    throw new PkiError('invalid-argument', 'subject is not one DER SEQUENCE');
  }
  const info = sequence(integer(0), p.subject, p.signer.publicKeyInfo, implicitConstructed(0, []));
  const signature = await p.signer.sign(info);
  return sequence(info, p.signer.signatureAlgorithm, bitString(signature));
}

/** PKCS#9 extensionRequest (RFC 2985 §5.4.2) and id-ce-subjectAltName. */
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const SUBJECT_ALT_NAME = '2.5.29.17';
const COMMON_NAME = '2.5.4.3';

/**
 * The names a CSR asks for: the dNSName entries of its requested subjectAltName and the common names
 * of its subject (lower-cased), and whether it asks for anything else (IP, e-mail, other forms).
 *
 * @throws PkiError('malformed') when the CSR or its extensionRequest is not well formed.
 */
export function requestedNames(csr: ParsedCsr): { dns: string[]; commonNames: string[]; others: number } {
  try {
    const info = children(readOnly(csr.der, 0x30))[0];
    const attributes = children(info)[3];
    const out = { dns: [] as string[], commonNames: [] as string[], others: 0 };
    for (const rdn of children(readOnly(csr.subject, 0x30))) {
      for (const atv of children(rdn)) {
        const [type, value] = children(atv);
        if (decodeOid(type) === COMMON_NAME) out.commonNames.push(value.content.toString('utf8').toLowerCase());
      }
    }
    if (!attributes) return out;
    for (const attribute of children(attributes)) {
      const [type, values] = children(attribute);
      if (decodeOid(type) !== EXTENSION_REQUEST) continue;
      for (const extensions of children(values)) {
        for (const extension of children(extensions)) {
          const parts = children(extension);
          if (decodeOid(parts[0]) !== SUBJECT_ALT_NAME) continue;
          const names = readGeneralNames(parts[parts.length - 1].content);
          out.dns.push(...names.dns.map((d) => d.toLowerCase()));
          out.others += names.ip.length + names.email.length + names.other;
        }
      }
    }
    return out;
  } catch (err) {
    if (err instanceof PkiError && !(err instanceof DerError)) throw err;
    throw new PkiError('malformed', `malformed CSR: ${(err as Error).message}`);
  }
}

/**
 * The values (whole DER TLVs) of every attribute of `type` (dotted OID) a CSR carries, in order;
 * empty when there is none. For EST's AsymmetricDecryptKeyIdentifier (RFC 7030 §4.4.1.2) and
 * DecryptKeyIdentifier (§4.4.1.1); the caller checks their count and form.
 *
 * @throws PkiError('malformed') when the attributes are not well formed.
 */
export function csrAttributeValues(csr: ParsedCsr, type: string): Buffer[] {
  try {
    const attributes = children(children(readOnly(csr.der, 0x30))[0])[3];
    if (!attributes) return [];
    const out: Buffer[] = [];
    for (const attribute of children(expectTag(attributes, 0xa0, 'attributes'))) {
      const [attrType, values] = children(expectTag(attribute, 0x30, 'attribute'));
      if (decodeOid(expectTag(attrType, 0x06, 'attribute type')) !== type) continue;
      out.push(...children(expectTag(values, 0x31, 'attribute values')).map((v) => v.raw));
    }
    return out;
  } catch (err) {
    if (err instanceof PkiError && !(err instanceof DerError)) throw err;
    throw new PkiError('malformed', `malformed CSR attributes: ${(err as Error).message}`);
  }
}
