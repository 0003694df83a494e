/**
 * The key-management centre's own tables (issue 16; docs/decisions/0022-kmc.md): kept apart from the
 * CA's, so the KMC could later run as a process of its own.
 * - `kmc_master_keys`: each master key, sealed by the keystore (the HSM when configured) under the
 *   aad `kmc-master:<id>`; status `active` (wraps new keys), `retiring` (a re-wrap is under way),
 *   `retired` (no key is wrapped under it any more).
 * - `kmc_keys`: each escrowed encryption key, its PKCS#8 wrapped (RFC 5649) under one master key, the
 *   subject it belongs to and — once the CA has certified it — the certificate.
 * Forward-only; the same SQL on SQLite and PostgreSQL.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('kmc_master_keys', (t) => {
    t.string('id', 64).primary();
    t.binary('sealed').notNullable();
    t.string('status', 16).notNullable();
    t.string('created_at', 32).notNullable();
  });
  await knex.schema.createTable('kmc_keys', (t) => {
    t.string('id', 64).primary();
    t.string('subject_id', 64).notNullable();
    t.string('algorithm', 16).notNullable();
    t.binary('public_key_info').notNullable();
    t.binary('wrapped').notNullable();
    t.string('master_key_id', 64).notNullable().references('id').inTable('kmc_master_keys');
    t.string('issuer_id', 64);
    t.string('serial', 64);
    t.string('created_at', 32).notNullable();
    t.index(['subject_id', 'created_at'], 'kmc_keys_subject');
    t.index(['master_key_id'], 'kmc_keys_master');
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
