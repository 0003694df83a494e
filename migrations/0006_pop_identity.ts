/**
 * For a certificate issued from an SM2 CSR, which signer identity its proof of possession verified
 * with (issue 14): `default` (1234567812345678, GM/T 0009-2012 §10, what GmSSL and Tongsuo sign
 * with) or `empty` (what OpenSSL 3.0's `req -sm3` makes without `-sigopt distid:`). Null for other
 * algorithms, server-made keys and rows older than this migration. Forward-only.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('certificates', (t) => {
    t.string('pop_identity', 16);
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
