/**
 * The offline root machine (docs/offline-root.md): `tierca root init` makes the root key and its
 * self-signed certificate in the machine's own data folder (a SQLite store of its own: the sealed key
 * or the token's record, the root CA record, its own hash-chained audit log, and the ceremony state);
 * `root sign` reads a request bundle, checks it is this hierarchy's, signed by the online service's
 * pinned audit key and the next in sequence, and signs it; `root revoke` and `root crl` are the
 * ceremonies it begins itself. Every response bundle carries a fresh root CRL, a pre-signed OCSP
 * answer for each certificate the root has issued, and the offline audit records made since the
 * last response. No HTTP, no online database.
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { chmodSync, mkdirSync } from 'node:fs';
import { buildCertificate, randomSerial, serialToHex } from '../../pki/certificate.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { keyIdentifier, subjectPublicKeyBits } from '../../pki/key-pair.ts';
import { encodeName } from '../../pki/name.ts';
import { bundleDigest, parseBundle, readOrRefuse, sha256Hex, signBundle, verifyBundle, type BundleEnvelope } from '../../pki/offline-bundle.ts';
import {
  buildDomainCaCertificate, readRequestPayload, summariseDomainCaRequest, type CarriedAuditRecord, type DomainCaRequest, type DomainCaSummary, type ResponsePayload,
} from '../../pki/offline-ceremony.ts';
import { signRootStatus } from '../../pki/offline-root-rollover.ts';
import { rootCaExtensions } from '../../pki/profiles.ts';
import { isKeyAlgorithm } from '../../pki/algorithms.ts';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import { custodyOf } from '../../pki/keystore/keystore.ts';
import { appendAudit } from '../audit/audit-log.ts';
import type { TiercaConfig } from '../config/load-config.ts';
import { TiercaError } from '../errors.ts';
import { newKeystore, openInstalledKeystore, pkcs11CustodyRecord, readCustody, type KeystoreSettings } from '../keystore-custody.ts';
import { openStore } from '../storage/knex-store.ts';
import type { CaRecord, Repositories, Store } from '../storage/storage.ts';
import { ROOT_CA_ID } from '../ca/ca-directory.ts';
import { caRsaPadding } from '../ca/ca-signature.ts';
import { addYears } from '../ca/validity.ts';
import { checkRevocations, findIssued, revokeIssued, type CheckedRevocation, type IssuedCertificate } from './root-revocation.ts';

/** The offline machine's database, in its own data folder (never the online one's). */
export const ROOT_DB_FILE = 'tierca-root.db';
export const STATE_META = 'offline-root.state';
const MIN_PASSPHRASE = 12;

/** What the offline machine remembers between ceremonies (meta `offline-root.state`). */
export interface RootState {
  fingerprint: string;
  /** Two officers' passphrases unseal the root key (config `root.dualControl`). */
  dualControl: boolean;
  /** The online service's request-signing key (its audit key), pinned at the first request; base64 SPKI. */
  requestSigner: string | null;
  lastRequest: number;
  lastResponse: number;
  crlNumber: string;
  /** The last offline audit record sent across. */
  lastExportedAudit: number;
  issued: IssuedCertificate[];
}

/** The secrets that open the root key: one passphrase, or two officers' (dual control), or a token PIN. */
export interface RootSecrets {
  passphrases?: string[];
  pin?: string;
  kdf?: { N: number; r: number; p: number };
}

/**
 * The keystore passphrase under dual control: both officers' passphrases, each a share that alone
 * opens nothing (the KEK is derived from both; decision 0026). Sorted, so the order they are typed
 * in does not matter; they must differ.
 */
export function keystorePassphrase(passphrases: readonly string[] | undefined, dualControl: boolean): string {
  const given = passphrases ?? [];
  if (dualControl) {
    if (given.length !== 2) throw new TiercaError('bad-request', 'the root is under dual control: two officers\' passphrases are needed (--passphrase-file and --second-passphrase-file, or two prompts)');
    if (given[0] === given[1]) throw new TiercaError('bad-request', 'the two officers\' passphrases must differ');
    return JSON.stringify(['tierca-root-shares/1', ...[...given].sort()]);
  }
  if (given.length !== 1) throw new TiercaError('bad-request', given.length ? 'the root is not under dual control: give one passphrase' : 'the root keystore passphrase is needed');
  return given[0];
}

