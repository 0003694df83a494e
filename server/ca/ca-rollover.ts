/**
 * CA key rollover (docs/decisions/0006-ca-rollover.md): a new key and certificate for a root, domain
 * or tier CA, as a new GENERATION of the same CA — same subject name, new key, own row and URLs
 * (`yuhu-t2` → `yuhu-t2-g2`) — with the two link certificates of RFC 4210 §4.4:
 *
 * - old-with-new: the OLD public key certified by the NEW key. A relying party that holds only the new
 *   certificate (a new root anchor) still validates what the old key issued.
 * - new-with-old: the NEW public key certified by the OLD key. A relying party that holds only the old
 *   certificate validates what the new key issues.
 *
 * Both keep the CA's subject as issuer and subject, so they are self-issued (RFC 5280 §6.1): they do
 * not count against path length constraints (a tier CA's pathLen 0 still holds) and AKI/SKI tell the
 * keys apart. New issuance moves to the new generation at once (`CaDirectory.current`); the old one
 * keeps signing CRLs and OCSP answers for what it issued, and is retired when the last of those
 * certificates has expired ({@link CaRollover.retireDue}).
 *
 * A rollover is one transaction — key, CA row, successor link, link certificates, idempotency record
 * of the request id, audit — so an interruption leaves the old state or the new one; a retry with the
 * same request id returns what the first attempt committed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { addYears, nestValidity } from './validity.ts';
import { caRsaPadding } from './ca-signature.ts';
import type { Logger } from 'pino';
import { type KeyStore, custodyOf } from '../../pki/keystore/keystore.ts';
import type { KeyAlgorithm } from '../../pki/algorithms.ts';
import type { Signer } from '../../pki/signer.ts';
import { buildCertificate, randomSerial, serialToHex } from '../../pki/certificate.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { keyIdentifier, subjectPublicKeyBits } from '../../pki/key-pair.ts';
import { authorityKeyIdentifier, type Extension } from '../../pki/extensions.ts';
import { domainCaExtensions, rootCaExtensions, tierCaExtensions, type IssuerLinks } from '../../pki/profiles.ts';
import { parseCidr } from '../../pki/ip-range.ts';
import { UniqueViolationError, type CaLinkRecord, type CaRecord, type KeyRecord, type Repositories, type Store } from '../storage/storage.ts';
import type { TiercaConfig } from '../config/load-config.ts';
import { appendAudit } from '../audit/audit-log.ts';
import { TiercaError } from '../errors.ts';
import { generationOf, lineageOf, type CaDirectory, type LoadedCa } from './ca-directory.ts';
import type { CrlPublisher } from './crl-publisher.ts';
import type { AuditActor, RotationFaults } from './renewal.ts';
import { caUrls } from './urls.ts';
import { syncCaDirectory } from './ca-directory-sync.ts';
import { storedIpRanges } from './domain-ip-ranges.ts';


/**
 * The steps of a rollover: `key-made` (new key in the keystore's memory only), `certificate-signed`,
 * `links-signed`, `in-transaction` (everything written, not committed), `committed` (before this
 * instance's directory learns of it).
 */
export type RolloverStep = 'key-made' | 'certificate-signed' | 'links-signed' | 'in-transaction' | 'committed';

export interface CaRolloverDeps {
  store: Store;
  cas: CaDirectory;
  keystore: KeyStore;
  config: TiercaConfig;
  crls: CrlPublisher;
  log?: Logger;
  random?: (n: number) => Buffer;
  faults?: RotationFaults<RolloverStep>;
}

export interface RolloverOutcome {
  /** The generation that was current before (it keeps serving status for what it issued). */
  previous: LoadedCa;
  /** The new current generation. */
  current: LoadedCa;
  links: CaLinkRecord[];
  /** True when this request id had already completed: nothing new was made. */
  replayed: boolean;
}

/** A superseded generation and the last expiry of what it issued (null: it issued nothing). */
export interface RetirementCandidate {
  ca: LoadedCa;
  lastExpiry: Date | null;
}

export class CaRollover {
  constructor(private readonly deps: CaRolloverDeps) {}

