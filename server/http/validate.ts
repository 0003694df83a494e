/**
 * zod parsing for handlers: a failed parse is a 400 problem naming each bad field.
 */
import { z } from 'zod';
import { TiercaError } from '../errors.ts';
import { nameAttributeProblem, nameTextProblem } from '../../pki/name-rules.ts';
import type { NameAttributeType } from '../../pki/name.ts';
import { DurationError, parseDuration } from '../../pki/duration.ts';

export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const fieldOf = (i: (typeof result.error.issues)[number]) => (i.path.length ? i.path.join('.') : 'body');
    const problems = result.error.issues.map((i) => `${fieldOf(i)}: ${i.message}`);
    // `fields` names each bad field and the kind of issue, for a client that words it in its own language.
    const fields = result.error.issues.map((i) => ({ field: fieldOf(i), issue: i.code }));
    throw new TiercaError('bad-request', `invalid request: ${problems.join('; ')}`, { detail: { problems, fields } });
  }
  return result.data;
}

/**
 * A name field of a request body, checked by pki/name-rules.ts where it enters: NFC, no control,
 * bidi or invisible characters, no lone surrogate, at most the RFC 5280 upper bound of name attribute
 * `limit` (or `limit.max` characters for a name that is not a certificate attribute).
 */
export function nameField(limit: NameAttributeType | { max: number }) {
  return z.string().superRefine((value, ctx) => {
    const problem = typeof limit === 'string' ? nameAttributeProblem(limit, value) : nameTextProblem(value, limit.max);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

/** A duration in a query (`30d`, `12h`, `90m`), parsed by pki/duration.ts into milliseconds. */
export function durationField() {
  return z.string().max(16).transform((text, ctx) => {
    try {
      return parseDuration(text, ['d', 'h', 'm']);
    } catch (err) {
      if (!(err instanceof DurationError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
      return z.NEVER;
    }
  });
}

/** A caller's idempotency key (docs/api.md): a retry with the same id answers what the first call did. */
export const requestIdField = () => z.string().regex(/^[\w.:-]{1,64}$/, 'letters, digits and . _ : - (at most 64)');
