/**
 * The composition root: wires storage, keystore, configuration and clock into the CA and RA services
 * of one running instance. Every service is built here, with only the dependencies it names, and the
 * dual-control request kinds are registered here explicitly. No HTTP here.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KeyStore } from '../pki/keystore/keystore.ts';
import { isKeyAlgorithm, type KeyAlgorithm } from '../pki/algorithms.ts';
import { parseCidr } from '../pki/ip-range.ts';
import type { CertificateRecord, Store } from './storage/storage.ts';
import { knexOf } from './storage/knex-store.ts';
import type { TiercaConfig } from './config/load-config.ts';
import type { Clock } from './clock.ts';
import { AuditCheckpoints } from './audit/audit-checkpoints.ts';
import { offlineSigner } from './ca/hierarchy-ceremony.ts';
import { OfflineRootWatch } from './ca/offline-root-watch.ts';
import { CaDirectory } from './ca/ca-directory.ts';
import { caRsaPadding } from './ca/ca-signature.ts';
import { ResponderPool } from './ca/ocsp-responders.ts';
import { CrlPublisher } from './ca/crl-publisher.ts';
import { OcspSource } from './ca/ocsp-source.ts';
import { StatusSource } from './ca/status-source.ts';
import { RevocationService } from './ca/revocation-service.ts';
import { CertificateIssuer } from './ca/certificate-issuer.ts';
import { SigningPool } from './ca/signing-pool.ts';
import { StatusScheduler } from './ca/status-scheduler.ts';
import { RenewalService, type RenewalStep, type RotationFaults } from './ca/renewal.ts';
import { CaRollover, type RolloverStep } from './ca/ca-rollover.ts';
import { RotationPlanner } from './ca/rotation-planner.ts';
import { Authorizer } from './ra/authorizer.ts';
import { DualControl } from './ra/dual-control.ts';
import { IssuancePreparer } from './ra/issuance-preparer.ts';
import { CertificateLookup } from './ra/certificate-lookup.ts';
import { IssuanceService } from './ra/issuance.service.ts';
import { SubjectService } from './ra/subject.service.ts';
import { PrincipalService } from './ra/principal.service.ts';
import { CaAdminService } from './ra/ca-admin.service.ts';
import { DomainAdminService } from './ra/domain-admin.service.ts';
import { addDomain } from './ca/domain-ceremony.ts';
import { EscrowService } from './ra/escrow.service.ts';
import { AuditQueryService } from './ra/audit-query.service.ts';
import { KeystoreStatusService } from './ra/keystore-status.service.ts';
import { KeyManagementCentre } from './kmc/key-management-centre.ts';
import { KmcStore } from './kmc/kmc-store.ts';
import { CertificateStatusService } from './ra/certificate-status.service.ts';
import { AcmeBindingService } from './ra/acme-binding.service.ts';
import { AcmeStore } from './enrol/acme/acme-store.ts';
import { AcmeServer } from './enrol/acme/acme-server.ts';
import { ChallengeValidator } from './enrol/acme/challenge-validation.ts';
import { EstStore } from './enrol/est/est-store.ts';
import { EstServer } from './enrol/est/est-server.ts';
import { EstCodesService } from './ra/est-codes.service.ts';
import type { RegistrationAuthority } from './ra/registration-authority.ts';
import { RenewalAuthority } from './ra/rotation/renewal.service.ts';
import { DeviceRenewal } from './ra/rotation/device-signature.ts';
import { RotationRunService } from './ra/rotation/rotation-run.service.ts';
import { RolloverService } from './ra/rotation/rollover.service.ts';
import { requestRootRollover } from './ca/offline-root-requests.ts';
import { DomainIpRanges } from './ca/domain-ip-ranges.ts';
import type { RotationServices } from './ra/rotation/rotation-services.ts';

export interface Services {
  store: Store;
  config: TiercaConfig;
  clock: Clock;
  cas: CaDirectory;
  responders: ResponderPool;
  crls: CrlPublisher;
  ocsp: OcspSource;
  /** The one status answer of OCSP and `/status`. */
  status: StatusSource;
  /** Each domain's IP ranges, one cache for issuance, renewal and ACME validation. */
  ipRanges: DomainIpRanges;
  revocation: RevocationService;
  issuer: CertificateIssuer;
  /** The signing threads of issuance; `close()` them when the services stop. */
  signing: SigningPool;
  /** The RA services, one per concern. */
  ra: RegistrationAuthority;
  scheduler: StatusScheduler;
  /** Renewal, rotation runs and their timer (bootstrap starts it), CA rollover. */
  rotation: RotationServices;
  /** The ACME server (server/enrol/acme), a front end on the same preparer and CA. */
  acme: AcmeServer;
  /** The EST server (server/enrol/est): codes through the RA's issuance, re-enrolment through the devices' renewal. */
  est: EstServer;
}