  /**
   * Rolls the CA named `caName` (its lineage name or any generation's id) over to a new key. Root CAs
   * are rolled over like the others here; the caller (the rotation authority) insists on a ceremony.
   * `inTransaction` runs inside the rollover's transaction (the approval flow closes its request there);
   * `auditDetail` is added to the `ca.rollover` audit record.
   */
  async rollover(p: {
    caName: string;
    requestId: string;
    now: Date;
    actor: AuditActor;
    inTransaction?: (tx: Repositories, result: Record<string, unknown>) => Promise<void>;
    auditDetail?: Record<string, unknown>;
  }): Promise<RolloverOutcome> {
    const { store, cas, keystore, config, faults, random = randomBytes } = this.deps;
    const earlier = await this.replay(p.requestId, p.caName);
    if (earlier) return earlier;
    const old = cas.current(p.caName);
    if (!old) throw new TiercaError('not-found', `no CA ${p.caName}`);
    const lineage = lineageOf(old.record);
    if (old.record.status !== 'active') throw new TiercaError('conflict', `CA ${old.record.id} is ${old.record.status}; only an active CA is rolled over`);
    const start = new Date(Math.floor(p.now.getTime() / 1000) * 1000);
    if (old.record.notAfter.getTime() <= start.getTime()) {
      throw new TiercaError('conflict', `CA ${old.record.id} has expired; a new hierarchy needs a key ceremony, not a rollover`);
    }
    const parent = this.parentOf(old);
    // A root kept offline (docs/offline-root.md) is neither rolled over here (its new key would be made
    // online) nor signs its children's new generations: both are for a ceremony on the offline machine.
    cas.refuseOfflineRollover(old, true);
    const generation = generationOf(old.record) + 1;
    const id = `${lineage}-g${generation}`;
    if (id.length > 64) throw new TiercaError('conflict', `CA id ${id} would be longer than 64 characters`);
    if (cas.get(id) || (await store.cas.get(id))) throw new TiercaError('conflict', `CA ${lineage} was rolled over meanwhile (${id} exists)`);

    // 1. The new key, in the keystore's memory only until the transaction stores it sealed.
    const algorithm = this.algorithmOf(old);
    const keyId = `ca-${id}-${random(4).toString('hex')}`;
    const generated = await keystore.generate(keyId, algorithm);
    const newSigner = keystore.signer(keyId, { rsaPadding: caRsaPadding(this.deps.config, old.record) });
    const newSpki = generated.publicKeyInfo;
    const key: KeyRecord = {
      id: keyId, algorithm, custody: custodyOf(generated), sealed: generated.sealed, pkcs11Label: generated.pkcs11Label,
      publicKeyInfo: newSpki, purpose: 'ca', createdAt: start,
    };
    await faults?.after('key-made');

    // 2. The new generation's certificate: same subject, signed by the parent's current generation.
    const subject = old.fields.subject;
    const notAfter = this.notAfterOf(old, parent, start);
    const serial = randomSerial(random);
    const oldKeyId = old.fields.subjectKeyId ?? keyIdentifier(old.fields.publicKeyInfo);
    const certificate = await buildCertificate({
      serial,
      issuer: parent ? parent.fields.subject : subject,
      subject,
      notBefore: start,
      notAfter,
      publicKeyInfo: newSpki,
      extensions: await this.extensionsOf(old, {
        publicKeyInfo: newSpki,
        issuerKeyId: parent ? (parent.fields.subjectKeyId ?? keyIdentifier(parent.fields.publicKeyInfo)) : null,
        links: parent ? ownLinks(config.publicUrl, parent.record.id) : null,
      }),
      signer: parent ? parent.signer : newSigner,
    });
    await faults?.after('certificate-signed');

    // 3. The link certificates (RFC 4210 §4.4.1): old-with-new keeps the old certificate's end;
    // new-with-old starts now and ends with the old key's certificate.
    const link = async (kind: CaLinkRecord['kind']): Promise<CaLinkRecord> => {
      const oldWithNew = kind === 'old-with-new';
      const spki = oldWithNew ? old.fields.publicKeyInfo : newSpki;
      const signer: Signer = oldWithNew ? newSigner : old.signer;
      // Within the signing key's certificate (validity.ts): old-with-new starts no earlier than the new one.
      const { notBefore, notAfter: linkNotAfter } = nestValidity(
        { notBefore: oldWithNew ? old.record.notBefore : start, notAfter: old.record.notAfter },
        oldWithNew ? { notBefore: start, notAfter } : old.record,
      );
      const der = await buildCertificate({
        serial: randomSerial(random),
        issuer: subject,
        subject,
        notBefore,
        notAfter: linkNotAfter,
        publicKeyInfo: spki,
        extensions: await this.extensionsOf(old, {
          publicKeyInfo: spki,
          issuerKeyId: oldWithNew ? keyIdentifier(newSpki) : oldKeyId,
          links: ownLinks(config.publicUrl, oldWithNew ? id : old.record.id),
        }),
        signer,
      });
      return { id: `${id}:${kind}`, lineage, oldCaId: old.record.id, newCaId: id, kind, certificate: der, notBefore, notAfter: linkNotAfter, createdAt: start };
    };
    const links = [await link('old-with-new'), await link('new-with-old')];
    await faults?.after('links-signed');

    const record: CaRecord = {
      id,
      layer: old.record.layer,
      domain: old.record.domain,
      tier: old.record.tier,
      parentId: parent?.record.id ?? null,
      name: old.record.name,
      keyId,
      certificate,
      serial: serialToHex(serial),
      notBefore: start,
      notAfter,
      fingerprint: sha256(certificate),
      keyHashSha1: createHash('sha1').update(subjectPublicKeyBits(newSpki)).digest('hex'),
      nameHashSha1: createHash('sha1').update(subject).digest('hex'),
      status: 'active',
      revokedAt: null,
      revocationReason: null,
      createdAt: start,
      lineage,
      generation,
      successorId: null,
      retiredAt: null,
    };

    // 4. One transaction: everything or nothing.
    try {
      await store.transaction(async (tx) => {
        await tx.keys.insert(key);
        await tx.cas.insert(record);
        if (!(await tx.cas.setSuccessor(old.record.id, id))) {
          throw new TiercaError('conflict', `CA ${lineage} was rolled over meanwhile`);
        }
        for (const l of links) await tx.caLinks.insert(l);
        const result = { previous: old.record.id, current: id, links: links.map((l) => l.id) };
        await tx.rotationRequests.insert({
          id: p.requestId,
          kind: 'rollover',
          target: `ca:${lineage}`,
          principalId: p.actor.principalId,
          result,
          createdAt: p.now,
        });
        if (p.inTransaction) await p.inTransaction(tx, result);
        await appendAudit(tx.audit, p.now, {
          ...p.actor,
          action: 'ca.rollover',
          target: `ca:${lineage}`,
          outcome: 'success',
          detail: {
            ...(p.auditDetail ?? {}),
            replaced: old.record.id,
            replacedFingerprint: old.record.fingerprint,
            current: id,
            fingerprint: record.fingerprint,
            generation,
            notAfter: notAfter.toISOString(),
            links: links.map((l) => ({ kind: l.kind, fingerprint: sha256(l.certificate) })),
          },
        });
        await faults?.after('in-transaction');
      });
    } catch (err) {
      if (err instanceof UniqueViolationError || (err instanceof TiercaError && err.code === 'conflict')) {
        const winner = await this.replay(p.requestId, p.caName).catch(() => undefined);
        if (winner) return winner;
        if (err instanceof UniqueViolationError) throw new TiercaError('conflict', `CA ${lineage} was rolled over meanwhile (${err.message})`);
      }
      throw err;
    }
    await faults?.after('committed');

    // 5. This instance issues with the new generation from now on; other instances learn it from sync().
    const current: LoadedCa = {
      record,
      fields: readCertificate(certificate),
      keyAlgorithm: algorithm,
      chain: [certificate, ...(parent?.chain ?? [])],
      signer: newSigner,
    };
    cas.add(current);
    const previous: LoadedCa = { ...old, record: { ...old.record, successorId: id } };
    cas.add(previous);
    await this.publishFirstCrl(id);
    return { previous, current, links, replayed: false };
  }

