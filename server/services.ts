/**
 * The composition root: wires storage, keystore, configuration and clock into the CA and RA services
 * of one running instance. No HTTP here.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KeyStore } from '../pki/keystore/keystore.ts';
import { isKeyAlgorithm, type KeyAlgorithm } from '../pki/algorithms.ts';
import type { Store } from './storage/storage.ts';
import type { TiercaConfig } from './config/load-config.ts';
import type { Clock } from './clock.ts';
import { CaDirectory } from './ca/ca-directory.ts';
import { caRsaPadding } from './ca/ca-signature.ts';
import { ResponderPool } from './ca/ocsp-responders.ts';
import { CrlPublisher } from './ca/crl-publisher.ts';
import { OcspSource } from './ca/ocsp-source.ts';
import { RevocationService } from './ca/revocation-service.ts';
import { CertificateIssuer } from './ca/certificate-issuer.ts';
import { SigningPool } from './ca/signing-pool.ts';
import { StatusScheduler } from './ca/status-scheduler.ts';
import { RegistrationAuthority } from './ra/registration-authority.ts';
import { RotationAuthority } from './ra/rotation-authority.ts';

export interface Services {
  store: Store;
  config: TiercaConfig;
  clock: Clock;
  cas: CaDirectory;
  responders: ResponderPool;
  crls: CrlPublisher;
  ocsp: OcspSource;
  revocation: RevocationService;
  issuer: CertificateIssuer;
  /** The signing threads of issuance; `close()` them when the services stop. */
  signing: SigningPool;
  ra: RegistrationAuthority;
  scheduler: StatusScheduler;
  /** Renewal, rotation runs, CA rollover (bootstrap starts its timer). */
  rotation: RotationAuthority;
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
  const cas = CaDirectory.build(await store.cas.list(), algorithms, keystore, (record) => caRsaPadding(config, record));
  const tiers = config.tiers;
  const responders = new ResponderPool({ store, keystore, cas, tiers, publicUrl: config.publicUrl, random });
  const crls = new CrlPublisher({ store, cas, tiers, clock, publicUrl: config.publicUrl });
  const ocsp = new OcspSource({ store, cas, responders, tiers, clock });
  const scheduler = new StatusScheduler({ store, cas, crls, responders, tiers, clock, log });
  const revocation = new RevocationService({
    store, cas, responders, tiers,
    onStatusChange: (record) => {
      ocsp.invalidate(record.issuerId, record.serial);
      scheduler.crlChanged(record.issuerId);
    },
  });
  const signing = new SigningPool(signingThreads);
  const issuer = new CertificateIssuer({ store, responders, publicUrl: config.publicUrl, signing, random });
  const ra = new RegistrationAuthority({ store, config, cas, issuer, signing, revocation, crls, keystore, clock, random });
  const rotation = new RotationAuthority({
    store, config, cas, issuer, responders, crls, keystore, clock, ra, log, random,
    onStatusChange: (record) => {
      ocsp.invalidate(record.issuerId, record.serial);
      scheduler.crlChanged(record.issuerId);
    },
  });
  return { store, config, clock, cas, responders, crls, ocsp, revocation, issuer, signing, ra, scheduler, rotation };
}
