/**
 * Who may renew a certificate and under which rules (the RA side of renewal; the CA side is
 * server/ca/renewal.ts):
 *
 * - A renewal keeps the subject (the old certificate's subject DN, byte for byte), the tier and the
 *   profile; the names are the subject's registered names and may not be wider than the old
 *   certificate's. The successor gets the old lifetime (at most the tier maximum) from the CURRENT,
 *   usable generation of the issuing CA. Renewals need no second approval: nothing is newly authorised.
 * - `renew` keeps the key; `rekey` (a CSR for a new key, or a server-made key where the tier allows
 *   it) replaces it. Tiers whose keys only the holder makes rekey at every renewal.
 * - Officers renew in their domains; devices renew their own certificate with a signature by its key
 *   (device-signature.ts), which ends here too.
 */
import { readCertificate } from '../../../pki/certificate-reader.ts';
import { parseIp } from '../../../pki/extensions.ts';
import type { KeyManagementCentre } from '../../kmc/key-management-centre.ts';
import type { KeyAlgorithm } from '../../../pki/algorithms.ts';
import type { CertificateProfile, CertificateRecord, RenewalRecord, Store } from '../../storage/storage.ts';
import type { TierPolicy } from '../../config/tier-policy.ts';
import type { Clock } from '../../clock.ts';
import { TiercaError } from '../../errors.ts';
import type { CaDirectory } from '../../ca/ca-directory.ts';
import { subjectAltNamesOf, type RenewalService } from '../../ca/renewal.ts';
import { graceDaysOf, serverRenewal } from '../../ca/rotation-planner.ts';
import type { Authorizer } from '../authorizer.ts';
import { actorOf, runAudited } from '../audited.ts';
import type { RequestContext } from '../permissions.ts';
import { checkNames, checkProfile } from '../issuance-policy.ts';
import type { IpRange } from '../../../pki/ip-range.ts';
import type { CheckedKey, IssuancePreparer } from '../issuance-preparer.ts';
import type { CertificateLookup } from '../certificate-lookup.ts';
import { deliverKey, type DeliveredKey } from '../key-delivery.ts';
import { isEncryptionProfile } from '../encryption-profiles.ts';
import { DAY_MS } from '../../../pki/time-constants.ts';

export interface RenewInput {
  /** CA id of the certificate, when its serial is not unique across CAs. */
  issuer?: string;
  /** PKCS#10 for a new key (rekey), PEM or DER. */
  csr?: string | Buffer;
  /** A new server-made key (rekey), delivered as PKCS#12, where the tier allows server-made keys. */
  generate?: { algorithm?: string; passphrase?: string };
  /** Idempotency key; default the HTTP request id. */
  requestId?: string;
}

export interface RenewResult {
  /** The successor. */
  certificate: CertificateRecord;
  chain: readonly Buffer[];
  /** The renewed certificate as it is now (revoked already when its tier's grace is 0). */
  replaced: CertificateRecord;
  renewal: RenewalRecord;
  /** True when this request id (or, for a device, this certificate) was already renewed: nothing new was issued. */
  replayed: boolean;
  pkcs12?: Buffer;
  passphrase?: string;
}

export interface RenewalAuthorityDeps {
  store: Pick<Store, 'certificates' | 'subjects' | 'principals' | 'domains' | 'renewals' | 'audit'>;
  tiers: ReadonlyMap<string, TierPolicy>;
  cas: Pick<CaDirectory, 'get' | 'effectiveStatus'>;
  authorizer: Pick<Authorizer, 'require' | 'auditDenial'>;
  lookup: CertificateLookup;
  preparer: IssuancePreparer;
  renewals: Pick<RenewalService, 'renew' | 'replay'>;
  /** The IP ranges a domain's devices may carry (config `domains[].ipRanges`). */
  ipRanges: (domain: string) => Promise<readonly IpRange[]>;
  clock: Clock;
  random?: (n: number) => Buffer;
  /**
   * The key-management centre, where encryption keys are escrowed: a renewal that keeps one moves its
   * binding to the successor; a rekey has the KMC make and escrow the new one (decision 0027).
   */
  kmc?: Pick<KeyManagementCentre, 'keyOfCertificate' | 'rebind' | 'generate' | 'bind'>;
}

export class RenewalAuthority {
  constructor(private readonly deps: RenewalAuthorityDeps) {}

