import { describe, it, expect } from 'vitest';
import { createHash, createSecretKey } from 'node:crypto';
import {
  createKeystoreHeader,
  unlockKeystoreHeader,
  parseKeystoreHeader,
  sealBytes,
  unsealBytes,
  scryptMemory,
  DEFAULT_SCRYPT,
  type KeystoreHeader,
} from '../../pki/keystore/key-sealing.ts';
import { PkiError } from '../../pki/pki-error.ts';

/** Cheap scrypt for tests (≈1 ms); the default is exercised once below. */
const FAST = { N: 1024, r: 8, p: 1 };

/** A deterministic "random" source: SHA-256 counter stream from a seed. */
function fixedRandom(seed: string): (n: number) => Buffer {
  let counter = 0;
  return (n: number) => {
    const out: Buffer[] = [];
    let have = 0;
    while (have < n) {
      const block = createHash('sha256').update(`${seed}:${counter++}`).digest();
      out.push(block);
      have += block.length;
    }
    return Buffer.concat(out).subarray(0, n);
  };
}

async function thrown(fn: () => unknown): Promise<PkiError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PkiError);
    return err as PkiError;
  }
  throw new Error('expected a PkiError, nothing was thrown');
}

describe('keystore header', () => {
  it('records version, scrypt parameters, a 16-byte salt and a sealed check value', async () => {
    const { header, kek } = await createKeystoreHeader({ passphrase: 'correct horse', kdf: FAST, random: fixedRandom('h') });
    const parsed = JSON.parse(header) as KeystoreHeader;
    expect(Object.keys(parsed).sort()).toEqual(['check', 'kdf', 'version']);
    expect(parsed.version).toBe(1);
    expect(parsed.kdf).toEqual({ name: 'scrypt', N: 1024, r: 8, p: 1, salt: fixedRandom('h')(16).toString('base64') });
    // check = version octet + 12-byte IV + 30-byte check text + 16-byte tag
    expect(Buffer.from(parsed.check, 'base64').length).toBe(1 + 12 + 30 + 16);
    expect(Buffer.from(parsed.check, 'base64')[0]).toBe(1);
    expect(kek.length).toBe(32);
    // the header never carries the KEK
    expect(header).not.toContain(kek.toString('base64'));
    expect(header).not.toContain(kek.toString('hex'));
  });

  it('unlocks to the same KEK with the right passphrase', async () => {
    const { header, kek } = await createKeystoreHeader({ passphrase: 'correct horse', kdf: FAST });
    const again = await unlockKeystoreHeader({ passphrase: 'correct horse', header });
    expect(again.equals(kek)).toBe(true);
  });

  it('NFC-normalises the passphrase, so composed and decomposed forms unlock alike', async () => {
    const { header, kek } = await createKeystoreHeader({ passphrase: 'caf\u00e9 口令', kdf: FAST });
    const again = await unlockKeystoreHeader({ passphrase: 'cafe\u0301 口令', header });
    expect(again.equals(kek)).toBe(true);
  });

  it('refuses a wrong passphrase with the exact code and message', async () => {
    const { header } = await createKeystoreHeader({ passphrase: 'correct horse', kdf: FAST });
    const err = await thrown(() => unlockKeystoreHeader({ passphrase: 'correct hors', header }));
    expect(err.code).toBe('wrong-passphrase');
    expect(err.message).toBe('the keystore passphrase is wrong');
    const empty = await thrown(() => unlockKeystoreHeader({ passphrase: '', header }));
    expect([empty.code, empty.message]).toEqual(['wrong-passphrase', 'the keystore passphrase is wrong']);
  });

  it('works at the default parameters (N=2^16, r=8, p=1: 64 MiB, above Node\'s 32 MiB maxmem default)', async () => {
    expect(DEFAULT_SCRYPT).toEqual({ N: 65536, r: 8, p: 1 });
    expect(scryptMemory(DEFAULT_SCRYPT)).toBeGreaterThan(32 * 1024 * 1024);
    const { header, kek } = await createKeystoreHeader({ passphrase: 'default cost' });
    expect(JSON.parse(header).kdf).toMatchObject({ name: 'scrypt', N: 65536, r: 8, p: 1 });
    expect((await unlockKeystoreHeader({ passphrase: 'default cost', header })).equals(kek)).toBe(true);
  });

  it('refuses an empty passphrase and unusable parameters when creating', async () => {
    const empty = await thrown(() => createKeystoreHeader({ passphrase: '', kdf: FAST }));
    expect([empty.code, empty.message]).toEqual(['invalid-argument', 'the keystore passphrase must not be empty']);
    const badN = await thrown(() => createKeystoreHeader({ passphrase: 'x', kdf: { N: 1000, r: 8, p: 1 } }));
    expect([badN.code, badN.message]).toEqual(['invalid-argument', 'scrypt N must be a power of two greater than 1']);
  });

  describe('a bad header is malformed', () => {
    const good = async () => JSON.parse((await createKeystoreHeader({ passphrase: 'p', kdf: FAST })).header) as KeystoreHeader;
    const cases: Array<[string, (h: KeystoreHeader) => string, string]> = [
      ['bad JSON', () => '{"version":1,', 'the keystore header is not valid JSON'],
      ['not an object', () => '"text"', 'the keystore header is not a JSON object'],
      ['unknown version', (h) => JSON.stringify({ ...h, version: 2 }), 'unsupported keystore header version 2'],
      ['another KDF', (h) => JSON.stringify({ ...h, kdf: { ...h.kdf, name: 'pbkdf2' } }), 'the keystore header must name scrypt as its KDF'],
      ['N not a power of two', (h) => JSON.stringify({ ...h, kdf: { ...h.kdf, N: 1000 } }), 'keystore header: scrypt N must be a power of two greater than 1'],
      // a tampered header must not make unlocking allocate 16 GiB
      ['N too large', (h) => JSON.stringify({ ...h, kdf: { ...h.kdf, N: 2 ** 24, r: 8 } }), 'keystore header: scrypt parameters need more than 1 GiB of memory'],
      ['short salt', (h) => JSON.stringify({ ...h, kdf: { ...h.kdf, salt: 'AAAA' } }), 'keystore header: the salt must be base64 of at least 16 bytes'],
      ['missing check', (h) => JSON.stringify({ ...h, check: undefined }), 'keystore header: the check value must be base64'],
      ['truncated check', (h) => JSON.stringify({ ...h, check: 'AQID' }), 'keystore header: the check value is malformed'],
    ];
    for (const [name, mutate, message] of cases) {
      it(name, async () => {
        const err = await thrown(async () => unlockKeystoreHeader({ passphrase: 'p', header: mutate(await good()) }));
        expect([err.code, err.message]).toEqual(['malformed', message]);
      });
    }
    it('parseKeystoreHeader accepts a good header unchanged', async () => {
      const h = await good();
      expect(parseKeystoreHeader(JSON.stringify(h))).toEqual(h);
    });
  });
});