export async function openRootStore(dataDir: string, create: boolean): Promise<Store> {
  const file = join(dataDir, ROOT_DB_FILE);
  if (create) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  else {
    try {
      chmodSync(file, 0o600);
    } catch {
      throw new TiercaError('not-found', `${dataDir} holds no offline root: run \`tierca root init --config … --data ${dataDir}\` first`);
    }
  }
  const store = await openStore({ sqliteFile: file });
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      chmodSync(`${file}${suffix}`, 0o600);
    } catch {
      // -wal/-shm appear only once written.
    }
  }
  return store;
}

export async function readState(repos: Pick<Repositories, 'meta'>, dataDir: string): Promise<RootState> {
  const text = await repos.meta.get(STATE_META);
  if (!text) throw new TiercaError('not-found', `${dataDir} holds no offline root: run \`tierca root init --config … --data ${dataDir}\` first`);
  return JSON.parse(text) as RootState;
}

export interface RootInitResult {
  certificate: Buffer;
  fingerprint: string;
  subject: string;
  notAfter: Date;
}

/**
 * `tierca root init`: the root key (sealed under the passphrase — both officers' under dual control —
 * or made in the PKCS#11 token the settings name) and the self-signed root certificate, in an empty
 * data folder of the offline machine. Audited in the offline chain.
 */
export async function rootInit(p: { dataDir: string; config: TiercaConfig; keystore?: KeystoreSettings; secrets: RootSecrets; now: Date; random?: (n: number) => Buffer }): Promise<RootInitResult> {
  const { config, now } = p;
  const random = p.random ?? randomBytes;
  const dualControl = config.root.dualControl ?? false;
  const settings: KeystoreSettings = p.keystore ?? config.keystore ?? { custody: 'software' };
  let passphrase: string | undefined;
  if (settings.custody === 'software') {
    passphrase = keystorePassphrase(p.secrets.passphrases, dualControl);
    for (const share of p.secrets.passphrases ?? []) {
      if (share.length < MIN_PASSPHRASE) throw new TiercaError('bad-request', `each root passphrase must be at least ${MIN_PASSPHRASE} characters`);
    }
  } else if (!p.secrets.pin) throw new TiercaError('bad-request', 'the token PIN is needed: set TIERCA_PKCS11_PIN or use --pin-file');
  const tokenSettings = settings.custody === 'pkcs11' ? { ...settings, inSoftware: undefined } : settings;
  const store = await openRootStore(p.dataDir, true);
  try {
    if (await store.meta.get(STATE_META) || (await store.cas.list()).length) throw new TiercaError('already-exists', `${p.dataDir} already holds an offline root`);
    const { keystore, header } = await newKeystore(tokenSettings, { passphrase, pin: p.secrets.pin, kdf: p.secrets.kdf });
    try {
      const start = new Date(Math.floor(now.getTime() / 1000) * 1000);
      const keyId = `ca-root-${random(4).toString('hex')}`;
      const generated = await keystore.generate(keyId, config.root.algorithm);
      const signer = keystore.signer(keyId, { rsaPadding: caRsaPadding(config, { layer: 'root', tier: null }) });
      const subject = encodeName([
        { type: 'C', value: config.country }, { type: 'ST', value: config.province }, { type: 'O', value: config.organisation }, { type: 'CN', value: config.root.name },
      ]);
      const serial = randomSerial(random);
      const notAfter = addYears(start, config.root.validityYears);
      const certificate = await buildCertificate({
        serial, issuer: subject, subject, notBefore: start, notAfter, publicKeyInfo: generated.publicKeyInfo,
        extensions: rootCaExtensions({ publicKeyInfo: generated.publicKeyInfo }), signer,
      });
      const fingerprint = sha256Hex(certificate);
      const record: CaRecord = {
        id: ROOT_CA_ID, layer: 'root', domain: null, tier: null, parentId: null, name: config.root.name, keyId, certificate, serial: serialToHex(serial),
        notBefore: start, notAfter, fingerprint,
        keyHashSha1: createHash('sha1').update(subjectPublicKeyBits(generated.publicKeyInfo)).digest('hex'),
        nameHashSha1: createHash('sha1').update(subject).digest('hex'),
        status: 'active', revokedAt: null, revocationReason: null, createdAt: start,
      };
      const state: RootState = { fingerprint, dualControl, requestSigner: null, lastRequest: 0, lastResponse: 0, crlNumber: '0', lastExportedAudit: 0, issued: [] };
      await store.transaction(async (tx) => {
        await tx.keys.insert({
          id: keyId, algorithm: config.root.algorithm, custody: custodyOf(generated), sealed: generated.sealed, pkcs11Label: generated.pkcs11Label,
          publicKeyInfo: generated.publicKeyInfo, purpose: 'ca', createdAt: start,
        });
        await tx.cas.insert(record);
        await tx.meta.set('keystore', tokenSettings.custody === 'pkcs11' ? pkcs11CustodyRecord(tokenSettings) : header);
        await tx.meta.set('config.root', JSON.stringify({ ...config.root, rsaPadding: config.root.rsaPadding ?? null }));
        await tx.meta.set(STATE_META, JSON.stringify(state));
        await appendAudit(tx.audit, start, {
          principalId: null, role: null, source: 'offline-root', action: 'root.init', target: `ca:${ROOT_CA_ID}`, outcome: 'success', requestId: null,
          detail: { fingerprint, algorithm: config.root.algorithm, custody: custodyOf(generated), dualControl, notAfter: notAfter.toISOString() },
        });
      });
      return { certificate, fingerprint, subject: config.root.name, notAfter };
    } finally {
      await keystore.close?.();
    }
  } finally {
    await store.close();
  }
}

