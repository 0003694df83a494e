/**
 * A rollover of the offline root (docs/decisions/0031-offline-root-rollover.md), the pure parts: the
 * two RFC 4210 §4.4.1 link certificates between the old and the new root key, a CA certificate
 * re-certified under the new root (same subject, key and profile; new issuer key, serial, validity and
 * links), the status one root generation signs at a ceremony (its CRL and a pre-signed OCSP answer per
 * certificate it issued), and the response-bundle members a rollover adds. No clock, no storage.
 */
import { buildCertificate } from './certificate.ts';
import { readCertificate } from './certificate-reader.ts';
import { buildCrl } from './crl.ts';
import { children, decodeOid, expectTag, readOnly } from './der-reader.ts';
import { authorityInfoAccess, authorityKeyIdentifier, crlDistributionPoints, EXTENSION_OID, type Extension } from './extensions.ts';
import { keyIdentifier } from './key-pair.ts';
import { certIdFor } from './ocsp-request.ts';
import { buildOcspResponse } from './ocsp-response.ts';
import { PkiError } from './pki-error.ts';
import { rootCaExtensions, type IssuerLinks } from './profiles.ts';
import type { Signer } from './signer.ts';

/** A root CRL as a response bundle carries it (base64 DER, times ISO). */
export interface CarriedCrl {
  der: string;
  number: string;
  thisUpdate: string;
  nextUpdate: string;
}

/** A pre-signed OCSP answer of a root for one certificate it issued. */
export interface CarriedOcspAnswer {
  ca: string;
  serial: string;
  der: string;
  thisUpdate: string;
  nextUpdate: string;
}

/** What a superseded root generation signed at a ceremony, for the certificates it issued that have not expired. */
export interface RootGenerationStatus {
  /** The online CA id of that generation (`root`, `root-g2`, …). */
  ca: string;
  crl: CarriedCrl;
  ocsp: CarriedOcspAnswer[];
}

/** The `rollover` member of a response bundle: the new root and everything it signed. Binary members are base64 DER. */
export interface RootRolloverPayload {
  /** The new generation's CA id (`root-g2`, …): the lineage `root` and the generation, as online rollovers name them. */
  ca: string;
  /** The new self-signed root certificate. */
  certificate: string;
  /** old-with-new: the old key signed by the new; new-with-old: the new key signed by the old (the one a pinned old root checks). */
  links: { oldWithNew: string; newWithOld: string };
  /** Every domain CA the old root had certified and not revoked, re-certified under the new root. */
  certificates: { ca: string; certificate: string }[];
}

/** One certificate a root issued, as {@link signRootStatus} needs it. */
export interface IssuedStatus {
  ca: string;
  serial: string;
  notAfter: string;
  status: 'good' | 'revoked';
  revokedAt: string | null;
  reason: number | null;
}

/**
 * What one root generation signs at a ceremony: its CRL (number `crlNumber`, the revoked among
 * `issued`) and a pre-signed OCSP answer (RFC 6960, the root itself responding) for every one of
 * `issued` that has not expired at `thisUpdate`; both valid until `nextUpdate`.
 */
export async function signRootStatus(p: {
  rootCertificate: Buffer; signer: Signer; issued: readonly IssuedStatus[]; crlNumber: bigint; thisUpdate: Date; nextUpdate: Date;
}): Promise<{ crl: CarriedCrl; ocsp: CarriedOcspAnswer[] }> {
  const { thisUpdate, nextUpdate, signer } = p;
  const root = readCertificate(p.rootCertificate);
  const revoked = p.issued.filter((i) => i.status === 'revoked');
  const crl = await buildCrl({
    issuer: root.subject, authorityKeyId: root.subjectKeyId ?? keyIdentifier(root.publicKeyInfo), thisUpdate, nextUpdate, crlNumber: p.crlNumber, signer,
    entries: revoked.map((i) => ({ serial: i.serial, revokedAt: new Date(i.revokedAt!), reason: i.reason })),
  });
  const ocsp: CarriedOcspAnswer[] = [];
  for (const i of p.issued) {
    if (Date.parse(i.notAfter) <= thisUpdate.getTime()) continue;
    const certId = certIdFor({ issuerName: root.subject, issuerPublicKeyInfo: root.publicKeyInfo, serial: i.serial });
    const der = await buildOcspResponse({
      responderPublicKeyInfo: root.publicKeyInfo, producedAt: thisUpdate, signer,
      responses: [{ certId, certStatus: i.status === 'revoked' ? { status: 'revoked', revokedAt: new Date(i.revokedAt!), reason: i.reason } : { status: 'good' }, thisUpdate, nextUpdate }],
    });
    ocsp.push({ ca: i.ca, serial: i.serial, der: der.toString('base64'), thisUpdate: thisUpdate.toISOString(), nextUpdate: nextUpdate.toISOString() });
  }
  return { crl: { der: crl.toString('base64'), number: p.crlNumber.toString(), thisUpdate: thisUpdate.toISOString(), nextUpdate: nextUpdate.toISOString() }, ocsp };
}

/** One side of a root rollover: a root key with its certificate's validity and its signer. */
export interface RootKeySide {
  publicKeyInfo: Buffer;
  notBefore: Date;
  notAfter: Date;
  signer: Signer;
}

/**
 * The two link certificates of a root rollover (RFC 4210 §4.4.1), both with the root's `subject` as
 * issuer and subject, so self-issued (RFC 5280 §6.1) and told apart by AKI/SKI; the root profile's
 * extensions plus the signing key's AKI. Each lies within both roots' validity (a child never starts
 * before, nor ends after, its issuer: server/ca/validity.ts says why): new-with-old from the new
 * root's start to the earlier end, old-with-new the same span.
 */
