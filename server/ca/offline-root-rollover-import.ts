/**
 * The online side of an offline root's rollover (docs/decisions/0031-offline-root-rollover.md),
 * called by `importResponseBundle` (offline-root-import.ts): checks the new root against the link
 * the pinned old root signed, the link back, and the domain CAs re-certified under the new root (the
 * key and subject each already has here); installs them in the import's transaction — the new root
 * as the next generation of the root's lineage (its key offline: only the public half is here), the
 * link certificates where `/ca/{lineage}-links.pem` serves them, the domain CA certificates in place
 * (their keys and subjects, so the tier CAs and end-entity certificates under them, do not change) —
 * and the status of every root generation. Also tells a bundle signed by a superseded root key apart:
 * one from before the rollover is a replay, one after it is refused.
 */
import { createHash } from 'node:crypto';
import { readCertificate, verifyCertificateSignature, verifySignature } from '../../pki/certificate-reader.ts';
import { parseCrl } from '../../pki/crl-reader.ts';
import { subjectPublicKeyBits } from '../../pki/key-pair.ts';
import { verifyBundle, type BundleEnvelope } from '../../pki/offline-bundle.ts';
import type { ResponsePayload } from '../../pki/offline-ceremony.ts';
import { readRolloverMembers, type CarriedCrl, type CarriedOcspAnswer, type RootGenerationStatus } from '../../pki/offline-root-rollover.ts';
import { PkiError } from '../../pki/pki-error.ts';
import { TiercaError } from '../errors.ts';
import type { CaLinkRecord, CaRecord, KeyRecord, Repositories, Store } from '../storage/storage.ts';
import { generationOf, lineageOf } from './ca-directory.ts';
import { offlineRootRecord } from './hierarchy-ceremony.ts';

const refuse = (code: 'bundle-invalid' | 'bundle-replayed', message: string, detail: Record<string, unknown> = {}) =>
  new TiercaError(code, `${message}; nothing was changed`, { detail });

/** A rollover checked and ready to install. */
export interface CheckedRollover {
  root: CaRecord;
  key: KeyRecord;
  links: CaLinkRecord[];
  recertified: CaRecord[];
}

/** The root generations of this hierarchy other than `current`, by id. */
async function otherGenerations(store: Pick<Repositories, 'cas'>, current: CaRecord): Promise<CaRecord[]> {
  return (await store.cas.list()).filter((c) => c.layer === 'root' && c.id !== current.id && lineageOf(c) === lineageOf(current));
}

/**
 * For a bundle whose signature does not verify with the current root key: throws if a superseded
 * root generation's key signed it — `bundle-replayed` when its sequence was imported already (a
 * bundle from before the rollover), `bundle-invalid` when it is later (after a rollover only the new
 * root signs). Returns when no root key of this hierarchy signed it.
 */
export async function refuseSupersededSigner(store: Store, current: CaRecord, envelope: BundleEnvelope): Promise<void> {
  for (const g of await otherGenerations(store, current)) {
    if (!verifyBundle(envelope, readCertificate(g.certificate).publicKeyInfo)) continue;
    const last = await store.offlineRoot.lastSequence('response');
    if (envelope.sequence <= last) throw refuse('bundle-replayed', `response bundle ${envelope.sequence} was imported already (the last imported is ${last}); it is signed by the superseded root key ${g.id}`, { sequence: envelope.sequence, last });
    throw refuse('bundle-invalid', `response bundle ${envelope.sequence} is signed by the key of ${g.id}, which the root rolled over to ${current.id}: every response after the rollover must be signed by ${current.id}`, { signer: g.id, current: current.id });
  }
}

const b64 = (s: string) => Buffer.from(s, 'base64');

