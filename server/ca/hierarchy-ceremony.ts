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
import type { TiercaConfig } from '../config/load-config.ts';
import type { CaRecord, KeyRecord, Repositories, Store } from '../storage/storage.ts';
import { caUrls } from './urls.ts';
import { addYears, nestValidity } from './validity.ts';
import { caRsaPadding } from './ca-signature.ts';
import { ROOT_CA_ID, tierCaId } from './ca-directory.ts';


export interface CeremonyParams {
  config: TiercaConfig;
  store: Store;
  keystore: KeyStore;
  now: Date;
  random?: (n: number) => Buffer;
}

interface MadeCa {
  record: CaRecord;
  key: KeyRecord;
  subject: Buffer;
  signer: Signer;
  keyId: Buffer;
}

/** Runs the ceremony. Refuses (without writing) if a hierarchy already exists. Returns the CA records made. */
export async function runHierarchyCeremony({ config, store, keystore, now, random = randomBytes }: CeremonyParams): Promise<CaRecord[]> {
  const start = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const made: MadeCa[] = [];
  const base: DistinguishedName = [
    { type: 'C', value: config.country },
    { type: 'ST', value: config.province },
  ];

  const makeKey = async (caId: string, algorithm: KeyAlgorithm, layer: CaRecord['layer'], tier: string | null = null): Promise<{ key: KeyRecord; signer: Signer }> => {
    const id = `ca-${caId}-${random(4).toString('hex')}`;
    // The layers the configuration keeps in software (a root apart from the online HSM); the rest in the keystore's own custody.
    const inSoftware = config.keystore?.custody === 'pkcs11' && config.keystore.inSoftware?.includes(layer);
    const generated = await keystore.generate(id, algorithm, inSoftware ? { custody: 'software' } : {});
    return {
      key: {
        id,
        algorithm,
        custody: custodyOf(generated),
        sealed: generated.sealed,
        pkcs11Label: generated.pkcs11Label,
        publicKeyInfo: generated.publicKeyInfo,
        purpose: 'ca',
        createdAt: start,
      },
      signer: keystore.signer(id, { rsaPadding: caRsaPadding(config, { layer, tier }) }),
    };
  };

  const finish = (p: {
    id: string; layer: CaRecord['layer']; domain: string | null; tier: string | null; parent: MadeCa | null;
    name: string; key: KeyRecord; signer: Signer; subject: Buffer; certificate: Buffer; serial: Buffer; notAfter: Date;
  }): MadeCa => {
    const record: CaRecord = {
      id: p.id,
      layer: p.layer,
      domain: p.domain,
      tier: p.tier,
      parentId: p.parent?.record.id ?? null,
      name: p.name,
      keyId: p.key.id,
      certificate: p.certificate,
      serial: serialToHex(p.serial),
      notBefore: start,
      notAfter: p.notAfter,
      fingerprint: createHash('sha256').update(p.certificate).digest('hex'),
      keyHashSha1: createHash('sha1').update(subjectPublicKeyBits(p.key.publicKeyInfo)).digest('hex'),
      nameHashSha1: createHash('sha1').update(p.subject).digest('hex'),
      status: 'active',
      revokedAt: null,
      revocationReason: null,
      createdAt: start,
    };
    const ca = { record, key: p.key, subject: p.subject, signer: p.signer, keyId: keyIdentifier(p.key.publicKeyInfo) };
    made.push(ca);
    return ca;
  };

  // Root: self-signed, anyPolicy, no path length limit (the domain CAs carry pathLen 1).
  const rootKey = await makeKey(ROOT_CA_ID, config.root.algorithm, 'root');
  const rootSubject = encodeName([...base, { type: 'O', value: config.organisation }, { type: 'CN', value: config.root.name }]);
  const rootNotAfter = addYears(start, config.root.validityYears);
  const rootSerial = randomSerial(random);
  const root = finish({
    id: ROOT_CA_ID, layer: 'root', domain: null, tier: null, parent: null, name: config.root.name, ...rootKey,
    subject: rootSubject, serial: rootSerial, notAfter: rootNotAfter,
    certificate: await buildCertificate({
      serial: rootSerial, issuer: rootSubject, subject: rootSubject, notBefore: start, notAfter: rootNotAfter,
      publicKeyInfo: rootKey.key.publicKeyInfo, extensions: rootCaExtensions({ publicKeyInfo: rootKey.key.publicKeyInfo }),
      signer: rootKey.signer,
    }),
  });

  const tierPolicies = [...config.tiers.values()];
  for (const domain of config.domains) {
    const locality: DistinguishedName = [...base, { type: 'L', value: domain.name }];
    const domainKey = await makeKey(domain.slug, config.domainCa.algorithm, 'domain');
    const name = `${domain.name}域CA`;
    const subject = encodeName([...locality, { type: 'O', value: config.organisation }, { type: 'CN', value: name }]);
    const { notAfter } = nestValidity({ notBefore: start, notAfter: addYears(start, config.domainCa.validityYears) }, root.record);
    const serial = randomSerial(random);
    const domainCa = finish({
      id: domain.slug, layer: 'domain', domain: domain.slug, tier: null, parent: root, name, ...domainKey, subject, serial, notAfter,
      certificate: await buildCertificate({
        serial, issuer: root.subject, subject, notBefore: start, notAfter, publicKeyInfo: domainKey.key.publicKeyInfo,
        extensions: domainCaExtensions({
          publicKeyInfo: domainKey.key.publicKeyInfo,
          issuerKeyId: root.keyId,
          policyOids: tierPolicies.map((t) => t.oid),
          permitted: { directoryName: locality, dnsSuffix: domain.dnsSuffix, emailSuffix: domain.emailSuffix, ipRanges: domain.ipRanges.map(parseCidr) },
          links: linksOf(config.publicUrl, ROOT_CA_ID),
        }),
        signer: root.signer,
      }),
    });

    for (const tier of tierPolicies) {
      const id = tierCaId(domain.slug, tier.id);
      const tierKey = await makeKey(id, tier.caAlgorithm, 'tier', tier.id);
      const tierName = `${domain.name} ${tier.id} 签发CA`;
      const tierSubject = encodeName([
        ...locality,
        { type: 'O', value: config.organisation },
        { type: 'OU', value: `${tier.id} ${tier.name}` },
        { type: 'CN', value: tierName },
      ]);
      const { notAfter: tierNotAfter } = nestValidity({ notBefore: start, notAfter: addYears(start, config.tierCa.validityYears) }, domainCa.record);
      const tierSerial = randomSerial(random);
      finish({
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
      });
    }
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
      await tx.cas.insert(ca.record);
    }
  });
  return made.map((m) => m.record);
}