/** Whether the root key is sealed in software or held in a token (no secret needed to tell). */
export async function rootCustody(dataDir: string): Promise<'software' | 'pkcs11'> {
  const store = await openRootStore(dataDir, false);
  try {
    await readState(store, dataDir);
    return readCustody((await store.meta.get('keystore'))!).custody;
  } finally {
    await store.close();
  }
}

/** The root's certificate and fingerprint from its data folder (`tierca root show`). */
export async function rootShow(dataDir: string): Promise<{ certificate: Buffer; fingerprint: string; dualControl: boolean; lastRequest: number; lastResponse: number; issued: IssuedCertificate[] }> {
  const store = await openRootStore(dataDir, false);
  try {
    const state = await readState(store, dataDir);
    const root = await currentRoot(store);
    return { certificate: root.certificate, fingerprint: state.fingerprint, dualControl: state.dualControl, lastRequest: state.lastRequest, lastResponse: state.lastResponse, issued: state.issued };
  } finally {
    await store.close();
  }
}

const refuse = (code: 'bundle-invalid' | 'bundle-foreign' | 'bundle-replayed' | 'bundle-out-of-order', message: string, detail: Record<string, unknown> = {}) =>
  new TiercaError(code, `${message}; nothing was signed`, { detail });

/** A request bundle read and checked, and what signing it would make: shown to the officers first. */
export interface CheckedRequest {
  envelope: BundleEnvelope;
  requests: DomainCaRequest[];
  summaries: DomainCaSummary[];
  /** The revocations the request asks for (decided online under dual control). */
  revocations: CheckedRevocation[];
  /** Whether this request pins the online signing key (the first one does: compare its fingerprint with the online side's). */
  pinsSigner: boolean;
  signerFingerprint: string;
  dualControl: boolean;
}

