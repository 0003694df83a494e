// The RFC 6960 §3.2 checks of an OCSP answer (pki/ocsp-answer-check.ts), one by one, on a fixed
// clock: each refusal is a PkiError('untrusted-answer') naming its check; the answers that pass say
// who vouched for them. (test/unit/cli-ocsp.test.ts runs the same checks through `tierca ocsp check`.)
import { beforeAll, describe, expect, it } from 'vitest';
import { buildCertificate } from '../../pki/certificate.ts';
import { readCertificate, type CertificateFields } from '../../pki/certificate-reader.ts';
import { basicConstraints, EKU, extendedKeyUsage, keyUsage, subjectKeyIdentifier } from '../../pki/extensions.ts';
import { generateKeyPair, keyIdentifier, publicKeyInfoOf } from '../../pki/key-pair.ts';
import { encodeName } from '../../pki/name.ts';
import { checkOcspAnswer, OcspAnswerError } from '../../pki/ocsp-answer-check.ts';
import { certIdFor } from '../../pki/ocsp-request.ts';
import { buildOcspResponse, ocspErrorResponse, parseOcspResponse, type CertStatus } from '../../pki/ocsp-response.ts';
import { PkiError } from '../../pki/pki-error.ts';
import type { Signer } from '../../pki/signer.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { HOUR_MS, MINUTE_MS } from '../../pki/time-constants.ts';

const NOW = new Date('2026-03-04T05:06:07Z');
const NONCE = Buffer.alloc(16, 7);

interface Party {
  signer: Signer;
  cert: Buffer;
  fields: CertificateFields;
}

async function party(p: { cn: string; issuer?: Party; eku?: string; notAfter?: Date }): Promise<Party> {
  const { privateKey } = await generateKeyPair('P-256');
  const signer = softwareSigner({ privateKey, algorithm: 'P-256' });
  const spki = publicKeyInfoOf(privateKey);
  const subject = encodeName([{ type: 'CN', value: p.cn }]);
  const cert = await buildCertificate({
    serial: Buffer.from(p.cn.padEnd(8, '0').slice(0, 8), 'latin1'),
    issuer: p.issuer ? p.issuer.fields.subject : subject,
    subject,
    notBefore: new Date(NOW.getTime() - 24 * HOUR_MS),
    notAfter: p.notAfter ?? new Date(NOW.getTime() + 24 * HOUR_MS),
    publicKeyInfo: spki,
    extensions: p.issuer
      ? [basicConstraints({ ca: false }), keyUsage(['digitalSignature']), ...(p.eku ? [extendedKeyUsage([p.eku])] : [])]
      : [basicConstraints({ ca: true, pathLength: 0 }), keyUsage(['keyCertSign', 'cRLSign']), subjectKeyIdentifier(keyIdentifier(spki))],
    signer: p.issuer ? p.issuer.signer : signer,
  });
  return { signer, cert, fields: readCertificate(cert) };
}

let ca: Party;
let otherCa: Party;
let responder: Party;
let plain: Party;
let rogue: Party;
let expired: Party;
let certId: Buffer;

beforeAll(async () => {
  ca = await party({ cn: 'ca' });
  otherCa = await party({ cn: 'other' });
  responder = await party({ cn: 'resp', issuer: ca, eku: EKU.ocspSigning });
  plain = await party({ cn: 'plain', issuer: ca });
  rogue = await party({ cn: 'rogue', issuer: otherCa, eku: EKU.ocspSigning });
  expired = await party({ cn: 'old', issuer: ca, eku: EKU.ocspSigning, notAfter: new Date(NOW.getTime() - HOUR_MS) });
  certId = certIdFor({ issuerName: ca.fields.subject, issuerPublicKeyInfo: ca.fields.publicKeyInfo, serial: '0123456789abcdef' });
});

async function answer(p: { by?: Party; certs?: Party[]; status?: CertStatus; thisUpdate?: Date; nextUpdate?: Date; nonce?: Buffer | null; id?: Buffer } = {}) {
  const by = p.by ?? responder;
  const der = await buildOcspResponse({
    responderPublicKeyInfo: by.signer.publicKeyInfo,
    producedAt: NOW,
    responses: [{ certId: p.id ?? certId, certStatus: p.status ?? { status: 'good' }, thisUpdate: p.thisUpdate ?? NOW, nextUpdate: p.nextUpdate ?? new Date(NOW.getTime() + HOUR_MS) }],
    nonce: p.nonce === undefined ? Buffer.concat([Buffer.from([0x04, NONCE.length]), NONCE]) : p.nonce,
    certificates: (p.certs ?? (by === ca ? [] : [by])).map((c) => c.cert),
    signer: by.signer,
  });
  return parseOcspResponse(der);
}

