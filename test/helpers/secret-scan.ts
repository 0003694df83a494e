/**
 * Looks for secrets where they must not be: each needle (a private key's PKCS#8, its scalar, its
 * sealed form, …) raw, as hex or as base64, in files, database rows and a backup. For the tests that
 * prove a key never left its machine (the offline root's, test/integration/offline-root*.test.ts).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { knexOf } from '../../server/storage/knex-store.ts';
import type { Store } from '../../server/storage/storage.ts';
import { tableNames } from './database.ts';

export class SecretScan {
  /** `<needle name> in <where>`, one per find. */
  readonly hits: string[] = [];
  constructor(private readonly needles: Record<string, Buffer>) {}

  bytes(where: string, bytes: Buffer): void {
    for (const [name, needle] of Object.entries(this.needles)) {
      if (bytes.includes(needle) || bytes.includes(Buffer.from(needle.toString('hex'))) || bytes.includes(Buffer.from(needle.toString('base64')))) this.hits.push(`${name} in ${where}`);
    }
  }

  /** Every file below `dir`. */
  folder(dir: string): void {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) this.folder(path);
      else this.bytes(path, readFileSync(path));
    }
  }

  /** Every column of every row of every table. */
  async database(store: Store): Promise<void> {
    const knex = knexOf(store);
    for (const table of await tableNames(store)) {
      for (const row of await knex(table).select()) {
        for (const [column, value] of Object.entries(row as Record<string, unknown>)) this.bytes(`${table}.${column}`, Buffer.isBuffer(value) ? value : Buffer.from(String(value)));
      }
    }
  }
}
