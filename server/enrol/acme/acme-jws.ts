/**
 * The JWS of every ACME POST (RFC 8555 §6.2–6.5), checked with `jose`: flattened JSON serialization,
 * an allowed algorithm, exactly one of `jwk` and `kid`, the `url` header equal to the URL asked, and a
 * nonce this server issued and nobody used yet (consumed here, so a replay is refused as badNonce).
 */
import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, flattenedVerify, importJWK, type FlattenedJWSInput, type JWK } from 'jose';
import { AcmeProblem } from './acme-problem.ts';

/** Account-key algorithms (RFC 8555 §6.2 asks for ES256 and EdDSA at least). */
export const ACCOUNT_KEY_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'] as const;

export interface JwsHeader {
  alg: string;
  nonce: string;
  url: string;
  jwk?: JWK;
  kid?: string;
}

export interface VerifiedJws {
  header: JwsHeader;
  /** The payload octets; empty for a POST-as-GET. */
  payload: Buffer;
  /** The JSON payload, or null for a POST-as-GET. */
  json: unknown;
}

/**
 * Reads the flattened JWS and its protected header; malformed input is `malformed`, nothing verified
 * yet. `inner`: the inner JWS of a keyChange, which carries no nonce (RFC 8555 §7.3.5).
 */
export function parseJws(body: unknown, options: { inner?: boolean } = {}): { jws: FlattenedJWSInput; header: JwsHeader } {
  const jws = body as Partial<FlattenedJWSInput> | null;
  if (!jws || typeof jws !== 'object' || typeof jws.protected !== 'string' || typeof jws.payload !== 'string' || typeof jws.signature !== 'string') {
    throw new AcmeProblem('malformed', 'the body is not a flattened JWS (protected, payload, signature)');
  }
  if ('header' in jws) throw new AcmeProblem('malformed', 'an ACME JWS has no unprotected header');
  let header: JwsHeader;
  try {
    header = decodeProtectedHeader(jws as FlattenedJWSInput) as unknown as JwsHeader;
  } catch {
    throw new AcmeProblem('malformed', 'the protected header is not base64url JSON');
  }
  if (typeof header.alg !== 'string' || !(ACCOUNT_KEY_ALGORITHMS as readonly string[]).includes(header.alg)) {
    throw new AcmeProblem('badSignatureAlgorithm', `algorithm ${String(header.alg)} is not accepted`, { extra: { algorithms: [...ACCOUNT_KEY_ALGORITHMS] } });
  }
  if (!!header.jwk === !!header.kid) throw new AcmeProblem('malformed', 'the protected header carries exactly one of jwk and kid');
  if (typeof header.url !== 'string') throw new AcmeProblem('unauthorized', 'the protected header has no url');
  if (options.inner) {
    if (header.nonce !== undefined) throw new AcmeProblem('malformed', 'the inner JWS of keyChange carries no nonce');
  } else if (typeof header.nonce !== 'string' || !header.nonce) {
    throw new AcmeProblem('badNonce', 'the protected header has no nonce');
  }
  return { jws: jws as FlattenedJWSInput, header };
}

/** Verifies `jws` with the public JWK `key`; a failed signature is `malformed` (RFC 8555 §6.2). */
export async function verifyWith(jws: FlattenedJWSInput, header: JwsHeader, key: JWK): Promise<VerifiedJws> {
  let payload: Uint8Array;
  try {
    const imported = await importJWK(publicOnly(key), header.alg);
    ({ payload } = await flattenedVerify(jws, imported, { algorithms: [header.alg] }));
  } catch {
    throw new AcmeProblem('malformed', 'the JWS signature does not verify with the account key');
  }
  const octets = Buffer.from(payload);
  let json: unknown = null;
  if (octets.length) {
    try {
      json = JSON.parse(octets.toString('utf8'));
    } catch {
      throw new AcmeProblem('malformed', 'the payload is not JSON');
    }
  }
  return { header, payload: octets, json };
}

/** A JWK with its private members dropped: a client that sends them gets them ignored, never stored. */
export function publicOnly(jwk: JWK): JWK {
  if (typeof jwk !== 'object' || jwk === null) throw new AcmeProblem('badPublicKey', 'jwk is not an object');
  const { kty, crv, x, y, n, e } = jwk;
  if (kty === 'EC' && (crv === 'P-256' || crv === 'P-384') && x && y) return { kty, crv, x, y };
  if (kty === 'OKP' && crv === 'Ed25519' && x) return { kty, crv, x };
  if (kty === 'RSA' && n && e) {
    if (Buffer.from(n, 'base64url').length < 256) throw new AcmeProblem('badPublicKey', 'an RSA account key has at least 2048 bits');
    return { kty, n, e };
  }
  throw new AcmeProblem('badPublicKey', 'the account key is not P-256, P-384, Ed25519 or RSA ≥ 2048');
}

/** The RFC 7638 SHA-256 thumbprint of a public JWK (base64url). */
export function thumbprintOf(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint(publicOnly(jwk), 'sha256');
}

/** The key authorization of a challenge token (RFC 8555 §8.1). */
export const keyAuthorization = (token: string, thumbprint: string): string => `${token}.${thumbprint}`;

/** The TXT value dns-01 expects (RFC 8555 §8.4). */
export const dnsTxtValue = (keyAuth: string): string => createHash('sha256').update(keyAuth).digest('base64url');
