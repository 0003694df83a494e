/**
 * Delegated OCSP responders (RFC 6960 §4.2.2.2): one short-lived certificate per issuing CA with EKU
 * OCSPSigning and id-pkix-ocsp-nocheck, whose key signs that CA's OCSP answers. A responder is
 * replaced when less than half of its life is left; the previous one keeps verifying the answers it
 * signed until they expire, because each answer carries its own responder certificate.
 */
import { randomBytes } from 'node:crypto';
import { type KeyStore, custodyOf } from '../../pki/keystore/keystore.ts';
import type { Signer } from '../../pki/signer.ts';
import { buildCertificate, randomSerial } from '../../pki/certificate.ts';
import { endEntityExtensions } from '../../pki/profiles.ts';
import { encodeName, decodeName } from '../../pki/name.ts';
import { keyIdentifier } from '../../pki/key-pair.ts';
import type { Store, ResponderRecord } from '../storage/storage.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import type { CaDirectory } from './ca-directory.ts';
import { caUrls } from './urls.ts';
import { DAY_MS } from '../../pki/time-constants.ts';
import { nestValidity } from './validity.ts';


export interface Responder {
  readonly record: ResponderRecord;
  readonly signer: Signer;
}

export interface ResponderPoolDeps {
  store: Store;
  keystore: KeyStore;
  cas: CaDirectory;
  tiers: ReadonlyMap<string, TierPolicy>;
  publicUrl: string;
  random?: (n: number) => Buffer;
}

export class ResponderPool {
  private readonly current = new Map<string, Responder>();
  private readonly pending = new Map<string, Promise<Responder>>();

  constructor(private readonly deps: ResponderPoolDeps) {}

  /** The responder of `caId` valid at `now` with at least half its life left; made or loaded when needed. */
  async forCa(caId: string, now: Date): Promise<Responder> {
    const cached = this.current.get(caId);
    if (cached && fresh(cached.record, now)) return cached;
    const inFlight = this.pending.get(caId);
    if (inFlight) return inFlight;
    const made = this.loadOrCreate(caId, now).finally(() => this.pending.delete(caId));
    this.pending.set(caId, made);
    return made;
  }

  private async loadOrCreate(caId: string, now: Date): Promise<Responder> {
    const { store, keystore } = this.deps;
    const stored = await store.responders.current(caId, now);
    if (stored && fresh(stored, now)) {
      if (!keystore.has(stored.keyId)) {
        const key = await store.keys.get(stored.keyId);
        if (!key) throw new Error(`responder key ${stored.keyId} is missing`);
        await keystore.load({ id: key.id, algorithm: key.algorithm as never, sealed: key.sealed, pkcs11Label: key.pkcs11Label });
      }
      const responder = { record: stored, signer: keystore.signer(stored.keyId) };
      this.current.set(caId, responder);
      return responder;
    }
    const responder = await this.create(caId, now);
    this.current.set(caId, responder);
    return responder;
  }

  private async create(caId: string, now: Date): Promise<Responder> {
    const { store, keystore, cas, tiers, publicUrl, random = randomBytes } = this.deps;
    const ca = cas.get(caId);
    if (!ca) throw new Error(`unknown CA ${caId}`);
    const tier = ca.record.tier ? tiers.get(ca.record.tier) : undefined;
    const validityDays = tier?.responderValidityDays ?? 7;
    const start = new Date(Math.floor(now.getTime() / 1000) * 1000);
    // Within the CA's validity (validity.ts), like every certificate it signs.
    const { notBefore, notAfter } = nestValidity({ notBefore: start, notAfter: new Date(start.getTime() + validityDays * DAY_MS) }, ca.record);
    const keyId = `ocsp-${caId}-${random(4).toString('hex')}`;
    // The responder signs as its CA does where it matters: SM2 for an SM2 CA (a national-algorithm
    // relying party checks the answer with SM2), P-384 for a P-384 CA; P-256 for the rest (RSA CAs).
    const algorithm = ca.keyAlgorithm === 'SM2' || ca.keyAlgorithm === 'P-384' ? ca.keyAlgorithm : 'P-256';
    const generated = await keystore.generate(keyId, algorithm);
    const subject = encodeName([
      ...decodeName(ca.fields.subject).filter((a) => a.type !== 'CN' && a.type !== 'OU'),
      { type: 'CN', value: `OCSP ${caId}` },
    ]);
    const urls = caUrls(publicUrl, caId);
    const certificate = await buildCertificate({
      serial: randomSerial(random),
      issuer: ca.fields.subject,
      subject,
      notBefore,
      notAfter,
      publicKeyInfo: generated.publicKeyInfo,
      extensions: endEntityExtensions({
        profile: 'ocsp',
        publicKeyInfo: generated.publicKeyInfo,
        issuerKeyId: ca.fields.subjectKeyId ?? keyIdentifier(ca.fields.publicKeyInfo),
        // A tier CA's responder asserts its tier; the root's and a domain CA's, anyPolicy (RFC 5280 §4.2.1.4).
        policyOid: tier?.oid ?? '2.5.29.32.0',
        links: { caIssuersUrl: urls.certificate, crlUrl: urls.crl },
      }),
      signer: ca.signer,
    });
    const record: ResponderRecord = {
      id: keyId,
      caId,
      keyId,
      certificate,
      notBefore,
      notAfter,
      createdAt: start,
    };
    await store.transaction(async (tx) => {
      await tx.keys.insert({
        id: keyId, algorithm, custody: custodyOf(generated), sealed: generated.sealed, pkcs11Label: generated.pkcs11Label,
        publicKeyInfo: generated.publicKeyInfo, purpose: 'ocsp', createdAt: start,
      });
      await tx.responders.insert(record);
    });
    return { record, signer: keystore.signer(keyId) };
  }
}

/** True while more than half of the responder's life is left (RFC 6960 leaves the schedule to the CA). */
function fresh(r: ResponderRecord, now: Date): boolean {
  const half = r.notBefore.getTime() + (r.notAfter.getTime() - r.notBefore.getTime()) / 2;
  return now.getTime() < half && now.getTime() >= r.notBefore.getTime();
}

