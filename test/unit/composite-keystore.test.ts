// The composite keystore's routing over two real software keystores standing for its two sides
// (the token side's own behaviour is tested on SoftHSM2 in test/integration/pkcs11-*.test.ts).
import { describe, expect, it } from 'vitest';
import { CompositeKeyStore } from '../../pki/keystore/composite-keystore.ts';
import { SoftwareKeyStore } from '../../pki/keystore/software-keystore.ts';
import type { GeneratedKey, KeyStore } from '../../pki/keystore/keystore.ts';

const KDF = { N: 1024, r: 8, p: 1 };

/** A keystore that records which calls reached it, over a real software keystore. */
function recording(inner: KeyStore, calls: string[], seal?: (b: Buffer) => Buffer): KeyStore {
  return {
    custody: inner.custody,
    generate: async (id, alg) => (calls.push(`generate ${id}`), inner.generate(id, alg)),
    load: async (key) => (calls.push(`load ${key.id}`), inner.load(key)),
    has: (id) => inner.has(id),
    signer: (id, o) => (calls.push(`signer ${id}`), inner.signer(id, o)),
    seal: (p, aad) => (calls.push('seal'), seal ? seal(inner.seal(p, aad)) : inner.seal(p, aad)),
    unseal: (s, aad) => (calls.push('unseal'), inner.unseal(seal ? Buffer.concat([Buffer.from([0x01]), s.subarray(1)]) : s, aad)),
  };
}

describe('CompositeKeyStore', () => {
  it('makes new keys on the token side unless software is asked for, and signs with whichever holds the key', async () => {
    const soft = await SoftwareKeyStore.initialise({ passphrase: 'composite-test-passphrase', kdf: KDF });
    const tok = await SoftwareKeyStore.initialise({ passphrase: 'composite-token-passphrase', kdf: KDF });
    const softCalls: string[] = [];
    const tokCalls: string[] = [];
    // The token side's blobs carry format octet 0x02, as the token's sealing writes them.
    const composite = new CompositeKeyStore(recording(soft.keystore, softCalls), recording(tok.keystore, tokCalls, (b) => Buffer.concat([Buffer.from([0x02]), b.subarray(1)])));
    const inToken: GeneratedKey = await composite.generate('ca-next', 'P-256');
    const inSoftware = await composite.generate('ca-root', 'P-256', { custody: 'software' });
    expect(tokCalls).toContain('generate ca-next');
    expect(softCalls).toContain('generate ca-root');
    expect(composite.has('ca-next') && composite.has('ca-root')).toBe(true);
    expect(composite.location('ca-root')).toEqual({ custody: 'software' });
    await composite.signer('ca-next').sign(Buffer.from('x'));
    await composite.signer('ca-root').sign(Buffer.from('x'));
    expect(tokCalls).toContain('signer ca-next');
    expect(softCalls).toContain('signer ca-root');
    expect(inToken.publicKeyInfo.equals(inSoftware.publicKeyInfo)).toBe(false);
  });

  it('loads a sealed key on the software side and a token key on the token side', async () => {
    const soft = await SoftwareKeyStore.initialise({ passphrase: 'composite-test-passphrase', kdf: KDF });
    const made = await soft.keystore.generate('old', 'P-256');
    const reopened = await SoftwareKeyStore.unlock({ passphrase: 'composite-test-passphrase', header: soft.header });
    const softCalls: string[] = [];
    const tokCalls: string[] = [];
    const tokenSide: KeyStore = { ...recording(reopened, tokCalls), load: async (key) => void tokCalls.push(`load ${key.id}`) };
    const composite = new CompositeKeyStore(recording(reopened, softCalls), tokenSide);
    await composite.load({ id: 'old', algorithm: 'P-256', sealed: made.sealed, pkcs11Label: null });
    await composite.load({ id: 'new', algorithm: 'P-256', sealed: null, pkcs11Label: 'tierca:new' });
    expect(softCalls).toEqual(['load old']);
    expect(tokCalls).toEqual(['load new']);
  });

  it('seals on the token side and opens each blob where it was sealed', async () => {
    const soft = await SoftwareKeyStore.initialise({ passphrase: 'composite-test-passphrase', kdf: KDF });
    const tok = await SoftwareKeyStore.initialise({ passphrase: 'composite-token-passphrase', kdf: KDF });
    const softCalls: string[] = [];
    const tokCalls: string[] = [];
    const composite = new CompositeKeyStore(recording(soft.keystore, softCalls), recording(tok.keystore, tokCalls, (b) => Buffer.concat([Buffer.from([0x02]), b.subarray(1)])));
    const before = soft.keystore.seal(Buffer.from('escrowed before the token'), 'escrow:a');
    const after = composite.seal(Buffer.from('escrowed after'), 'escrow:b');
    expect(after[0]).toBe(0x02);
    expect(tokCalls).toEqual(['seal']);
    expect(composite.unseal(before, 'escrow:a').toString()).toBe('escrowed before the token');
    expect(composite.unseal(after, 'escrow:b').toString()).toBe('escrowed after');
    expect(softCalls).toEqual(['unseal']);
    expect(tokCalls).toEqual(['seal', 'unseal']);
    expect(() => composite.unseal(before, 'escrow:other')).toThrow();
  });
});
