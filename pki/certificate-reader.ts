/**
 * Fast extraction of the certificate fields tierca needs on hot paths (OCSP, chain building,
 * storage), straight from the DER with ./der-reader.ts — no asn1js object model — and signature
 * verification through node:crypto.
 */
import { createPublicKey, verify as nodeVerify, constants, type KeyObject } from 'node:crypto';
import { OID, signatureAlgorithmIdentifier } from './algorithms.ts';
import { children, decodeOid, decodeUnsignedHex, DerError, expectTag, readOnly, type DerElement } from './der-reader.ts';
import { readTime } from './der-time.ts';
import { EXTENSION_OID } from './extensions.ts';
import { PkiError } from './pki-error.ts';
import { verifySm2Signature } from './sm2-verifier.ts';

/** SM2-with-SM3 as GM/T 0006 writes it: the OID, parameters absent. */
const SM2_WITH_SM3 = signatureAlgorithmIdentifier('SM2');

/** The fields of a certificate, as views into its DER where they are DER. */
export interface CertificateFields {
  der: Buffer;
  /** The signed TBSCertificate, whole TLV. */
  tbs: Buffer;
  /** Serial as lowercase hex without leading zero octets (tierca's canonical form). */
  serial: string;
  /** Raw DER issuer Name. */
  issuer: Buffer;
  /** Raw DER subject Name. */
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** DER SubjectPublicKeyInfo. */
  publicKeyInfo: Buffer;
  /** subjectKeyIdentifier value, or null when the extension is absent. */
  subjectKeyId: Buffer | null;
  /** authorityKeyIdentifier keyIdentifier, or null when absent. */
  authorityKeyId: Buffer | null;
  /** DER AlgorithmIdentifier of the signature. */
  signatureAlgorithm: Buffer;
  /** The signature value (BIT STRING contents without the unused-bits octet). */
  signature: Buffer;
}

/**
 * Reads the fields of a DER certificate.
 *
 * @throws PkiError('malformed') for anything that is not a well-formed X.509 certificate: bad DER,
 * trailing bytes, a negative serial, inner and outer signature algorithms that differ (RFC 5280
 * §4.1.1.2), malformed times (der-time.ts) or a duplicated extension.
 */
export function readCertificate(der: Buffer): CertificateFields {
  try {
    return read(der);
  } catch (err) {
    if (err instanceof PkiError && !(err instanceof DerError)) throw err;
    throw new PkiError('malformed', `malformed certificate: ${(err as Error).message}`);
  }
}

function read(der: Buffer): CertificateFields {
  const [tbsEl, sigAlgEl, sigEl, extra] = children(readOnly(der, 0x30));
  if (extra) throw new PkiError('malformed', 'malformed certificate: extra fields after the signature');
  expectTag(tbsEl, 0x30, 'TBSCertificate');
  expectTag(sigAlgEl, 0x30, 'signatureAlgorithm');
  const signature = bitStringBytes(expectTag(sigEl, 0x03, 'signatureValue'));

  const tbs = children(tbsEl);
  let i = 0;
  let version = 0; // v1: DEFAULT, so absent in DER
  if (tbs[i]?.tag === 0xa0) {
    const [v, extraVersion] = children(tbs[i++]);
    const content = expectTag(v, 0x02, 'version').content;
    if (extraVersion || content.length !== 1 || (content[0] !== 1 && content[0] !== 2)) {
      throw new PkiError('malformed', 'malformed certificate: bad version');
    }
    version = content[0];
  }
  const serialEl = expectTag(tbs[i++], 0x02, 'serialNumber');
  if (serialEl.content.length > 0 && serialEl.content[0] & 0x80) throw new PkiError('malformed', 'malformed certificate: negative serial number');
  const serial = decodeUnsignedHex(serialEl);
  const innerAlg = expectTag(tbs[i++], 0x30, 'signature');
  if (!innerAlg.raw.equals(sigAlgEl.raw)) {
    throw new PkiError('malformed', 'malformed certificate: signature algorithms in TBSCertificate and Certificate differ');
  }
  const issuer = expectTag(tbs[i++], 0x30, 'issuer').raw;
  const [nb, na, extraTime] = children(expectTag(tbs[i++], 0x30, 'validity'));
  if (!nb || !na || extraTime) throw new PkiError('malformed', 'malformed certificate: validity must hold two times');
  const subject = expectTag(tbs[i++], 0x30, 'subject').raw;
  const publicKeyInfo = expectTag(tbs[i++], 0x30, 'subjectPublicKeyInfo').raw;
  if (tbs[i]?.tag === 0x81) i++; // issuerUniqueID
  if (tbs[i]?.tag === 0x82) i++; // subjectUniqueID
  let subjectKeyId: Buffer | null = null;
  let authorityKeyId: Buffer | null = null;
  if (tbs[i]?.tag === 0xa3) {
    // RFC 5280 §4.1.2.1: extensions only in v3.
    if (version !== 2) throw new PkiError('malformed', 'malformed certificate: extensions in a certificate that is not v3');
    const exts = readExtensions(tbs[i++]);
    const ski = exts.get(EXTENSION_OID.subjectKeyIdentifier);
    if (ski) subjectKeyId = readOnly(ski, 0x04).content;
    const aki = exts.get(EXTENSION_OID.authorityKeyIdentifier);
    if (aki) {
      const keyId = children(readOnly(aki, 0x30)).find((c) => c.tag === 0x80);
      authorityKeyId = keyId ? keyId.content : null;
    }
  }
  if (i !== tbs.length) throw new PkiError('malformed', 'malformed certificate: unexpected field in TBSCertificate');
  return {
    der,
    tbs: tbsEl.raw,
    serial,
    issuer,
    subject,
    notBefore: readTime(nb, 'notBefore'),
    notAfter: readTime(na, 'notAfter'),
    publicKeyInfo,
    subjectKeyId,
    authorityKeyId,
    signatureAlgorithm: sigAlgEl.raw,
    signature,
  };
}