export interface ServicesParams {
  store: Store;
  keystore: KeyStore;
  config: TiercaConfig;
  clock: Clock;
  log: Logger;
  random?: (n: number) => Buffer;
  /** Signing threads (default: defaultSigningThreads(), i.e. TIERCA_SIGNING_THREADS or cores − 1). */
  signingThreads?: number;
}

/** Loads the CA keys into the keystore and builds the services. */
export async function openServices({ store, keystore, config, clock, log, random = randomBytes, signingThreads }: ServicesParams): Promise<Services> {
  const keys = await store.keys.list('ca');
  const algorithms = new Map<string, KeyAlgorithm>();
  for (const key of keys) {
    if (!isKeyAlgorithm(key.algorithm)) throw new Error(`key ${key.id} has unknown algorithm ${key.algorithm}`);
    algorithms.set(key.id, key.algorithm);
    if (!keystore.has(key.id)) {
      await keystore.load({ id: key.id, algorithm: key.algorithm, sealed: key.sealed, pkcs11Label: key.pkcs11Label });
    }
  }
  // A root kept offline (docs/offline-root.md): only its public key is here, and its signer refuses.
  const offlineKeys = new Set<string>();
  for (const key of await store.keys.list('offline-root')) {
    if (!isKeyAlgorithm(key.algorithm)) throw new Error(`key ${key.id} has unknown algorithm ${key.algorithm}`);
    algorithms.set(key.id, key.algorithm);
    offlineKeys.add(key.id);
  }
  const cas = CaDirectory.build(await store.cas.list(), algorithms, keystore, (record) => caRsaPadding(config, record), { keyIds: offlineKeys, signer: offlineSigner });
  if (offlineKeys.size) {
    cas.setAwaitingRoot(new Map((await store.offlineRoot.listPending()).map((p) => [p.record.id, p.certifiedBy])));
    const watch = new OfflineRootWatch();
    await watch.refresh(store, clock.now());
    for (const ca of cas.list()) if (ca.offline) cas.add({ ...ca, offlineWatch: watch });
  }
  const tiers = config.tiers;
  const responders = new ResponderPool({ store, keystore, cas, tiers, publicUrl: config.publicUrl, random });
  const crls = new CrlPublisher({ store, cas, tiers, clock, publicUrl: config.publicUrl });
  const status = new StatusSource({ certificates: store.certificates, cas, tiers });
  const ocsp = new OcspSource({ store, cas, responders, tiers, status, clock });
  const scheduler = new StatusScheduler({ store, cas, crls, responders, tiers, clock, log });
  const onStatusChange = (record: CertificateRecord) => {
    ocsp.invalidate(record.issuerId, record.serial);
    scheduler.crlChanged(record.issuerId);
  };
  const revocation = new RevocationService({ store, cas, responders, tiers, onStatusChange });
  const signing = new SigningPool(signingThreads);
  const issuer = new CertificateIssuer({ store, responders, publicUrl: config.publicUrl, signing, random });
  const ipRanges = new DomainIpRanges(config, store.meta);
  const ca = { store, config, clock, cas, responders, crls, revocation, issuer, signing, keystore, status, ipRanges, log, random, onStatusChange };
  const ra = registrationAuthority(ca);
  const rotation = rotationServices(ca, ra);
  const acme = acmeServer(ca, ra, log);
  const est = new EstServer({
    est: new EstStore(knexOf(store)), store, tiers, cas, issuance: ra.issuance, devices: rotation.devices, clock,
    keygen: { store, tiers, cas, clock, pair: { kmc: ra.kmc, preparer: ra.preparer, issuer, random } },
  });
  return { store, config, clock, cas, responders, crls, ocsp, status, ipRanges, revocation, issuer, signing, ra, scheduler, rotation, acme, est };
}