const refusal = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OcspAnswerError);
    expect((err as PkiError).code).toBe('untrusted-answer');
    return (err as Error).message;
  }
  throw new Error('the answer was believed');
};

describe('checkOcspAnswer (RFC 6960 §3.2)', () => {
  it('believes a delegated responder the CA issued with id-kp-OCSPSigning, nonce echoed', async () => {
    const checked = checkOcspAnswer({ response: await answer(), issuer: ca.fields, certId, nonce: NONCE, now: NOW });
    expect(checked.responder).toBe('delegated');
    expect(checked.nonce).toBe('matched');
    expect(checked.single.certStatus).toEqual({ status: 'good' });
  });

  it('believes the CA itself, and an answer without a nonce as a pre-signed one', async () => {
    const checked = checkOcspAnswer({ response: await answer({ by: ca, nonce: null }), issuer: ca.fields, certId, nonce: NONCE, now: NOW });
    expect(checked).toMatchObject({ responder: 'issuer', nonce: 'absent' });
    expect(checkOcspAnswer({ response: await answer({ by: ca }), issuer: ca.fields, certId, now: NOW }).nonce).toBe('not-sent');
  });

  it('refuses an unsuccessful responseStatus', () => {
    const response = parseOcspResponse(ocspErrorResponse('tryLater'));
    expect(refusal(() => checkOcspAnswer({ response, issuer: ca.fields, certId, now: NOW }))).toBe('the responder answered tryLater');
  });

  it('refuses an answer about another certificate (CertID)', async () => {
    const other = certIdFor({ issuerName: ca.fields.subject, issuerPublicKeyInfo: ca.fields.publicKeyInfo, serial: '01' });
    const response = await answer({ id: other });
    expect(refusal(() => checkOcspAnswer({ response, issuer: ca.fields, certId, now: NOW }))).toBe('the answer holds no response about this certificate');
  });

  it.each([
    ['a responder issued by another CA', () => ({ by: rogue }), 'the responder certificate was not issued by the issuing CA (RFC 6960 §4.2.2.2)'],
    ['a responder without id-kp-OCSPSigning', () => ({ by: plain }), 'the responder certificate lacks the id-kp-OCSPSigning extended key usage (RFC 6960 §4.2.2.2)'],
    ['a key no carried certificate holds', () => ({ by: rogue, certs: [] }), 'the answer is signed by neither the issuing CA nor a responder certificate it carries'],
    ['an expired responder certificate', () => ({ by: expired }), 'the responder certificate is not valid now (2026-03-03T05:06:07.000Z to 2026-03-04T04:06:07.000Z)'],
    ['thisUpdate in the future', () => ({ thisUpdate: new Date(NOW.getTime() + 6 * MINUTE_MS) }), "the answer's thisUpdate 2026-03-04T05:12:07.000Z is in the future"],
    ['nextUpdate in the past', () => ({ thisUpdate: new Date(NOW.getTime() - 2 * HOUR_MS), nextUpdate: new Date(NOW.getTime() - 6 * MINUTE_MS) }), 'the answer expired at 2026-03-04T05:00:07.000Z (nextUpdate)'],
    ['another nonce', () => ({ nonce: Buffer.from('0410' + '00'.repeat(16), 'hex') }), 'the answer carries a different nonce than the request (a replayed answer?)'],
  ] as const)('refuses %s', async (_what, more, message) => {
    const response = await answer(more() as Parameters<typeof answer>[0]);
    expect(refusal(() => checkOcspAnswer({ response, issuer: ca.fields, certId, nonce: NONCE, now: NOW }))).toBe(message);
  });

  it('tolerates the skew and no more: thisUpdate 4 minutes ahead passes, 0 skew refuses it', async () => {
    const response = await answer({ thisUpdate: new Date(NOW.getTime() + 4 * MINUTE_MS) });
    expect(checkOcspAnswer({ response, issuer: ca.fields, certId, now: NOW }).responder).toBe('delegated');
    expect(refusal(() => checkOcspAnswer({ response, issuer: ca.fields, certId, now: NOW, skewMs: 0 }))).toMatch(/is in the future$/);
  });

  it('refuses a signature that does not verify', async () => {
    const response = await answer();
    const signature = Buffer.from(response.signature!);
    signature[signature.length - 1] ^= 1;
    expect(refusal(() => checkOcspAnswer({ response: { ...response, signature }, issuer: ca.fields, certId, now: NOW }))).toBe("the answer's signature does not verify");
  });
});
