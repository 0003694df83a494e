import { beforeAll, describe, expect, it } from 'vitest';
import { buildCsr, parseCsr, verifyCsr, type ParsedCsr } from '../../pki/csr.ts';
import { decodePemOrDer, certificateToPem } from '../../pki/pem.ts';
import { encodeName, decodeName } from '../../pki/name.ts';
import { toPem } from '../../pki/der.ts';
import { generateKeyPair } from '../../pki/key-pair.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { PkiError } from '../../pki/pki-error.ts';

/** The PEM with one base64 character of its body replaced by '!'. */
function badBase64(pem: string): string {
  const lines = pem.split('\n');
  lines[1] = `${lines[1].slice(0, 10)}!${lines[1].slice(11)}`;
  return lines.join('\n');
}

function errorOf(fn: () => unknown): PkiError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(PkiError);
    return err as PkiError;
  }
  throw new Error('did not throw');
}

const SUBJECT = [
  { type: 'C', value: 'CN' },
  { type: 'ST', value: '湖南省' },
  { type: 'L', value: '湘潭市' },
  { type: 'CN', value: '张三' },
] as const;

let der: Buffer;
let publicKeyInfo: Buffer;

beforeAll(async () => {
  const { privateKey } = await generateKeyPair('P-256');
  const signer = softwareSigner({ privateKey, algorithm: 'P-256' });
  publicKeyInfo = signer.publicKeyInfo;
  der = await buildCsr({ subject: encodeName(SUBJECT), signer });
});

describe('decodePemOrDer', () => {
  const cert = Buffer.from('3003020101', 'hex');

  it('accepts PEM with the label, with explanatory text around it, bare base64 and DER', () => {
    expect(decodePemOrDer(certificateToPem(cert), 'CERTIFICATE').equals(cert)).toBe(true);
    expect(decodePemOrDer(`Subject: x\r\n${certificateToPem(cert)}trailer\n`, 'CERTIFICATE').equals(cert)).toBe(true);
    expect(decodePemOrDer(Buffer.from(certificateToPem(cert)), 'CERTIFICATE').equals(cert)).toBe(true);
    expect(decodePemOrDer(cert.toString('base64'), 'CERTIFICATE').equals(cert)).toBe(true);
    expect(decodePemOrDer(cert, 'CERTIFICATE').equals(cert)).toBe(true);
    expect(certificateToPem(cert)).toBe('-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n');
  });

  it('refuses another label, bad base64, truncated or padded DER, and empty input, naming the label', () => {
    const bad: (string | Buffer)[] = [
      toPem(cert, 'PRIVATE KEY'),
      '-----BEGIN CERTIFICATE-----\nMAMC*QE=\n-----END CERTIFICATE-----\n',
      '-----BEGIN CERTIFICATE-----\nMAMCAQE\n-----END CERTIFICATE-----\n',
      '-----BEGIN CERTIFICATE-----\nMAMCAQE=\n',
      'MAMCAQ==',
      cert.subarray(0, 4),
      Buffer.concat([cert, Buffer.from([0])]),
      Buffer.from('3080020101 0000'.replace(' ', ''), 'hex'),
      '',
      Buffer.alloc(0),
      'hello',
    ];
    for (const input of bad) {
      const err = errorOf(() => decodePemOrDer(input, 'CERTIFICATE'));
      expect(err.code).toBe('malformed');
      expect(err.message).toBe('not a PEM CERTIFICATE or DER');
    }
  });
});

describe('parseCsr / verifyCsr', () => {
  it('parses our own CSR as DER, PEM and NEW CERTIFICATE REQUEST PEM', () => {
    for (const input of [der, toPem(der, 'CERTIFICATE REQUEST'), toPem(der, 'NEW CERTIFICATE REQUEST'), der.toString('base64')]) {
      const csr = parseCsr(input);
      expect(csr.der.equals(der)).toBe(true);
      expect(csr.publicKeyInfo.equals(publicKeyInfo)).toBe(true);
      expect(csr.keyAlgorithm).toBe('P-256');
      expect(decodeName(csr.subject)).toEqual(SUBJECT);
      expect(() => verifyCsr(csr)).not.toThrow();
    }
  });

  it('fails proof of possession with bad-signature when a signature byte is flipped', () => {
    const flipped = Buffer.from(der);
    flipped[flipped.length - 1] ^= 0x01;
    const err = errorOf(() => verifyCsr(parseCsr(flipped)));
    expect(err.code).toBe('bad-signature');
    expect(err.message).toBe('CSR signature does not verify');
  });

  it('fails with bad-signature when the subject was changed after signing', () => {
    const i = der.indexOf(Buffer.from('张三'));
    const changed = Buffer.from(der);
    changed.write('李四', i);
    expect(errorOf(() => verifyCsr(parseCsr(changed))).code).toBe('bad-signature');
  });

  it('fails with bad-signature when the key is swapped for another valid key', async () => {
    const other = (await generateKeyPair('P-256')).publicKey.export({ type: 'spki', format: 'der' });
    const swapped = Buffer.from(der);
    other.copy(swapped, der.indexOf(publicKeyInfo)); // same length: P-256 SPKIs are 91 octets
    const csr: ParsedCsr = parseCsr(swapped);
    expect(csr.publicKeyInfo.equals(other)).toBe(true);
    expect(errorOf(() => verifyCsr(csr)).code).toBe('bad-signature');
  });

  it('refuses truncated, padded, garbage and wrongly labelled input with malformed', () => {
    const inputs: (string | Buffer)[] = [
      der.subarray(0, der.length - 3),
      Buffer.concat([der, Buffer.from([0x00, 0x00])]),
      Buffer.from('garbage garbage'),
      toPem(der, 'CERTIFICATE'),
      badBase64(toPem(der, 'CERTIFICATE REQUEST')),
    ];
    for (const input of inputs) expect(errorOf(() => parseCsr(input)).code).toBe('malformed');
  });

  it('refuses a well-formed SEQUENCE that is not a CertificationRequest, and version ≠ 0', () => {
    expect(errorOf(() => parseCsr(Buffer.from('3003020101', 'hex'))).code).toBe('malformed');
    // Patch version INTEGER 0 → 1 (it sits right after the two SEQUENCE headers).
    const v1 = Buffer.from(der);
    const at = v1.indexOf(Buffer.from('020100', 'hex'));
    v1[at + 2] = 1;
    const err = errorOf(() => parseCsr(v1));
    expect(err.code).toBe('malformed');
    expect(err.message).toBe('malformed CSR: version is not v1 (0)');
  });
});
