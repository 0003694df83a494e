/**
 * The token objects of the PKCS#11 keystore: how a key id becomes CKA_LABEL and CKA_ID, the
 * generation templates (PKCS#11 v2.40 §4.8–4.9: private keys CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE, CKA_EXTRACTABLE=false), and finding objects back by label and id.
 */
import { createHash } from 'node:crypto';
import type * as Pkcs11Js from 'pkcs11js';
import { KeystoreError } from './pkcs11-errors.ts';
import type { Pkcs11KeySpec } from './pkcs11-public-key.ts';

type Lib = Pkcs11Js.PKCS11;
type Ck = typeof Pkcs11Js;
type Template = Pkcs11Js.Template;

/** CKA_LABEL of the objects of key `id`: `tierca:<id>` (UTF-8), so other applications' objects never collide. */
export const tokenLabelOf = (id: string): string => `tierca:${id}`;

/** CKA_ID of the objects of key `id`: the first 16 octets of SHA-256(UTF-8 label); pairs the public and private object. */
export const tokenIdOf = (label: string): Buffer => createHash('sha256').update(label, 'utf8').digest().subarray(0, 16);

/** Label of the keystore's AES-256 sealing key (escrowed user keys). */
export const SEAL_KEY_LABEL = 'tierca:seal-kek';

/** Templates for C_GenerateKeyPair of a CA key: both objects on the token; the private one sensitive and never extractable. */
export function keyPairTemplates(ck: Ck, spec: Pkcs11KeySpec, label: string): { mechanism: number; publicKey: Template; privateKey: Template } {
  const id = tokenIdOf(label);
  const common = [
    { type: ck.CKA_TOKEN, value: true },
    { type: ck.CKA_LABEL, value: label },
    { type: ck.CKA_ID, value: id },
  ];
  const publicKey: Template = [
    ...common,
    { type: ck.CKA_PRIVATE, value: false },
    { type: ck.CKA_VERIFY, value: true },
    { type: ck.CKA_ENCRYPT, value: false },
    { type: ck.CKA_WRAP, value: false },
  ];
  if (spec.kind === 'ec') publicKey.push({ type: ck.CKA_EC_PARAMS, value: spec.ecParams });
  else publicKey.push({ type: ck.CKA_MODULUS_BITS, value: spec.bits }, { type: ck.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) });
  const privateKey: Template = [
    ...common,
    { type: ck.CKA_PRIVATE, value: true },
    { type: ck.CKA_SENSITIVE, value: true },
    { type: ck.CKA_EXTRACTABLE, value: false },
    { type: ck.CKA_SIGN, value: true },
    { type: ck.CKA_DECRYPT, value: false },
    { type: ck.CKA_UNWRAP, value: false },
    { type: ck.CKA_DERIVE, value: false },
  ];
  return { mechanism: spec.kind === 'ec' ? ck.CKM_EC_KEY_PAIR_GEN : ck.CKM_RSA_PKCS_KEY_PAIR_GEN, publicKey, privateKey };
}

/** Template for the AES-256 sealing key: on the token, private, sensitive, never extractable, encrypt/decrypt only. */
export function sealKeyTemplate(ck: Ck): Template {
  return [
    { type: ck.CKA_CLASS, value: ck.CKO_SECRET_KEY },
    { type: ck.CKA_KEY_TYPE, value: ck.CKK_AES },
    { type: ck.CKA_VALUE_LEN, value: 32 },
    { type: ck.CKA_TOKEN, value: true },
    { type: ck.CKA_LABEL, value: SEAL_KEY_LABEL },
    { type: ck.CKA_ID, value: tokenIdOf(SEAL_KEY_LABEL) },
    { type: ck.CKA_PRIVATE, value: true },
    { type: ck.CKA_SENSITIVE, value: true },
    { type: ck.CKA_EXTRACTABLE, value: false },
    { type: ck.CKA_ENCRYPT, value: true },
    { type: ck.CKA_DECRYPT, value: true },
    { type: ck.CKA_SIGN, value: false },
    { type: ck.CKA_VERIFY, value: false },
    { type: ck.CKA_WRAP, value: false },
    { type: ck.CKA_UNWRAP, value: false },
  ];
}

/** Every object of `objectClass` with the label (and its derived CKA_ID). */
export function findObjects(lib: Lib, ck: Ck, session: Buffer, objectClass: number, label: string): Buffer[] {
  lib.C_FindObjectsInit(session, [
    { type: ck.CKA_CLASS, value: objectClass },
    { type: ck.CKA_LABEL, value: label },
    { type: ck.CKA_ID, value: tokenIdOf(label) },
  ]);
  try {
    return lib.C_FindObjects(session, 16);
  } finally {
    lib.C_FindObjectsFinal(session);
  }
}

/** The one object of `objectClass` labelled `label`; 'key-missing' when there is none, 'token-error' when there are several. */
export function findOne(lib: Lib, ck: Ck, session: Buffer, objectClass: number, label: string, what: string): Buffer {
  const found = findObjects(lib, ck, session, objectClass, label);
  if (found.length === 0) throw new KeystoreError('key-missing', `the token holds no ${what} labelled "${label}"`);
  if (found.length > 1) throw new KeystoreError('token-error', `the token holds ${found.length} objects labelled "${label}" (${what}); tierca makes one per key`);
  return found[0];
}

/** Reads boolean attributes of an object (CK_BBOOL, one octet). */
export function booleansOf(lib: Lib, session: Buffer, object: Buffer, types: number[]): boolean[] {
  return lib.C_GetAttributeValue(session, object, types.map((type) => ({ type }))).map((a) => a.value.length > 0 && a.value[0] !== 0);
}
