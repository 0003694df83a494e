/**
 * `tierca root rollover` on the offline machine (docs/decisions/0031-offline-root-rollover.md): a new
 * root key in the same keystore as the old one (sealed under the same passphrases, or in the same
 * token), the new self-signed root certificate (the root's name, a new serial, the validity
 * `root init` gives), the two link certificates, and every domain CA the old root certified and did
 * not revoke re-certified under the new root. The response bundle that carries it is signed by the
 * OLD key — the one the online side has pinned — and from then on the offline machine signs with the
 * new root; the old key signs only its own CRL and OCSP answers, for what it issued, until that has
 * expired. One transaction, audited in the offline chain (`root.rollover`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { custodyOf } from '../../pki/keystore/keystore.ts';
import { buildCertificate, randomSerial, serialToHex } from '../../pki/certificate.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { keyIdentifier, subjectPublicKeyBits } from '../../pki/key-pair.ts';
import { decodeName, encodeName, formatName } from '../../pki/name.ts';
import { sha256Hex } from '../../pki/offline-bundle.ts';
import { buildRootLinks, recertifyCaCertificate } from '../../pki/offline-root-rollover.ts';
import { rootCaExtensions } from '../../pki/profiles.ts';
import type { TiercaConfig } from '../config/load-config.ts';
import { TiercaError } from '../errors.ts';
import { currentRoot, openRootStore, readState, respond, rootSigner, withRootKey, type ResponseOutcome, type RootSecrets } from './machine.ts';
import type { IssuedCertificate } from './root-revocation.ts';
import type { CaRecord, Store } from '../storage/storage.ts';
import { generationOf, lineageOf } from '../ca/ca-directory.ts';
import { caUrls } from '../ca/urls.ts';
import { addYears } from '../ca/validity.ts';

/** What a rollover will sign, shown to the officers before any secret is asked. */
export interface RolloverPlan {
  /** The current root generation (its key signs the response bundle and the new-with-old link). */
  old: { ca: string; fingerprint: string; notAfter: string };
  /** The new generation's id (`root-g2`, …) and its validity. */
  ca: string;
  subject: string;
  algorithm: string;
  notBefore: string;
  notAfter: string;
  /** The domain CAs re-certified under the new root: same subject and key, new serial. */
  recertify: { ca: string; subject: string; keyFingerprint: string; notAfter: string }[];
  dualControl: boolean;
}

export interface RolloverOutcome extends ResponseOutcome {
  ca: string;
  certificate: Buffer;
  fingerprint: string;
  links: { oldWithNew: Buffer; newWithOld: Buffer };
}

/** The root's name as `root init` writes it (C, ST, O, CN from the configuration). */
const rootSubject = (config: TiercaConfig): Buffer => encodeName([
  { type: 'C', value: config.country }, { type: 'ST', value: config.province }, { type: 'O', value: config.organisation }, { type: 'CN', value: config.root.name },
]);

function planOf(root: CaRecord, issued: readonly IssuedCertificate[], config: TiercaConfig, p: { now: Date; validityYears?: number; dualControl: boolean }): RolloverPlan {
  const start = new Date(Math.floor(p.now.getTime() / 1000) * 1000);
  if (root.notAfter.getTime() <= start.getTime()) throw new TiercaError('conflict', `the root ${root.id} has expired: a new hierarchy needs a new key ceremony (root init), not a rollover`);
  const subject = rootSubject(config);
  if (!subject.equals(readCertificate(root.certificate).subject)) {
    throw new TiercaError('bad-request', `--config names the root ${formatName(decodeName(subject))}, but the root is ${formatName(decodeName(readCertificate(root.certificate).subject))}: a rollover keeps the root's name`);
  }
  const years = p.validityYears ?? config.root.validityYears;
  if (!Number.isInteger(years) || years < 1 || years > 30) throw new TiercaError('bad-request', `--validity: ${years} is not a whole number of years from 1 to 30`);
  const notAfter = addYears(start, years);
  return {
    old: { ca: root.id, fingerprint: root.fingerprint, notAfter: root.notAfter.toISOString() },
    ca: `${lineageOf(root)}-g${generationOf(root) + 1}`,
    subject: formatName(decodeName(subject)),
    algorithm: config.root.algorithm,
    notBefore: start.toISOString(),
    notAfter: notAfter.toISOString(),
    recertify: toRecertify(root, issued, start).map((i) => {
      const fields = readCertificate(Buffer.from(i.certificate, 'base64'));
      return { ca: i.ca, subject: formatName(decodeName(fields.subject)), keyFingerprint: sha256Hex(fields.publicKeyInfo), notAfter: new Date(Math.min(Date.parse(i.notAfter), notAfter.getTime())).toISOString() };
    }),
    dualControl: p.dualControl,
  };
}

/** What the old root certified, has not revoked and has not expired: each gets a certificate under the new root. */
const toRecertify = (root: CaRecord, issued: readonly IssuedCertificate[], at: Date) =>
  issued.filter((i) => (i.issuer ?? 'root') === root.id && i.status === 'good' && Date.parse(i.notAfter) > at.getTime());

async function readRoot(store: Store, dataDir: string) {
  const state = await readState(store, dataDir);
  return { state, root: await currentRoot(store) };
}

/** What `root rollover` will make, read without any secret. */
export async function rootRolloverPlan(p: { dataDir: string; config: TiercaConfig; now: Date; validityYears?: number }): Promise<RolloverPlan> {
  const store = await openRootStore(p.dataDir, false);
  try {
    const { state, root } = await readRoot(store, p.dataDir);
    return planOf(root, state.issued, p.config, { ...p, dualControl: state.dualControl });
  } finally {
    await store.close();
  }
}

