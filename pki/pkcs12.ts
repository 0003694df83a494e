/**
 * PKCS#12 (RFC 7292) files for keys the server makes and delivers to their holder
 * (docs/decisions/0003-pkcs12.md).
 *
 * Layout and algorithms are those `openssl pkcs12 -export` of OpenSSL 3 uses by default:
 * ```
 * PFX { version 3,
 *   authSafe ContentInfo(data) → AuthenticatedSafe [
 *     ContentInfo(encryptedData, PBES2/PBKDF2-HMAC-SHA256/AES-256-CBC) → SafeContents [ certBag (holder, with
 *       friendlyName + localKeyId), certBag (each chain certificate) ],
 *     ContentInfo(data) → SafeContents [ pkcs8ShroudedKeyBag (PBES2/PBKDF2-HMAC-SHA256/AES-256-CBC,
 *       friendlyName + localKeyId) ] ],
 *   macData { HMAC-SHA256, key from the RFC 7292 Appendix B KDF } }
 * ```
 * The MAC uses the Appendix B KDF because that is what OpenSSL 3.0 (and Node's tls, and Windows)
 * verify; PBMAC1 (RFC 9579) needs OpenSSL 3.4.
 *
 * Why hand-made on der.ts rather than pkijs's PFX classes: pkijs runs the Appendix B iteration loop
 * synchronously in pure JavaScript (@noble/hashes) inside one call, so a PKCS#12 at the default
 * 600,000 iterations would block the event loop for ~0.75 s in one piece (measured here); its PFX API
 * also needs a global WebCrypto engine and an order-sensitive chain of `makeInternalValues` calls
 * across six classes to say what is ~60 lines of DER here. PBKDF2 and AES run in Node's native crypto (PBKDF2 on the libuv thread pool), the
 * Appendix B loop uses native SHA-256 and yields to the event loop. Every file this module makes is read
 * by `openssl pkcs12` (without -legacy) and by Node's `tls.createSecureContext` in
 * test/interop/pkcs12.test.ts.
 */
import { X509Certificate, createHash, hash, createCipheriv, createHmac, pbkdf2 as nodePbkdf2, randomBytes, type KeyObject } from 'node:crypto';
import { integer, nullValue, octetString, oid, sequence, setOf, explicit, implicitPrimitive, tlv, Tag } from './der.ts';
import { OID } from './algorithms.ts';
import { PkiError } from './pki-error.ts';

const P12 = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSha256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
} as const;

/**
 * Default PBKDF2 and MAC iteration count: 600,000, OWASP's current figure for PBKDF2-HMAC-SHA256.
 * A generated passphrase (128+ bits) needs no stretching, but a holder may be given one they chose, and
 * the file travels on removable media where an offline guesser can take it. The MAC gets the same count,
 * or it would be the cheaper guessing oracle. Measured cost on the 2-core machine kind: see the decision
 * record.
 */
export const DEFAULT_PKCS12_ITERATIONS = 600_000;

const SALT_LENGTH = 16;
const MIN_ITERATIONS = 1000; // NIST SP 800-132 §5.2 minimum
const MAX_ITERATIONS = 10_000_000;
/** Appendix B loop: yield to the event loop after this many hashes. */
const YIELD_EVERY = 20_000;

const pbkdf2 = (password: Buffer, salt: Buffer, iterations: number): Promise<Buffer> =>
  new Promise((resolve, reject) =>
    nodePbkdf2(password, salt, iterations, 32, 'sha256', (err, key) => (err ? reject(err) : resolve(key))),
  );

interface Pbes2Result {
  /** DER AlgorithmIdentifier (PBES2 with its parameters). */
  algorithm: Buffer;
  ciphertext: Buffer;
}

/**
 * PBES2 encryption (RFC 8018 §6.2) with PBKDF2-HMAC-SHA256 and AES-256-CBC; returns the DER
 * AlgorithmIdentifier and the ciphertext. The password is the passphrase's UTF-8 octets, which is
 * what OpenSSL and Node pass to PBKDF2 inside PKCS#12 (the BMPString form is only for Appendix B).
 */
async function pbes2Encrypt(plaintext: Buffer, password: Buffer, iterations: number, salt: Buffer, iv: Buffer): Promise<Pbes2Result> {
  const key = await pbkdf2(password, salt, iterations);
  const cipher = createCipheriv('aes-256-cbc', key, iv); // PKCS#7 padding, RFC 8018 §6.2.1 step 4
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  key.fill(0);
  const algorithm = sequence(
    oid(P12.pbes2),
    sequence(
      // PBKDF2-params (RFC 8018 A.2): keyLength omitted (fixed by AES-256), PRF named explicitly
      // because the default is hmacWithSHA1.
      sequence(oid(P12.pbkdf2), sequence(octetString(salt), integer(iterations), sequence(oid(P12.hmacWithSha256), nullValue()))),
      sequence(oid(P12.aes256Cbc), octetString(iv)),
    ),
  );
  return { algorithm, ciphertext };
}