  /** The rollover a request id already completed, or undefined. Throws `conflict` if the id was used for something else. */
  async replay(requestId: string, caName?: string): Promise<RolloverOutcome | undefined> {
    const { store, cas } = this.deps;
    const done = await store.rotationRequests.get(requestId);
    if (!done) return undefined;
    const lineage = caName ? (cas.get(caName) ? lineageOf(cas.get(caName)!.record) : caName) : undefined;
    if (done.kind !== 'rollover' || (lineage && done.target !== `ca:${lineage}`)) {
      throw new TiercaError('conflict', `request id ${requestId} was already used for ${done.kind} of ${done.target}`);
    }
    // The first attempt may have committed without this instance's directory learning of it.
    await this.sync();
    const { previous, current } = done.result as { previous: string; current: string };
    const prev = cas.get(previous);
    const cur = cas.get(current);
    if (!prev || !cur) throw new TiercaError('internal', `rotation request ${requestId} names a CA that is not loaded`);
    const links = (await store.caLinks.list(lineageOf(cur.record))).filter((l) => l.newCaId === current);
    return { previous: prev, current: cur, links, replayed: true };
  }

  /** Brings this instance's directory up to date with the database (ca-directory-sync.ts); how many entries changed. */
  sync(): Promise<number> {
    return syncCaDirectory(this.deps);
  }

