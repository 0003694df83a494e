/**
 * The signing threads of issuance (server/ca/signing-pool.ts): what a thread signs is what the
 * calling thread would sign (same TBSCertificate), openssl verifies the certificate and the OCSP
 * answer, errors cross the thread boundary with their class and code, keys held outside memory sign
 * on the calling thread, and a dead thread fails its jobs and is replaced.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { buildCertificate, randomSerial, serialToHex } from '../../pki/certificate.ts';
import { buildCsr, parseCsr } from '../../pki/csr.ts';
import { children, readOnly } from '../../pki/der-reader.ts';
import { generateKeyPair, keyIdentifier } from '../../pki/key-pair.ts';
import { encodeName } from '../../pki/name.ts';
import { certificateToPem } from '../../pki/pem.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { endEntityExtensions, rootCaExtensions } from '../../pki/profiles.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import type { Signer } from '../../pki/signer.ts';
import { SigningPool, defaultSigningThreads } from '../../server/ca/signing-pool.ts';
import { signIssuance, type IssuanceSigningJob } from '../../server/ca/issuance-signing.ts';
import { TiercaError } from '../../server/errors.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';

// Real time: `openssl ocsp` checks an answer's thisUpdate/nextUpdate against its own clock.
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const AT = String(NOW.getTime() / 1000 + 60);
const DAY = 86_400_000;
const POLICY = '2.25.128645345817574449542064460584668162789.1.1';
const LINKS = {
  caIssuersUrl: 'http://pki.test/ca/root.crt',
  ocspUrl: 'http://pki.test/ocsp',
  crlUrl: 'http://pki.test/crl/root.crl',
  deltaCrlUrl: 'http://pki.test/crl/root-delta.crl',
};

let tmp: TempDir;
let caSigner: Signer;
let caName: Buffer;
let caDer: Buffer;
let responderSigner: Signer;
let responderDer: Buffer;
let pool: SigningPool;

beforeAll(async () => {
  tmp = new TempDir();
  caSigner = softwareSigner({ privateKey: (await generateKeyPair('P-256')).privateKey, algorithm: 'P-256' });
  caName = encodeName([{ type: 'C', value: 'CN' }, { type: 'CN', value: 'Signing pool test root' }]);
  caDer = await buildCertificate({
    serial: randomSerial(), issuer: caName, subject: caName,
    notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + 3650 * DAY),
    publicKeyInfo: caSigner.publicKeyInfo, extensions: rootCaExtensions({ publicKeyInfo: caSigner.publicKeyInfo }), signer: caSigner,
  });
  responderSigner = softwareSigner({ privateKey: (await generateKeyPair('P-256')).privateKey, algorithm: 'P-256' });
  responderDer = await buildCertificate({
    serial: randomSerial(), issuer: caName, subject: encodeName([{ type: 'CN', value: 'OCSP responder' }]),
    notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + 30 * DAY),
    publicKeyInfo: responderSigner.publicKeyInfo,
    extensions: endEntityExtensions({ profile: 'ocsp', publicKeyInfo: responderSigner.publicKeyInfo, issuerKeyId: keyIdentifier(caSigner.publicKeyInfo), policyOid: POLICY, links: LINKS }),
    signer: caSigner,
  });
  tmp.file('ca.pem', certificateToPem(caDer));
  pool = new SigningPool(1);
});

afterAll(async () => {
  await pool.close();
  tmp.cleanup();
});

async function leafKey() {
  const { privateKey } = await generateKeyPair('P-256');
  return softwareSigner({ privateKey, algorithm: 'P-256' });
}

function jobFor(publicKeyInfo: Buffer, over: Partial<IssuanceSigningJob> = {}): IssuanceSigningJob {
  return {
    serial: randomSerial(),
    issuer: { name: caName, publicKeyInfo: caSigner.publicKeyInfo, keyId: keyIdentifier(caSigner.publicKeyInfo), notBefore: new Date(NOW.getTime() - 3650 * DAY), notAfter: new Date(NOW.getTime() + 3650 * DAY) },
    subject: encodeName([{ type: 'C', value: 'CN' }, { type: 'CN', value: 'vpn-gw-01' }]),
    publicKeyInfo,
    notBefore: new Date(NOW.getTime() - 60_000),
    notAfter: new Date(NOW.getTime() + 365 * DAY),
    profile: 'device',
    policyOid: POLICY,
    links: LINKS,
    names: { dns: ['vpn-gw-01.yuhu.test'], ip: ['10.0.0.1'], email: [] },
    permitted: { dns: ['yuhu.test'], email: [] },
    ocsp: { thisUpdate: NOW, nextUpdate: new Date(NOW.getTime() + 12 * 3600_000), responderCertificate: responderDer },
    ...over,
  };
}

/** The TBSCertificate of a DER certificate (the part that does not depend on the signature's randomness). */
const tbsOf = (der: Buffer) => children(readOnly(der, 0x30))[0].raw;