/** The extnValue contents of each extension in `[3] EXPLICIT Extensions`, by OID. */
export function readExtensions(wrapper: DerElement): Map<string, Buffer> {
  const [seq, extra] = children(wrapper);
  if (extra) throw new PkiError('malformed', 'malformed certificate: extra element after Extensions');
  const out = new Map<string, Buffer>();
  for (const ext of children(expectTag(seq, 0x30, 'Extensions'))) {
    const parts = children(expectTag(ext, 0x30, 'Extension'));
    if (parts.length < 2 || parts.length > 3) throw new PkiError('malformed', 'malformed certificate: bad Extension');
    const extOid = decodeOid(parts[0]);
    const valueEl = parts[parts.length - 1];
    if (parts.length === 3) expectTag(parts[1], 0x01, 'critical');
    if (out.has(extOid)) throw new PkiError('malformed', `malformed certificate: extension ${extOid} appears twice`);
    out.set(extOid, expectTag(valueEl, 0x04, 'extnValue').content);
  }
  return out;
}

function bitStringBytes(el: DerElement): Buffer {
  if (el.content.length === 0 || el.content[0] !== 0) throw new PkiError('malformed', 'malformed certificate: signature BIT STRING has unused bits');
  return el.content.subarray(1);
}

/**
 * Whether `cert` carries a valid signature by the key in `issuerPublicKeyInfo` (DER SPKI). Supports
 * ECDSA P-256/P-384 with SHA-256/384/512, RSA PKCS#1 v1.5 with SHA-256/384/512 and RSASSA-PSS.
 *
 * @throws PkiError('malformed') for an unreadable certificate; PkiError('unsupported-algorithm')
 * for another signature algorithm (SM2 signatures are not verified here yet).
 */
export function verifyCertificateSignature(cert: Buffer, issuerPublicKeyInfo: Buffer): boolean {
  const fields = readCertificate(cert);
  return verifySignature({
    algorithm: fields.signatureAlgorithm,
    publicKeyInfo: issuerPublicKeyInfo,
    data: fields.tbs,
    signature: fields.signature,
  });
}

interface VerifyPlan {
  digest: 'sha256' | 'sha384' | 'sha512' | 'sha1';
  family: 'ec' | 'rsa';
  pss?: { saltLength: number };
}

