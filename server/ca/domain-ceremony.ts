/**
 * A domain added to a running installation (docs/decisions/0032-offline-root-online-requests.md):
 * its domain CA and an issuing CA per tier, made by the first ceremony's code
 * (hierarchy-ceremony.ts makeDomainCas) with keys sealed by this instance's keystore. Under an online
 * root the root signs the domain CA at once; under an offline root the domain CA and its tier CAs
 * wait in `offline_pending_cas` and the domain CA's certificate is asked of the root (a pending root
 * request, carried by the next `tierca root request`). The stored configuration gains the domain, so
 * every instance and every later start knows its names and address ranges.
 */
import { randomBytes } from 'node:crypto';
import type { KeyStore } from '../../pki/keystore/keystore.ts';
import { readCertificate } from '../../pki/certificate-reader.ts';
import { keyIdentifier } from '../../pki/key-pair.ts';
import { appendAudit } from '../audit/audit-log.ts';
import { buildConfig, type DomainConfig, type TiercaConfig } from '../config/load-config.ts';
import { TiercaError } from '../errors.ts';
import type { Repositories, Store } from '../storage/storage.ts';
import { ROOT_CA_ID, type CaDirectory, type LoadedCa } from './ca-directory.ts';
import { caRsaPadding } from './ca-signature.ts';
import { caMaker, makeDomainCas } from './hierarchy-ceremony.ts';
import { refreshRootWaits } from './offline-root-requests.ts';
import type { AuditActor } from './renewal.ts';

/** A new domain as a configuration file names it (config `domains[]`: organ names by organ slug). */
export interface NewDomain {
  slug: string;
  name: string;
  dnsSuffix: string;
  emailSuffix: string;
  ipRanges: string[];
  organNames?: Record<string, string>;
}

/**
 * Checks `domain` against the stored configuration as `tierca init` checks a file (schema, a slug and
 * a DNS suffix not used yet, address ranges that overlap no other domain's) and returns the domain as
 * the configuration with it would hold it, and that stored configuration.
 *
 * @throws TiercaError `bad-request` naming what is wrong; `conflict` for a domain that exists.
 */
export function checkNewDomain(storedConfig: string, domain: NewDomain): { config: DomainConfig; stored: Record<string, unknown> } {
  const stored = JSON.parse(storedConfig) as Record<string, unknown> & { domains: { slug: string }[] };
  if (stored.domains.some((d) => d.slug === domain.slug)) throw new TiercaError('conflict', `domain ${domain.slug} exists already`, { detail: { domain: domain.slug } });
  const next = { ...stored, domains: [...stored.domains, domain] };
  let built: TiercaConfig;
  try {
    built = buildConfig(next);
  } catch (err) {
    if (err instanceof TiercaError && err.code === 'invalid-config') {
      throw new TiercaError('bad-request', `the new domain is refused: ${err.message.replace(/^invalid configuration: /, '')}`, { cause: err });
    }
    throw err;
  }
  return { config: built.domains.at(-1)!, stored: next };
}

/** What adding a domain made. */
export interface DomainAdded {
  domain: string;
  cas: string[];
  /** Under an offline root: the domain CA (and its tier CAs) wait for the root's certificate. */
  awaitingRoot: boolean;
}

/**
 * Adds a domain: checks it ({@link checkNewDomain}), makes its CAs, and stores the domain, its organs,
 * the keys, the CAs (or what waits for the offline root, with the root request), the stored
 * configuration, `inTransaction` (the approval) and the audit record in one transaction.
 */
export async function addDomain(deps: { store: Store; cas: CaDirectory; keystore: KeyStore; config: TiercaConfig; random?: (n: number) => Buffer }, p: {
  domain: NewDomain; now: Date; actor: AuditActor; auditDetail?: Record<string, unknown>; inTransaction?: (tx: Repositories, result: Record<string, unknown>) => Promise<void>;
}): Promise<DomainAdded> {
  const { store, cas, config, keystore } = deps;
  const { config: domain, stored } = checkNewDomain((await store.meta.get('config'))!, p.domain);
  if (await store.domains.get(domain.slug)) throw new TiercaError('conflict', `domain ${domain.slug} exists already`, { detail: { domain: domain.slug } });
  const root = cas.current(ROOT_CA_ID);
  if (!root || root.record.status !== 'active') throw new TiercaError('ca-unavailable', 'the root CA is not active: no domain can be added under it');
  const start = new Date(Math.floor(p.now.getTime() / 1000) * 1000);
  const maker = caMaker({ config, keystore, random: deps.random ?? randomBytes, start });
  const awaitRoot = !!root.offline;
  const { made, request } = await makeDomainCas({
    config, maker, domain, awaitRoot,
    root: { record: root.record, subject: root.fields.subject, keyId: root.fields.subjectKeyId ?? keyIdentifier(root.fields.publicKeyInfo), signer: root.signer },
  });
  const result: DomainAdded = { domain: domain.slug, cas: made.map((m) => m.record.id), awaitingRoot: awaitRoot };
  await store.transaction(async (tx) => {
    await tx.domains.insert({ slug: domain.slug, name: domain.name, locality: domain.name, dnsSuffix: domain.dnsSuffix, emailSuffix: domain.emailSuffix, parent: null });
    for (const organ of domain.organs) await tx.organs.insert({ domain: domain.slug, slug: organ.slug, name: organ.name });
    for (const ca of made) {
      await tx.keys.insert(ca.key);
      if (awaitRoot) await tx.offlineRoot.insertPending({ certifiedBy: domain.slug, requestSequence: 0, record: ca.record });
      else await tx.cas.insert(ca.record);
    }
    if (request) await tx.offlineRoot.insertRootRequest({ id: `certify:${domain.slug}`, kind: 'certify', ca: domain.slug, body: request, createdAt: p.now, requestSequence: null });
    await tx.meta.set('config', JSON.stringify(stored));
    if (p.inTransaction) await p.inTransaction(tx, { ...result });
    await appendAudit(tx.audit, p.now, {
      ...p.actor, action: 'domain.add', target: `domain:${domain.slug}`, outcome: 'success',
      detail: { ...(p.auditDetail ?? {}), cas: result.cas, awaitingRoot: awaitRoot, dnsSuffix: domain.dnsSuffix, ipRanges: domain.ipRanges },
    });
  });
  if (awaitRoot) await refreshRootWaits(store, cas);
  else {
    // This instance issues under the new domain at once; other instances learn it from their sync.
    const byId = new Map<string, LoadedCa>([[root.record.id, root]]);
    for (const ca of made) {
      const parent = byId.get(ca.record.parentId!)!;
      const loaded: LoadedCa = {
        record: ca.record, fields: readCertificate(ca.record.certificate), keyAlgorithm: ca.key.algorithm as LoadedCa['keyAlgorithm'],
        chain: [ca.record.certificate, ...parent.chain], signer: keystore.signer(ca.key.id, { rsaPadding: caRsaPadding(config, ca.record) }),
      };
      cas.add(loaded);
      byId.set(ca.record.id, loaded);
    }
  }
  return result;
}
