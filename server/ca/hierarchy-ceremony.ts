/**
 * The key ceremony: makes the root CA, one domain CA per domain and one issuing CA per domain × tier,
 * and stores the whole hierarchy in one transaction (keys sealed by the keystore). Layer = chain depth,
 * domain = name constraints on the domain CA, tier = the certificate-policy OID of the tier CA.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type KeyStore, custodyOf } from '../../pki/keystore/keystore.ts';
import type { KeyAlgorithm } from '../../pki/algorithms.ts';
import { encodeName, type DistinguishedName } from '../../pki/name.ts';
import { buildCertificate, randomSerial, serialToHex } from '../../pki/certificate.ts';
import { keyIdentifier, subjectPublicKeyBits } from '../../pki/key-pair.ts';
import { rootCaExtensions, domainCaExtensions, tierCaExtensions } from '../../pki/profiles.ts';
import { parseCidr } from '../../pki/ip-range.ts';
import type { Signer } from '../../pki/signer.ts';
import type { DomainConfig, TiercaConfig } from '../config/load-config.ts';
import type { CaRecord, KeyRecord, Repositories, Store } from '../storage/storage.ts';
import { caUrls } from './urls.ts';
import { addYears, nestValidity } from './validity.ts';
import { caRsaPadding } from './ca-signature.ts';
import { ROOT_CA_ID, tierCaId } from './ca-directory.ts';
import { readCertificate, verifyCertificateSignature } from '../../pki/certificate-reader.ts';
import { keyAlgorithmOf } from '../../pki/key-pair.ts';
import { signDomainCaRequest, type DomainCaRequest } from '../../pki/offline-ceremony.ts';
import type { PendingCaRecord } from '../storage/storage.ts';
import { TiercaError } from '../errors.ts';


export interface CeremonyParams {
  config: TiercaConfig;
  store: Store;
  keystore: KeyStore;
  now: Date;
  random?: (n: number) => Buffer;
}

/** What the ceremony under an offline root made besides the CAs: the domain CAs to be certified, and the CAs waiting for them. */
export interface OfflineCeremonyResult {
  cas: CaRecord[];
  pending: PendingCaRecord[];
  requests: DomainCaRequest[];
}

/**
 * The ceremony of the online machine under an offline root (docs/offline-root.md): the root is only
 * its certificate (`tierca root init` made it on the offline machine; its key never comes here). The
 * domain CA keys and the tier CAs are made as usual, but a domain CA's certificate needs the root:
 * each becomes a {@link DomainCaRequest} (signed by its own key, as proof of possession), and the
 * domain CA with its tier CAs waits in `offline_pending_cas` until `tierca root import` brings the
 * certificate. Stores everything in one transaction; refuses if a hierarchy exists.
 */
export async function runOfflineRootCeremony(p: CeremonyParams & { rootCertificate: Buffer; requestSequence: number }): Promise<OfflineCeremonyResult> {
  return ceremonyCore(p, { certificate: p.rootCertificate, requestSequence: p.requestSequence });
}

/** The root record and its key row (public half only) of an installation whose root is offline. */
export function offlineRootRecord(certificate: Buffer, name: string, now: Date): { record: CaRecord; key: KeyRecord; subject: Buffer; keyId: Buffer } {
  const fields = readCertificate(certificate);
  const algorithm = keyAlgorithmOf(fields.publicKeyInfo);
  if (!algorithm) throw new TiercaError('bad-request', '--offline-root: the root certificate\'s key is not one tierca uses');
  if (!fields.subject.equals(fields.issuer) || !verifyCertificateSignature(certificate, fields.publicKeyInfo)) {
    throw new TiercaError('bad-request', '--offline-root: not a self-signed root certificate (its signature does not verify with its own key)');
  }
  const fingerprint = createHash('sha256').update(certificate).digest('hex');
  const key: KeyRecord = {
    id: `ca-root-offline-${fingerprint.slice(0, 16)}`, algorithm, custody: 'offline', sealed: null, pkcs11Label: null,
    publicKeyInfo: fields.publicKeyInfo, purpose: 'offline-root', createdAt: now,
  };
  const record: CaRecord = {
    id: ROOT_CA_ID, layer: 'root', domain: null, tier: null, parentId: null, name, keyId: key.id, certificate, serial: fields.serial,
    notBefore: fields.notBefore, notAfter: fields.notAfter, fingerprint,
    keyHashSha1: createHash('sha1').update(subjectPublicKeyBits(fields.publicKeyInfo)).digest('hex'),
    nameHashSha1: createHash('sha1').update(fields.subject).digest('hex'),
    status: 'active', revokedAt: null, revocationReason: null, createdAt: now,
  };
  return { record, key, subject: fields.subject, keyId: fields.subjectKeyId ?? keyIdentifier(fields.publicKeyInfo) };
}

