/**
 * zod parsing for handlers: a failed parse is a 400 problem naming each bad field.
 */
import type { z } from 'zod';
import { TiercaError } from '../errors.ts';

export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`);
    throw new TiercaError('bad-request', `invalid request: ${problems.join('; ')}`, { detail: { problems } });
  }
  return result.data;
}
