import { randomBytes } from 'node:crypto';
import { freshDataDir } from './lib/tierca-process.ts';
import { openDemoServices } from './lib/demo-services.ts';
import { deviceSubject } from './lib/demo-data.ts';
import { knexOf } from '../server/storage/knex-store.ts';
const demo = await openDemoServices(freshDataDir('exp2'));
const ctx = await demo.context('officer');
const { ra, store, cas } = demo.services;
const knex = knexOf(store);
const ca = cas.issuingCa('yuhu', 't1')!;
const subj = await ra.addSubject(ctx(), deviceSubject('probe', 0));
const der = ca.record.certificate;
const now = new Date();
const notAfter = new Date(now.getTime() + 365 * 86400e3).toISOString();
let inserted = 0;
async function fill(to: number) {
  const rows = [];
  for (; inserted < to; inserted++) rows.push({ issuer_id: ca.record.id, serial: randomBytes(16).toString('hex'), subject_id: `sub-x-${inserted}`, profile: 'device', tier: 't1', domain: 'yuhu', subject_dn: 'CN=x', not_before: now.toISOString(), not_after: notAfter, status: 'good', fingerprint: 'f', der, key_algorithm: 'P-256', created_at: now.toISOString() });
  await knex.batchInsert('certificates', rows, 500);
}
const q = (fn: () => Promise<unknown>) => async () => { const t0 = performance.now(); for (let i = 0; i < 200; i++) await fn(); return ((performance.now() - t0) / 200 * 1000).toFixed(0) + 'us'; };
for (const n of [1000, 10000, 100000]) {
  await fill(n);
  const live = await q(() => store.certificates.findLive(subj.id, 'device', new Date()))();
  const bySubject = await q(() => knex('certificates').where({ subject_id: subj.id, profile: 'device' }))();
  console.log(`rows ${n}: findLive ${live}; where subject_id+profile only ${bySubject}`);
}
await knex.raw('analyze');
console.log('after ANALYZE: findLive', await q(() => store.certificates.findLive(subj.id, 'device', new Date()))());
console.log(await knex.raw("explain query plan select * from `certificates` where `subject_id` = 'x' and `profile` = 'device' and `status` in ('good','hold') and `not_after` > '2026' order by `created_at` asc, `serial` asc"));
await demo.close();