/** A CA made in a ceremony: its record, key row, subject, signer and key identifier. */
export interface MadeCa {
  record: CaRecord;
  key: KeyRecord;
  subject: Buffer;
  signer: Signer;
  keyId: Buffer;
}

/** What makes a CA's key and record in a ceremony: the key (sealed by the keystore) and the record of a signed certificate. */
export interface CaMaker {
  readonly start: Date;
  readonly random: (n: number) => Buffer;
  makeKey(caId: string, algorithm: KeyAlgorithm, layer: CaRecord['layer'], tier?: string | null): Promise<{ key: KeyRecord; signer: Signer }>;
  finish(p: {
    id: string; layer: CaRecord['layer']; domain: string | null; tier: string | null; parent: Pick<MadeCa, 'record'> | null;
    name: string; key: KeyRecord; signer: Signer; subject: Buffer; certificate: Buffer; serial: Buffer; notAfter: Date;
  }): MadeCa;
}

/** A {@link CaMaker} over `keystore`, every CA starting at `start` (whole seconds). */
export function caMaker({ config, keystore, random = randomBytes, start }: { config: TiercaConfig; keystore: KeyStore; random?: (n: number) => Buffer; start: Date }): CaMaker {
  return {
    start,
    random,
    async makeKey(caId, algorithm, layer, tier = null) {
      const id = `ca-${caId}-${random(4).toString('hex')}`;
      // The layers the configuration keeps in software (a root apart from the online HSM); the rest in the keystore's own custody.
      const inSoftware = config.keystore?.custody === 'pkcs11' && config.keystore.inSoftware?.includes(layer);
      const generated = await keystore.generate(id, algorithm, inSoftware ? { custody: 'software' } : {});
      return {
        key: {
          id, algorithm, custody: custodyOf(generated), sealed: generated.sealed, pkcs11Label: generated.pkcs11Label,
          publicKeyInfo: generated.publicKeyInfo, purpose: 'ca', createdAt: start,
        },
        signer: keystore.signer(id, { rsaPadding: caRsaPadding(config, { layer, tier }) }),
      };
    },
    finish(p) {
      const record: CaRecord = {
        id: p.id, layer: p.layer, domain: p.domain, tier: p.tier, parentId: p.parent?.record.id ?? null, name: p.name, keyId: p.key.id,
        certificate: p.certificate, serial: serialToHex(p.serial), notBefore: start, notAfter: p.notAfter,
        fingerprint: createHash('sha256').update(p.certificate).digest('hex'),
        keyHashSha1: createHash('sha1').update(subjectPublicKeyBits(p.key.publicKeyInfo)).digest('hex'),
        nameHashSha1: createHash('sha1').update(p.subject).digest('hex'),
        status: 'active', revokedAt: null, revocationReason: null, createdAt: start,
      };
      return { record, key: p.key, subject: p.subject, signer: p.signer, keyId: keyIdentifier(p.key.publicKeyInfo) };
    },
  };
}

/** A domain as a domain CA's certificate names it (config `domains[]`; the `domains` table's locality is its name). */
export type DomainNames = Pick<DomainConfig, 'slug' | 'name' | 'dnsSuffix' | 'emailSuffix' | 'ipRanges'>;

/**
 * The request for the offline root to certify a domain CA key (`ca`: the domain's slug, or a later
 * generation's id): the domain CA profile's subject, name constraints, every tier's policy and the
 * root's URLs, signed by the domain CA key itself (proof of possession).
 */