  /**
   * Superseded generations that are still active, with the last expiry of what they issued: end-entity
   * certificates for a tier CA, CA certificates for a root or domain CA (responder and link
   * certificates do not keep a key alive).
   */
  async retirementCandidates(): Promise<RetirementCandidate[]> {
    const { store, cas } = this.deps;
    const out: RetirementCandidate[] = [];
    for (const ca of cas.list()) {
      // A superseded offline root generation signs its status on the offline machine until what it issued has expired (decision 0031).
      if (!ca.record.successorId || ca.record.status !== 'active' || ca.offline) continue;
      let lastExpiry: Date | null;
      if (ca.record.layer === 'tier') {
        lastExpiry = await store.renewals.lastExpiryOf(ca.record.id);
      } else {
        const children = cas.list().filter((c) => c.record.parentId === ca.record.id).map((c) => c.record.notAfter.getTime());
        lastExpiry = children.length ? new Date(Math.max(...children)) : null;
      }
      out.push({ ca, lastExpiry });
    }
    return out;
  }

  /**
   * Retires every superseded generation whose last issued certificate has expired by `now`: status
   * 'retired', its pre-signed OCSP answers deleted (nothing re-signs them), out of the OCSP key index;
   * its certificate and last CRL stay published. One transaction per CA, audited.
   */
  async retireDue(now: Date, actor: AuditActor): Promise<CaRecord[]> {
    const retired: CaRecord[] = [];
    for (const candidate of await this.retirementCandidates()) {
      if (candidate.lastExpiry && candidate.lastExpiry.getTime() > now.getTime()) continue;
      retired.push(await this.retire(candidate, now, actor));
    }
    return retired;
  }

  /** Retires one superseded generation (see {@link retireDue}); the caller has checked it is due. */
  async retire({ ca, lastExpiry }: RetirementCandidate, now: Date, actor: AuditActor): Promise<CaRecord> {
    const { store, cas } = this.deps;
    await store.transaction(async (tx) => {
      await tx.cas.retire(ca.record.id, now);
      const deleted = await tx.ocspResponses.deleteByIssuer(ca.record.id);
      await appendAudit(tx.audit, now, {
        ...actor,
        action: 'ca.retire',
        target: `ca:${lineageOf(ca.record)}`,
        outcome: 'success',
        detail: { retired: ca.record.id, successor: ca.record.successorId, lastExpiry: lastExpiry?.toISOString() ?? null, ocspAnswersDeleted: deleted },
      });
    });
    const record: CaRecord = { ...ca.record, status: 'retired', retiredAt: now };
    cas.add({ ...ca, record });
    return record;
  }

  /** The link certificates of a CA (lineage name or any generation id), oldest first. */
  async links(caName: string): Promise<CaLinkRecord[]> {
    const ca = this.deps.cas.get(caName) ?? this.deps.cas.current(caName);
    return this.deps.store.caLinks.list(ca ? lineageOf(ca.record) : caName);
  }