/** The CA side an RA is built over (what {@link openServices} has made). */
export interface CaSide {
  store: Store;
  config: TiercaConfig;
  clock: Clock;
  cas: CaDirectory;
  responders: ResponderPool;
  crls: CrlPublisher;
  revocation: RevocationService;
  issuer: CertificateIssuer;
  signing?: SigningPool;
  keystore: KeyStore;
  status: StatusSource;
  /** Each domain's IP ranges, one cache for issuance, renewal and ACME validation. */
  ipRanges: DomainIpRanges;
  log?: Logger;
  random?: (n: number) => Buffer;
  /** Told after commit about certificates revoked as superseded. */
  onStatusChange?: (record: CertificateRecord) => void;
}

/** The RA services over `ca`, with the `issue`, `ca.revoke` and `escrow.recover` request kinds registered. */
export function registrationAuthority(ca: CaSide): RegistrationAuthority & { preparer: IssuancePreparer; lookup: CertificateLookup } {
  const { store, config, clock, cas, keystore, random, ipRanges } = ca;
  const authorizer = new Authorizer(store, clock);
  const requests = new DualControl({ store, authorizer, clock });
  const signing = ca.signing;
  const preparer = new IssuancePreparer({
    config, cas, domains: store.domains, organs: store.organs, verifyCsr: signing ? (csr) => signing.verifyCsr(csr) : undefined,
  });
  const lookup = new CertificateLookup(store.certificates);
  const checkpoints = new AuditCheckpoints({ store, keystore, clock, random });
  // The KMC keeps its own tables on the same database for now (server/kmc/kmc-store.ts).
  const wrap = config.kmc?.wrap ?? (config.root.algorithm === 'SM2' ? 'sm4' : 'aes-256');
  const kmc = new KeyManagementCentre({ store: new KmcStore(knexOf(store)), keystore, clock, random, wrap });
  const issuance = new IssuanceService({ store, cas, tiers: config.tiers, authorizer, preparer, issuer: ca.issuer, requests, keystore, clock, random, kmc });
  const caAdmin = new CaAdminService({ store, cas, crls: ca.crls, authorizer, requests, clock });
  const escrow = new EscrowService({ store, cas, authorizer, lookup, requests, keystore, clock, random, kmc });
  requests.register('issue', issuance.requestKind);
  requests.register('ca.revoke', caAdmin.requestKind);
  const domains = new DomainAdminService({
    store, authorizer, requests, clock, addDomain: (p) => addDomain({ store, cas, keystore, config, random }, p),
  });
  requests.register('domain.add', domains.requestKind);
  const principals = new PrincipalService({ store, config, authorizer, preparer, issuer: ca.issuer, requests, clock, random });
  requests.register('escrow.recover', escrow.requestKind);
  requests.register('escrow.recover-history', escrow.historyRequestKind);
  requests.register('principal.add', principals.requestKind);
  return {
    authorizer, requests, issuance, escrow, checkpoints, preparer, lookup, kmc,
    cas: caAdmin,
    domains,
    principals,
    subjects: new SubjectService({ store, tiers: config.tiers, ipRanges: (domain) => ipRanges.of(domain), authorizer, revocation: ca.revocation, cas, clock }),
    audit: new AuditQueryService({ store, checkpoints, authorizer, clock }),
    certificates: new CertificateStatusService({ store, cas, authorizer, lookup, revocation: ca.revocation, status: ca.status, clock }),
    keystore: new KeystoreStatusService({ store, keystore, authorizer }),
    est: new EstCodesService({ est: new EstStore(knexOf(store)), store, authorizer, clock, random: random ?? randomBytes }),
    acme: new AcmeBindingService({
      acme: new AcmeStore(knexOf(store)), store, tiers: config.tiers, keystore, authorizer, publicUrl: config.acme?.url ?? config.publicUrl, clock, random: random ?? randomBytes,
    }),
  };
}