  /** Renews one certificate for an officer (in its domains). Devices use DeviceRenewal.renewBySignature. */
  async renew(ctx: RequestContext, serial: string, input: RenewInput): Promise<RenewResult> {
    const old = await this.deps.lookup.find(serial, input.issuer);
    const target = `certificate:${old.issuerId}/${old.serial}`;
    await this.deps.authorizer.require(ctx, 'certificate:renew', 'certificate.renew', target, old.domain);
    if (ctx.principal.role === 'device') {
      // A device token says nothing about which certificate is the device's own: only its key does.
      await this.deps.authorizer.auditDenial(ctx, 'certificate.renew', target, { missing: 'a signature by the certificate being renewed' });
      throw new TiercaError('forbidden', 'a device renews its own certificate with a signature by its current key (Tierca-Signature)');
    }
    return runAudited({ audit: this.deps.store.audit, clock: this.deps.clock }, ctx, 'certificate.renew', target, () =>
      this.renewChecked(ctx, old, input, input.requestId ?? ctx.requestId, false));
  }

  /**
   * The renewal itself, once the caller is authorised for `old` (see the module comment for the rules).
   * `device`: the certificate's own holder asks; a keep-key request for an already renewed certificate
   * then returns the successor instead of refusing.
   */
  async renewChecked(ctx: RequestContext, old: CertificateRecord, input: RenewInput, requestId: string, device: boolean): Promise<RenewResult> {
    const { store, cas, preparer } = this.deps;
    const now = this.deps.clock.now();
    const name = `${old.issuerId}/${old.serial}`;
    const earlier = await this.deps.renewals.replay(requestId, old);
    if (earlier) return this.result(earlier.record, earlier.chain, earlier.renewal, true);
    if (old.profile === 'ocsp') throw new TiercaError('bad-request', 'OCSP responder certificates are rotated by the server itself');
    const keepKey = !input.csr && !input.generate;
    const successor = await store.renewals.getByOld(old.issuerId, old.serial);
    if (successor) {
      if (device && keepKey) {
        const record = await store.certificates.get(successor.newIssuerId, successor.newSerial);
        if (record) return this.result(record, cas.get(record.issuerId)?.chain ?? [], successor, true);
      }
      throw new TiercaError('conflict', `certificate ${name} was already renewed by ${successor.newIssuerId}/${successor.newSerial}; renew that one`, {
        detail: { successor: { issuerId: successor.newIssuerId, serial: successor.newSerial } },
      });
    }
    if (old.status === 'hold') throw new TiercaError('conflict', `certificate ${name} is on hold; release it before renewing`);
    const chain = cas.effectiveStatus(old.issuerId);
    // A revoked CA makes every certificate under it revoked (cACompromise): its keys are suspect too.
    if (chain.status !== 'active') throw new TiercaError('revocation-final', `certificate ${name} is revoked with its CA ${chain.blockedBy}; issue a new certificate instead`);
    if (old.status !== 'good') throw new TiercaError('revocation-final', `certificate ${name} is revoked; issue a new certificate instead`);
    if (old.notAfter.getTime() <= now.getTime()) throw new TiercaError('conflict', `certificate ${name} has expired; issue a new certificate instead`);

    const subject = old.subjectId ? await store.subjects.get(old.subjectId) : undefined;
    if (!subject) {
      const principal = old.subjectId ? await store.principals.get(old.subjectId) : undefined;
      throw new TiercaError('conflict', principal
        ? `certificate ${name} is the client certificate of principal ${principal.id}: issue a new one (tierca principal certificate)`
        : `certificate ${name} belongs to no registered subject; it cannot be renewed`);
    }
    if (subject.status !== 'active') throw new TiercaError('conflict', `subject ${subject.id} is revoked`);
    // The tier and profile are the old certificate's: a renewal never moves a holder to another tier.
    if (!old.tier || subject.tier !== old.tier) throw new TiercaError('conflict', `certificate ${name} is of tier ${old.tier ?? '-'} but its subject of ${subject.tier}`);
    const tier = this.deps.tiers.get(old.tier);
    if (!tier) throw new TiercaError('conflict', `tier ${old.tier} is no longer configured`);
    const profile = checkProfile(subject.kind, old.profile as Exclude<CertificateProfile, 'ocsp'>);
    const domain = await store.domains.get(subject.domain);
    if (!domain) throw new TiercaError('conflict', `domain ${subject.domain} is gone`);
    const names = checkNames(domain, subject.kind, { dns: subject.dnsNames, ips: subject.ipAddresses, emails: subject.emails }, await this.deps.ipRanges(subject.domain));
    checkNotWider(old, names);

    if (input.csr && input.generate) throw new TiercaError('bad-request', 'send a CSR or generate, not both');
    const oldFields = readCertificate(old.der);
    let key: CheckedKey;
    let mode: 'renew' | 'rekey' = 'rekey';
    if (keepKey) {
      const server = serverRenewal(tier, old.keyAlgorithm);
      if (!server.ok) throw new TiercaError('policy-rekey-required', server.why);
      key = { kind: 'keep', publicKeyInfo: oldFields.publicKeyInfo, keyAlgorithm: old.keyAlgorithm as KeyAlgorithm };
      mode = 'renew';
    } else {
      key = await preparer.checkKey(tier, profile, input);
      if (key.kind === 'csr' && key.publicKeyInfo.equals(oldFields.publicKeyInfo)) {
        const server = serverRenewal(tier, old.keyAlgorithm);
        if (!server.ok) throw new TiercaError('policy-rekey-required', `${server.why}; this CSR is for the same key`);
        mode = 'renew';
      }
    }
    const encryption = isEncryptionProfile(profile);
    // A new encryption key is the KMC's to make and escrow, as at issuance: it joins the subject's
    // key history (whole-history recovery), and the old key stays escrowed where it was. It is
    // escrowed before the CA signs; a renewal that fails later leaves it unbound (decision 0022).
    const { kmc } = this.deps;
    const newKmcKey = kmc && encryption && key.kind === 'generate' ? await kmc.generate({ subjectId: subject.id, algorithm: key.keyAlgorithm }) : undefined;
    if (newKmcKey) key = { kind: 'keep', publicKeyInfo: newKmcKey.publicKeyInfo, keyAlgorithm: key.keyAlgorithm };
    // The successor lives as long as the old one did (at most the tier maximum); its CA may cut it shorter.
    const oldDays = Math.max(1, Math.round((old.notAfter.getTime() - old.notBefore.getTime()) / DAY_MS));
    const prepared = await preparer.prepare({
      tier, domain: subject.domain, profile, holderKind: subject.kind, days: Math.min(oldDays, tier.maxValidityDays[subject.kind]),
      name: { kind: 'exact', der: oldFields.subject, text: old.subjectDn }, subjectId: subject.id,
      names: { dns: names.dns, ip: names.ips, email: names.emails }, key, requestId: null, now,
    });
    const { order } = prepared;
    const privateKey = newKmcKey?.privateKey ?? prepared.privateKey;
    let delivered: DeliveredKey | undefined;
    // A kept encryption key escrowed by the KMC stays there, bound to the successor after the commit;
    // one in the older escrow table is re-sealed to the successor inside it.
    const kmcKey = encryption && mode === 'renew' ? await kmc?.keyOfCertificate(old.issuerId, old.serial) : undefined;
    const outcome = await this.deps.renewals.renew({
      old, order, requestId, mode, graceDays: graceDaysOf(tier),
      // Only without a KMC does a new encryption key go to the older escrow table.
      escrowKey: encryption && !newKmcKey ? privateKey : undefined,
      carryEscrow: encryption && mode === 'renew' && !kmcKey,
      actor: actorOf(ctx),
      beforeStore: async (record) => {
        if (privateKey) {
          delivered = await deliverKey({
            privateKey, certificate: record.der, chain: order.ca.chain, holderName: subject.name, passphrase: input.generate?.passphrase, random: this.deps.random,
          });
        }
      },
    }, now);
    if (kmcKey && !outcome.replayed) await kmc!.rebind(kmcKey.id, old, outcome.record);
    if (newKmcKey && !outcome.replayed) await kmc!.bind(newKmcKey.keyId, outcome.record.issuerId, outcome.record.serial);
    const result = await this.result(outcome.record, outcome.chain, outcome.renewal, outcome.replayed);
    return outcome.replayed ? result : { ...result, ...delivered };
  }

  private async result(record: CertificateRecord, chain: readonly Buffer[], renewal: RenewalRecord, replayed: boolean): Promise<RenewResult> {
    const replaced = await this.deps.store.certificates.get(renewal.oldIssuerId, renewal.oldSerial);
    if (!replaced) throw new TiercaError('internal', `renewed certificate ${renewal.oldIssuerId}/${renewal.oldSerial} is missing`);
    return { certificate: record, chain, replaced, renewal, replayed };
  }
}

/** Refuses a successor whose names are not all in the old certificate (RFC 5280 §4.2.1.6 subjectAltName). */
function checkNotWider(old: CertificateRecord, names: { dns: string[]; ips: string[]; emails: string[] }): void {
  const had = subjectAltNamesOf(old.der);
  const wider = [
    ...names.dns.filter((d) => !had.dns.includes(d)),
    ...names.emails.filter((e) => !had.email.includes(e)),
    ...names.ips.filter((ip) => !had.ip.some((b) => b.equals(parseIp(ip)))),
  ];
  if (wider.length) {
    throw new TiercaError('policy-name-constraints', `a renewal may not widen the names: ${wider.join(', ')} not in the certificate being renewed`, {
      detail: { added: wider },
    });
  }
}