export function domainCaRequest(p: {
  /** The root generation that is to sign it (`root`, or `root-g2` … after a root rollover): its URLs go into the links. */
  rootId: string;
  config: TiercaConfig; ca: string; domain: DomainNames; subject: Buffer; publicKeyInfo: Buffer; notBefore: Date; notAfter: Date; signer: Signer;
}): Promise<DomainCaRequest> {
  const { config, domain } = p;
  return signDomainCaRequest({
    ca: p.ca, domain: domain.slug, subject: p.subject.toString('base64'), publicKeyInfo: p.publicKeyInfo.toString('base64'),
    notBefore: p.notBefore.toISOString(), notAfter: p.notAfter.toISOString(), policyOids: [...config.tiers.values()].map((t) => t.oid),
    permitted: { directoryName: [...domainLocality(config, domain)], dnsSuffix: domain.dnsSuffix, emailSuffix: domain.emailSuffix, ipRanges: [...domain.ipRanges] },
    links: linksOf(config.publicUrl, p.rootId),
  }, p.signer);
}

/** C, ST and L of a domain: the directoryName its domain CA is constrained to. */
const domainLocality = (config: TiercaConfig, domain: Pick<DomainNames, 'name'>): DistinguishedName => [
  { type: 'C', value: config.country }, { type: 'ST', value: config.province }, { type: 'L', value: domain.name },
];

/** A record that waits for the root's certificate: the fields of {@link CaMaker.finish} without a certificate. */
export function awaitingRecord(p: { id: string; domain: string; parentId: string; name: string; key: KeyRecord; subject: Buffer; start: Date; notAfter: Date }): CaRecord {
  return {
    id: p.id, layer: 'domain', domain: p.domain, tier: null, parentId: p.parentId, name: p.name, keyId: p.key.id,
    certificate: Buffer.alloc(0), serial: '', notBefore: p.start, notAfter: p.notAfter, fingerprint: '',
    keyHashSha1: createHash('sha1').update(subjectPublicKeyBits(p.key.publicKeyInfo)).digest('hex'),
    nameHashSha1: createHash('sha1').update(p.subject).digest('hex'),
    status: 'active', revokedAt: null, revocationReason: null, createdAt: p.start,
  };
}

/**
 * One domain's CAs: its domain CA (signed by `root`, or — `awaitRoot` — a request for the offline
 * root and a record that waits) and an issuing CA per tier signed by the domain CA key. Makes keys,
 * stores nothing. Shared by the first ceremony and by a domain added later (server/ca/domain-ceremony.ts).
 */
