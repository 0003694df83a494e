/**
 * An in-memory fake of the part of the store dual control uses (requests, principals, the audit
 * chain, transactions), for unit tests without a database. Transactions are serialised like
 * SQLite's and roll back on a throw: every table is restored to what it held before.
 */
import type { AuditRecord, AuditRepository, PrincipalRecord, PrincipalRepository, RequestRecord, RequestRepository, Store } from '../../server/storage/storage.ts';

export type MemoryRequestsStore = Pick<Store, 'requests' | 'principals' | 'audit' | 'transaction'> & {
  /** The rows as they are now (copies), for assertions. */
  readonly rows: { requests: () => RequestRecord[]; audit: () => AuditRecord[]; principals: () => PrincipalRecord[] };
  /** How many transactions committed and rolled back. */
  readonly counts: { commits: number; rollbacks: number };
};

const copy = <T>(value: T): T => structuredClone(value);

export function memoryRequestsStore(principals: readonly PrincipalRecord[] = []): MemoryRequestsStore {
  const tables = {
    requests: new Map<string, RequestRecord>(),
    principals: new Map<string, PrincipalRecord>(principals.map((p) => [p.id, copy(p)])),
    audit: [] as AuditRecord[],
  };
  const counts = { commits: 0, rollbacks: 0 };
  let queue: Promise<unknown> = Promise.resolve();

  const requests: RequestRepository = {
    async insert(request) {
      if (tables.requests.has(request.id)) throw new Error(`duplicate request ${request.id}`);
      tables.requests.set(request.id, copy(request));
    },
    async get(id) {
      const r = tables.requests.get(id);
      return r && copy(r);
    },
    async list(filter) {
      return [...tables.requests.values()]
        .filter((r) => (filter.status === undefined || r.status === filter.status) && (filter.domain === undefined || r.domain === filter.domain))
        .slice(0, filter.limit ?? Infinity)
        .map(copy);
    },
    async update(id, change) {
      const r = tables.requests.get(id);
      if (!r) throw new Error(`no request ${id}`);
      tables.requests.set(id, { ...r, ...copy(change) });
    },
    async lockPending(id) {
      return tables.requests.get(id)?.status === 'pending';
    },
  };

  const principalRepo: PrincipalRepository = {
    async insert(p) {
      tables.principals.set(p.id, copy(p));
    },
    async get(id) {
      const p = tables.principals.get(id);
      return p && copy(p);
    },
    async list() {
      return [...tables.principals.values()].map(copy);
    },
    async setDisabled(id, disabled) {
      const p = tables.principals.get(id);
      if (p) p.disabled = disabled;
    },
  };

  const audit: AuditRepository = {
    async appendChained(build) {
      const record = build(tables.audit.at(-1));
      tables.audit.push(copy(record));
      return record;
    },
    async list(filter) {
      return tables.audit.filter((r) => r.seq >= (filter.fromSeq ?? 0) && (!filter.action || r.action === filter.action)).map(copy);
    },
    async last() {
      return tables.audit.at(-1);
    },
  };

  const repositories = { requests, principals: principalRepo, audit };

  return {
    ...repositories,
    transaction<T>(fn: (tx: never) => Promise<T>): Promise<T> {
      const run = async (): Promise<T> => {
        const saved = { requests: copy(tables.requests), principals: copy(tables.principals), audit: copy(tables.audit) };
        try {
          const value = await fn(repositories as never);
          counts.commits++;
          return value;
        } catch (err) {
          tables.requests = saved.requests;
          tables.principals = saved.principals;
          tables.audit = saved.audit;
          counts.rollbacks++;
          throw err;
        }
      };
      const result = queue.then(run, run);
      queue = result.catch(() => undefined);
      return result;
    },
    rows: {
      requests: () => [...tables.requests.values()].map(copy),
      audit: () => tables.audit.map(copy),
      principals: () => [...tables.principals.values()].map(copy),
    },
    counts,
  } as MemoryRequestsStore;
}
