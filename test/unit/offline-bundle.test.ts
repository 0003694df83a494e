// The offline-root bundle format (pki/offline-bundle.ts, pki/offline-ceremony.ts): canonical bytes,
// sign → write → parse → verify for each CA algorithm, and the exact refusals of altered, re-signed,
// malformed and mis-typed bundles.
import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../pki/key-pair.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import { publicKeyInfoOf } from '../../pki/key-pair.ts';
import {
  BUNDLE_FORMAT, bundleDigest, bundleSignedBytes, canonicalJson, formatFingerprint, parseBundle, signBundle, verifyBundle,
} from '../../pki/offline-bundle.ts';
import { readRequestPayload, readResponsePayload, signDomainCaRequest, summariseDomainCaRequest, type DomainCaRequest } from '../../pki/offline-ceremony.ts';
import { encodeName } from '../../pki/name.ts';
import { PkiError } from '../../pki/pki-error.ts';
import type { KeyAlgorithm } from '../../pki/algorithms.ts';

const HIERARCHY = 'ab'.repeat(32);

async function signerFor(algorithm: KeyAlgorithm) {
  const { privateKey } = await generateKeyPair(algorithm);
  return softwareSigner({ privateKey, algorithm, rsaPadding: 'pkcs1' });
}

const unsigned = (sequence = 1) => ({
  kind: 'response' as const, hierarchy: HIERARCHY, sequence, createdAt: '2026-12-04T10:00:00.000Z',
  payload: { b: [1, 2, { z: 'é', a: null }], a: 'x' },
});

describe('canonicalJson', () => {
  it('sorts keys, drops undefined members, keeps arrays in order, no whitespace', () => {
    expect(canonicalJson({ b: 1, a: [3, { d: undefined, c: '中' }], e: null, f: true })).toBe('{"a":[3,{"c":"中"}],"b":1,"e":null,"f":true}');
  });
  it('refuses what has no single JSON text: fractions, NaN, functions', () => {
    expect(() => canonicalJson({ a: 1.5 })).toThrow('bundle numbers must be safe integers, not 1.5');
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(PkiError);
    expect(() => canonicalJson({ a: () => 1 })).toThrow('a bundle cannot hold a function');
  });
});

describe('sign → write → parse → verify', () => {
  it.each(['P-256', 'P-384', 'RSA-2048', 'SM2'] as KeyAlgorithm[])('%s', async (algorithm) => {
    const signer = await signerFor(algorithm);
    const bytes = await signBundle(unsigned(), signer);
    const envelope = parseBundle(bytes);
    expect(envelope).toMatchObject({ format: BUNDLE_FORMAT, kind: 'response', hierarchy: HIERARCHY, sequence: 1, payload: unsigned().payload });
    expect(verifyBundle(envelope, signer.publicKeyInfo)).toBe(true);
    // The file is pretty JSON; the signature covers canonical bytes, so re-indenting does not matter…
    const reindented = JSON.stringify(JSON.parse(bytes.toString('utf8')));
    expect(verifyBundle(parseBundle(reindented), signer.publicKeyInfo)).toBe(true);
    // …but the digest, which binds a response to its request, is over the file's bytes.
    expect(bundleDigest(bytes)).toMatch(/^[0-9a-f]{64}$/);
    expect(bundleDigest(Buffer.from(reindented))).not.toBe(bundleDigest(bytes));
  });

  it('the signed bytes start with the format line and name the signer', async () => {
    const signer = await signerFor('P-256');
    const envelope = parseBundle(await signBundle(unsigned(), signer));
    const signed = bundleSignedBytes(envelope).toString('utf8');
    expect(signed.startsWith(`${BUNDLE_FORMAT}\n{"createdAt":`)).toBe(true);
    expect(signed).toContain(`"publicKeyInfo":"${signer.publicKeyInfo.toString('base64')}"`);
  });
});