export async function makeDomainCas(p: { config: TiercaConfig; maker: CaMaker; root: Pick<MadeCa, 'record' | 'subject' | 'keyId' | 'signer'>; domain: DomainNames; awaitRoot: boolean }): Promise<{ made: MadeCa[]; request?: DomainCaRequest }> {
  const { config, maker, root, domain } = p;
  const { start, random } = maker;
  const made: MadeCa[] = [];
  let request: DomainCaRequest | undefined;
  const locality = domainLocality(config, domain);
  const domainKey = await maker.makeKey(domain.slug, config.domainCa.algorithm, 'domain');
  const name = `${domain.name}域CA`;
  const subject = encodeName([...locality, { type: 'O', value: config.organisation }, { type: 'CN', value: name }]);
  const { notAfter } = nestValidity({ notBefore: start, notAfter: addYears(start, config.domainCa.validityYears) }, root.record);
  let domainCa: MadeCa;
  if (p.awaitRoot) {
    // The root signs this one across the air gap: a request now, the record once the certificate is back.
    request = await domainCaRequest({ rootId: root.record.id, config, ca: domain.slug, domain, subject, publicKeyInfo: domainKey.key.publicKeyInfo, notBefore: start, notAfter, signer: domainKey.signer });
    domainCa = {
      record: awaitingRecord({ id: domain.slug, domain: domain.slug, parentId: root.record.id, name, key: domainKey.key, subject, start, notAfter }),
      key: domainKey.key, subject, signer: domainKey.signer, keyId: keyIdentifier(domainKey.key.publicKeyInfo),
    };
  } else {
    const serial = randomSerial(random);
    domainCa = maker.finish({
      id: domain.slug, layer: 'domain', domain: domain.slug, tier: null, parent: root, name, ...domainKey, subject, serial, notAfter,
      certificate: await buildCertificate({
        serial, issuer: root.subject, subject, notBefore: start, notAfter, publicKeyInfo: domainKey.key.publicKeyInfo,
        extensions: domainCaExtensions({
          publicKeyInfo: domainKey.key.publicKeyInfo,
          issuerKeyId: root.keyId,
          policyOids: [...config.tiers.values()].map((t) => t.oid),
          permitted: { directoryName: locality, dnsSuffix: domain.dnsSuffix, emailSuffix: domain.emailSuffix, ipRanges: domain.ipRanges.map(parseCidr) },
          links: linksOf(config.publicUrl, ROOT_CA_ID),
        }),
        signer: root.signer,
      }),
    });
  }
  made.push(domainCa);

  for (const tier of config.tiers.values()) {
    const id = tierCaId(domain.slug, tier.id);
    const tierKey = await maker.makeKey(id, tier.caAlgorithm, 'tier', tier.id);
    const tierName = `${domain.name} ${tier.id} 签发CA`;
    const tierSubject = encodeName([
      ...locality,
      { type: 'O', value: config.organisation },
      { type: 'OU', value: `${tier.id} ${tier.name}` },
      { type: 'CN', value: tierName },
    ]);
    const { notAfter: tierNotAfter } = nestValidity({ notBefore: start, notAfter: addYears(start, config.tierCa.validityYears) }, domainCa.record);
    const tierSerial = randomSerial(random);
    made.push(maker.finish({
      id, layer: 'tier', domain: domain.slug, tier: tier.id, parent: domainCa, name: tierName, ...tierKey,
      subject: tierSubject, serial: tierSerial, notAfter: tierNotAfter,
      certificate: await buildCertificate({
        serial: tierSerial, issuer: domainCa.subject, subject: tierSubject, notBefore: start, notAfter: tierNotAfter,
        publicKeyInfo: tierKey.key.publicKeyInfo,
        extensions: tierCaExtensions({
          publicKeyInfo: tierKey.key.publicKeyInfo,
          issuerKeyId: domainCa.keyId,
          policyOid: tier.oid,
          links: linksOf(config.publicUrl, domain.slug),
        }),
        signer: domainCa.signer,
      }),
    }));
  }
  return { made, ...(request ? { request } : {}) };
}

/** Runs the ceremony. Refuses (without writing) if a hierarchy already exists. Returns the CA records made. */
export async function runHierarchyCeremony(p: CeremonyParams): Promise<CaRecord[]> {
  return (await ceremonyCore(p)).cas;
}

