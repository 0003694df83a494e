/**
 * CRLReason codes (RFC 5280 §5.3.1), shared by CRL entries (reasonCode extension) and OCSP
 * RevokedInfo.revocationReason (RFC 6960 §4.2.1). Value 7 is unused in the ASN.1 module and is
 * therefore refused, as is anything else outside the list.
 */
import { PkiError } from './pki-error.ts';

/** CRLReason names (the RFC 5280 spelling) and their ENUMERATED values. */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export type RevocationReasonName = keyof typeof REVOCATION_REASONS;

const NAME_BY_CODE = new Map<number, RevocationReasonName>(
  (Object.entries(REVOCATION_REASONS) as [RevocationReasonName, number][]).map(([name, code]) => [code, name]),
);

/**
 * The CRLReason value of a reason name (exact RFC 5280 spelling, e.g. `keyCompromise`).
 *
 * @throws PkiError('invalid-argument') for any other name.
 */
export function reasonCode(name: string): number {
  if (!Object.prototype.hasOwnProperty.call(REVOCATION_REASONS, name)) {
    throw new PkiError('invalid-argument', `unknown revocation reason ${JSON.stringify(name)}`);
  }
  return REVOCATION_REASONS[name as RevocationReasonName];
}

/**
 * The RFC 5280 name of a CRLReason value.
 *
 * @throws PkiError('invalid-argument') for 7 (unused) and values outside 0–10.
 */
export function reasonName(code: number): RevocationReasonName {
  const name = NAME_BY_CODE.get(code);
  if (name === undefined) throw new PkiError('invalid-argument', `unknown revocation reason code ${code}`);
  return name;
}

/** Whether `code` is a CRLReason value defined by RFC 5280 §5.3.1. */
export function isReasonCode(code: unknown): code is number {
  return typeof code === 'number' && NAME_BY_CODE.has(code);
}