export async function buildRootLinks(p: { subject: Buffer; old: RootKeySide; new: RootKeySide; serial: () => Buffer }): Promise<{ oldWithNew: Buffer; newWithOld: Buffer }> {
  const notBefore = new Date(Math.max(p.old.notBefore.getTime(), p.new.notBefore.getTime()));
  const notAfter = new Date(Math.min(p.old.notAfter.getTime(), p.new.notAfter.getTime()));
  if (notAfter.getTime() <= notBefore.getTime()) throw new PkiError('invalid-argument', 'the old and the new root are never valid at the same time: no link certificate can join them');
  const link = (key: RootKeySide, by: RootKeySide) => buildCertificate({
    serial: p.serial(), issuer: p.subject, subject: p.subject, notBefore, notAfter, publicKeyInfo: key.publicKeyInfo,
    extensions: [...rootCaExtensions({ publicKeyInfo: key.publicKeyInfo }), authorityKeyIdentifier(keyIdentifier(by.publicKeyInfo))],
    signer: by.signer,
  });
  return { oldWithNew: await link(p.old, p.new), newWithOld: await link(p.new, p.old) };
}

/**
 * Every extension of a DER certificate in order, as {@link Extension}s (OID, critical, extnValue
 * contents): what {@link recertifyCaCertificate} copies.
 */
export function readExtensionList(der: Buffer): Extension[] {
  const tbs = children(readOnly(readCertificate(der).tbs, 0x30));
  const wrapper = tbs.find((el) => el.tag === 0xa3);
  if (!wrapper) return [];
  return children(expectTag(children(wrapper)[0], 0x30, 'Extensions')).map((ext) => {
    const parts = children(ext);
    const critical = parts.length === 3 && parts[1].content[0] === 0xff;
    return { oid: decodeOid(parts[0]), critical, value: parts[parts.length - 1].content };
  });
}

/**
 * A CA certificate re-certified by a new issuer key: the same subject, key and extensions (profile,
 * name constraints, policies: copied as they are), but the new issuer's AKI, AIA caIssuers and CRL
 * distribution point (`links`: the new issuer's own URLs), a new serial and the validity given.
 */
export function recertifyCaCertificate(p: {
  certificate: Buffer; issuer: Buffer; issuerKeyId: Buffer; serial: Buffer; notBefore: Date; notAfter: Date; links: IssuerLinks; signer: Signer;
}): Promise<Buffer> {
  const old = readCertificate(p.certificate);
  const replace: Record<string, Extension> = {
    [EXTENSION_OID.authorityKeyIdentifier]: authorityKeyIdentifier(p.issuerKeyId),
    [EXTENSION_OID.authorityInfoAccess]: authorityInfoAccess({ caIssuers: p.links.caIssuersUrl }),
    [EXTENSION_OID.crlDistributionPoints]: crlDistributionPoints([p.links.crlUrl]),
  };
  return buildCertificate({
    serial: p.serial, issuer: p.issuer, subject: old.subject, notBefore: p.notBefore, notAfter: p.notAfter, publicKeyInfo: old.publicKeyInfo,
    extensions: readExtensionList(p.certificate).map((e) => replace[e.oid] ?? e), signer: p.signer,
  });
}

const str = (v: unknown): v is string => typeof v === 'string';
const isCrl = (c: Partial<CarriedCrl> | undefined): boolean => !!c && str(c.der) && str(c.number) && str(c.thisUpdate) && str(c.nextUpdate);
const isAnswer = (o: Partial<CarriedOcspAnswer> | undefined): boolean => !!o && str(o.ca) && str(o.serial) && str(o.der) && str(o.thisUpdate) && str(o.nextUpdate);

/**
 * Checks the shape of the members a rollover adds to a response payload (`rollover`, `previousRoots`;
 * both optional: a response without them is an ordinary one).
 *
 * @throws PkiError('malformed') naming the first member that is wrong.
 */
export function readRolloverMembers(payload: unknown): { rollover?: RootRolloverPayload; previousRoots?: RootGenerationStatus[] } {
  const p = payload as { rollover?: Partial<RootRolloverPayload>; previousRoots?: Partial<RootGenerationStatus>[] };
  const bad = (what: string) => new PkiError('malformed', `response bundle: ${what}`);
  const r = p.rollover;
  if (r !== undefined) {
    if (!r || !str(r.ca) || !/^[a-z0-9-]{1,64}$/.test(r.ca) || !str(r.certificate)) throw bad('rollover does not name the new root and its certificate');
    if (!r.links || !str(r.links.oldWithNew) || !str(r.links.newWithOld)) throw bad('rollover lacks its two link certificates');
    if (!Array.isArray(r.certificates) || !r.certificates.every((c) => str(c?.ca) && str(c?.certificate))) throw bad('rollover.certificates is not a list of { ca, certificate }');
  }
  if (p.previousRoots !== undefined) {
    if (!Array.isArray(p.previousRoots) || !p.previousRoots.every((g) => str(g?.ca) && isCrl(g.crl) && Array.isArray(g.ocsp) && g.ocsp.every(isAnswer))) {
      throw bad('previousRoots is not a list of { ca, crl, ocsp }');
    }
  }
  return { rollover: r as RootRolloverPayload | undefined, previousRoots: p.previousRoots as RootGenerationStatus[] | undefined };
}
