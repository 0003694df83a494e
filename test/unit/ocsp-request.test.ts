/**
 * OCSP requests and responses without openssl: parseOcspRequest's strictness and its promise to throw
 * only PkiError('malformed'), certIdFor/buildOcspRequest/buildOcspResponse read back by our parsers
 * and by @peculiar/asn1-ocsp as a second, independent parser. test/interop/ocsp.test.ts runs the
 * same structures through `openssl ocsp`.
 */
import { describe, expect, it } from 'vitest';
import { createHash, createPrivateKey, verify } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { OCSPRequest, OCSPResponse, BasicOCSPResponse, id_pkix_ocsp_nonce } from '@peculiar/asn1-ocsp';
import { bitString, enumerated, explicit, integer, nullValue, octetString, oid, sequence, tlv } from '../../pki/der.ts';
import { buildOcspRequest, certIdFor, parseOcspRequest, type OcspRequestLimits } from '../../pki/ocsp-request.ts';
import { buildOcspResponse, ocspErrorResponse, parseOcspResponse } from '../../pki/ocsp-response.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { subjectPublicKeyBits } from '../../pki/key-pair.ts';
import { PkiError } from '../../pki/pki-error.ts';

// A fixed P-256 key (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`), so the
// issuer and its hashes are the same on every run.
const ISSUER_KEY = createPrivateKey(
  '-----BEGIN PRIVATE KEY-----\n' +
    'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgH7lANFLvLkk1CBLB\n' +
    '+awM/erkYrJucFQOCcgdTaVtXjWhRANCAASF8E5CPvDSiECZlyk3OC7mY5t2VsKo\n' +
    'hU6etOmAY8V5fpSyMeJfY9/gA4J+zMWcaim6Mmxtm4nEIKpJzJXIt+nw\n' +
    '-----END PRIVATE KEY-----\n',
);
const signer = softwareSigner({ privateKey: ISSUER_KEY, algorithm: 'P-256' });
const ISSUER_SPKI = signer.publicKeyInfo;
// Name: C=CN, CN=Test CA — SEQUENCE { SET { SEQUENCE { 2.5.4.6, PrintableString "CN" } } SET { … 2.5.4.3 … } }
const ISSUER_NAME = sequence(
  tlv(0x31, sequence(oid('2.5.4.6'), tlv(0x13, Buffer.from('CN')))),
  tlv(0x31, sequence(oid('2.5.4.3'), tlv(0x0c, Buffer.from('Test CA')))),
);

const certId = (serial: string, hashAlgorithm: 'sha1' | 'sha256' = 'sha1') =>
  certIdFor({ issuerName: ISSUER_NAME, issuerPublicKeyInfo: ISSUER_SPKI, serial, hashAlgorithm });

/** Runs `fn` and returns the PkiError code it threw; fails the test on any other outcome. */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof PkiError)) throw new Error(`expected PkiError, got ${String(err)}`);
    return err.code;
  }
  throw new Error('expected a PkiError, nothing was thrown');
}

const parse = (der: Buffer, limits?: OcspRequestLimits) => parseOcspRequest(der, limits);
const nonceExt = (value: Buffer, critical = false) =>
  critical ? sequence(oid('1.3.6.1.5.5.7.48.1.2'), Buffer.from([1, 1, 0xff]), octetString(value)) : sequence(oid('1.3.6.1.5.5.7.48.1.2'), octetString(value));
/** OCSPRequest with hand-assembled TBSRequest parts. */
const requestOf = (...tbsParts: Buffer[]) => sequence(sequence(...tbsParts));
const listOf = (...ids: Buffer[]) => sequence(...ids.map((id) => sequence(id)));