async function ceremonyCore(
  { config, store, keystore, now, random = randomBytes }: CeremonyParams, offline?: { certificate: Buffer; requestSequence: number },
): Promise<OfflineCeremonyResult> {
  const start = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const maker = caMaker({ config, keystore, random, start });
  const made: MadeCa[] = [];
  const requests: DomainCaRequest[] = [];
  // Root: self-signed, anyPolicy, no path length limit (the domain CAs carry pathLen 1). Offline: only its certificate is here.
  const offlineRoot = offline ? offlineRootRecord(offline.certificate, config.root.name, start) : undefined;
  let root: MadeCa;
  if (offlineRoot) {
    root = { record: offlineRoot.record, key: offlineRoot.key, subject: offlineRoot.subject, keyId: offlineRoot.keyId, signer: offlineSigner(offlineRoot.record) };
  } else {
    const rootKey = await maker.makeKey(ROOT_CA_ID, config.root.algorithm, 'root');
    const rootSubject = encodeName([{ type: 'C', value: config.country }, { type: 'ST', value: config.province }, { type: 'O', value: config.organisation }, { type: 'CN', value: config.root.name }]);
    const rootNotAfter = addYears(start, config.root.validityYears);
    const rootSerial = randomSerial(random);
    root = maker.finish({
      id: ROOT_CA_ID, layer: 'root', domain: null, tier: null, parent: null, name: config.root.name, ...rootKey,
      subject: rootSubject, serial: rootSerial, notAfter: rootNotAfter,
      certificate: await buildCertificate({
        serial: rootSerial, issuer: rootSubject, subject: rootSubject, notBefore: start, notAfter: rootNotAfter,
        publicKeyInfo: rootKey.key.publicKeyInfo, extensions: rootCaExtensions({ publicKeyInfo: rootKey.key.publicKeyInfo }),
        signer: rootKey.signer,
      }),
    });
  }
  made.push(root);
  for (const domain of config.domains) {
    const cas = await makeDomainCas({ config, maker, root, domain, awaitRoot: !!offline });
    made.push(...cas.made);
    if (cas.request) requests.push(cas.request);
  }

  await store.transaction(async (tx: Repositories) => {
    if ((await tx.cas.list()).length > 0) throw new Error('a CA hierarchy already exists in this database');
    for (const domain of config.domains) {
      await tx.domains.insert({
        slug: domain.slug, name: domain.name, locality: domain.name, dnsSuffix: domain.dnsSuffix,
        emailSuffix: domain.emailSuffix, parent: null,
      });
      for (const organ of domain.organs) await tx.organs.insert({ domain: domain.slug, slug: organ.slug, name: organ.name });
    }
    for (const ca of made) {
      await tx.keys.insert(ca.key);
      // Under an offline root only the root is in service now; the rest waits for its certificates.
      const waitsFor = offline && ca.record.layer !== 'root' ? (ca.record.layer === 'domain' ? ca.record.id : ca.record.parentId!) : undefined;
      if (waitsFor) await tx.offlineRoot.insertPending({ certifiedBy: waitsFor, requestSequence: offline!.requestSequence, record: ca.record });
      else await tx.cas.insert(ca.record);
    }
  });
  return {
    cas: made.filter((m) => !offline || m.record.layer === 'root').map((m) => m.record),
    pending: made.filter((m) => offline && m.record.layer !== 'root').map((m) => ({
      certifiedBy: m.record.layer === 'domain' ? m.record.id : m.record.parentId!, requestSequence: offline!.requestSequence, record: m.record,
    })),
    requests,
  };
}

/**
 * The signer of a CA whose key is on the offline machine: it has the root's public key and signature
 * algorithm, and refuses to sign — anything that would need the root key online says so.
 */
export function offlineSigner(record: CaRecord): Signer {
  const fields = readCertificate(record.certificate);
  return {
    signatureAlgorithm: fields.signatureAlgorithm,
    publicKeyInfo: fields.publicKeyInfo,
    sign: () => Promise.reject(new TiercaError('ca-unavailable', `the ${record.id} CA is offline: its key is not on this machine; what it must sign goes across in a bundle (tierca root sign on the offline machine)`, { detail: { ca: record.id, status: 'offline' } })),
  };
}

function linksOf(publicUrl: string, issuerId: string) {
  const urls = caUrls(publicUrl, issuerId);
  return { caIssuersUrl: urls.certificate, crlUrl: urls.crl };
}

/** Renders the hierarchy as a tree for people: id, name, algorithm and the end of validity. */
export function formatHierarchyTree(cas: readonly CaRecord[], algorithms: ReadonlyMap<string, string>, awaitingRoot: ReadonlySet<string> = new Set()): string {
  const children = new Map<string | null, CaRecord[]>();
  for (const ca of cas) {
    const list = children.get(ca.parentId) ?? [];
    list.push(ca);
    children.set(ca.parentId, list);
  }
  const lines: string[] = [];
  const walk = (ca: CaRecord, prefix: string, last: boolean, top: boolean) => {
    const offline = ca.keyId.startsWith('ca-root-offline-') ? ', offline' : '';
    const waiting = awaitingRoot.has(ca.id) ? '  (awaits the offline root)' : '';
    const label = `${ca.id}  ${ca.name}  [${algorithms.get(ca.keyId) ?? '?'}${offline}, until ${ca.notAfter.toISOString().slice(0, 10)}]${waiting}`;
    lines.push(top ? label : `${prefix}${last ? '└─ ' : '├─ '}${label}`);
    const kids = children.get(ca.id) ?? [];
    kids.forEach((kid, i) => walk(kid, top ? '' : `${prefix}${last ? '   ' : '│  '}`, i === kids.length - 1, false));
  };
  for (const root of children.get(null) ?? []) walk(root, '', true, true);
  return lines.join('\n');
}