function checkRequest(state: RootState, bytes: Buffer): CheckedRequest {
  const envelope: BundleEnvelope = readOrRefuse(() => parseBundle(bytes), (m) => refuse('bundle-invalid', m));
  if (envelope.kind !== 'request') throw refuse('bundle-invalid', `this is a ${envelope.kind} bundle: root sign takes the online service's request bundle`);
  if (envelope.hierarchy !== state.fingerprint) {
    throw refuse('bundle-foreign', `the request was made for the hierarchy of root ${envelope.hierarchy}, not this root (${state.fingerprint})`, { hierarchy: envelope.hierarchy });
  }
  const signerKey = Buffer.from(state.requestSigner ?? envelope.signer.publicKeyInfo, 'base64');
  if (!verifyBundle(envelope, signerKey)) {
    throw refuse('bundle-invalid', state.requestSigner
      ? 'the request\'s signature does not verify with the online service\'s key pinned at the first ceremony: it was altered or made elsewhere'
      : 'the request\'s signature does not verify: it was altered');
  }
  if (envelope.sequence <= state.lastRequest) throw refuse('bundle-replayed', `request ${envelope.sequence} was signed already (the last signed is ${state.lastRequest})`, { sequence: envelope.sequence });
  if (envelope.sequence !== state.lastRequest + 1) throw refuse('bundle-out-of-order', `request ${envelope.sequence} cannot come before ${state.lastRequest + 1}`, { sequence: envelope.sequence, expected: state.lastRequest + 1 });
  const payload = readOrRefuse(() => readRequestPayload(envelope.payload), (m) => refuse('bundle-invalid', m));
  const requests: DomainCaRequest[] = payload.certify;
  return {
    envelope, requests, summaries: requests.map(summariseDomainCaRequest), pinsSigner: !state.requestSigner,
    revocations: checkRevocations(state.issued, payload.revoke ?? [], (m) => refuse('bundle-invalid', m)),
    signerFingerprint: sha256Hex(signerKey), dualControl: state.dualControl,
  };
}

/** Reads and checks a request bundle without the root key: what `root sign` shows before it asks for the passphrases. */
export async function rootReadRequest(dataDir: string, bytes: Buffer): Promise<CheckedRequest> {
  const store = await openRootStore(dataDir, false);
  try {
    return checkRequest(await readState(store, dataDir), bytes);
  } finally {
    await store.close();
  }
}

/** The root's current generation (no rollover has replaced it) in the offline store. */
export const currentRoot = async (store: Store): Promise<CaRecord> => (await store.cas.list()).find((c) => c.layer === 'root' && !c.successorId)!;

/** The offline store with every root key loaded; `generations`: every root generation, the current one (`root`) first. */
export interface OpenRoot {
  store: Store;
  state: RootState;
  root: CaRecord;
  generations: CaRecord[];
  keystore: KeyStore;
}

export async function withRootKey<T>(dataDir: string, secrets: RootSecrets, fn: (open: OpenRoot) => Promise<T>): Promise<T> {
  const store = await openRootStore(dataDir, false);
  try {
    const state = await readState(store, dataDir);
    const generations = (await store.cas.list()).filter((c) => c.layer === 'root').sort((a, b) => Number(!!a.successorId) - Number(!!b.successorId));
    const custody = readCustody((await store.meta.get('keystore'))!);
    const passphrase = custody.custody === 'software' ? keystorePassphrase(secrets.passphrases, state.dualControl) : undefined;
    const keystore = await openInstalledKeystore(custody, undefined, passphrase, secrets.pin);
    try {
      for (const key of await store.keys.list('ca')) {
        if (!isKeyAlgorithm(key.algorithm)) throw new TiercaError('internal', `root key ${key.id} has unknown algorithm ${key.algorithm}`);
        await keystore.load({ id: key.id, algorithm: key.algorithm, sealed: key.sealed, pkcs11Label: key.pkcs11Label });
      }
      return await fn({ store, state, root: generations[0], generations, keystore });
    } finally {
      await keystore.close?.();
    }
  } finally {
    await store.close();
  }
}

/** The signer of the root generation `record` (default: the current one). */
export async function rootSigner(open: OpenRoot, record: CaRecord = open.root) {
  const rootConfig = JSON.parse((await open.store.meta.get('config.root')) ?? '{}') as { rsaPadding?: 'pkcs1' | 'pss' | null };
  return open.keystore.signer(record.keyId, { rsaPadding: rootConfig.rsaPadding ?? 'pkcs1' });
}

export interface ResponseOutcome {
  bytes: Buffer;
  sequence: number;
  certified: { ca: string; serial: string }[];
  crlNumber: string;
  nextUpdate: Date;
}

/**
 * `tierca root sign`: checks the request again (as {@link rootReadRequest}), signs its domain CA
 * certificates with the root key, and writes the response bundle — certificates, revocations, a new
 * root CRL and OCSP answers valid until `nextUpdate`, the offline audit records. One transaction.
 */