function crlSignedBy(crl: CarriedCrl, what: string, root: CaRecord): void {
  let ok = false;
  try {
    const parsed = parseCrl(b64(crl.der));
    const fields = readCertificate(root.certificate);
    ok = parsed.issuer.equals(fields.subject) && verifySignature({ algorithm: parsed.signatureAlgorithm, publicKeyInfo: fields.publicKeyInfo, data: parsed.tbs, signature: parsed.signature, cacheKey: false });
  } catch (err) {
    if (!(err instanceof PkiError)) throw err;
  }
  if (!ok) throw refuse('bundle-invalid', `${what} is not a CRL signed by ${root.id}`, { ca: root.id });
}

/** The rollover and superseded-root members of a response, checked against this installation; nothing is written. */
export async function checkRolloverMembers(store: Store, current: CaRecord, payload: ResponsePayload, now: Date): Promise<{ rollover?: CheckedRollover; previousRoots: RootGenerationStatus[] }> {
  let members: ReturnType<typeof readRolloverMembers>;
  try {
    members = readRolloverMembers(payload);
  } catch (err) {
    if (err instanceof PkiError) throw refuse('bundle-invalid', err.message);
    throw err;
  }
  const generations = await otherGenerations(store, current);
  const previousRoots = members.previousRoots ?? [];
  const r = members.rollover;
  if (r) generations.push(current);
  for (const g of previousRoots) {
    const ca = generations.find((c) => c.id === g.ca);
    if (!ca) throw refuse('bundle-invalid', `the bundle carries the status of ${g.ca}, which is not a superseded generation of this root`, { ca: g.ca });
    crlSignedBy(g.crl, `the CRL of ${g.ca}`, ca);
  }
  if (!r) return { previousRoots };

  const expected = `${lineageOf(current)}-g${generationOf(current) + 1}`;
  if (r.ca !== expected) throw refuse('bundle-invalid', `the rollover names the new root ${r.ca}, but the next generation of ${current.id} is ${expected}`, { ca: r.ca });
  const der = b64(r.certificate);
  let made: ReturnType<typeof offlineRootRecord>;
  try {
    made = offlineRootRecord(der, current.name, now);
  } catch (err) {
    if (err instanceof TiercaError || err instanceof PkiError) throw refuse('bundle-invalid', `the new root of the rollover is not a self-signed root certificate tierca uses (${err.message})`);
    throw err;
  }
  const old = readCertificate(current.certificate);
  const fresh = readCertificate(der);
  if (!fresh.subject.equals(old.subject)) throw refuse('bundle-invalid', 'the new root does not keep the root\'s name: its link certificates would not be self-issued');
  if (fresh.publicKeyInfo.equals(old.publicKeyInfo)) throw refuse('bundle-invalid', 'the new root has the old root\'s key: a rollover makes a new one');

  // The new key is trusted because the pinned old key certified it (new-with-old); old-with-new is checked too.
  const link = (kind: CaLinkRecord['kind'], text: string, key: Buffer, by: Buffer): CaLinkRecord => {
    const linkDer = b64(text);
    let f;
    try {
      f = readCertificate(linkDer);
    } catch {
      throw refuse('bundle-invalid', `the ${kind} link of the rollover is not a certificate`);
    }
    if (!f.publicKeyInfo.equals(key) || !f.subject.equals(old.subject) || !f.issuer.equals(old.subject) || !verifyCertificateSignature(linkDer, by)) {
      throw refuse('bundle-invalid', `the ${kind} link of the rollover does not certify the ${kind === 'new-with-old' ? 'new root key with the pinned root key' : 'old root key with the new one'}`, { kind });
    }
    return { id: `${expected}:${kind}`, lineage: lineageOf(current), oldCaId: current.id, newCaId: expected, kind, certificate: linkDer, notBefore: f.notBefore, notAfter: f.notAfter, createdAt: now };
  };
  const links = [link('old-with-new', r.links.oldWithNew, old.publicKeyInfo, fresh.publicKeyInfo), link('new-with-old', r.links.newWithOld, fresh.publicKeyInfo, old.publicKeyInfo)];
  const root: CaRecord = { ...made.record, id: expected, lineage: lineageOf(current), generation: generationOf(current) + 1, successorId: null, retiredAt: null, createdAt: now };
  crlSignedBy(payload.crl, 'the root CRL of the rollover', root);

  // Every active domain CA under the old root (but one revoked in this same bundle) comes back under the new one.
  const revokedSerials = new Set(payload.revocations.map((x) => x.serial));
  const under = (await store.cas.list()).filter((c) => c.layer === 'domain' && c.parentId === current.id && c.status === 'active' && !revokedSerials.has(c.serial));
  const recertified: CaRecord[] = [];
  for (const { ca, certificate } of r.certificates) {
    const domain = under.find((c) => c.id === ca);
    if (!domain || recertified.some((c) => c.id === ca)) throw refuse('bundle-invalid', `the rollover re-certifies ${ca}, which is not an active domain CA of ${current.id} here`, { ca });
    const cert = b64(certificate);
    let f;
    try {
      f = readCertificate(cert);
    } catch {
      throw refuse('bundle-invalid', `the new certificate of ${ca} is not a certificate`, { ca });
    }
    const keyHash = createHash('sha1').update(subjectPublicKeyBits(f.publicKeyInfo)).digest('hex');
    const nameHash = createHash('sha1').update(f.subject).digest('hex');
    if (keyHash !== domain.keyHashSha1 || nameHash !== domain.nameHashSha1 || !f.issuer.equals(fresh.subject) || !verifyCertificateSignature(cert, fresh.publicKeyInfo)) {
      throw refuse('bundle-invalid', `the new certificate of ${ca} is not its key and subject signed by the new root`, { ca });
    }
    recertified.push({ ...domain, certificate: cert, serial: f.serial, notBefore: f.notBefore, notAfter: f.notAfter, fingerprint: createHash('sha256').update(cert).digest('hex'), parentId: expected });
  }
  const missing = under.filter((c) => !recertified.some((x) => x.id === c.id)).map((c) => c.id);
  if (missing.length) throw refuse('bundle-invalid', `the rollover does not re-certify ${missing.join(', ')} under the new root`, { missing });
  return { rollover: { root, key: made.key, links, recertified }, previousRoots };
}

