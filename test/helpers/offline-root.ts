/**
 * What the offline-root integration tests share: the ceremony's secrets, waiting for the running
 * service, counting the online database's rows, and the officer and device a test issues with.
 */
import { expect } from 'vitest';
import { http, sleep, type ProcessDatabase } from './processes.ts';
import { opensslCsr } from './pki-fixtures.ts';
import { snapshotCounts } from './database.ts';
import { knexOf } from '../../server/storage/knex-store.ts';
import { join } from 'node:path';
import type { TempDir } from './openssl.ts';
import { TEST_PASSPHRASE } from './tierca.ts';

/**
 * The secrets of a dual-control offline-root ceremony as files in `tmp`: the two officers'
 * passphrases (their shares of the root keystore's), the online keystore's, and the root's folder.
 */
export function ceremonyFiles(tmp: TempDir) {
  const officer1 = 'first officer share 0001';
  const officer2 = 'second officer share 0002';
  const p1 = tmp.file('officer1.pass', `${officer1}\n`);
  const p2 = tmp.file('officer2.pass', `${officer2}\n`);
  return {
    rootDir: join(tmp.path, 'offline-root'), officer1, officer2, p1, p2,
    onlinePass: tmp.file('online.pass', `${TEST_PASSPHRASE}\n`),
    /** `root` command flags giving both officers' passphrases. */
    rootSecrets: ['--passphrase-file', p1, '--second-passphrase-file', p2],
  };
}

/** Runs `check` until it stops throwing, at most `timeoutMs`; then throws its last error. */
export async function eventually(check: () => Promise<void>, timeoutMs: number, intervalMs: number): Promise<void> {
  const start = Date.now();
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() - start > timeoutMs) throw err;
    }
    await sleep(intervalMs);
  }
}

/**
 * Row counts of the online database without the tables the running service writes on its own timers
 * (responders, OCSP answers, keys; with `withoutCrls`, CRLs too — new CAs publish theirs), plus the
 * root's CRLs, which come only from imports.
 */
export async function countsOnline(db: ProcessDatabase, { withoutCrls = false } = {}): Promise<Record<string, number>> {
  const store = await db.openStore();
  try {
    const counts = await snapshotCounts(store);
    delete counts.ocsp_responders;
    delete counts.ocsp_responses;
    delete counts.keys;
    if (withoutCrls) delete counts.crls;
    // Every root generation's (root, root-g2 … after a rollover).
    const knex = knexOf(store);
    counts.rootCrls = Number((await knex('crls').whereIn('ca_id', knex('cas').select('id').where({ layer: 'root' })).count({ n: '*' }))[0]!.n);
    return counts;
  } finally {
    await store.close();
  }
}

/** A new officer for `domains`, under dual control (`admins.first` asks, `admins.second` approves); its token. */
export async function newOfficer(url: string, admins: { first: string; second: string }, name: string, domains: string[]): Promise<string> {
  const asked = await http(url, 'POST', '/api/v1/principals', { token: admins.first, body: { name, role: 'officer', domains } });
  expect(asked.status, JSON.stringify(asked.body)).toBe(202);
  const approved = await http(url, 'POST', `/api/v1/requests/${asked.body.request.id}/approve`, { token: admins.second });
  expect(approved.status, JSON.stringify(approved.body)).toBe(200);
  return approved.body.result.token;
}

/**
 * Registers the t2 device `name` of `domain` (DNS name `<name>.<dnsSuffix>`, and `ips`) as `token`
 * and asks for its certificate with an openssl P-256 CSR made in `tmp`; the API's answer, unchecked.
 */
export async function issueDevice(
  url: string, tmp: TempDir, token: string, device: { domain: string; dnsSuffix: string; name: string; ips?: string[] },
): Promise<{ status: number; body: any }> {
  const { domain, dnsSuffix, name, ips } = device;
  const subject = await http(url, 'POST', '/api/v1/subjects', {
    token, body: { kind: 'device', domain, organ: 'government', tier: 't2', name, dns: [`${name}.${dnsSuffix}`], ...(ips ? { ips } : {}) },
  });
  expect(subject.status, JSON.stringify(subject.body)).toBe(201);
  const { csrPem } = await opensslCsr(tmp, name, 'P-256');
  return http(url, 'POST', '/api/v1/certificates', { token, body: { subjectId: subject.body.id, csr: csrPem } });
}
