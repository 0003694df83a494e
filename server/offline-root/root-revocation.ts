/**
 * Revocation on the offline root machine (docs/offline-root.md): the one rule by which a certificate
 * the root issued becomes revoked in the offline state — used by `tierca root revoke` (decided
 * offline) and by `tierca root sign` for the revocations a request bundle asks for (decided online
 * under dual control). Pure: the caller stores the state and audits.
 */
import type { RootRevocationRequest } from '../../pki/offline-ceremony.ts';
import { TiercaError } from '../errors.ts';

/** One certificate the root has issued, as the offline state keeps it; `issuer`: the root generation that signed it (absent: `root`). */
export interface IssuedCertificate {
  issuer?: string;
  ca: string;
  serial: string;
  certificate: string;
  notAfter: string;
  status: 'good' | 'revoked';
  revokedAt: string | null;
  reason: number | null;
}

/**
 * The issued certificate `caOrSerial` names: by serial (hex), that one; by CA id, its certificate
 * still good, else its first. @throws TiercaError not-found.
 */
export function findIssued(issued: readonly IssuedCertificate[], caOrSerial: string): IssuedCertificate {
  const named = issued.filter((i) => i.ca === caOrSerial || i.serial === caOrSerial.toLowerCase());
  const target = named.find((i) => i.status === 'good') ?? named[0];
  if (!target) throw new TiercaError('not-found', `the root has issued no certificate for ${caOrSerial}`, { detail: { ca: caOrSerial } });
  return target;
}

/**
 * `issued` with `target` revoked at `at` (whole seconds) for `reason`, and with it every other
 * certificate of the same CA still good: after a root rollover a domain CA's one key is certified by
 * each root generation (decision 0031), and revoking the CA revokes the key under both. `revoked`:
 * the certificates this revoked.
 */
export function revokeIssued(issued: readonly IssuedCertificate[], target: IssuedCertificate, at: Date, reason: number): { issued: IssuedCertificate[]; revoked: IssuedCertificate[] } {
  const when = new Date(Math.floor(at.getTime() / 1000) * 1000).toISOString();
  const revoking = new Set(issued.filter((i) => i === target || (i.ca === target.ca && i.status === 'good')));
  return {
    issued: issued.map((i) => (revoking.has(i) ? { ...i, status: 'revoked' as const, revokedAt: when, reason } : i)),
    revoked: [...revoking],
  };
}

/** A revocation a request bundle asks for, checked against what the root issued. */
export interface CheckedRevocation extends RootRevocationRequest {
  /** Revoked on the offline machine already (`root revoke`): nothing more to do. */
  already: boolean;
}

/**
 * Checks each revocation a request asks for: the CA and serial must be a certificate this root
 * issued. One revoked already is noted, not refused (the officers may have revoked it offline first).
 *
 * @throws whatever `refuse(message)` makes, for a certificate the root did not issue.
 */
export function checkRevocations(issued: readonly IssuedCertificate[], asked: readonly RootRevocationRequest[], refuse: (message: string) => Error): CheckedRevocation[] {
  return asked.map((r) => {
    const target = issued.find((i) => i.ca === r.ca && i.serial === r.serial);
    if (!target) throw refuse(`the request asks to revoke ${r.ca} serial ${r.serial}, which this root did not issue`);
    return { ...r, already: target.status === 'revoked' };
  });
}
