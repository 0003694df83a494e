/**
 * Data the benchmarks need before their clock starts: device subjects at t1 in the Yuhu district
 * (DNS names under yuhu.xiangtan.intranet, which the Yuhu domain CA's name constraints allow) and
 * P-256 CSRs (Node keys, signed by our CSR builder: the fast path of test/helpers/pki-fixtures.ts).
 */
import { nodeCsr } from '../../test/helpers/pki-fixtures.ts';
import type { KeepAliveClient } from './http-client.ts';
import { mapConcurrent } from './util.ts';

export const BENCH_DOMAIN = 'yuhu';
export const BENCH_ORGAN = 'government';
export const BENCH_TIER = 't1';

/** The subject body for device number `i` of a batch. */
export function deviceSubject(batch: string, i: number) {
  const name = `bench-${batch}-${i}`;
  return { kind: 'device' as const, domain: BENCH_DOMAIN, organ: BENCH_ORGAN, tier: BENCH_TIER, name, dns: [`${name}.yuhu.xiangtan.intranet`] };
}

/** Creates `count` device subjects through POST /api/v1/subjects (32 in flight); returns their ids. */
export async function createSubjectsViaApi(client: KeepAliveClient, batch: string, count: number): Promise<string[]> {
  return mapConcurrent(Array.from({ length: count }, (_, i) => i), 32, async (i) => {
    const res = await client.json<{ id: string }>('POST', '/api/v1/subjects', deviceSubject(batch, i));
    if (res.status !== 201) throw new Error(`POST /api/v1/subjects answered ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`);
    return res.json.id;
  });
}

/** `count` PEM CSRs, each for a fresh P-256 key. */
export async function prepareCsrs(count: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push((await nodeCsr('P-256')).csrPem);
  return out;
}