function linksOf(publicUrl: string, issuerId: string) {
  const urls = caUrls(publicUrl, issuerId);
  return { caIssuersUrl: urls.certificate, crlUrl: urls.crl };
}

/** Renders the hierarchy as a tree for people: id, name, algorithm and the end of validity. */
export function formatHierarchyTree(cas: readonly CaRecord[], algorithms: ReadonlyMap<string, string>): string {
  const children = new Map<string | null, CaRecord[]>();
  for (const ca of cas) {
    const list = children.get(ca.parentId) ?? [];
    list.push(ca);
    children.set(ca.parentId, list);
  }
  const lines: string[] = [];
  const walk = (ca: CaRecord, prefix: string, last: boolean, top: boolean) => {
    const label = `${ca.id}  ${ca.name}  [${algorithms.get(ca.keyId) ?? '?'}, until ${ca.notAfter.toISOString().slice(0, 10)}]`;
    lines.push(top ? label : `${prefix}${last ? '└─ ' : '├─ '}${label}`);
    const kids = children.get(ca.id) ?? [];
    kids.forEach((kid, i) => walk(kid, top ? '' : `${prefix}${last ? '   ' : '│  '}`, i === kids.length - 1, false));
  };
  for (const root of children.get(null) ?? []) walk(root, '', true, true);
  return lines.join('\n');
}