describe('signing threads', () => {
  it('default thread count: one fewer than the cores, or TIERCA_SIGNING_THREADS; nonsense refused', () => {
    expect(defaultSigningThreads({ TIERCA_SIGNING_THREADS: '0' })).toBe(0);
    expect(defaultSigningThreads({ TIERCA_SIGNING_THREADS: '3' })).toBe(3);
    expect(() => defaultSigningThreads({ TIERCA_SIGNING_THREADS: 'two' })).toThrow(/TIERCA_SIGNING_THREADS/);
    expect(() => defaultSigningThreads({ TIERCA_SIGNING_THREADS: '-1' })).toThrow(/TIERCA_SIGNING_THREADS/);
    expect(defaultSigningThreads({})).toBeGreaterThanOrEqual(0);
  });

  it('a thread signs the same TBSCertificate as the calling thread; openssl verifies certificate and OCSP answer', async () => {
    const leaf = await leafKey();
    const job = jobFor(leaf.publicKeyInfo);
    const threaded = await pool.signIssuance(job, { ca: caSigner, responder: responderSigner });
    const local = await signIssuance(job, { ca: caSigner, responder: responderSigner });
    expect(Buffer.isBuffer(threaded.certificate)).toBe(true);
    expect(tbsOf(threaded.certificate).equals(tbsOf(local.certificate))).toBe(true);
    expect(Buffer.isBuffer(threaded.ocsp)).toBe(true);

    const leafPath = tmp.file('leaf.pem', certificateToPem(threaded.certificate));
    const verify = await openssl(['verify', '-attime', AT, '-CAfile', tmp.file('ca.pem'), '-policy', POLICY, '-explicit_policy', leafPath]);
    expect(verify.stdout + verify.stderr).toContain(': OK');
    const text = await openssl(['x509', '-in', leafPath, '-noout', '-text']);
    expect(text.stdout).toContain('DNS:vpn-gw-01.yuhu.test');
    expect(text.stdout).toContain(`Serial Number:`);
    const respPath = tmp.file('resp.der', threaded.ocsp);
    const ocsp = await openssl(['ocsp', '-respin', respPath, '-issuer', tmp.file('ca.pem'), '-cert', leafPath, '-CAfile', tmp.file('ca.pem')]);
    expect(ocsp.stdout + ocsp.stderr).toContain('Response verify OK');
    expect(ocsp.stdout).toContain(': good');
  });

  it('many jobs in flight on one thread: every certificate distinct and each carries its own serial', async () => {
    const leaf = await leafKey();
    const jobs = Array.from({ length: 64 }, () => jobFor(leaf.publicKeyInfo));
    const signed = await Promise.all(jobs.map((j) => pool.signIssuance(j, { ca: caSigner, responder: responderSigner })));
    const { readCertificate } = await import('../../pki/certificate-reader.ts');
    signed.forEach((s, i) => expect(readCertificate(s.certificate).serial).toBe(serialToHex(jobs[i].serial)));
  });

  it('CSR proof of possession on a thread: a good CSR passes, a tampered one fails as PkiError bad-signature', async () => {
    const holder = await leafKey();
    const der = await buildCsr({ subject: encodeName([{ type: 'CN', value: 'x' }]), signer: holder });
    await expect(pool.verifyCsr(parseCsr(der))).resolves.toEqual({ popIdentity: null });
    const tampered = Buffer.from(der);
    tampered[tampered.length - 5] ^= 0x01;
    const error = await pool.verifyCsr(parseCsr(tampered)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PkiError);
    expect((error as PkiError).code).toBe('bad-signature');
  });

  it('a job carrying a CSR checks its proof of possession before the CA key signs, on a thread and on the calling thread', async () => {
    const holder = await leafKey();
    const der = await buildCsr({ subject: encodeName([{ type: 'CN', value: 'x' }]), signer: holder });
    const good = await pool.signIssuance(jobFor(holder.publicKeyInfo, { csr: der }), { ca: caSigner, responder: responderSigner });
    expect(good.proofOfPossession).toEqual({ popIdentity: null });
    const leafPath = tmp.file('pop-leaf.pem', certificateToPem(good.certificate));
    expect((await openssl(['verify', '-attime', AT, '-CAfile', tmp.file('ca.pem'), leafPath])).stdout).toContain(': OK');
    // Without a CSR nothing is checked, and nothing is said about one.
    expect((await pool.signIssuance(jobFor(holder.publicKeyInfo), { ca: caSigner, responder: responderSigner })).proofOfPossession).toBeUndefined();

    const tampered = Buffer.from(der);
    tampered[tampered.length - 5] ^= 0x01;
    const threaded = await pool.signIssuance(jobFor(holder.publicKeyInfo, { csr: tampered }), { ca: caSigner, responder: responderSigner }).catch((e: unknown) => e);
    expect(threaded).toBeInstanceOf(TiercaError);
    expect((threaded as TiercaError).code).toBe('bad-csr-signature');
    expect((threaded as TiercaError).options.detail).toEqual({ field: 'csr' });
    // On the calling thread, with signers that count: the refusal comes before any signature.
    let signatures = 0;
    const counting = (s: Signer): Signer => ({ signatureAlgorithm: s.signatureAlgorithm, publicKeyInfo: s.publicKeyInfo, sign: (d) => { signatures++; return s.sign(d); } });
    const local = await signIssuance(jobFor(holder.publicKeyInfo, { csr: tampered }), { ca: counting(caSigner), responder: counting(responderSigner) }).catch((e: unknown) => e);
    expect((local as TiercaError).code).toBe('bad-csr-signature');
    expect(signatures).toBe(0);
    await signIssuance(jobFor(holder.publicKeyInfo, { csr: der }), { ca: counting(caSigner), responder: counting(responderSigner) });
    expect(signatures).toBe(2);
  });

  it("a lint failure on a thread arrives as TiercaError internal with the lint's problems", async () => {
    const leaf = await leafKey();
    const job = jobFor(leaf.publicKeyInfo, {
      issuer: { name: caName, publicKeyInfo: caSigner.publicKeyInfo, keyId: keyIdentifier(caSigner.publicKeyInfo), notBefore: new Date(NOW.getTime() - 3650 * DAY), notAfter: new Date(NOW.getTime() + DAY) },
    });
    const error = await pool.signIssuance(job, { ca: caSigner, responder: responderSigner }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TiercaError);
    expect((error as TiercaError).code).toBe('internal');
    expect((error as TiercaError).options.detail).toEqual({ problems: ['outlives its CA'] });
  });

  it('one RSA key behind two signers (PKCS#1 v1.5 and PSS) signs on a thread with each its own padding', async () => {
    const { privateKey } = await generateKeyPair('RSA-2048');
    const pkcs1 = softwareSigner({ privateKey, algorithm: 'RSA-2048', rsaPadding: 'pkcs1' });
    const pss = softwareSigner({ privateKey, algorithm: 'RSA-2048', rsaPadding: 'pss' });
    const rsaName = encodeName([{ type: 'CN', value: 'RSA signing pool test root' }]);
    const rsaCa = await buildCertificate({
      serial: randomSerial(), issuer: rsaName, subject: rsaName,
      notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + 3650 * DAY),
      publicKeyInfo: pkcs1.publicKeyInfo, extensions: rootCaExtensions({ publicKeyInfo: pkcs1.publicKeyInfo }), signer: pkcs1,
    });
    const caPath = tmp.file('rsa-ca.pem', certificateToPem(rsaCa));
    const leaf = await leafKey();
    const issuer = { name: rsaName, publicKeyInfo: pkcs1.publicKeyInfo, keyId: keyIdentifier(pkcs1.publicKeyInfo), notBefore: new Date(NOW.getTime() - DAY), notAfter: new Date(NOW.getTime() + 3650 * DAY) };
    for (const [signer, label] of [[pkcs1, 'sha256WithRSAEncryption'], [pss, 'rsassaPss'], [pkcs1, 'sha256WithRSAEncryption']] as const) {
      const signed = await pool.signIssuance(jobFor(leaf.publicKeyInfo, { issuer }), { ca: signer, responder: responderSigner });
      const path = tmp.file(`rsa-leaf-${label}.pem`, certificateToPem(signed.certificate));
      expect((await openssl(['x509', '-in', path, '-noout', '-text'])).stdout).toContain(`Signature Algorithm: ${label}`);
      const verify = await openssl(['verify', '-attime', AT, '-CAfile', caPath, path]);
      expect(verify.stdout).toContain(': OK');
    }
  });


  it('the synchronous signer threads use signs what the pooled one signs (RSA PKCS#1 v1.5 byte for byte) and rejects, never throws', async () => {
    const { privateKey } = await generateKeyPair('RSA-2048');
    const data = randomBytes(300);
    const pooled = await softwareSigner({ privateKey, algorithm: 'RSA-2048' }).sign(data);
    const inPlace = await softwareSigner({ privateKey, algorithm: 'RSA-2048', synchronous: true }).sign(data);
    expect(inPlace.equals(pooled)).toBe(true);
    // In place means within this turn of the event loop: the answer is there once the microtasks ran;
    // the pooled signer's comes back only from a later turn (libuv's poll phase).
    const settledWithinTurn = async (synchronous: boolean) => {
      let settled = false;
      void softwareSigner({ privateKey, algorithm: 'RSA-2048', synchronous }).sign(data).then(() => { settled = true; });
      for (let i = 0; i < 5; i++) await Promise.resolve();
      return settled;
    };
    expect(await settledWithinTurn(true)).toBe(true);
    expect(await settledWithinTurn(false)).toBe(false);
    const ec = softwareSigner({ privateKey: (await generateKeyPair('P-256')).privateKey, algorithm: 'P-256', synchronous: true });
    const ecPath = tmp.file('sync-ec.sig', await ec.sign(data));
    const dataPath = tmp.file('sync-ec.data', data);
    const keyPath = tmp.file('sync-ec-pub.der', ec.publicKeyInfo);
    const checked = await openssl(['dgst', '-sha256', '-verify', keyPath, '-keyform', 'DER', '-signature', ecPath, dataPath]);
    expect(checked.stdout).toContain('Verified OK');
    // What Node's sign throws on the spot arrives as a rejection, as from the pooled signer.
    const refused = ec.sign(42 as unknown as Uint8Array);
    await expect(refused).rejects.toThrow(/data/);
  });
  it('a signer whose key is not in memory (an HSM) signs on the calling thread', async () => {
    let calls = 0;
    const hsmLike: Signer = {
      signatureAlgorithm: caSigner.signatureAlgorithm,
      publicKeyInfo: caSigner.publicKeyInfo,
      sign: (data) => {
        calls++;
        return caSigner.sign(data);
      },
    };
    const leaf = await leafKey();
    const signed = await pool.signIssuance(jobFor(leaf.publicKeyInfo), { ca: hsmLike, responder: responderSigner });
    expect(calls).toBe(1);
    const path = tmp.file('hsm-leaf.pem', certificateToPem(signed.certificate));
    const verify = await openssl(['verify', '-attime', AT, '-CAfile', tmp.file('ca.pem'), path]);
    expect(verify.stdout).toContain(': OK');
  });

  it('a thread that dies fails its jobs with internal, and the next job gets a new thread', async () => {
    const own = new SigningPool(1);
    try {
      const leaf = await leafKey();
      await own.signIssuance(jobFor(leaf.publicKeyInfo), { ca: caSigner, responder: responderSigner });
      // The pool's only thread, killed from outside (what an out-of-memory abort would look like).
      // The stop is asked for before the job is posted, in the same tick: the thread is still the
      // pool's (its exit is not seen yet), so the job goes to it and can never be answered. Posted
      // first, a job signed in well under a millisecond could be answered before the stop landed.
      const threads = (own as unknown as { threads: ({ worker: { terminate(): Promise<number> } } | undefined)[] }).threads;
      const stopped = threads[0]!.worker.terminate();
      const inFlight = own.signIssuance(jobFor(leaf.publicKeyInfo), { ca: caSigner, responder: responderSigner }).catch((e: unknown) => e);
      await stopped;
      const error = await inFlight;
      expect(error).toBeInstanceOf(TiercaError);
      expect((error as TiercaError).code).toBe('internal');
      const again = await own.signIssuance(jobFor(leaf.publicKeyInfo), { ca: caSigner, responder: responderSigner });
      expect(again.certificate.length).toBeGreaterThan(300);
    } finally {
      await own.close();
    }
  });

  it('after close, jobs are refused as unavailable; a pool of 0 threads signs in place', async () => {
    const own = new SigningPool(1);
    await own.close();
    const leaf = await leafKey();
    const error = await own.signIssuance(jobFor(leaf.publicKeyInfo), { ca: caSigner, responder: responderSigner }).catch((e: unknown) => e);
    expect((error as TiercaError).code).toBe('unavailable');
    const inPlace = new SigningPool(0);
    const signed = await inPlace.signIssuance(jobFor(leaf.publicKeyInfo, { serial: Buffer.concat([Buffer.from([0x01]), randomBytes(15)]) }), { ca: caSigner, responder: responderSigner });
    expect(signed.certificate.length).toBeGreaterThan(300);
  });
});