export async function rootSign(p: { dataDir: string; bytes: Buffer; secrets: RootSecrets; now: Date; nextUpdateMs: number; random?: (n: number) => Buffer }): Promise<ResponseOutcome> {
  return withRootKey(p.dataDir, p.secrets, async (open) => {
    const checked = checkRequest(open.state, p.bytes);
    const signer = await rootSigner(open);
    const rootFields = readCertificate(open.root.certificate);
    const rootKeyId = rootFields.subjectKeyId ?? keyIdentifier(rootFields.publicKeyInfo);
    const certificates: { ca: string; certificate: string }[] = [];
    const issued: IssuedCertificate[] = [];
    for (const request of checked.requests) {
      if (open.state.issued.some((i) => i.ca === request.ca && i.status === 'good')) {
        throw refuse('bundle-invalid', `the root has certified ${request.ca} already`, { ca: request.ca });
      }
      const serial = randomSerial(p.random);
      const der = await buildDomainCaCertificate({ request, serial, rootSubject: rootFields.subject, rootKeyId, rootNotAfter: open.root.notAfter, signer });
      certificates.push({ ca: request.ca, certificate: der.toString('base64') });
      issued.push({ issuer: open.root.id, ca: request.ca, serial: serialToHex(serial), certificate: der.toString('base64'), notAfter: readCertificate(der).notAfter.toISOString(), status: 'good', revokedAt: null, reason: null });
    }
    let all = [...open.state.issued, ...issued];
    const revoked = checked.revocations.filter((r) => !r.already);
    for (const r of revoked) all = revokeIssued(all, findIssued(all, r.serial), p.now, r.reason).issued;
    const state: RootState = {
      ...open.state, lastRequest: checked.envelope.sequence, requestSigner: open.state.requestSigner ?? checked.envelope.signer.publicKeyInfo, issued: all,
    };
    return respond(open, state, signer, {
      inReplyTo: { sequence: checked.envelope.sequence, digest: bundleDigest(p.bytes) }, certificates, now: p.now, nextUpdateMs: p.nextUpdateMs,
      audit: {
        action: 'root.sign', target: `bundle:request:${checked.envelope.sequence}`,
        detail: { request: checked.envelope.sequence, digest: bundleDigest(p.bytes), signer: checked.signerFingerprint, certified: issued.map((i) => ({ ca: i.ca, serial: i.serial })),
          revoked: revoked.map((r) => ({ ca: r.ca, serial: r.serial, reason: r.reason })) },
      },
    });
  });
}

/**
 * `tierca root revoke`: marks a certificate the root issued revoked in the offline state (audited);
 * the next response bundle (`root crl`, or `root sign`) carries it across.
 */
export async function rootRevoke(p: { dataDir: string; ca: string; reason: number; secrets: RootSecrets; now: Date }): Promise<{ ca: string; serial: string }> {
  return withRootKey(p.dataDir, p.secrets, async (open) => {
    const target = findIssued(open.state.issued, p.ca);
    if (target.status === 'revoked') throw new TiercaError('revocation-final', `${target.ca} (serial ${target.serial}) is revoked already`, { detail: { ca: target.ca } });
    const at = new Date(Math.floor(p.now.getTime() / 1000) * 1000);
    const { issued, revoked } = revokeIssued(open.state.issued, target, at, p.reason);
    const state: RootState = { ...open.state, issued };
    await open.store.transaction(async (tx) => {
      await tx.meta.set(STATE_META, JSON.stringify(state));
      await appendAudit(tx.audit, at, {
        principalId: null, role: null, source: 'offline-root', action: 'root.revoke', target: `ca:${target.ca}`, outcome: 'success', requestId: null,
        detail: { serial: target.serial, reason: p.reason, ...(revoked.length > 1 ? { serials: revoked.map((i) => i.serial) } : {}) },
      });
    });
    return { ca: target.ca, serial: target.serial };
  });
}

