/**
 * The initial schema. Forward-only; runs unchanged on SQLite and PostgreSQL.
 *
 * Conventions: ids are text; times are ISO-8601 UTC text with milliseconds ('2026-11-25T12:00:00.000Z'),
 * which sort and compare as text on both engines; DER and sealed keys are binary; lists are JSON text;
 * serials are lowercase hex without leading zero octets.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('meta', (t) => {
    t.string('key', 64).primary();
    t.text('value').notNullable();
  });

  await knex.schema.createTable('domains', (t) => {
    t.string('slug', 64).primary();
    t.text('name').notNullable();
    t.text('locality').notNullable();
    t.text('dns_suffix').notNullable();
    t.text('email_suffix').notNullable();
    t.string('parent', 64);
  });

  await knex.schema.createTable('organs', (t) => {
    t.string('domain', 64).notNullable().references('domains.slug');
    t.string('slug', 64).notNullable();
    t.text('name').notNullable();
    t.primary(['domain', 'slug']);
  });

  // Sealed private keys (software keystore) or references to HSM objects (PKCS#11).
  await knex.schema.createTable('keys', (t) => {
    t.string('id', 64).primary();
    t.string('algorithm', 16).notNullable();
    t.string('custody', 16).notNullable(); // 'software' | 'pkcs11'
    t.binary('sealed'); // software: sealed PKCS#8; never plaintext
    t.text('pkcs11_label');
    t.binary('public_key_info').notNullable();
    t.string('purpose', 32).notNullable(); // 'ca' | 'ocsp' | 'escrow' | 'audit'
    t.string('created_at', 32).notNullable();
  });

  await knex.schema.createTable('cas', (t) => {
    t.string('id', 64).primary();
    t.string('layer', 8).notNullable(); // 'root' | 'domain' | 'tier'
    t.string('domain', 64);
    t.string('tier', 16);
    t.string('parent_id', 64);
    t.text('name').notNullable();
    t.string('key_id', 64).notNullable().references('keys.id');
    t.binary('certificate').notNullable();
    t.string('serial', 64).notNullable();
    t.string('not_before', 32).notNullable();
    t.string('not_after', 32).notNullable();
    t.string('fingerprint', 64).notNullable(); // SHA-256 of the certificate, hex
    t.string('key_hash_sha1', 40).notNullable().unique(); // RFC 6960 issuerKeyHash (SHA-1), hex
    t.string('name_hash_sha1', 40).notNullable(); // RFC 6960 issuerNameHash (SHA-1), hex
    t.string('status', 16).notNullable(); // 'active' | 'revoked' | 'retired'
    t.string('revoked_at', 32);
    t.integer('revocation_reason');
    t.string('created_at', 32).notNullable();
    t.index(['parent_id']);
  });

  await knex.schema.createTable('subjects', (t) => {
    t.string('id', 64).primary();
    t.string('kind', 16).notNullable(); // 'organ' | 'device' | 'user'
    t.string('domain', 64).notNullable().references('domains.slug');
    t.string('organ', 64).notNullable();
    t.string('tier', 16).notNullable();
    t.text('name').notNullable();
    t.text('dns_names').notNullable(); // JSON array
    t.text('ip_addresses').notNullable(); // JSON array
    t.text('emails').notNullable(); // JSON array
    t.string('status', 16).notNullable(); // 'active' | 'revoked'
    t.string('created_by', 64);
    t.string('created_at', 32).notNullable();
    t.index(['domain', 'tier']);
  });

  await knex.schema.createTable('certificates', (t) => {
    t.string('issuer_id', 64).notNullable().references('cas.id');
    t.string('serial', 64).notNullable();
    t.string('subject_id', 64);
    t.string('profile', 16).notNullable(); // 'organ' | 'device' | 'user-sign' | 'user-enc' | 'ocsp'
    t.string('tier', 16);
    t.string('domain', 64);
    t.text('subject_dn').notNullable();
    t.string('not_before', 32).notNullable();
    t.string('not_after', 32).notNullable();
    t.string('status', 16).notNullable(); // 'good' | 'revoked' | 'hold'
    t.string('revoked_at', 32);
    t.integer('revocation_reason');
    t.string('invalidity_date', 32);
    t.string('fingerprint', 64).notNullable();
    t.binary('der').notNullable();
    t.string('key_algorithm', 16).notNullable();
    t.string('request_id', 64);
    t.string('created_at', 32).notNullable();
    t.primary(['issuer_id', 'serial']);
    t.index(['subject_id', 'profile', 'status']);
    t.index(['status', 'not_after']);
    t.index(['domain', 'tier']);
  });

  // Escrowed private keys of user encryption certificates: sealed, never plaintext.
  await knex.schema.createTable('escrowed_keys', (t) => {
    t.string('issuer_id', 64).notNullable();
    t.string('serial', 64).notNullable();
    t.binary('sealed').notNullable();
    t.string('created_at', 32).notNullable();
    t.primary(['issuer_id', 'serial']);
  });

  // Requests that wait for approval (dual control), and idempotency of issuance by request id.
  await knex.schema.createTable('requests', (t) => {
    t.string('id', 64).primary();
    t.string('action', 32).notNullable(); // 'issue' | ...
    t.string('subject_id', 64);
    t.string('domain', 64);
    t.string('tier', 16);
    t.text('payload').notNullable(); // JSON; never holds a private key
    t.string('requested_by', 64).notNullable();
    t.text('approvals').notNullable(); // JSON array of principal ids
    t.integer('approvals_required').notNullable();
    t.string('status', 16).notNullable(); // 'pending' | 'done' | 'rejected' | 'expired' | 'failed'
    t.text('result'); // JSON: issued serial, issuer id
    t.string('created_at', 32).notNullable();
    t.string('expires_at', 32).notNullable();
    t.index(['status']);
  });

  await knex.schema.createTable('principals', (t) => {
    t.string('id', 64).primary();
    t.text('name').notNullable();
    t.string('role', 16).notNullable(); // 'sysadmin' | 'officer' | 'auditor' | 'device'
    t.text('domains').notNullable(); // JSON array; officers only
    t.boolean('disabled').notNullable().defaultTo(false);
    t.string('created_at', 32).notNullable();
  });

  await knex.schema.createTable('tokens', (t) => {
    t.string('id', 64).primary();
    t.string('principal_id', 64).notNullable().references('principals.id');
    t.string('token_hash', 64).notNullable().unique(); // SHA-256 of the token, hex; never the token
    t.string('created_at', 32).notNullable();
  });

  // Hash-chained audit log: each record holds the hash of the previous one.
  await knex.schema.createTable('audit_log', (t) => {
    t.bigInteger('seq').primary();
    t.string('at', 32).notNullable();
    t.string('principal_id', 64);
    t.string('role', 16);
    t.string('source', 64);
    t.string('action', 64).notNullable();
    t.text('target');
    t.string('outcome', 16).notNullable(); // 'success' | 'denied' | 'failure'
    t.string('request_id', 64);
    t.text('detail').notNullable(); // JSON
    t.string('prev_hash', 64).notNullable();
    t.string('hash', 64).notNullable();
  });

  // Pre-signed OCSP answers (RFC 5019 §2.2): one per certificate, replaced on revocation.
  await knex.schema.createTable('ocsp_responses', (t) => {
    t.string('issuer_id', 64).notNullable();
    t.string('serial', 64).notNullable();
    t.binary('der').notNullable();
    t.string('this_update', 32).notNullable();
    t.string('next_update', 32).notNullable();
    t.primary(['issuer_id', 'serial']);
    t.index(['next_update']);
  });

  // Delegated OCSP responder certificates, one current per issuing CA (RFC 6960 §4.2.2.2).
  await knex.schema.createTable('ocsp_responders', (t) => {
    t.string('id', 64).primary();
    t.string('ca_id', 64).notNullable().references('cas.id');
    t.string('key_id', 64).notNullable().references('keys.id');
    t.binary('certificate').notNullable();
    t.string('not_before', 32).notNullable();
    t.string('not_after', 32).notNullable();
    t.string('created_at', 32).notNullable();
    t.index(['ca_id', 'not_after']);
  });

  await knex.schema.createTable('crls', (t) => {
    t.string('ca_id', 64).notNullable();
    t.bigInteger('number').notNullable();
    t.boolean('delta').notNullable();
    t.bigInteger('base_number');
    t.binary('der').notNullable();
    t.string('this_update', 32).notNullable();
    t.string('next_update', 32).notNullable();
    t.primary(['ca_id', 'number']);
  });

  // Every status change, in order: instances poll it to refresh their OCSP caches; CRL deltas read it.
  await knex.schema.createTable('revocation_events', (t) => {
    t.increments('seq').primary();
    t.string('issuer_id', 64).notNullable();
    t.string('serial', 64).notNullable();
    t.string('status', 16).notNullable();
    t.string('at', 32).notNullable();
  });
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