describe('refusals', () => {
  it('any altered member fails verification: payload, sequence, hierarchy, kind, createdAt', async () => {
    const signer = await signerFor('P-256');
    const good = parseBundle(await signBundle(unsigned(), signer));
    const altered = [
      { ...good, payload: { ...(good.payload as object), a: 'y' } },
      { ...good, sequence: 2 },
      { ...good, hierarchy: 'cd'.repeat(32) },
      { ...good, kind: 'request' as const },
      { ...good, createdAt: '2026-12-05T10:00:00.000Z' },
    ];
    for (const a of altered) expect(verifyBundle(a, signer.publicKeyInfo)).toBe(false);
    expect(verifyBundle(good, signer.publicKeyInfo)).toBe(true);
  });

  it('a bundle re-signed by another key fails against the pinned key, even naming that other key', async () => {
    const pinned = await signerFor('P-384');
    const other = await signerFor('P-384');
    const forged = parseBundle(await signBundle(unsigned(), other));
    expect(verifyBundle(forged, pinned.publicKeyInfo)).toBe(false);
    // The signer member swapped to the pinned key while the signature stays the other's.
    const swapped = { ...forged, signer: { ...forged.signer, publicKeyInfo: pinned.publicKeyInfo.toString('base64') } };
    expect(verifyBundle(swapped, pinned.publicKeyInfo)).toBe(false);
  });

  it('a signature algorithm that does not fit the key is refused, not tried', async () => {
    const ec = await signerFor('P-256');
    const rsa = await signerFor('RSA-2048');
    const good = parseBundle(await signBundle(unsigned(), ec));
    const relabelled = { ...good, signer: { ...good.signer, signatureAlgorithm: rsa.signatureAlgorithm.toString('base64') } };
    expect(verifyBundle(relabelled, ec.publicKeyInfo)).toBe(false);
  });

  it.each([
    ['not JSON', 'not a tierca bundle: the file is not JSON'],
    ['[1]', 'not a tierca bundle: not a JSON object'],
    ['{"format":"x"}', 'not a tierca bundle: format is not "tierca-offline-bundle/1"'],
    [`{"format":"${BUNDLE_FORMAT}","kind":"other"}`, 'not a tierca bundle: kind is not request or response'],
    [`{"format":"${BUNDLE_FORMAT}","kind":"request","hierarchy":"AB"}`, 'not a tierca bundle: hierarchy is not a SHA-256 fingerprint in lowercase hex'],
    [`{"format":"${BUNDLE_FORMAT}","kind":"request","hierarchy":"${HIERARCHY}","sequence":0}`, 'not a tierca bundle: sequence is not a whole number from 1'],
    [`{"format":"${BUNDLE_FORMAT}","kind":"request","hierarchy":"${HIERARCHY}","sequence":1.5}`, 'not a tierca bundle: sequence is not a whole number from 1'],
  ])('parse %s → %s', (input, message) => {
    let caught: unknown;
    try {
      parseBundle(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PkiError);
    expect((caught as PkiError).code).toBe('malformed');
    expect((caught as PkiError).message).toBe(message);
  });
});

describe('payloads', () => {
  async function domainRequest(): Promise<{ request: DomainCaRequest; publicKeyInfo: Buffer }> {
    const { privateKey } = await generateKeyPair('P-384');
    const signer = softwareSigner({ privateKey, algorithm: 'P-384', rsaPadding: 'pkcs1' });
    const locality = [{ type: 'C' as const, value: 'CN' }, { type: 'ST' as const, value: '湖南省' }, { type: 'L' as const, value: '雨湖区' }];
    const request = await signDomainCaRequest({
      ca: 'yuhu', domain: 'yuhu', subject: encodeName([...locality, { type: 'CN', value: '雨湖区域CA' }]).toString('base64'),
      publicKeyInfo: publicKeyInfoOf(privateKey).toString('base64'), notBefore: '2026-12-04T00:00:00.000Z', notAfter: '2036-12-04T00:00:00.000Z',
      policyOids: ['1.3.6.1.4.1.32473.1.2'],
      permitted: { directoryName: locality, dnsSuffix: 'yuhu.xiangtan.intranet', emailSuffix: 'yuhu.xiangtan.intranet', ipRanges: ['10.21.0.0/16'] },
      links: { caIssuersUrl: 'http://ca.example/ca/root.crt', crlUrl: 'http://ca.example/crl/root.crl' },
    }, signer);
    return { request, publicKeyInfo: publicKeyInfoOf(privateKey) };
  }

  it('a domain CA request carries a proof of possession that readRequestPayload checks', async () => {
    const { request } = await domainRequest();
    expect(readRequestPayload({ certify: [request] }).certify[0]!.ca).toBe('yuhu');
    const moved = { ...request, permitted: { ...request.permitted, dnsSuffix: 'xiangtan.intranet' } };
    expect(() => readRequestPayload({ certify: [moved] })).toThrow('request bundle: certify[0] (yuhu): the proof of possession does not verify with its key');
    expect(() => readRequestPayload({ certify: [{ ...request, notAfter: request.notBefore }] })).toThrow('request bundle: certify[0]: the validity is not a time span');
    expect(() => readRequestPayload({})).toThrow('request bundle: payload.certify is not a list');
  });

  it('the summary shown to the officers names subject, key fingerprint, constraints and validity', async () => {
    const { request, publicKeyInfo } = await domainRequest();
    const summary = summariseDomainCaRequest(request);
    expect(summary).toMatchObject({
      ca: 'yuhu', subject: 'C=CN, ST=湖南省, L=雨湖区, CN=雨湖区域CA', notBefore: '2026-12-04T00:00:00.000Z', notAfter: '2036-12-04T00:00:00.000Z',
      nameConstraints: ['directoryName C=CN, ST=湖南省, L=雨湖区', 'DNS yuhu.xiangtan.intranet', 'email yuhu.xiangtan.intranet', 'IP 10.21.0.0/16'],
    });
    const { createHash } = await import('node:crypto');
    expect(summary.keyFingerprint).toBe(createHash('sha256').update(publicKeyInfo).digest('hex'));
    expect(formatFingerprint(summary.keyFingerprint)).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it('readResponsePayload names the first member that is wrong', () => {
    const ok = { inReplyTo: null, certificates: [], revocations: [], crl: { der: 'AA==', number: '1', thisUpdate: 't', nextUpdate: 't' }, ocsp: [], audit: [] };
    expect(readResponsePayload(ok)).toEqual(ok);
    expect(() => readResponsePayload({ ...ok, crl: undefined })).toThrow('response bundle: no root CRL');
    expect(() => readResponsePayload({ ...ok, certificates: [{ ca: 'yuhu' }] })).toThrow('response bundle: certificates is not a list of { ca, certificate }');
    expect(() => readResponsePayload({ ...ok, inReplyTo: { sequence: 1 } })).toThrow('response bundle: inReplyTo is neither null nor a request');
  });
});