/** BMPString content: UTF-16BE code units (X.680 §41), for friendlyName and the Appendix B password. */
function bmp(text: string): Buffer {
  const out = Buffer.alloc(text.length * 2);
  for (let i = 0; i < text.length; i++) out.writeUInt16BE(text.charCodeAt(i), i * 2);
  return out;
}

/**
 * The RFC 7292 Appendix B.2 key derivation with SHA-256 (u = 32, v = 64) for ID 3 (MAC key),
 * producing n ≤ u octets, so a single block A₁ is needed and step 6C (updating I) never runs.
 * The password is the BMPString of the passphrase with two zero octets appended (B.1).
 */
async function pkcs12MacKey(passphrase: string, salt: Buffer, iterations: number): Promise<Buffer> {
  const v = 64;
  const repeatTo = (src: Buffer): Buffer => {
    if (src.length === 0) return Buffer.alloc(0);
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length];
    return out;
  };
  const password = Buffer.concat([bmp(passphrase), Buffer.alloc(2)]);
  const D = Buffer.alloc(v, 3);
  const I = Buffer.concat([repeatTo(salt), repeatTo(password)]);
  let A = createHash('sha256').update(D).update(I).digest();
  for (let i = 1; i < iterations; i++) {
    A = hash('sha256', A, 'buffer'); // one-shot native hash: half the cost of createHash per round
    if (i % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  password.fill(0);
  I.fill(0);
  return A;
}

/** PKCS12Attribute (RFC 7292 §4.2): SEQUENCE { attrId, attrValues SET OF }. */
const attribute = (attrId: string, value: Buffer): Buffer => sequence(oid(attrId), setOf(value));

function certBag(der: Buffer, attributes: Buffer[]): Buffer {
  // CertBag (RFC 7292 §4.2.3): x509Certificate, certValue [0] EXPLICIT OCTET STRING of the DER.
  const bagValue = sequence(oid(P12.x509Certificate), explicit(0, octetString(der)));
  return safeBag(P12.certBag, bagValue, attributes);
}

/** SafeBag (RFC 7292 §4.2): bagId, bagValue [0] EXPLICIT, bagAttributes SET OF OPTIONAL. */
function safeBag(bagId: string, bagValue: Buffer, attributes: Buffer[]): Buffer {
  const parts = [oid(bagId), explicit(0, bagValue)];
  if (attributes.length > 0) parts.push(setOf(...attributes));
  return sequence(...parts);
}

function parseCertificate(der: Buffer, what: string): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch {
    throw new PkiError('malformed', `the ${what} is not an X.509 certificate`);
  }
}

/**
 * Builds a password-protected PKCS#12 holding `privateKey`, its `certificate` and the `chain`.
 * Both the key bag and the certificate bags are encrypted with PBES2 (PBKDF2-HMAC-SHA256,
 * AES-256-CBC) and the whole is MACed with HMAC-SHA256; OpenSSL 3.0+ reads it without `-legacy`.
 *
 * @param p.privateKey the holder's private key (must match `certificate`); SM2 keys too, in either of
 * Node's forms (their PKCS#8 is the same, and reads back as an SM2 key: ./sm2-key.ts)
 * @param p.certificate the holder's certificate, DER (PEM is accepted and re-encoded as DER)
 * @param p.chain issuing CA certificates, nearest first; default none
 * @param p.passphrase protects the file; non-empty. See {@link generatePassphrase}.
 * @param p.friendlyName label shown by importers (BMPString; Chinese is fine); default none
 * @param p.iterations PBKDF2 and MAC iterations; default {@link DEFAULT_PKCS12_ITERATIONS}
 * @param p.random salt and IV source; default crypto.randomBytes
 */
