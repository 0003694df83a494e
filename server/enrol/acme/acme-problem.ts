/**
 * ACME problem documents (RFC 8555 §6.7): an error of the ACME server is an {@link AcmeProblem} with a
 * type under `urn:ietf:params:acme:error:`; a TiercaError thrown by the RA services beneath is mapped
 * to the nearest ACME type here, so an ACME client never sees tierca's own problem types.
 */
import { TiercaError, type ErrorCode } from '../../errors.ts';

export const ACME_ERROR = 'urn:ietf:params:acme:error:';

export type AcmeErrorType =
  | 'accountDoesNotExist' | 'alreadyRevoked' | 'badCSR' | 'badNonce' | 'badPublicKey' | 'badRevocationReason' | 'badSignatureAlgorithm'
  | 'caa' | 'connection' | 'dns' | 'externalAccountRequired' | 'incorrectResponse' | 'invalidContact' | 'malformed' | 'orderNotReady'
  | 'rateLimited' | 'rejectedIdentifier' | 'serverInternal' | 'tls' | 'unauthorized' | 'unsupportedContact' | 'unsupportedIdentifier'
  | 'userActionRequired' | 'alreadyReplaced';

const STATUS: Partial<Record<AcmeErrorType, number>> = {
  accountDoesNotExist: 400, unauthorized: 403, orderNotReady: 403, rateLimited: 429, serverInternal: 500, externalAccountRequired: 401,
};

export class AcmeProblem extends Error {
  readonly status: number;
  constructor(readonly type: AcmeErrorType, message: string, options: { status?: number; extra?: Record<string, unknown> } = {}) {
    super(message);
    this.name = 'AcmeProblem';
    this.status = options.status ?? STATUS[type] ?? 400;
    this.extra = options.extra ?? {};
  }
  readonly extra: Record<string, unknown>;

  document(): Record<string, unknown> {
    return { ...this.extra, type: `${ACME_ERROR}${this.type}`, detail: this.message, status: this.status };
  }
}

/** The ACME type of an RA error (the policy refusals become rejectedIdentifier or badCSR). */
const FROM_TIERCA: Partial<Record<ErrorCode, AcmeErrorType>> = {
  'bad-request': 'malformed', 'malformed-input': 'malformed', 'bad-csr-signature': 'badCSR', forbidden: 'unauthorized',
  unauthenticated: 'unauthorized', 'not-found': 'malformed', conflict: 'malformed', 'payload-too-large': 'malformed',
  'policy-key-algorithm': 'badCSR', 'policy-validity': 'badCSR', 'policy-name-constraints': 'rejectedIdentifier', 'policy-profile': 'badCSR',
  'policy-server-keygen': 'badCSR', 'ca-unavailable': 'serverInternal', 'rate-limited': 'rateLimited', 'revocation-final': 'alreadyRevoked',
  unavailable: 'serverInternal', 'keystore-fault': 'serverInternal',
};

/** Any thrown value as an ACME problem; `internal` ones keep no detail (the cause is logged by the caller). */
export function acmeProblemOf(err: unknown): AcmeProblem {
  if (err instanceof AcmeProblem) return err;
  if (err instanceof TiercaError) {
    const type = FROM_TIERCA[err.code];
    if (type) {
      const status = type === 'malformed' && err.code === 'not-found' ? 404 : type === 'serverInternal' ? 503 : undefined;
      return new AcmeProblem(type, err.message, { status });
    }
  }
  return new AcmeProblem('serverInternal', 'internal error');
}