const HASH_BY_OID: Record<string, VerifyPlan['digest']> = {
  [OID.sha1]: 'sha1',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

const SIMPLE_ALGORITHMS: Record<string, VerifyPlan> = {
  [OID.ecdsaWithSha256]: { digest: 'sha256', family: 'ec' },
  [OID.ecdsaWithSha384]: { digest: 'sha384', family: 'ec' },
  '1.2.840.10045.4.3.4': { digest: 'sha512', family: 'ec' },
  [OID.sha256WithRSA]: { digest: 'sha256', family: 'rsa' },
  [OID.sha384WithRSA]: { digest: 'sha384', family: 'rsa' },
  '1.2.840.113549.1.1.13': { digest: 'sha512', family: 'rsa' },
};

/** How to verify a signature AlgorithmIdentifier; PkiError('unsupported-algorithm') for others. */
function planFor(algorithm: Buffer): VerifyPlan {
  const [algOid, params] = children(readOnly(algorithm, 0x30));
  const dotted = decodeOid(algOid);
  const simple = SIMPLE_ALGORITHMS[dotted];
  if (simple) return simple;
  if (dotted === OID.rsaPss) return pssPlan(params);
  throw new PkiError('unsupported-algorithm', `signature algorithm ${dotted} is not supported`);
}

/**
 * RSASSA-PSS-params (RFC 4055 §3.1): hash [0] DEFAULT sha1, maskGen [1] DEFAULT mgf1SHA1,
 * saltLength [2] DEFAULT 20, trailerField [3] DEFAULT 1. Node's PSS uses MGF1 with the message
 * digest, so a different MGF1 hash is unsupported.
 */
function pssPlan(params: DerElement | undefined): VerifyPlan {
  if (!params) throw new PkiError('malformed', 'RSASSA-PSS without parameters');
  let digest: VerifyPlan['digest'] = 'sha1';
  let mgfDigest: VerifyPlan['digest'] = 'sha1';
  let saltLength = 20;
  for (const field of children(expectTag(params, 0x30, 'RSASSA-PSS-params'))) {
    const [inner] = children(field);
    if (field.tag === 0xa0) {
      digest = hashOf(inner);
    } else if (field.tag === 0xa1) {
      const [mgfOid, mgfHash] = children(expectTag(inner, 0x30, 'maskGenAlgorithm'));
      if (decodeOid(mgfOid) !== OID.mgf1) throw new PkiError('unsupported-algorithm', 'PSS mask generation other than MGF1');
      mgfDigest = hashOf(mgfHash);
    } else if (field.tag === 0xa2) {
      const n = expectTag(inner, 0x02, 'saltLength').content;
      if (n.length > 2 || n[0] & 0x80) throw new PkiError('malformed', 'bad PSS saltLength');
      saltLength = n.readUIntBE(0, n.length);
    } else if (field.tag === 0xa3) {
      const t = expectTag(inner, 0x02, 'trailerField').content;
      if (t.length !== 1 || t[0] !== 1) throw new PkiError('unsupported-algorithm', 'PSS trailerField other than 1');
    } else {
      throw new PkiError('malformed', 'bad RSASSA-PSS-params');
    }
  }
  if (mgfDigest !== digest) throw new PkiError('unsupported-algorithm', 'PSS with an MGF1 hash different from the message hash');
  return { digest, family: 'rsa', pss: { saltLength } };
}

function hashOf(algId: DerElement | undefined): VerifyPlan['digest'] {
  const [hashOid] = children(expectTag(algId, 0x30, 'hash AlgorithmIdentifier'));
  const digest = HASH_BY_OID[decodeOid(hashOid)];
  if (!digest) throw new PkiError('unsupported-algorithm', 'unsupported hash in PSS parameters');
  return digest;
}

/**
 * Verifies `signature` over `data` made with `algorithm` (DER AlgorithmIdentifier) by the key in
 * `publicKeyInfo` (DER SPKI). The key type must match the algorithm's family — an EC key never
 * verifies a signature labelled RSA, or the reverse — so the label cannot be swapped.
 *
 * SM2-with-SM3 (parameters absent) verifies with the standard signer identity `1234567812345678`
 * only, through pki/sm2-verifier.ts (decision 0017): what tierca and GmSSL-like stacks sign with.
 *
 * @returns false when the signature does not verify or the key does not fit the algorithm.
 * @throws PkiError('unsupported-algorithm') for algorithms outside the list of
 * {@link verifyCertificateSignature}; PkiError('malformed') for an unreadable AlgorithmIdentifier or key.
 */
export function verifySignature(p: {
  algorithm: Buffer;
  publicKeyInfo: Buffer;
  data: Buffer;
  signature: Buffer;
  /** Keep the loaded key for next time; default true (issuer keys). CSR keys are seen once: pass false. */
  cacheKey?: boolean;
}): boolean {
  if (p.algorithm.equals(SM2_WITH_SM3)) return verifySm2Signature({ publicKeyInfo: p.publicKeyInfo, data: p.data, signature: p.signature });
  let plan: VerifyPlan;
  try {
    plan = planFor(p.algorithm);
  } catch (err) {
    if (err instanceof PkiError && !(err instanceof DerError)) throw err;
    throw new PkiError('malformed', `malformed signature algorithm: ${(err as Error).message}`);
  }
  const key = publicKeyOf(p.publicKeyInfo, p.cacheKey ?? true);
  const type = key.asymmetricKeyType;
  if (plan.family === 'ec') {
    // SM2 keys are EC keys in Node, and Node may verify an SM2 signature (with an empty signer ID)
    // for them: an ECDSA label must never be checked that way. Other curves verify as ECDSA — proof
    // of possession holds for them too; whether the key is allowed is decided from keyAlgorithmOf.
    if (type !== 'ec' || key.asymmetricKeyDetails?.namedCurve === 'SM2') return false;
  } else if (type !== 'rsa' && type !== 'rsa-pss') {
    return false;
  }
  if (plan.family === 'rsa' && type === 'rsa-pss' && !plan.pss) return false; // an RSASSA-PSS key never signs PKCS#1 v1.5
  const options =
    plan.family === 'ec'
      ? { key, dsaEncoding: 'der' as const }
      : plan.pss
        ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: plan.pss.saltLength }
        : { key, padding: constants.RSA_PKCS1_PADDING };
  try {
    return nodeVerify(plan.digest, p.data, options, p.signature);
  } catch {
    return false;
  }
}