describe('sealBytes / unsealBytes', () => {
  const kek = Buffer.alloc(32, 7);
  const secret = Buffer.from('a secret that must not show through the envelope');

  it('lays the blob out as version ‖ IV ‖ ciphertext ‖ tag and round-trips', () => {
    const iv = Buffer.from('000102030405060708090a0b', 'hex');
    const sealed = sealBytes({ kek, plaintext: secret, aad: 'key:root', random: () => iv });
    expect(sealed.length).toBe(1 + 12 + secret.length + 16);
    expect(sealed[0]).toBe(1);
    expect(sealed.subarray(1, 13).equals(iv)).toBe(true);
    expect(sealed.includes(secret)).toBe(false);
    expect(unsealBytes({ kek, sealed, aad: 'key:root' }).equals(secret)).toBe(true);
  });

  it('draws a fresh IV per seal, so the same plaintext seals differently', () => {
    const a = sealBytes({ kek, plaintext: secret, aad: 'x' });
    const b = sealBytes({ kek, plaintext: secret, aad: 'x' });
    expect(a.subarray(1, 13).equals(b.subarray(1, 13))).toBe(false);
  });

  it('accepts the KEK as a secret KeyObject too', () => {
    const sealed = sealBytes({ kek: createSecretKey(kek), plaintext: secret, aad: 'x' });
    expect(unsealBytes({ kek, sealed, aad: 'x' }).equals(secret)).toBe(true);
  });

  it('refuses a blob bound to another aad (moved to another id)', async () => {
    const sealed = sealBytes({ kek, plaintext: secret, aad: 'key:ca-a' });
    const err = await thrown(() => unsealBytes({ kek, sealed, aad: 'key:ca-b' }));
    expect(err.code).toBe('wrong-passphrase');
    expect(err.message).toBe(
      'the sealed data for "key:ca-b" failed authentication (wrong keystore passphrase, or the blob was altered or belongs to another id)',
    );
  });

  it('refuses every single flipped byte, and a wrong KEK, without key material in the message', async () => {
    const sealed = sealBytes({ kek, plaintext: secret, aad: 'x' });
    for (let i = 1; i < sealed.length; i++) {
      const tampered = Buffer.from(sealed);
      tampered[i] ^= 0x01;
      const err = await thrown(() => unsealBytes({ kek, sealed: tampered, aad: 'x' }));
      expect(err.code).toBe('wrong-passphrase');
    }
    const err = await thrown(() => unsealBytes({ kek: Buffer.alloc(32, 8), sealed, aad: 'x' }));
    expect(err.code).toBe('wrong-passphrase');
    for (const leak of [kek.toString('hex'), kek.toString('base64'), secret.toString('utf8'), secret.toString('hex')]) {
      expect(err.message).not.toContain(leak);
    }
  });

  it('calls a blob of another format version or too short malformed', async () => {
    const sealed = sealBytes({ kek, plaintext: secret, aad: 'x' });
    const v2 = Buffer.from(sealed);
    v2[0] = 2;
    expect(await thrown(() => unsealBytes({ kek, sealed: v2, aad: 'x' }))).toMatchObject({
      code: 'malformed',
      message: 'unknown sealed blob format version 2',
    });
    expect(await thrown(() => unsealBytes({ kek, sealed: sealed.subarray(0, 28), aad: 'x' }))).toMatchObject({
      code: 'malformed',
      message: 'the sealed blob is too short',
    });
  });

  it('refuses a KEK that is not 32 bytes and an empty aad', async () => {
    expect(await thrown(() => sealBytes({ kek: Buffer.alloc(16), plaintext: secret, aad: 'x' }))).toMatchObject({
      code: 'invalid-argument',
      message: 'the key-encryption key must be a 32-byte AES-256 key',
    });
    expect(await thrown(() => sealBytes({ kek, plaintext: secret, aad: '' }))).toMatchObject({
      code: 'invalid-argument',
      message: 'sealing needs a non-empty aad',
    });
  });
});
