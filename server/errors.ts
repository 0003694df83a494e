/**
 * tierca's one error model. Every refusal is a {@link TiercaError} with a code from {@link ERROR_CODES};
 * `message` is safe to show to the caller, `cause` (internal detail) is only logged. The table maps
 * each code to an HTTP status, the problem `type` (RFC 9457) and the CLI exit code; the exit codes
 * themselves, with what each means, are {@link EXIT_CODES}, from which the CLI's `EXIT`, its
 * `--help` text and the table of docs/cli.md are made (test/unit/exit-codes.test.ts holds the doc).
 */

/**
 * Every exit code of the `tierca` CLI: `code`, what it means in docs/cli.md (`meaning`, markdown)
 * and in `tierca --help` (`help`). Codes 1–9 are what an error of {@link ERROR_CODES} exits with;
 * 10–13 are answers of `ocsp check` and `audit verify`, not failures of the tool.
 */
export const EXIT_CODES = {
  ok: { code: 0, meaning: 'success; `ocsp check`: the certificate is good', help: 'success (ocsp check: the certificate is good)' },
  internal: {
    code: 1,
    meaning: 'internal error: a bug, or the server answered 500 `internal`; `ocsp check`: the responder answered `malformedRequest` or `internalError`',
    help: 'internal error (a bug, or the server answered 500)',
  },
  usage: {
    code: 2,
    meaning: 'usage error or bad input: unknown option or command, missing or invalid option value, unreadable or malformed input file, 400/413/415',
    help: 'usage error or bad input (unknown option, unreadable file, 400)',
  },
  notFound: { code: 3, meaning: 'not found (404)', help: 'not found (404)' },
  auth: {
    code: 4,
    meaning: 'authentication or permission: no token, 401, 403; `ocsp check`: `unauthorized` (the responder does not answer for that issuer) or `sigRequired`',
    help: 'authentication or permission (no token, 401, 403)',
  },
  conflict: { code: 5, meaning: 'conflict (409)', help: 'conflict (409: already exists, already revoked, request not pending)' },
  policy: { code: 6, meaning: 'refused by policy (422)', help: 'refused by policy (422: algorithm, validity, names, approvals)' },
  keystore: {
    code: 7,
    meaning: 'keystore: wrong passphrase, or the PKCS#11 token cannot be used (module missing, token absent, wrong or locked PIN, a CA key object missing)',
    help: 'keystore (wrong passphrase; PKCS#11 module, token, PIN or key object)',
  },
  rateLimited: { code: 8, meaning: 'rate limited (429)', help: 'rate limited (429)' },
  unavailable: {
    code: 9,
    meaning: 'unavailable: cannot connect (the message names the URL), no answer within 60 s, 502/503/504; `ocsp check`: `tryLater`',
    help: 'server unavailable (cannot connect, timeout, 503)',
  },
  ocspRevoked: {
    code: 10,
    meaning: '`ocsp check`: the certificate is revoked (also on hold: reason `certificateHold`)',
    help: 'ocsp check: the certificate is revoked',
  },
  ocspUnknown: { code: 11, meaning: '`ocsp check`: the responder does not know the certificate', help: 'ocsp check: the responder does not know the certificate' },
  ocspUntrusted: {
    code: 12,
    meaning: '`ocsp check`: the answer must not be believed (signature, responder authorisation, CertID, nonce or times fail, or it is not an OCSP response)',
    help: 'ocsp check: the answer fails verification (signature, responder, nonce, times)',
  },
  auditBroken: {
    code: 13,
    meaning: '`audit verify`: the audit log does not verify (the first record that does not match is named)',
    help: 'audit verify: the audit log does not verify',
  },
  interrupted: { code: 130, meaning: 'interrupted at a prompt (Ctrl-C)', help: 'interrupted at a prompt (Ctrl-C)' },
} as const satisfies Record<string, { code: number; meaning: string; help: string }>;

export type ExitName = keyof typeof EXIT_CODES;

/** Exit code by name (`EXIT.usage` is 2), made from {@link EXIT_CODES}. */
export const EXIT = Object.fromEntries(Object.entries(EXIT_CODES).map(([name, e]) => [name, e.code])) as {
  readonly [N in ExitName]: (typeof EXIT_CODES)[N]['code'];
};

const X = EXIT_CODES;

