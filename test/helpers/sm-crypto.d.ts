/** The part of sm-crypto 0.5 (a second SM2/SM3 implementation, on jsbn) that the tests use. */
declare module 'sm-crypto' {
  interface Sm2SignatureOptions {
    /** DER `SEQUENCE { r, s }` instead of r ‖ s hex. */
    der?: boolean;
    /** Hash Z ‖ M with SM3 (default true). */
    hash?: boolean;
    /** The signer identity as text (UTF-8); default '1234567812345678'. */
    userId?: string;
    publicKey?: string;
  }
  const smCrypto: {
    sm2: {
      doVerifySignature(msg: string | number[] | Uint8Array, signHex: string, publicKeyHex: string, options?: Sm2SignatureOptions): boolean;
      doSignature(msg: string | number[] | Uint8Array, privateKeyHex: string, options?: Sm2SignatureOptions): string;
      getPublicKeyFromPrivateKey(privateKeyHex: string): string;
      /** SM2 encryption (GB/T 32918.4); cipherMode 1 = C1 ‖ C3 ‖ C2. Returns hex, C1 without its 04 octet. */
      doEncrypt(msg: string | number[] | Uint8Array, publicKeyHex: string, cipherMode?: 0 | 1): string;
      /** The reverse of doEncrypt; with output 'array', the octets ([] when the ciphertext does not check). */
      doDecrypt(encryptedHex: string, privateKeyHex: string, cipherMode: 0 | 1, options: { output: 'array' }): number[];
    };
    sm4: {
      encrypt(data: number[] | Uint8Array, keyHex: string, options: { padding: 'none'; mode?: 'ecb' | 'cbc'; output: 'array' }): number[];
      decrypt(data: number[] | Uint8Array, keyHex: string, options: { padding: 'none'; mode?: 'ecb' | 'cbc'; output: 'array' }): number[];
    };
    sm3(msg: string | number[] | Uint8Array): string;
  };
  export default smCrypto;
}