/** mulberry32: a small seeded PRNG, so a failing mutation is reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('certIdFor', () => {
  it('hashes the issuer Name and subjectPublicKey bits with SHA-1 by default (RFC 6960 §4.1.1)', () => {
    const der = certId('01f3');
    const req = parse(buildOcspRequest({ certIds: [der] }));
    const [id] = req.certIds;
    expect(id.hashAlgorithm).toBe('sha1');
    expect(id.issuerNameHash).toEqual(createHash('sha1').update(ISSUER_NAME).digest());
    expect(id.issuerKeyHash).toEqual(createHash('sha1').update(subjectPublicKeyBits(ISSUER_SPKI)).digest());
    expect(id.serial).toBe('01f3');
    expect(id.raw).toEqual(der);
    // AlgorithmIdentifier with NULL parameters, as openssl writes it: 30 09 06 05 2b0e03021a 05 00
    expect(der.subarray(2, 13).toString('hex')).toBe('300906052b0e03021a0500');
  });

  it('uses SHA-256 when asked, and pads a serial whose high bit is set (X.690 §8.3.2)', () => {
    const der = certId('F1E2D3C4B5A69788', 'sha256');
    const [id] = parse(buildOcspRequest({ certIds: [der] })).certIds;
    expect(id.hashAlgorithm).toBe('sha256');
    expect(id.issuerKeyHash).toEqual(createHash('sha256').update(subjectPublicKeyBits(ISSUER_SPKI)).digest());
    expect(id.serial).toBe('f1e2d3c4b5a69788');
    expect(der.subarray(der.length - 11).toString('hex')).toBe('020900f1e2d3c4b5a69788');
  });

  it('strips leading zero octets from the serial', () => {
    expect(certId('00007b').subarray(-3).toString('hex')).toBe('02017b');
    expect(certId('0000ab').subarray(-4).toString('hex')).toBe('020200ab');
  });

  it('refuses a serial that is not hex with invalid-argument', () => {
    expect(codeOf(() => certId('xyz'))).toBe('invalid-argument');
    expect(codeOf(() => certId(''))).toBe('invalid-argument');
  });
});

describe('buildOcspRequest', () => {
  it('writes the nonce as an OCTET STRING inside extnValue (RFC 8954 §2.1), read back by @peculiar/asn1-ocsp', () => {
    const nonce = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const der = buildOcspRequest({ certIds: [certId('01'), certId('02')], nonce });
    const req = parse(der);
    expect(req.certIds.map((c) => c.serial)).toEqual(['01', '02']);
    expect(req.nonce?.toString('hex')).toBe('0410' + nonce.toString('hex'));
    expect(req.signed).toBe(false);

    const other = AsnConvert.parse(der, OCSPRequest);
    expect(other.tbsRequest.requestList).toHaveLength(2);
    expect(Buffer.from(other.tbsRequest.requestList[1].reqCert.serialNumber).toString('hex')).toBe('02');
    const ext = other.tbsRequest.requestExtensions!.find((e) => e.extnID === id_pkix_ocsp_nonce)!;
    expect(Buffer.from(ext.extnValue.buffer).toString('hex')).toBe('0410' + nonce.toString('hex'));
  });

  it('leaves requestExtensions out without a nonce', () => {
    const der = buildOcspRequest({ certIds: [certId('01')] });
    expect(parse(der).nonce).toBeNull();
    expect(AsnConvert.parse(der, OCSPRequest).tbsRequest.requestExtensions).toBeUndefined();
  });

  it('refuses an empty CertID list and an empty nonce', () => {
    expect(codeOf(() => buildOcspRequest({ certIds: [] }))).toBe('invalid-argument');
    expect(codeOf(() => buildOcspRequest({ certIds: [certId('01')], nonce: Buffer.alloc(0) }))).toBe('invalid-argument');
  });
});

describe('parseOcspRequest limits', () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => certId((i + 1).toString(16)));

  it('accepts 16 CertIDs and refuses 17 with malformed (default maxRequests 16)', () => {
    expect(parse(buildOcspRequest({ certIds: ids(16) })).certIds).toHaveLength(16);
    expect(codeOf(() => parse(buildOcspRequest({ certIds: ids(17) })))).toBe('malformed');
  });

  it('honours maxRequests', () => {
    expect(codeOf(() => parse(buildOcspRequest({ certIds: ids(3) }), { maxRequests: 2 }))).toBe('malformed');
    expect(parse(buildOcspRequest({ certIds: ids(2) }), { maxRequests: 2 }).certIds).toHaveLength(2);
  });

  it('refuses an empty requestList', () => {
    expect(codeOf(() => parse(requestOf(sequence())))).toBe('malformed');
  });

  it('accepts a 128-octet nonce and refuses 129 octets (RFC 9654 §2.1), or 33 with maxNonceLength 32', () => {
    const one = [certId('01')];
    expect(parse(buildOcspRequest({ certIds: one, nonce: Buffer.alloc(128, 7) })).nonce).toHaveLength(131);
    expect(codeOf(() => parse(buildOcspRequest({ certIds: one, nonce: Buffer.alloc(129, 7) })))).toBe('malformed');
    expect(codeOf(() => parse(buildOcspRequest({ certIds: one, nonce: Buffer.alloc(33, 7) }), { maxNonceLength: 32 }))).toBe('malformed');
    expect(parse(buildOcspRequest({ certIds: one, nonce: Buffer.alloc(32, 7) }), { maxNonceLength: 32 }).nonce).toHaveLength(34);
  });

  it('refuses a nonce of 0 octets (RFC 8954 §2.1)', () => {
    const der = requestOf(listOf(certId('01')), explicit(2, sequence(nonceExt(octetString(Buffer.alloc(0))))));
    expect(codeOf(() => parse(der))).toBe('malformed');
  });

  it('accepts a bare pre-RFC 8954 nonce and returns it verbatim for the echo', () => {
    const bare = Buffer.from('a1b2c3d4e5f60718', 'hex');
    const der = requestOf(listOf(certId('01')), explicit(2, sequence(nonceExt(bare))));
    expect(parse(der).nonce).toEqual(bare);
  });
});

describe('parseOcspRequest strictness', () => {
  const good = certId('0102');

  it('accepts an explicit version v1 and refuses any other version', () => {
    expect(parse(requestOf(explicit(0, integer(0)), listOf(good))).certIds[0].serial).toBe('0102');
    expect(codeOf(() => parse(requestOf(explicit(0, integer(1)), listOf(good))))).toBe('malformed');
  });

  it('skips a requestorName', () => {
    const requestor = explicit(1, tlv(0x82, Buffer.from('client.example')));
    expect(parse(requestOf(requestor, listOf(good))).certIds).toHaveLength(1);
  });

  it('reports a signed request as signed (the signature is not verified)', () => {
    const signature = explicit(0, sequence(sequence(oid('1.2.840.10045.4.3.2')), bitString(Buffer.from('3006020101020101', 'hex'))));
    const req = parse(sequence(sequence(listOf(good)), signature));
    expect(req.signed).toBe(true);
    expect(req.certIds[0].serial).toBe('0102');
  });

  it('refuses an unknown hash algorithm (MD5) and a hash of the wrong length', () => {
    const md5 = sequence(sequence(oid('1.2.840.113549.2.5'), nullValue()), octetString(Buffer.alloc(16)), octetString(Buffer.alloc(16)), integer(1));
    expect(codeOf(() => parse(requestOf(listOf(md5))))).toBe('malformed');
    const shortSha1 = sequence(sequence(oid('1.3.14.3.2.26'), nullValue()), octetString(Buffer.alloc(19)), octetString(Buffer.alloc(20)), integer(1));
    expect(codeOf(() => parse(requestOf(listOf(shortSha1))))).toBe('malformed');
  });

  it('accepts SHA-384/512 CertIDs with absent parameters (RFC 5754 §2)', () => {
    const sha512 = sequence(sequence(oid('2.16.840.1.101.3.4.2.3')), octetString(Buffer.alloc(64, 1)), octetString(Buffer.alloc(64, 2)), integer(5));
    const [id] = parse(requestOf(listOf(sha512))).certIds;
    expect(id.hashAlgorithm).toBe('sha512');
    expect(id.serial).toBe('05');
  });

  it('refuses negative and non-minimal serials', () => {
    const withSerial = (content: string) =>
      sequence(sequence(oid('1.3.14.3.2.26'), nullValue()), octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20)), tlv(0x02, Buffer.from(content, 'hex')));
    expect(codeOf(() => parse(requestOf(listOf(withSerial('ff01')))))).toBe('malformed');
    expect(codeOf(() => parse(requestOf(listOf(withSerial('0001')))))).toBe('malformed');
    expect(parse(requestOf(listOf(withSerial('0080')))).certIds[0].serial).toBe('80');
  });

  it('refuses duplicate extensions and unknown critical extensions, ignores unknown non-critical ones', () => {
    const nonce = nonceExt(octetString(Buffer.alloc(16, 1)));
    expect(codeOf(() => parse(requestOf(listOf(good), explicit(2, sequence(nonce, nonce)))))).toBe('malformed');
    const unknown = (critical: boolean) =>
      critical ? sequence(oid('1.2.3.4'), Buffer.from([1, 1, 0xff]), octetString(nullValue())) : sequence(oid('1.2.3.4'), octetString(nullValue()));
    expect(codeOf(() => parse(requestOf(listOf(good), explicit(2, sequence(unknown(true))))))).toBe('malformed');
    expect(parse(requestOf(listOf(good), explicit(2, sequence(unknown(false), nonce)))).nonce).toHaveLength(18);
    // A critical nonce is understood, so it is accepted.
    expect(parse(requestOf(listOf(good), explicit(2, sequence(nonceExt(octetString(Buffer.alloc(16, 1)), true))))).nonce).toHaveLength(18);
  });

  it('refuses trailing bytes, an empty body, indefinite and oversized lengths', () => {
    const der = buildOcspRequest({ certIds: [good] });
    expect(codeOf(() => parse(Buffer.concat([der, Buffer.from([0])])))).toBe('malformed');
    expect(codeOf(() => parse(Buffer.alloc(0)))).toBe('malformed');
    expect(codeOf(() => parse(Buffer.from('3080', 'hex')))).toBe('malformed');
    expect(codeOf(() => parse(Buffer.from('30847fffffff3000', 'hex')))).toBe('malformed');
    expect(codeOf(() => parse(Buffer.from('3089ffffffffffffffffff', 'hex')))).toBe('malformed');
  });

  it('refuses input that is not bytes with malformed', () => {
    expect(codeOf(() => parseOcspRequest('3000' as unknown as Buffer))).toBe('malformed');
    expect(codeOf(() => parseOcspRequest(null as unknown as Buffer))).toBe('malformed');
    expect(parseOcspRequest(new Uint8Array(buildOcspRequest({ certIds: [good] })) as Buffer).certIds).toHaveLength(1);
  });

  it('throws only PkiError("malformed") for every truncation and 5,000 seeded random mutations', () => {
    const der = buildOcspRequest({ certIds: [good, certId('f00d', 'sha256')], nonce: Buffer.alloc(32, 9) });
    const outcomes = new Map<string, number>();
    const attempt = (input: Buffer) => {
      try {
        parseOcspRequest(input);
        outcomes.set('parsed', (outcomes.get('parsed') ?? 0) + 1);
      } catch (err) {
        const kind = err instanceof PkiError ? `PkiError:${err.code}` : `other:${String(err)}`;
        outcomes.set(kind, (outcomes.get(kind) ?? 0) + 1);
      }
    };
    for (let length = 0; length < der.length; length++) attempt(der.subarray(0, length));
    expect([...outcomes.keys()]).toEqual(['PkiError:malformed']);
    expect(outcomes.get('PkiError:malformed')).toBe(der.length);

    const random = prng(0x6960);
    for (let i = 0; i < 5000; i++) {
      const mutated = Buffer.from(der);
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) mutated[Math.floor(random() * mutated.length)] = Math.floor(random() * 256);
      attempt(mutated);
    }
    for (const kind of outcomes.keys()) expect(['PkiError:malformed', 'parsed']).toContain(kind);
  });
});

describe('ocspErrorResponse', () => {
  it('returns the constant OCSPResponse of each status (RFC 6960 §4.2.1), the same Buffer every time', () => {
    expect(ocspErrorResponse('malformedRequest').toString('hex')).toBe('30030a0101');
    expect(ocspErrorResponse('internalError').toString('hex')).toBe('30030a0102');
    expect(ocspErrorResponse('tryLater').toString('hex')).toBe('30030a0103');
    expect(ocspErrorResponse('sigRequired').toString('hex')).toBe('30030a0105');
    expect(ocspErrorResponse('unauthorized').toString('hex')).toBe('30030a0106');
    expect(ocspErrorResponse('tryLater')).toBe(ocspErrorResponse('tryLater'));
    expect(parseOcspResponse(ocspErrorResponse('unauthorized'))).toEqual({ responseStatus: 'unauthorized', responses: [], certificates: [] });
  });
});

describe('buildOcspResponse', () => {
  const producedAt = new Date('2026-03-04T05:06:07.890Z');
  const thisUpdate = new Date('2026-03-04T05:06:07.000Z');
  const nextUpdate = new Date('2026-03-05T05:06:07.000Z');
  const revokedAt = new Date('2026-02-01T10:20:30.456Z');
  // Opaque stand-in for a certificate: the builder copies bytes (test/interop uses real certificates).
  const responderCert = sequence(sequence(integer(1)), sequence(oid('1.2.840.10045.4.3.2')), bitString(Buffer.alloc(8)));

  it('builds good / revoked (reason) / revoked (no reason) / unknown answers, read back by us and by @peculiar/asn1-ocsp', async () => {
    const nonce = Buffer.from('0410' + 'ab'.repeat(16), 'hex');
    const der = await buildOcspResponse({
      responderPublicKeyInfo: ISSUER_SPKI,
      producedAt,
      nonce,
      signer,
      responses: [
        { certId: certId('01'), certStatus: { status: 'good' }, thisUpdate, nextUpdate },
        { certId: certId('02'), certStatus: { status: 'revoked', revokedAt, reason: 1 }, thisUpdate, nextUpdate },
        { certId: certId('03'), certStatus: { status: 'revoked', revokedAt, reason: 0 }, thisUpdate },
        { certId: certId('04', 'sha256'), certStatus: { status: 'unknown' }, thisUpdate, nextUpdate },
      ],
    });
    const parsed = parseOcspResponse(der);
    expect(parsed.responseStatus).toBe('successful');
    expect(parsed.producedAt).toEqual(new Date('2026-03-04T05:06:07Z'));
    expect(parsed.nonce).toEqual(nonce);
    expect(parsed.certificates).toEqual([]);
    expect(parsed.responderKeyHash).toEqual(createHash('sha1').update(subjectPublicKeyBits(ISSUER_SPKI)).digest());
    expect(parsed.responses.map((r) => [r.certId.serial, r.certId.hashAlgorithm, r.certStatus, r.thisUpdate.toISOString(), r.nextUpdate?.toISOString()])).toEqual([
      ['01', 'sha1', { status: 'good' }, '2026-03-04T05:06:07.000Z', '2026-03-05T05:06:07.000Z'],
      ['02', 'sha1', { status: 'revoked', revokedAt: new Date('2026-02-01T10:20:30Z'), reason: 1 }, '2026-03-04T05:06:07.000Z', '2026-03-05T05:06:07.000Z'],
      // unspecified is left out, as in a CRL entry (RFC 5280 §5.3.1)
      ['03', 'sha1', { status: 'revoked', revokedAt: new Date('2026-02-01T10:20:30Z'), reason: null }, '2026-03-04T05:06:07.000Z', undefined],
      ['04', 'sha256', { status: 'unknown' }, '2026-03-04T05:06:07.000Z', '2026-03-05T05:06:07.000Z'],
    ]);
    expect(verify('sha256', parsed.tbsResponseData!, { key: ISSUER_SPKI, format: 'der', type: 'spki', dsaEncoding: 'der' }, parsed.signature!)).toBe(true);

    const outer = AsnConvert.parse(der, OCSPResponse);
    const basic = AsnConvert.parse(outer.responseBytes!.response.buffer, BasicOCSPResponse);
    const data = basic.tbsResponseData;
    expect(data.version).toBe(0);
    expect(data.producedAt.toISOString()).toBe('2026-03-04T05:06:07.000Z');
    expect(data.responses[0].certStatus.good).toBeNull();
    expect(data.responses[1].certStatus.revoked?.revocationReason?.reason).toBe(1);
    expect(data.responses[2].certStatus.revoked?.revocationReason).toBeUndefined();
    expect(data.responses[3].certStatus.unknown).toBeNull();
    expect(Buffer.from(data.responseExtensions![0].extnValue.buffer)).toEqual(nonce);
    // GeneralizedTime without fractions: "20260304050607Z" (RFC 5280 §4.1.2.5.2)
    expect(der.includes(Buffer.concat([Buffer.from([0x18, 0x0f]), Buffer.from('20260304050607Z')]))).toBe(true);
    expect(der.includes(Buffer.from('.890'))).toBe(false);
  });

  it('carries the given certificates verbatim in certs', async () => {
    const der = await buildOcspResponse({
      responderPublicKeyInfo: ISSUER_SPKI, producedAt, signer, certificates: [responderCert],
      responses: [{ certId: certId('01'), certStatus: { status: 'good' }, thisUpdate, nextUpdate }],
    });
    expect(parseOcspResponse(der).certificates).toEqual([responderCert]);
  });

  it('leaves responseExtensions and certs out when there is no nonce and no certificate', async () => {
    const der = await buildOcspResponse({
      responderPublicKeyInfo: ISSUER_SPKI, producedAt, signer,
      responses: [{ certId: certId('01'), certStatus: { status: 'good' }, thisUpdate, nextUpdate }],
    });
    const parsed = parseOcspResponse(der);
    expect(parsed.nonce).toBeNull();
    expect(parsed.certificates).toEqual([]);
    expect(AsnConvert.parse(AsnConvert.parse(der, OCSPResponse).responseBytes!.response.buffer, BasicOCSPResponse).certs).toBeUndefined();
  });

  it('refuses removeFromCRL, an unknown reason, no responses, a bad date and nextUpdate before thisUpdate', async () => {
    const base = { responderPublicKeyInfo: ISSUER_SPKI, producedAt, signer };
    const one = (certStatus: unknown, extra: object = {}) =>
      buildOcspResponse({ ...base, responses: [{ certId: certId('01'), certStatus: certStatus as never, thisUpdate, nextUpdate, ...extra }] });
    const codeOfAsync = async (p: Promise<unknown>) => p.then(() => 'none', (err) => (err instanceof PkiError ? err.code : String(err)));
    expect(await codeOfAsync(one({ status: 'revoked', revokedAt, reason: 8 }))).toBe('invalid-argument');
    expect(await codeOfAsync(one({ status: 'revoked', revokedAt, reason: 7 }))).toBe('invalid-argument');
    expect(await codeOfAsync(one({ status: 'revoked', revokedAt: new Date(NaN), reason: 1 }))).toBe('invalid-argument');
    expect(await codeOfAsync(one({ status: 'maybe' }))).toBe('invalid-argument');
    expect(await codeOfAsync(one({ status: 'good' }, { nextUpdate: new Date(thisUpdate.getTime() - 1000) }))).toBe('invalid-argument');
    expect(await codeOfAsync(buildOcspResponse({ ...base, responses: [] }))).toBe('invalid-argument');
  });

  it('parseOcspResponse refuses truncated responses with malformed only', async () => {
    const der = await buildOcspResponse({
      responderPublicKeyInfo: ISSUER_SPKI, producedAt, signer, nonce: Buffer.from('0401aa', 'hex'),
      responses: [{ certId: certId('01'), certStatus: { status: 'revoked', revokedAt, reason: 4 }, thisUpdate, nextUpdate }],
    });
    for (let length = 0; length < der.length; length++) expect(codeOf(() => parseOcspResponse(der.subarray(0, length)))).toBe('malformed');
    expect(codeOf(() => parseOcspResponse(sequence(enumerated(4))))).toBe('malformed');
  });
});