export const ERROR_CODES = {
  // 400: the request is wrong
  'bad-request': { status: 400, exit: X.usage.code, title: 'Bad request' },
  'malformed-input': { status: 400, exit: X.usage.code, title: 'Malformed input' },
  'bad-csr-signature': { status: 400, exit: X.usage.code, title: 'CSR signature does not verify' },
  // 401/403: who is asking
  unauthenticated: { status: 401, exit: X.auth.code, title: 'Authentication required' },
  forbidden: { status: 403, exit: X.auth.code, title: 'Forbidden' },
  // 404/409/413
  'not-found': { status: 404, exit: X.notFound.code, title: 'Not found' },
  conflict: { status: 409, exit: X.conflict.code, title: 'Conflict' },
  'already-exists': { status: 409, exit: X.conflict.code, title: 'Already exists' },
  'already-holds-certificate': { status: 409, exit: X.conflict.code, title: 'Subject already holds a valid certificate of this profile' },
  'revocation-final': { status: 409, exit: X.conflict.code, title: 'Revocation is final' },
  'payload-too-large': { status: 413, exit: X.usage.code, title: 'Payload too large' },
  'unsupported-media-type': { status: 415, exit: X.usage.code, title: 'Unsupported media type' },
  // 422: understood, but outside policy
  'policy-key-algorithm': { status: 422, exit: X.policy.code, title: 'Key algorithm or size not allowed for this tier' },
  'policy-validity': { status: 422, exit: X.policy.code, title: 'Validity above the tier maximum' },
  'policy-name-constraints': { status: 422, exit: X.policy.code, title: 'Name outside the domain constraints' },
  'policy-server-keygen': { status: 422, exit: X.policy.code, title: 'Server-made keys are not allowed for this tier' },
  'policy-self-approval': { status: 422, exit: X.policy.code, title: 'A requester may not approve its own request' },
  'policy-profile': { status: 422, exit: X.policy.code, title: 'Profile not allowed' },
  'policy-rekey-required': { status: 422, exit: X.policy.code, title: 'A new key is required at this renewal' },
  'invalid-config': { status: 422, exit: X.usage.code, title: 'Invalid configuration' },
  'ca-unavailable': { status: 422, exit: X.policy.code, title: 'Issuing CA is not active' },
  'request-not-pending': { status: 409, exit: X.conflict.code, title: 'Request is not pending' },
  // Bundles across the air gap to and from the offline root (docs/decisions/0026-offline-root.md)
  'bundle-invalid': { status: 400, exit: X.usage.code, title: 'The bundle is malformed or altered' },
  'bundle-foreign': { status: 409, exit: X.conflict.code, title: 'The bundle belongs to another hierarchy' },
  'bundle-replayed': { status: 409, exit: X.conflict.code, title: 'The bundle was imported already' },
  'bundle-out-of-order': { status: 409, exit: X.conflict.code, title: 'The bundle is out of order' },
  // 5xx
  'wrong-passphrase': { status: 500, exit: X.keystore.code, title: 'Wrong keystore passphrase' },
  'keystore-fault': { status: 503, exit: X.keystore.code, title: 'The CA key token cannot be used' },
  'escrow-tampered': { status: 500, exit: X.internal.code, title: 'An escrowed key failed its integrity check' },
  'rate-limited': { status: 429, exit: X.rateLimited.code, title: 'Too many requests' },
  unavailable: { status: 503, exit: X.unavailable.code, title: 'Service unavailable' },
  internal: { status: 500, exit: X.internal.code, title: 'Internal error' },
} as const satisfies Record<string, { status: number; exit: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The members of a problem's `detail` that name what an error is about (language-neutral names, ids
 * and fields, as the API answers them): a client that shows errors in another language, like the
 * console (docs/decisions/0028-console-errors-and-secrets.md), puts them into its own sentence.
 * `fields` is `[{ field, issue }]`, `issue` a zod issue code (`invalid_type`, `too_big`, …).
 */
export const ERROR_DETAIL_KEYS = [
  'fields', 'field', 'subject', 'serial', 'issuer', 'ca', 'request', 'principal', 'name', 'domain', 'tier', 'kind', 'profile',
  'algorithm', 'allowed', 'days', 'maxDays', 'status', 'permission',
] as const;

export type ErrorDetailKey = (typeof ERROR_DETAIL_KEYS)[number];

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
  return EXIT.internal;
}
