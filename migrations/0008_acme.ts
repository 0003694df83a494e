/**
 * The ACME server's tables (issue 17; docs/decisions/0023-acme.md). Forward-only; the same SQL on
 * SQLite and PostgreSQL.
 * - `acme_account_keys`: external-account-binding keys an officer made for a domain, organ and tier;
 *   the HMAC key sealed by the keystore (aad `acme-eab:<id>`), never in plain.
 * - `acme_accounts`: an ACME account, its JWK and RFC 7638 thumbprint (unique), its scope (from the
 *   binding key) and how many certificates it has had issued.
 * - `acme_orders`, `acme_authorizations`, `acme_challenges`: RFC 8555 §7.1 objects; identifiers and
 *   errors as JSON.
 * - `acme_nonces`: issued Replay-Nonce values; one is consumed by deleting its row, so a nonce is
 *   good once, at whichever instance it is presented.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('acme_account_keys', (t) => {
    t.string('id', 64).primary();
    t.binary('sealed_hmac').notNullable();
    t.string('domain', 64).notNullable();
    t.string('organ', 64).notNullable();
    t.string('tier', 16).notNullable();
    t.integer('max_certificates');
    t.string('expires_at', 32).notNullable();
    t.string('created_by', 64).notNullable();
    t.string('created_at', 32).notNullable();
    t.string('account_id', 64);
  });
  await knex.schema.createTable('acme_accounts', (t) => {
    t.string('id', 64).primary();
    t.string('thumbprint', 64).notNullable().unique();
    t.text('jwk').notNullable();
    t.string('status', 16).notNullable();
    t.text('contact').notNullable();
    t.string('account_key_id', 64).notNullable();
    t.string('domain', 64).notNullable();
    t.string('organ', 64).notNullable();
    t.string('tier', 16).notNullable();
    t.integer('max_certificates');
    t.integer('issued').notNullable().defaultTo(0);
    t.string('bound_by', 64).notNullable();
    t.string('created_at', 32).notNullable();
  });
  await knex.schema.createTable('acme_orders', (t) => {
    t.string('id', 64).primary();
    t.string('account_id', 64).notNullable();
    t.string('status', 16).notNullable();
    t.text('identifiers').notNullable();
    t.text('authorizations').notNullable();
    t.string('expires_at', 32).notNullable();
    t.string('issuer_id', 64);
    t.string('serial', 64);
    t.string('replaces', 200);
    t.text('error');
    t.string('created_at', 32).notNullable();
    t.index(['account_id', 'created_at'], 'acme_orders_account');
    t.index(['issuer_id', 'serial'], 'acme_orders_certificate');
  });
  await knex.schema.createTable('acme_authorizations', (t) => {
    t.string('id', 64).primary();
    t.string('account_id', 64).notNullable();
    t.string('identifier', 260).notNullable();
    t.boolean('wildcard').notNullable();
    t.string('status', 16).notNullable();
    t.string('expires_at', 32).notNullable();
    t.index(['account_id', 'identifier'], 'acme_authz_account');
  });
  await knex.schema.createTable('acme_challenges', (t) => {
    t.string('id', 64).primary();
    t.string('authorization_id', 64).notNullable();
    t.string('type', 16).notNullable();
    t.string('token', 64).notNullable();
    t.string('status', 16).notNullable();
    t.string('validated_at', 32);
    t.text('error');
    t.index(['authorization_id'], 'acme_challenges_authz');
  });
  await knex.schema.createTable('acme_nonces', (t) => {
    t.string('nonce', 64).primary();
    t.string('expires_at', 32).notNullable();
    t.index(['expires_at'], 'acme_nonces_expiry');
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
