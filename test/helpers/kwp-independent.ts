/**
 * An RFC 5649 unwrap for the tests, written apart from pki/sm4-key-wrap.ts (BigInt counters,
 * 1-based loops, straight from the RFC's pseudo-code) over any block decryption — run over
 * sm-crypto's SM4, it checks the KMC's SM4 wrap with an implementation other than ours.
 */
export function independentKwpUnwrap(dec: (block: Buffer) => Buffer, c: Buffer): Buffer {
  const n = c.length / 8 - 1;
  const r: Buffer[] = [Buffer.alloc(0)];
  for (let i = 1; i <= n; i++) r.push(c.subarray(8 * i, 8 * i + 8));
  let a = BigInt(`0x${c.subarray(0, 8).toString('hex')}`);
  if (n === 1) {
    const b = dec(c);
    a = BigInt(`0x${b.subarray(0, 8).toString('hex')}`);
    r[1] = b.subarray(8);
  } else {
    for (let j = 5; j >= 0; j--) {
      for (let i = n; i >= 1; i--) {
        const b = dec(Buffer.concat([Buffer.from((a ^ BigInt(n * j + i)).toString(16).padStart(16, '0'), 'hex'), r[i]]));
        a = BigInt(`0x${b.subarray(0, 8).toString('hex')}`);
        r[i] = b.subarray(8);
      }
    }
  }
  const aiv = a.toString(16).padStart(16, '0');
  if (!aiv.startsWith('a65959a6')) throw new Error('not an RFC 5649 wrap');
  return Buffer.concat(r.slice(1)).subarray(0, parseInt(aiv.slice(8), 16));
}
