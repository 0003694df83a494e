/**
 * SM2 proof of possession in CSRs (pki/csr.ts): the standard identity first, then the empty one, and
 * which one verified; everything else is refused with the exact code. CSRs made by the openssl CLI are
 * in test/interop/sm2.test.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { KeyObject } from 'node:crypto';
import { bitString, integer, nullValue, oid, sequence } from '../../pki/der.ts';
import { children, readOnly } from '../../pki/der-reader.ts';
import { OID, signatureAlgorithmIdentifier } from '../../pki/algorithms.ts';
import { buildCsr, checkCsrProofOfPossession, parseCsr, verifyCsr } from '../../pki/csr.ts';
import { generateKeyPair } from '../../pki/key-pair.ts';
import { encodeName } from '../../pki/name.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { sm2Signer } from '../../pki/sm2-signer.ts';
import { softwareSigner } from '../../pki/software-signer.ts';

const SUBJECT = encodeName([
  { type: 'C', value: 'CN' },
  { type: 'O', value: '湘潭市电子政务内网' },
  { type: 'CN', value: '张三' },
]);

function errorOf(fn: () => unknown): [string, string] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PkiError);
    return [(err as PkiError).code, (err as PkiError).message];
  }
  throw new Error('did not throw');
}

const BAD_SIGNATURE = ['bad-signature', 'CSR signature does not verify'];

/** The three parts of a CertificationRequest. */
function partsOf(csr: Buffer): { info: Buffer; algorithm: Buffer; signature: Buffer } {
  const [info, algorithm, signature] = children(readOnly(csr, 0x30));
  return { info: info.raw, algorithm: algorithm.raw, signature: signature.content.subarray(1) };
}

const relabel = (csr: Buffer, algorithm: Buffer) => {
  const { info, signature } = partsOf(csr);
  return sequence(info, algorithm, bitString(signature));
};

let sm2Key: KeyObject;
let standard: Buffer;

beforeAll(async () => {
  ({ privateKey: sm2Key } = await generateKeyPair('SM2'));
  standard = await buildCsr({ subject: SUBJECT, signer: softwareSigner({ privateKey: sm2Key, algorithm: 'SM2' }) });
});

describe('SM2 CSR proof of possession', () => {
  it('accepts our own SM2 CSR (standard identity) and says so', () => {
    const csr = parseCsr(standard);
    expect(csr.keyAlgorithm).toBe('SM2');
    expect(partsOf(standard).algorithm).toEqual(signatureAlgorithmIdentifier('SM2'));
    expect(checkCsrProofOfPossession(csr)).toEqual({ popIdentity: 'default' });
    expect(() => verifyCsr(csr)).not.toThrow();
  });

  it('accepts a CSR signed with the empty identity (OpenSSL 3.0\'s default) and says so', async () => {
    const empty = await buildCsr({ subject: SUBJECT, signer: sm2Signer({ privateKey: sm2Key, id: Buffer.alloc(0) }) });
    expect(checkCsrProofOfPossession(parseCsr(empty))).toEqual({ popIdentity: 'empty' });
  });

  it('refuses a CSR signed with any other identity', async () => {
    const alice = await buildCsr({ subject: SUBJECT, signer: sm2Signer({ privateKey: sm2Key, id: Buffer.from('ALICE123@YAHOO.COM') }) });
    expect(errorOf(() => verifyCsr(parseCsr(alice)))).toEqual(BAD_SIGNATURE);
  });

  it('refuses a flipped signature octet and a changed subject', () => {
    const flipped = Buffer.from(standard);
    flipped[flipped.length - 5] ^= 0x01;
    expect(errorOf(() => verifyCsr(parseCsr(flipped)))).toEqual(BAD_SIGNATURE);
    const { info, algorithm, signature } = partsOf(standard);
    const at = info.indexOf(Buffer.from('张三'));
    const changed = Buffer.from(info);
    changed[at + 2] ^= 0x01;
    expect(errorOf(() => verifyCsr(parseCsr(sequence(changed, algorithm, bitString(signature)))))).toEqual(BAD_SIGNATURE);
  });

  it('refuses an SM2 signature labelled ECDSA, and an ECDSA signature labelled SM2', async () => {
    expect(errorOf(() => verifyCsr(parseCsr(relabel(standard, signatureAlgorithmIdentifier('P-256')))))).toEqual(BAD_SIGNATURE);
    const { privateKey } = await generateKeyPair('P-256');
    const p256 = await buildCsr({ subject: SUBJECT, signer: softwareSigner({ privateKey, algorithm: 'P-256' }) });
    expect(checkCsrProofOfPossession(parseCsr(p256))).toEqual({ popIdentity: null });
    expect(errorOf(() => verifyCsr(parseCsr(relabel(p256, signatureAlgorithmIdentifier('SM2')))))).toEqual(BAD_SIGNATURE);
  });

  it('tolerates NULL parameters on SM2-with-SM3 and refuses any other parameters as malformed', () => {
    expect(checkCsrProofOfPossession(parseCsr(relabel(standard, sequence(oid(OID.sm2WithSm3), nullValue()))))).toEqual({ popIdentity: 'default' });
    expect(errorOf(() => verifyCsr(parseCsr(relabel(standard, sequence(oid(OID.sm2WithSm3), integer(1))))))).toEqual([
      'malformed',
      'malformed CSR: SM2-with-SM3 takes no parameters',
    ]);
  });
});
