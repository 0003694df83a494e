/**
 * The one way a server-made key reaches its holder: a PKCS#12 (key, certificate, chain), built
 * BEFORE the certificate is committed — a key that cannot be delivered is never issued — under the
 * requester's passphrase, or one made here and returned once. A passphrase the requester chose
 * survives dual control: it is kept sealed by the keystore with the pending request (never plain),
 * and the approval that issues the certificate delivers the PKCS#12 under it.
 */
import type { KeyObject } from 'node:crypto';
import { buildPkcs12, generatePassphrase } from '../../pki/pkcs12.ts';
import type { KeyStore } from '../../pki/keystore/keystore.ts';

/** A PKCS#12 ready to hand out; `passphrase` is set only when the server made it (the requester knows theirs). */
export interface DeliveredKey {
  pkcs12: Buffer;
  passphrase?: string;
}

/**
 * The friendlyName of a holder's PKCS#12 (RFC 7292 §4.2, a BMPString): the holder's name, or none
 * when the name holds a character outside the Basic Multilingual Plane, which a BMPString (UCS-2)
 * cannot encode — the file is still delivered, without a label, rather than refused.
 */
export function friendlyNameOf(name: string): string | undefined {
  return name.length > 0 && !/[\ud800-\udfff]/.test(name) ? name : undefined;
}

/** Builds the PKCS#12 for `p.privateKey` and its certificate; see the module comment. */
export async function deliverKey(p: {
  privateKey: KeyObject;
  certificate: Buffer;
  chain: readonly Buffer[];
  holderName: string;
  /** The requester's passphrase; absent, one is made with `random` and returned. */
  passphrase?: string;
  random?: (n: number) => Buffer;
}): Promise<DeliveredKey> {
  const passphrase = p.passphrase ?? generatePassphrase(p.random);
  const pkcs12 = await buildPkcs12({
    privateKey: p.privateKey, certificate: p.certificate, chain: [...p.chain], passphrase, friendlyName: friendlyNameOf(p.holderName),
  });
  return p.passphrase ? { pkcs12 } : { pkcs12, passphrase };
}

/** The keystore binding of a pending request's passphrase: it opens only for that request. */
const passphraseAad = (requestId: string): string => `request-passphrase:${requestId}`;

/** Seals the requester's PKCS#12 passphrase for the pending request `requestId` (base64, for its payload). */
export function sealPassphrase(keystore: Pick<KeyStore, 'seal'>, requestId: string, passphrase: string): string {
  const plain = Buffer.from(passphrase, 'utf8');
  try {
    return keystore.seal(plain, passphraseAad(requestId)).toString('base64');
  } finally {
    plain.fill(0);
  }
}

/** Opens what {@link sealPassphrase} sealed for `requestId`. */
export function unsealPassphrase(keystore: Pick<KeyStore, 'unseal'>, requestId: string, sealed: string): string {
  const plain = keystore.unseal(Buffer.from(sealed, 'base64'), passphraseAad(requestId));
  try {
    return plain.toString('utf8');
  } finally {
    plain.fill(0);
  }
}
