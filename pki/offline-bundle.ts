/**
 * The bundles that cross the air gap between the online service and the offline root
 * (docs/decisions/0026-offline-root.md): a JSON envelope — format, kind, the hierarchy it belongs to
 * (the SHA-256 fingerprint of the root certificate), a sequence number, a time and a payload — with a
 * detached signature over the envelope's canonical bytes. Requests are signed by the online
 * service's audit key, responses by the root key. Pure: parsing, canonical bytes, signing through a
 * {@link Signer} and verifying against a key the caller pins; what a sequence number must be is the
 * caller's rule.
 */
import { createHash } from 'node:crypto';
import { verifySignature } from './certificate-reader.ts';
import { PkiError } from './pki-error.ts';
import type { Signer } from './signer.ts';

/** The `format` member of every bundle; a new layout gets a new version. */
export const BUNDLE_FORMAT = 'tierca-offline-bundle/1';

/** Which way a bundle goes: `request` online → offline, `response` offline → online. */
export type BundleKind = 'request' | 'response';

/** A bundle as it is written to a file (JSON) and read back, signature included. */
export interface BundleEnvelope<P = unknown> {
  format: typeof BUNDLE_FORMAT;
  kind: BundleKind;
  /** SHA-256 of the root certificate's DER, lowercase hex: the hierarchy the bundle is bound to. */
  hierarchy: string;
  /** 1, 2, 3, … per kind: each side numbers what it sends without gaps. */
  sequence: number;
  /** ISO 8601 time of signing. */
  createdAt: string;
  payload: P;
  /** The signing key's DER SubjectPublicKeyInfo and DER AlgorithmIdentifier, base64. */
  signer: { publicKeyInfo: string; signatureAlgorithm: string };
  /** base64 signature over {@link bundleSignedBytes}. */
  signature: string;
}

/** What {@link signBundle} takes: every member but the signer's description and the signature. */
export type UnsignedBundle<P> = Omit<BundleEnvelope<P>, 'format' | 'signer' | 'signature'>;

/**
 * Canonical JSON (RFC 8785-like for the values bundles hold: objects with keys sorted by UTF-16 code
 * units, no whitespace, undefined members left out). Numbers must be safe integers: bundles carry no
 * fractions, and an integer's JSON text is the same everywhere.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new PkiError('invalid-argument', `bundle numbers must be safe integers, not ${value}`);
    return JSON.stringify(value);
  }
  if (typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new PkiError('invalid-argument', `a bundle cannot hold a ${typeof value}`);
}

/**
 * The bytes a bundle's signature covers: the format line, then the canonical JSON of every member
 * but `signature` (the signer's key and algorithm included, so neither can be swapped).
 */
export function bundleSignedBytes(envelope: Omit<BundleEnvelope, 'signature'>): Buffer {
  const { format, kind, hierarchy, sequence, createdAt, payload, signer } = envelope;
  return Buffer.from(`${BUNDLE_FORMAT}\n${canonicalJson({ format, kind, hierarchy, sequence, createdAt, payload, signer })}`, 'utf8');
}

/** Signs a bundle with `signer` and returns the file's bytes (pretty JSON, one trailing newline). */
export async function signBundle<P>(unsigned: UnsignedBundle<P>, signer: Signer): Promise<Buffer> {
  const body: Omit<BundleEnvelope<P>, 'signature'> = {
    format: BUNDLE_FORMAT,
    ...unsigned,
    signer: { publicKeyInfo: signer.publicKeyInfo.toString('base64'), signatureAlgorithm: signer.signatureAlgorithm.toString('base64') },
  };
  // Canonical bytes first: a payload that cannot be encoded fails before anything is signed.
  const signed = bundleSignedBytes(body);
  const signature = await signer.sign(signed);
  return Buffer.from(`${JSON.stringify({ ...body, signature: signature.toString('base64') }, null, 2)}\n`, 'utf8');
}

const HEX64 = /^[0-9a-f]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Reads a bundle file: JSON with every envelope member of the right type. Does not verify the
 * signature ({@link verifyBundle} does, against a pinned key).
 *
 * @throws PkiError('malformed') naming the first member that is missing or wrong.
 */
