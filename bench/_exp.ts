import { freshDataDir } from './lib/tierca-process.ts';
import { openDemoServices } from './lib/demo-services.ts';
import { deviceSubject, prepareCsrs } from './lib/demo-data.ts';
import { mapConcurrent } from './lib/util.ts';
import { knexOf } from '../server/storage/knex-store.ts';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
const demo = await openDemoServices(freshDataDir('exp'));
const ctx = await demo.context('officer');
const { ra, store } = demo.services;
const knex = knexOf(store);
for (const round of [0, 1, 2, 3]) {
  const ids = await mapConcurrent(Array.from({ length: 500 }, (_, i) => i), 32, async (i) => (await ra.addSubject(ctx(), deviceSubject(`r${round}`, i))).id);
  const csrs = await prepareCsrs(500);
  await mapConcurrent(ids, 32, (id, i) => ra.issue(ctx(), { subjectId: id, csr: csrs[i] }));
  const t0 = performance.now();
  for (let i = 0; i < 500; i++) await store.certificates.findLive(ids[i], 'device', new Date());
  console.log('rows', (round + 1) * 500, 'findLive us', ((performance.now() - t0) / 500 * 1000).toFixed(0));
}
console.log(await knex.raw("explain query plan select * from `certificates` where `subject_id` = 'x' and `profile` = 'device' and `status` in ('good','hold') and `not_after` > '2026' order by `created_at` asc, `serial` asc"));
const spki = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' });
const jwk = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'jwk' });
let t = performance.now(); for (let i = 0; i < 2000; i++) createPublicKey({ key: spki, format: 'der', type: 'spki' }); console.log('createPublicKey der us', ((performance.now() - t) / 2).toFixed(0));
t = performance.now(); for (let i = 0; i < 2000; i++) createPublicKey({ key: jwk, format: 'jwk' }); console.log('createPublicKey jwk us', ((performance.now() - t) / 2).toFixed(0));
await demo.close();
