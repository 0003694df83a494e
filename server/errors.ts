/**
 * tierca's one error model. Every refusal is a {@link TiercaError} with a code from {@link ERROR_CODES};
 * `message` is safe to show to the caller, `cause` (internal detail) is only logged. The table maps
 * each code to an HTTP status, the problem `type` (RFC 9457) and the CLI exit code.
 */
export const ERROR_CODES = {
  // 400: the request is wrong
  'bad-request': { status: 400, exit: 2, title: 'Bad request' },
  'malformed-input': { status: 400, exit: 2, title: 'Malformed input' },
  'bad-csr-signature': { status: 400, exit: 2, title: 'CSR signature does not verify' },
  // 401/403: who is asking
  unauthenticated: { status: 401, exit: 4, title: 'Authentication required' },
  forbidden: { status: 403, exit: 4, title: 'Forbidden' },
  // 404/409/413
  'not-found': { status: 404, exit: 3, title: 'Not found' },
  conflict: { status: 409, exit: 5, title: 'Conflict' },
  'already-exists': { status: 409, exit: 5, title: 'Already exists' },
  'already-holds-certificate': { status: 409, exit: 5, title: 'Subject already holds a valid certificate of this profile' },
  'revocation-final': { status: 409, exit: 5, title: 'Revocation is final' },
  'payload-too-large': { status: 413, exit: 2, title: 'Payload too large' },
  'unsupported-media-type': { status: 415, exit: 2, title: 'Unsupported media type' },
  // 422: understood, but outside policy
  'policy-key-algorithm': { status: 422, exit: 6, title: 'Key algorithm or size not allowed for this tier' },
  'policy-validity': { status: 422, exit: 6, title: 'Validity above the tier maximum' },
  'policy-name-constraints': { status: 422, exit: 6, title: 'Name outside the domain constraints' },
  'policy-server-keygen': { status: 422, exit: 6, title: 'Server-made keys are not allowed for this tier' },
  'policy-self-approval': { status: 422, exit: 6, title: 'A requester may not approve its own request' },
  'policy-profile': { status: 422, exit: 6, title: 'Profile not allowed' },
  'policy-rekey-required': { status: 422, exit: 6, title: 'A new key is required at this renewal' },
  'invalid-config': { status: 422, exit: 2, title: 'Invalid configuration' },
  'ca-unavailable': { status: 422, exit: 6, title: 'Issuing CA is not active' },
  'request-not-pending': { status: 409, exit: 5, title: 'Request is not pending' },
  // 5xx
  'wrong-passphrase': { status: 500, exit: 7, title: 'Wrong keystore passphrase' },
  'rate-limited': { status: 429, exit: 8, title: 'Too many requests' },
  unavailable: { status: 503, exit: 9, title: 'Service unavailable' },
  internal: { status: 500, exit: 1, title: 'Internal error' },
} as const satisfies Record<string, { status: number; exit: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base of the problem `type` URIs; the code is appended, so types are stable. */
export const PROBLEM_TYPE_BASE = 'urn:tierca:problem:';

export const problemType = (code: ErrorCode): string => `${PROBLEM_TYPE_BASE}${code}`;

export class TiercaError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly options: { cause?: unknown; detail?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.name = 'TiercaError';
  }
}

/** Maps a problem type back to the CLI exit code (the CLI sees only the problem document). */
export function exitCodeForProblemType(type: string | undefined): number {
  if (type?.startsWith(PROBLEM_TYPE_BASE)) {
    const code = type.slice(PROBLEM_TYPE_BASE.length) as ErrorCode;
    if (code in ERROR_CODES) return ERROR_CODES[code].exit;
  }
  return 1;
}