export async function buildPkcs12(p: {
  privateKey: KeyObject;
  certificate: Buffer;
  chain?: Buffer[];
  passphrase: string;
  friendlyName?: string;
  iterations?: number;
  random?: (n: number) => Buffer;
}): Promise<Buffer> {
  const { privateKey, passphrase, friendlyName, chain = [], iterations = DEFAULT_PKCS12_ITERATIONS, random = randomBytes } = p;
  if (typeof passphrase !== 'string' || passphrase.length === 0) {
    throw new PkiError('invalid-argument', 'a PKCS#12 passphrase must not be empty');
  }
  if (!Number.isSafeInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new PkiError('invalid-argument', `PKCS#12 iterations must be an integer from ${MIN_ITERATIONS} to ${MAX_ITERATIONS}`);
  }
  if (friendlyName !== undefined && (friendlyName.length === 0 || /[\ud800-\udfff]/.test(friendlyName))) {
    // BMPString holds UCS-2 only: characters outside the Basic Multilingual Plane cannot be encoded.
    throw new PkiError('invalid-argument', 'the friendlyName must be non-empty text within the Basic Multilingual Plane');
  }
  if (privateKey?.type !== 'private') throw new PkiError('invalid-argument', 'privateKey must be a private KeyObject');
  const certificate = parseCertificate(p.certificate, 'certificate');
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new PkiError('invalid-argument', 'the certificate does not belong to the private key');
  }
  const chainCertificates = chain.map((der, i) => parseCertificate(der, `chain certificate ${i + 1}`));

  // localKeyId pairs the key with its certificate; OpenSSL uses the SHA-1 of the certificate.
  const attributes = [attribute(P12.localKeyId, octetString(createHash('sha1').update(certificate.raw).digest()))];
  if (friendlyName !== undefined) attributes.push(attribute(P12.friendlyName, tlv(Tag.BMP_STRING, bmp(friendlyName))));

  // Salts and IVs are drawn up front in a fixed order, so a fixed `random` gives a fixed file.
  const certSalt = random(SALT_LENGTH);
  const certIv = random(16);
  const keySalt = random(SALT_LENGTH);
  const keyIv = random(16);
  const macSalt = random(SALT_LENGTH);

  // Certificates: SafeContents inside EncryptedData (RFC 5652 §8, version 0; encryptedContent
  // [0] IMPLICIT OCTET STRING), so the holder's name is not readable without the passphrase.
  const certContents = sequence(certBag(certificate.raw, attributes), ...chainCertificates.map((c) => certBag(c.raw, [])));
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const password = Buffer.from(passphrase, 'utf8');
  let certs: Pbes2Result, shrouded: Pbes2Result, macKey: Buffer;
  try {
    // The two PBKDF2 runs go to the libuv thread pool while the Appendix B loop runs here.
    [certs, shrouded, macKey] = await Promise.all([
      pbes2Encrypt(certContents, password, iterations, certSalt, certIv),
      pbes2Encrypt(pkcs8, password, iterations, keySalt, keyIv),
      pkcs12MacKey(passphrase, macSalt, iterations),
    ]);
  } finally {
    pkcs8.fill(0);
    password.fill(0);
  }

  const encryptedData = sequence(integer(0), sequence(oid(P12.data), certs.algorithm, implicitPrimitive(0, certs.ciphertext)));
  // Key: pkcs8ShroudedKeyBag = EncryptedPrivateKeyInfo (RFC 5958 §3) in a plain data SafeContents.
  const keyContents = sequence(
    safeBag(P12.pkcs8ShroudedKeyBag, sequence(shrouded.algorithm, octetString(shrouded.ciphertext)), attributes),
  );
  const authenticatedSafe = sequence(
    sequence(oid(P12.encryptedData), explicit(0, encryptedData)),
    sequence(oid(P12.data), explicit(0, octetString(keyContents))),
  );

  // MacData (RFC 7292 §4): HMAC over the content octets of authSafe's OCTET STRING.
  const mac = createHmac('sha256', macKey).update(authenticatedSafe).digest();
  macKey.fill(0);
  const macData = sequence(
    sequence(sequence(oid(OID.sha256), nullValue()), octetString(mac)),
    octetString(macSalt),
    integer(iterations),
  );
  return sequence(integer(3), sequence(oid(P12.data), explicit(0, octetString(authenticatedSafe))), macData);
}

/** Crockford's base32 alphabet in lower case: no i, l, o or u, so nothing reads as another character. */
const PASSPHRASE_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * A random passphrase for a PKCS#12 file: 28 characters of Crockford base32 (140 bits) in seven
 * groups of four, for example `7m2k-q9xd-…`, easy to read out and type.
 *
 * @param random entropy source; default crypto.randomBytes (18 octets are drawn)
 */
export function generatePassphrase(random: (n: number) => Buffer = randomBytes): string {
  const bytes = random(18);
  if (bytes.length !== 18) throw new PkiError('invalid-argument', 'the random source returned the wrong length');
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  const chars: string[] = [];
  for (let i = 0; i < 28; i++) chars.push(PASSPHRASE_ALPHABET[Number((bits >> BigInt(144 - 5 * (i + 1))) & 31n)]);
  return chars.join('').match(/.{4}/g)!.join('-');
}