  /** The current generation of the CA above `ca`, which signs the new generation (none for a root). */
  private parentOf(ca: LoadedCa): LoadedCa | undefined {
    if (ca.record.layer === 'root') return undefined;
    const signer = ca.record.parentId ? this.deps.cas.get(ca.record.parentId) : undefined;
    const parent = signer ? this.deps.cas.current(lineageOf(signer.record)) : undefined;
    if (!parent || parent.record.status !== 'active') {
      throw new TiercaError('ca-unavailable', `the CA above ${ca.record.id} is not active; roll it over first or restore it`);
    }
    return parent;
  }

  /** The key algorithm the configuration now asks for at this layer (a rollover may change it). */
  private algorithmOf(ca: LoadedCa): KeyAlgorithm {
    const { config } = this.deps;
    if (ca.record.layer === 'root') return config.root.algorithm;
    if (ca.record.layer === 'domain') return config.domainCa.algorithm;
    return config.tiers.get(ca.record.tier!)?.caAlgorithm ?? ca.keyAlgorithm;
  }

  /** notAfter of the new generation: the layer's validity from now, never beyond the parent's. */
  private notAfterOf(ca: LoadedCa, parent: LoadedCa | undefined, start: Date): Date {
    const { config } = this.deps;
    const years = ca.record.layer === 'root' ? config.root.validityYears : ca.record.layer === 'domain' ? config.domainCa.validityYears : config.tierCa.validityYears;
    const end = addYears(start, years).getTime();
    return new Date(parent ? Math.min(end, parent.record.notAfter.getTime()) : end);
  }

  /**
   * The extensions of the layer's profile (pki/profiles.ts) for a certificate of this CA's name with
   * key `publicKeyInfo`, signed by the key `issuerKeyId` (null: self-signed root, no AKI).
   */
  private async extensionsOf(ca: LoadedCa, p: { publicKeyInfo: Buffer; issuerKeyId: Buffer | null; links: IssuerLinks | null }): Promise<Extension[]> {
    const { config, store } = this.deps;
    const { layer } = ca.record;
    if (layer === 'root') {
      const exts = rootCaExtensions({ publicKeyInfo: p.publicKeyInfo });
      return p.issuerKeyId ? [...exts, authorityKeyIdentifier(p.issuerKeyId)] : exts;
    }
    if (!p.issuerKeyId || !p.links) throw new TiercaError('internal', `a ${layer} CA certificate needs an issuer key and links`);
    if (layer === 'domain') {
      const domain = await store.domains.get(ca.record.domain!);
      if (!domain) throw new TiercaError('internal', `domain ${ca.record.domain} is missing`);
      return domainCaExtensions({
        publicKeyInfo: p.publicKeyInfo,
        issuerKeyId: p.issuerKeyId,
        policyOids: [...config.tiers.values()].map((t) => t.oid),
        permitted: {
          directoryName: [{ type: 'C', value: config.country }, { type: 'ST', value: config.province }, { type: 'L', value: domain.locality }],
          dnsSuffix: domain.dnsSuffix,
          emailSuffix: domain.emailSuffix,
          // A domain added online (decision 0032) is in the stored configuration, not the one this process started with.
          ipRanges: (config.domains.find((d) => d.slug === domain.slug)?.ipRanges ?? (await storedIpRanges(store.meta, domain.slug)) ?? []).map(parseCidr),
        },
        links: p.links,
      });
    }
    const tier = config.tiers.get(ca.record.tier!);
    if (!tier) throw new TiercaError('internal', `tier ${ca.record.tier} is not configured`);
    return tierCaExtensions({ publicKeyInfo: p.publicKeyInfo, issuerKeyId: p.issuerKeyId, policyOid: tier.oid, links: p.links });
  }

  private async publishFirstCrl(caId: string): Promise<void> {
    try {
      await this.deps.crls.publish(caId);
    } catch (err) {
      // Not fatal: the status scheduler publishes it on its next pass.
      this.deps.log?.error({ err, caId }, 'first CRL of a new CA generation failed');
    }
  }
}

/** AIA caIssuers and CDP of certificates signed by the generation `issuerId`. */
function ownLinks(publicUrl: string, issuerId: string): IssuerLinks {
  const urls = caUrls(publicUrl, issuerId);
  return { caIssuersUrl: urls.certificate, crlUrl: urls.crl };
}

const sha256 = (der: Buffer): string => createHash('sha256').update(der).digest('hex');