/** `tierca root crl`: a ceremony the root begins itself — a new root CRL and OCSP answers, and any revocations since the last response. */
export async function rootCrl(p: { dataDir: string; secrets: RootSecrets; now: Date; nextUpdateMs: number }): Promise<ResponseOutcome> {
  return withRootKey(p.dataDir, p.secrets, async (open) => {
    return respond(open, open.state, await rootSigner(open), { inReplyTo: null, certificates: [], now: p.now, nextUpdateMs: p.nextUpdateMs, audit: { action: 'root.crl', target: `ca:${ROOT_CA_ID}`, detail: {} } });
  });
}

/** The next response bundle, signed by `bundleSigner`; each root generation signs its own status (decision 0031). One transaction, with `p.inTransaction`. */
export async function respond(
  open: OpenRoot, state: RootState, bundleSigner: Awaited<ReturnType<typeof rootSigner>>,
  p: { inReplyTo: ResponsePayload['inReplyTo']; certificates: ResponsePayload['certificates']; now: Date; nextUpdateMs: number; audit: { action: string; target: string; detail: Record<string, unknown> }; rollover?: ResponsePayload['rollover']; inTransaction?: (tx: Repositories) => Promise<void> },
): Promise<ResponseOutcome> {
  const thisUpdate = new Date(Math.floor(p.now.getTime() / 1000) * 1000);
  const nextUpdate = new Date(thisUpdate.getTime() + p.nextUpdateMs);
  if (nextUpdate.getTime() > open.root.notAfter.getTime()) throw new TiercaError('bad-request', `--next-update: ${nextUpdate.toISOString()} is after the root expires (${open.root.notAfter.toISOString()})`);
  const crlNumber = BigInt(state.crlNumber) + 1n;
  const signed: NonNullable<ResponsePayload['previousRoots']> = [];
  for (const g of open.generations) {
    const issued = state.issued.filter((i) => (i.issuer ?? ROOT_CA_ID) === g.id);
    if (g.id !== open.root.id && !issued.some((i) => Date.parse(i.notAfter) > thisUpdate.getTime())) continue;
    const until = new Date(Math.min(nextUpdate.getTime(), g.notAfter.getTime()));
    signed.push({ ca: g.id, ...(await signRootStatus({ rootCertificate: g.certificate, signer: await rootSigner(open, g), issued, crlNumber, thisUpdate, nextUpdate: until })) });
  }
  const [current, ...previousRoots] = signed;
  const revoked = state.issued.filter((i) => i.status === 'revoked');
  const sequence = state.lastResponse + 1;
  return open.store.transaction(async (tx) => {
    // The record of this ceremony goes across with the ones before it.
    await appendAudit(tx.audit, thisUpdate, {
      principalId: null, role: null, source: 'offline-root', action: p.audit.action, target: p.audit.target, outcome: 'success', requestId: null,
      detail: { ...p.audit.detail, response: sequence, crlNumber: crlNumber.toString(), nextUpdate: nextUpdate.toISOString() },
    });
    const records = await tx.audit.list({ fromSeq: state.lastExportedAudit + 1 });
    const audit: CarriedAuditRecord[] = records.map((r) => ({ ...r, at: r.at.toISOString() }));
    const payload: ResponsePayload = {
      inReplyTo: p.inReplyTo,
      certificates: p.certificates,
      revocations: revoked.map((i) => ({ ca: i.ca, serial: i.serial, revokedAt: i.revokedAt!, reason: i.reason ?? 0 })),
      crl: current.crl, ocsp: current.ocsp, audit, ...(p.rollover ? { rollover: p.rollover } : {}), ...(previousRoots.length ? { previousRoots } : {}),
    };
    const bytes = await signBundle({ kind: 'response', hierarchy: state.fingerprint, sequence, createdAt: thisUpdate.toISOString(), payload }, bundleSigner);
    const next: RootState = { ...state, lastResponse: sequence, crlNumber: crlNumber.toString(), lastExportedAudit: records.at(-1)?.seq ?? state.lastExportedAudit };
    await p.inTransaction?.(tx);
    await tx.meta.set(STATE_META, JSON.stringify(next));
    return {
      bytes, sequence, certified: p.certificates.map((c) => ({ ca: c.ca, serial: readCertificate(Buffer.from(c.certificate, 'base64')).serial })),
      crlNumber: crlNumber.toString(), nextUpdate,
    };
  });
}
