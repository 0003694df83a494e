/**
 * A small ACME client on `jose` (RFC 8555 §6.2 JWS), for what certbot does not do: bad nonces, bad
 * signatures, key rollover, ARI, names out of scope. Every request is signed like a real client's;
 * the test may spoil one part of it on purpose.
 */
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, FlattenedSign, type JWK } from 'jose';

export interface AcmeAnswer {
  status: number;
  headers: Headers;
  body: any;
  raw: Buffer;
}

export class TestAcmeClient {
  kid: string | undefined;
  private nonce: string | undefined;
  jwk!: JWK;

  constructor(readonly directoryUrl: string, public key: KeyObject = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, public alg = 'ES256') {}

  directory!: Record<string, any>;

  async init(): Promise<this> {
    this.directory = await (await fetch(this.directoryUrl)).json();
    this.jwk = await exportJWK(this.publicKey());
    return this;
  }

  publicKey(): KeyObject {
    return createPublicKeyOf(this.key);
  }

  thumbprint(): Promise<string> {
    return calculateJwkThumbprint(this.jwk, 'sha256');
  }

  async freshNonce(): Promise<string> {
    const res = await fetch(this.directory.newNonce, { method: 'HEAD' });
    return res.headers.get('replay-nonce')!;
  }

  /** A flattened JWS of `payload` (null: POST-as-GET) to `url`. */
  async sign(url: string, payload: unknown, options: { jwk?: boolean; nonce?: string; key?: KeyObject; alg?: string; header?: Record<string, unknown> } = {}): Promise<Record<string, string>> {
    const nonce = options.nonce ?? this.nonce ?? (await this.freshNonce());
    this.nonce = undefined;
    const header: Record<string, unknown> = { alg: options.alg ?? this.alg, nonce, url, ...(options.header ?? {}) };
    if (options.jwk || !this.kid) header.jwk = options.key ? await exportJWK(createPublicKeyOf(options.key)) : this.jwk;
    else header.kid = this.kid;
    const octets = payload === null ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(payload));
    return (await new FlattenedSign(octets).setProtectedHeader(header as never).sign(options.key ?? this.key)) as unknown as Record<string, string>;
  }

  async post(url: string, payload: unknown, options: Parameters<TestAcmeClient['sign']>[2] = {}): Promise<AcmeAnswer> {
    return this.send(url, await this.sign(url, payload, options));
  }

  async send(url: string, body: unknown, contentType = 'application/jose+json'): Promise<AcmeAnswer> {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': contentType }, body: JSON.stringify(body) });
    this.nonce = res.headers.get('replay-nonce') ?? undefined;
    const raw = Buffer.from(await res.arrayBuffer());
    const type = res.headers.get('content-type') ?? '';
    return { status: res.status, headers: res.headers, raw, body: type.includes('json') && raw.length ? JSON.parse(raw.toString()) : raw.toString() };
  }

  /** newAccount bound by the officer's key `eab` (RFC 8555 §7.3.4). */
  async register(eab: { keyId: string; hmacKey: string } | null, extra: Record<string, unknown> = {}): Promise<AcmeAnswer> {
    const url = this.directory.newAccount;
    const payload: Record<string, unknown> = { termsOfServiceAgreed: true, ...extra };
    if (eab) payload.externalAccountBinding = await externalAccountBinding(eab, this.jwk, url);
    const res = await this.post(url, payload, { jwk: true });
    if (res.status === 201 || res.status === 200) this.kid = res.headers.get('location')!;
    return res;
  }
}

export async function externalAccountBinding(eab: { keyId: string; hmacKey: string }, jwk: JWK, url: string): Promise<Record<string, string>> {
  const octets = new TextEncoder().encode(JSON.stringify(jwk));
  return (await new FlattenedSign(octets).setProtectedHeader({ alg: 'HS256', kid: eab.keyId, url }).sign(Buffer.from(eab.hmacKey, 'base64url'))) as unknown as Record<string, string>;
}

export const keyAuthorizationOf = async (token: string, jwk: JWK): Promise<string> => `${token}.${await calculateJwkThumbprint(jwk, 'sha256')}`;
export const dnsValueOf = (keyAuth: string): string => createHash('sha256').update(keyAuth).digest('base64url');

import { createPublicKey } from 'node:crypto';
function createPublicKeyOf(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}