/** The ACME server over `ca` and the RA's preparer; validation reaches what `config.acme` allows. */
export function acmeServer(ca: CaSide, ra: { preparer: IssuancePreparer }, log?: Logger): AcmeServer {
  const { store, config, clock, cas, keystore, random = randomBytes, ipRanges } = ca;
  const extra = (config.acme?.validationRanges ?? []).map(parseCidr);
  return new AcmeServer({
    acme: new AcmeStore(knexOf(store)), store, tiers: config.tiers, publicUrl: config.acme?.url ?? config.publicUrl,
    validationRanges: async (domain) => [...(await ipRanges.of(domain)), ...extra], ordersPerHour: config.acme?.ordersPerHour ?? 300,
    cas, preparer: ra.preparer, issuer: ca.issuer, revocation: ca.revocation, keystore,
    validator: new ChallengeValidator({ resolvers: config.acme?.resolvers ?? [], http01Port: config.acme?.http01Port ?? 80 }),
    clock, random, log,
  });
}


/** Test-only fault injection into renewals and rollovers (see RotationFaults). */
export interface RotationFaultHooks {
  renewal?: RotationFaults<RenewalStep>;
  rollover?: RotationFaults<RolloverStep>;
}

/** The rotation services over `ca` and `ra`, with the `ca.rollover` request kind registered in `ra`. */
export function rotationServices(
  ca: CaSide, ra: RegistrationAuthority & { preparer: IssuancePreparer; lookup: CertificateLookup }, faults: RotationFaultHooks = {},
): RotationServices & { caRenewals: RenewalService } {
  const { store, config, clock, cas, keystore, log, random, ipRanges } = ca;
  const caRenewals = new RenewalService({
    store, cas, issuer: ca.issuer, responders: ca.responders, tiers: config.tiers, keystore, onStatusChange: ca.onStatusChange, faults: faults.renewal,
  });
  const caRollovers = new CaRollover({ store, cas, keystore, config, crls: ca.crls, log, random, faults: faults.rollover });
  const planner = new RotationPlanner({ store, cas, config, rollover: caRollovers });
  const renewals = new RenewalAuthority({
    store, tiers: config.tiers, ipRanges: (domain) => ipRanges.of(domain), cas, authorizer: ra.authorizer, lookup: ra.lookup, preparer: ra.preparer, renewals: caRenewals, clock, random, kmc: ra.kmc,
  });
  const rollovers = new RolloverService({
    store, cas, authorizer: ra.authorizer, requests: ra.requests, rollovers: caRollovers, clock,
    rootRollover: (p) => requestRootRollover({ store, cas, keystore, config, random }, p),
  });
  ra.requests.register('ca.rollover', rollovers.requestKind);
  return {
    renewals, rollovers, caRenewals,
    devices: new DeviceRenewal({ store, cas, authorizer: ra.authorizer, renewals, clock }),
    runs: new RotationRunService({
      store, config, authorizer: ra.authorizer, planner, renewals, caRenewals, responders: ca.responders, rollovers: caRollovers, clock, log,
    }),
  };
}