/**
 * `tierca root rollover`: makes and signs what {@link rootRolloverPlan} showed and writes the
 * response bundle (next response sequence, answering no request), signed by the old root key.
 */
export async function rootRollover(p: {
  dataDir: string; config: TiercaConfig; secrets: RootSecrets; now: Date; nextUpdateMs: number; validityYears?: number; random?: (n: number) => Buffer;
}): Promise<RolloverOutcome> {
  const random = p.random ?? randomBytes;
  return withRootKey(p.dataDir, p.secrets, async (open) => {
    const old = open.root;
    const plan = planOf(old, open.state.issued, p.config, { now: p.now, validityYears: p.validityYears, dualControl: open.state.dualControl });
    const start = new Date(plan.notBefore);
    const notAfter = new Date(plan.notAfter);
    const oldFields = readCertificate(old.certificate);
    const subject = oldFields.subject;

    // The new key, in the keystore the old one is in: sealed under the same KEK, or made in the same token.
    const keyId = `ca-${plan.ca}-${random(4).toString('hex')}`;
    const generated = await open.keystore.generate(keyId, p.config.root.algorithm);
    const spki = generated.publicKeyInfo;
    const serial = randomSerial(random);
    const record: CaRecord = {
      id: plan.ca, layer: 'root', domain: null, tier: null, parentId: null, name: old.name, keyId, certificate: Buffer.alloc(0), serial: serialToHex(serial),
      notBefore: start, notAfter, fingerprint: '',
      keyHashSha1: createHash('sha1').update(subjectPublicKeyBits(spki)).digest('hex'),
      nameHashSha1: createHash('sha1').update(subject).digest('hex'),
      status: 'active', revokedAt: null, revocationReason: null, createdAt: start,
      lineage: lineageOf(old), generation: generationOf(old) + 1, successorId: null, retiredAt: null,
    };
    const newSigner = await rootSigner(open, record);
    const oldSigner = await rootSigner(open, old);
    record.certificate = await buildCertificate({
      serial, issuer: subject, subject, notBefore: start, notAfter, publicKeyInfo: spki, extensions: rootCaExtensions({ publicKeyInfo: spki }), signer: newSigner,
    });
    record.fingerprint = sha256Hex(record.certificate);
    const links = await buildRootLinks({
      subject,
      old: { publicKeyInfo: oldFields.publicKeyInfo, notBefore: old.notBefore, notAfter: old.notAfter, signer: oldSigner },
      new: { publicKeyInfo: spki, notBefore: start, notAfter, signer: newSigner },
      serial: () => randomSerial(random),
    });

    // Each domain CA again, under the new root: its AIA and CDP name the new generation's URLs.
    const urls = caUrls(p.config.publicUrl, plan.ca);
    const recertified: IssuedCertificate[] = [];
    for (const i of toRecertify(old, open.state.issued, start)) {
      const s = randomSerial(random);
      const der = await recertifyCaCertificate({
        certificate: Buffer.from(i.certificate, 'base64'), issuer: subject, issuerKeyId: keyIdentifier(spki), serial: s,
        notBefore: start, notAfter: new Date(Math.min(Date.parse(i.notAfter), notAfter.getTime())), links: { caIssuersUrl: urls.certificate, crlUrl: urls.crl }, signer: newSigner,
      });
      recertified.push({ issuer: plan.ca, ca: i.ca, serial: serialToHex(s), certificate: der.toString('base64'), notAfter: readCertificate(der).notAfter.toISOString(), status: 'good', revokedAt: null, reason: null });
    }

    const rolled = { ...open, root: record, generations: [record, ...open.generations] };
    const made = await respond(rolled, { ...open.state, issued: [...open.state.issued, ...recertified] }, oldSigner, {
      inReplyTo: null, certificates: [], now: p.now, nextUpdateMs: p.nextUpdateMs,
      rollover: {
        ca: plan.ca, certificate: record.certificate.toString('base64'),
        links: { oldWithNew: links.oldWithNew.toString('base64'), newWithOld: links.newWithOld.toString('base64') },
        certificates: recertified.map((i) => ({ ca: i.ca, certificate: i.certificate })),
      },
      audit: {
        action: 'root.rollover', target: `ca:${lineageOf(old)}`,
        detail: {
          replaced: old.id, replacedFingerprint: old.fingerprint, current: plan.ca, fingerprint: record.fingerprint, algorithm: p.config.root.algorithm,
          custody: custodyOf(generated), notAfter: plan.notAfter,
          links: { oldWithNew: sha256Hex(links.oldWithNew), newWithOld: sha256Hex(links.newWithOld) },
          recertified: recertified.map((i) => ({ ca: i.ca, serial: i.serial })),
        },
      },
      inTransaction: async (tx) => {
        await tx.keys.insert({
          id: keyId, algorithm: p.config.root.algorithm, custody: custodyOf(generated), sealed: generated.sealed, pkcs11Label: generated.pkcs11Label,
          publicKeyInfo: spki, purpose: 'ca', createdAt: start,
        });
        await tx.cas.insert(record);
        if (!(await tx.cas.setSuccessor(old.id, plan.ca))) throw new TiercaError('conflict', `the root ${old.id} was rolled over meanwhile`);
      },
    });
    return { ...made, certified: recertified.map((i) => ({ ca: i.ca, serial: i.serial })), ca: plan.ca, certificate: record.certificate, fingerprint: record.fingerprint, links };
  });
}