export function parseBundle(bytes: Buffer | string): BundleEnvelope {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch {
    throw new PkiError('malformed', 'not a tierca bundle: the file is not JSON');
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new PkiError('malformed', 'not a tierca bundle: not a JSON object');
  const v = value as Record<string, unknown>;
  const bad = (member: string, what: string) => new PkiError('malformed', `not a tierca bundle: ${member} ${what}`);
  if (v.format !== BUNDLE_FORMAT) throw bad('format', `is not "${BUNDLE_FORMAT}"`);
  if (v.kind !== 'request' && v.kind !== 'response') throw bad('kind', 'is not request or response');
  if (typeof v.hierarchy !== 'string' || !HEX64.test(v.hierarchy)) throw bad('hierarchy', 'is not a SHA-256 fingerprint in lowercase hex');
  if (typeof v.sequence !== 'number' || !Number.isSafeInteger(v.sequence) || v.sequence < 1) throw bad('sequence', 'is not a whole number from 1');
  if (typeof v.createdAt !== 'string' || Number.isNaN(Date.parse(v.createdAt))) throw bad('createdAt', 'is not a time');
  if (!v.payload || typeof v.payload !== 'object' || Array.isArray(v.payload)) throw bad('payload', 'is not an object');
  const signer = v.signer as Record<string, unknown> | undefined;
  if (!signer || typeof signer.publicKeyInfo !== 'string' || typeof signer.signatureAlgorithm !== 'string' || !BASE64.test(signer.publicKeyInfo) || !BASE64.test(signer.signatureAlgorithm)) {
    throw bad('signer', 'does not name a public key and a signature algorithm in base64');
  }
  if (typeof v.signature !== 'string' || v.signature === '' || !BASE64.test(v.signature)) throw bad('signature', 'is not base64');
  return {
    format: BUNDLE_FORMAT, kind: v.kind, hierarchy: v.hierarchy, sequence: v.sequence, createdAt: v.createdAt, payload: v.payload,
    signer: { publicKeyInfo: signer.publicKeyInfo, signatureAlgorithm: signer.signatureAlgorithm }, signature: v.signature,
  };
}

/**
 * Whether `envelope` was signed by the key `publicKeyInfo` (DER SPKI) the caller trusts for this
 * kind of bundle, over exactly these members. False for another signer, an altered member, or a
 * signature algorithm that does not fit the key.
 */
export function verifyBundle(envelope: BundleEnvelope, publicKeyInfo: Buffer): boolean {
  if (!Buffer.from(envelope.signer.publicKeyInfo, 'base64').equals(publicKeyInfo)) return false;
  try {
    return verifySignature({
      algorithm: Buffer.from(envelope.signer.signatureAlgorithm, 'base64'),
      publicKeyInfo,
      data: bundleSignedBytes(envelope),
      signature: Buffer.from(envelope.signature, 'base64'),
      cacheKey: false,
    });
  } catch (err) {
    if (err instanceof PkiError) return false;
    throw err;
  }
}

/**
 * Runs `read` (a bundle or payload reader of this module or pki/offline-ceremony.ts) and turns the
 * PkiError it throws for a malformed or altered bundle into the caller's refusal (`refuse(message)`);
 * any other error passes unchanged. Both machines refuse through it (`bundle-invalid`).
 */
export function readOrRefuse<T>(read: () => T, refuse: (message: string) => Error): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof PkiError) throw refuse(err.message);
    throw err;
  }
}

/** SHA-256 of a bundle file's bytes, hex: how a response names the request it answers. */
export const bundleDigest = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** SHA-256 of a DER object (a certificate, a public key), lowercase hex. */
export const sha256Hex = (der: Buffer): string => createHash('sha256').update(der).digest('hex');

/** A SHA-256 fingerprint as people compare it at a ceremony: uppercase pairs joined by colons. */
export const formatFingerprint = (hex: string): string => hex.toUpperCase().match(/../g)!.join(':');