/**
 * Loading a key costs more than verifying with it (~150 µs for P-256, point validation) and issuer
 * keys recur on every chain, CRL and OCSP check, so the last few hundred are kept. KeyObjects are
 * immutable; the cache is keyed by the SPKI bytes themselves.
 */
const KEY_CACHE_SIZE = 256;
const keyCache = new Map<string, KeyObject>();

/** SPKI prefixes of uncompressed P-256 and P-384 keys (RFC 5480 §2): what follows is 04 || X || Y. */
const EC_SPKI_PREFIXES: readonly { prefix: Buffer; crv: 'P-256' | 'P-384'; size: number }[] = [
  { prefix: Buffer.from('3059301306072a8648ce3d020106082a8648ce3d03010703420004', 'hex'), crv: 'P-256', size: 32 },
  { prefix: Buffer.from('3076301006072a8648ce3d020106052b8104002203620004', 'hex'), crv: 'P-384', size: 48 },
];

/**
 * Imports a P-256/P-384 SPKI through JWK coordinates: OpenSSL 3.0's DER decoder chain costs ~150 µs
 * per key here against ~90 µs for JWK, and a CSR's key is used once (CSR verification is on the
 * issuance hot path). The point is still checked to lie on the curve (an invalid one throws). Other
 * keys return null and take the DER path.
 */
function ecPublicKeyFromJwk(spki: Buffer): KeyObject | null {
  for (const { prefix, crv, size } of EC_SPKI_PREFIXES) {
    if (spki.length === prefix.length + 2 * size && spki.subarray(0, prefix.length).equals(prefix)) {
      const x = spki.subarray(prefix.length, prefix.length + size).toString('base64url');
      const y = spki.subarray(prefix.length + size).toString('base64url');
      return createPublicKey({ key: { kty: 'EC', crv, x, y }, format: 'jwk' });
    }
  }
  return null;
}

function publicKeyOf(spki: Buffer, cache: boolean): KeyObject {
  const id = cache ? spki.toString('base64') : '';
  const cached = cache ? keyCache.get(id) : undefined;
  if (cached) return cached;
  let key: KeyObject;
  try {
    key = ecPublicKeyFromJwk(spki) ?? createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    throw new PkiError('malformed', 'malformed public key');
  }
  if (!cache) return key;
  if (keyCache.size >= KEY_CACHE_SIZE) keyCache.delete(keyCache.keys().next().value as string);
  keyCache.set(id, key);
  return key;
}