/** Installs a checked rollover in the import's transaction: the new root generation, its links, the domain CAs' new certificates. */
export async function installRollover(tx: Repositories, old: CaRecord, r: CheckedRollover): Promise<void> {
  await tx.keys.insert(r.key);
  await tx.cas.insert(r.root);
  if (!(await tx.cas.setSuccessor(old.id, r.root.id))) throw refuse('bundle-replayed', `the root ${old.id} was rolled over already`);
  for (const l of r.links) await tx.caLinks.insert(l);
  for (const c of r.recertified) await tx.cas.recertify(c.id, c);
}

/** Stores one root generation's CRL and pre-signed OCSP answers, and tells every instance to drop what it cached for those serials. */
export async function installRootStatus(tx: Repositories, p: { caId: string; crl: CarriedCrl; ocsp: readonly CarriedOcspAnswer[]; revoked: ReadonlySet<string>; now: Date }): Promise<void> {
  await tx.crls.insert({
    caId: p.caId, number: BigInt(p.crl.number), delta: false, baseNumber: null, der: b64(p.crl.der), thisUpdate: new Date(p.crl.thisUpdate), nextUpdate: new Date(p.crl.nextUpdate),
  });
  for (const o of p.ocsp) {
    await tx.ocspResponses.upsert({ issuerId: p.caId, serial: o.serial, der: b64(o.der), thisUpdate: new Date(o.thisUpdate), nextUpdate: new Date(o.nextUpdate) });
    // ocsp-source.ts polls these events.
    await tx.revocationEvents.append({ issuerId: p.caId, serial: o.serial, status: p.revoked.has(o.serial) ? 'revoked' : 'good', at: p.now });
  }
}
