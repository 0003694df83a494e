/**
 * Publishes CRLs: full CRLs and delta CRLs per CA (RFC 5280 §5.2.4), numbered from one monotonic
 * sequence per CA (§5.2.3), stored as artifacts that the serving path only reads.
 *
 * When (docs/decisions/0013-crl-schedule.md):
 * - a full CRL on its period — half its validity, so a new one is out while the last still has half
 *   its life: {@link CrlPublisher.fullPeriodHours} — and on demand (`POST /crls`, a CA revoked);
 * - a delta CRL after every status change (debounced by the status scheduler) and with every full
 *   CRL; it lists everything that changed since its base full CRL was made and names that base
 *   (deltaCRLIndicator), so a revocation is in the next delta at once and in the next full CRL.
 * A change does not republish the full CRL: that is what deltas are for.
 *
 * A tier CA's full CRL — up to a million entries (issue #4) — is streamed from storage into the CRL
 * writer page by page, so memory does not grow with the number of revoked certificates (figures in
 * docs/benchmarks.md, benchmark 3).
 */
import { buildCrl, type CrlEntry } from '../../pki/crl.ts';
import { keyIdentifier } from '../../pki/key-pair.ts';
import { UniqueViolationError, type CertificateRecord, type CrlRecord, type RevokedEntryRecord, type Repositories, type Store } from '../storage/storage.ts';
import type { TierPolicy } from '../config/tier-policy.ts';
import type { CaDirectory, LoadedCa } from './ca-directory.ts';
import type { Clock } from '../clock.ts';
import { caUrls } from './urls.ts';
import { HOUR_MS } from '../../pki/time-constants.ts';

const DAY_MS = 24 * HOUR_MS;
const REMOVE_FROM_CRL = 8;
/** Root and domain CAs issue only CA certificates: their CRLs live a week. */
const CA_CRL_VALIDITY_HOURS = 24 * 7;
/**
 * How far before its base's thisUpdate a delta looks for changes. thisUpdate is cut to whole seconds,
 * and on PostgreSQL a change stamped just before the base was read may commit just after it: the
 * overlap lists such a change again rather than lose it (an entry already on the base is harmless).
 */
const DELTA_OVERLAP_MS = 5 * 60 * 1000;

export interface CrlPublisherDeps {
  store: Store;
  cas: CaDirectory;
  tiers: ReadonlyMap<string, TierPolicy>;
  clock: Clock;
  /** Base of the delta CRL URL written (freshestCRL, RFC 5280 §5.2.6) into full CRLs. */
  publicUrl: string;
  /**
   * Revoked certificates read per statement while a tier CA's full CRL is written. Default
   * {@link DEFAULT_PAGE_SIZE}; tests set a small one to cross page boundaries.
   */
  pageSize?: number;
}

/**
 * 10,000 rows of five short columns are ~1–2 MB in the driver: large enough that the statements
 * (100 for a million revoked certificates) cost little next to encoding, small enough that memory
 * stays flat. Measured in bench/crl-publisher.ts.
 */
export const DEFAULT_PAGE_SIZE = 10_000;

export interface PublishedCrl {
  caId: string;
  number: bigint;
  delta: boolean;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
}

export class CrlPublisher {
  constructor(private readonly deps: CrlPublisherDeps) {}

  /** thisUpdate → nextUpdate of a CA's CRLs: its tier's `statusValidityHours`; root and domain CAs a week. */
  validityHours(ca: LoadedCa): number {
    const tier = ca.record.tier ? this.deps.tiers.get(ca.record.tier) : undefined;
    return tier?.statusValidityHours ?? CA_CRL_VALIDITY_HOURS;
  }

  /**
   * How often a CA's full CRL is published: half of {@link validityHours} (t1 12 h, t2 2 h, t3 30 min
   * by default; root and domain CAs 3.5 days), derived rather than configured so that a full CRL is
   * always replaced while half its life is left.
   */
  fullPeriodHours(ca: LoadedCa): number {
    return this.validityHours(ca) / 2;
  }

  /** Whether a new full CRL is due for `ca` at `now`: none yet, or the newest is a period old. */
  async fullDue(ca: LoadedCa, now: Date = this.deps.clock.now()): Promise<boolean> {
    const latest = await this.deps.store.crls.latest(ca.record.id, false);
    return !latest || now.getTime() - latest.thisUpdate.getTime() >= this.fullPeriodHours(ca) * HOUR_MS;
  }

  /** Publishes a new full CRL and a delta on top of it for `caId` (on demand, and on the full CRL's period). */
  async publish(caId: string): Promise<PublishedCrl[]> {
    const ca = this.deps.cas.get(caId);
    if (!ca) throw new Error(`unknown CA ${caId}`);
    const full = await this.publishFull(ca);
    const delta = await this.publishDelta(ca);
    return [full, delta];
  }

  /**
   * After a status change under `caId`: a delta CRL listing it — and first a full CRL when one is due
   * (or none exists), so that the delta never stands on a base past its period.
   */
  async publishChanges(caId: string): Promise<PublishedCrl[]> {
    const ca = this.deps.cas.get(caId);
    if (!ca) throw new Error(`unknown CA ${caId}`);
    if (await this.fullDue(ca)) return this.publish(caId);
    return [await this.publishDelta(ca)];
  }

  /** Publishes a full CRL: every revoked or held certificate not expired beyond the archive window. */
  async publishFull(ca: LoadedCa): Promise<PublishedCrl> {
    return this.locked(ca, (tx) => this.full(tx, ca));
  }

  private async full(tx: Repositories, ca: LoadedCa): Promise<PublishedCrl> {
    const now = this.deps.clock.now();
    return this.store(tx, ca, now, false, null, await this.revokedEntries(tx, ca, now));
  }

  /**
   * Runs one publication in a transaction that holds the CA's CRL lock: instances publishing at once
   * take turns, so each reads the revocations after the previous one committed and draws the next
   * number. Without it two publishers could read in one order and number in the other, and the
   * higher-numbered CRL would miss a revocation the lower one lists.
   */
  private locked(ca: LoadedCa, fn: (tx: Repositories) => Promise<PublishedCrl>): Promise<PublishedCrl> {
    return this.deps.store.transaction(async (tx) => {
      await tx.crls.lockCa(ca.record.id);
      return fn(tx);
    });
  }

  /**
   * Publishes a delta CRL against the newest full CRL: what changed since that CRL was made — new
   * revocations and holds, and removeFromCRL for holds released since (RFC 5280 §5.3.1) — with a
   * deltaCRLIndicator naming the base's number (§5.2.4). A delta is applied to its base only, so it
   * is valid as long as the base is: its nextUpdate is the base's.
   */
  async publishDelta(ca: LoadedCa): Promise<PublishedCrl> {
    return this.locked(ca, (tx) => this.delta(tx, ca));
  }

  private async delta(tx: Repositories, ca: LoadedCa): Promise<PublishedCrl> {
    const now = this.deps.clock.now();
    let base = await tx.crls.latest(ca.record.id, false);
    if (!base) {
      await this.full(tx, ca);
      base = await tx.crls.latest(ca.record.id, false);
    }
    const since = new Date(base!.thisUpdate.getTime() - DELTA_OVERLAP_MS);
    const entries: CrlEntry[] = [];
    if (ca.record.layer === 'tier') {
      for (const cert of await this.changedSince(tx, ca, since)) {
        if (cert.status === 'good') {
          entries.push({ serial: cert.serial, revokedAt: cert.revokedAt ?? base!.thisUpdate, reason: REMOVE_FROM_CRL });
        } else {
          entries.push(entryOf(cert));
        }
      }
    } else {
      // Root and domain CAs: the child CAs revoked since the base.
      const children = (await tx.cas.list()).filter((c) => c.parentId === ca.record.id && c.status === 'revoked' && c.revokedAt && c.revokedAt >= since);
      entries.push(...children.map((c) => ({ serial: c.serial, revokedAt: c.revokedAt!, reason: c.revocationReason })));
    }
    entries.sort((a, b) => (a.serial.length - b.serial.length) || (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
    return this.store(tx, ca, now, true, base!.number, listed(entries), base!.nextUpdate);
  }

  private async changedSince(store: Repositories, ca: LoadedCa, since: Date): Promise<CertificateRecord[]> {
    const serials = new Set<string>();
    let seq = 0;
    // Events are few compared to certificates; read them in pages and keep this CA's.
    for (;;) {
      const events = await store.revocationEvents.since(seq, 5000);
      if (events.length === 0) break;
      for (const e of events) if (e.issuerId === ca.record.id && e.at.getTime() >= since.getTime()) serials.add(e.serial);
      seq = events[events.length - 1].seq;
    }
    const out: CertificateRecord[] = [];
    for (const serial of serials) {
      const cert = await store.certificates.get(ca.record.id, serial);
      if (cert) out.push(cert);
    }
    return out;
  }

  /**
   * The entries of a full CRL, as a function that starts a fresh pass over them (a retry in `store`
   * writes the CRL again). Root and domain CAs list their revoked child CAs: a handful, read at once.
   * A tier CA may list a million certificates: they stream from storage page by page, in serial
   * order, inside the publication's transaction, and each row becomes an entry only while the CRL
   * writer encodes it — neither all rows nor all entries are ever held at once.
   *
   * Consistency: on SQLite the transaction holds the write lock, so every page sees the same data.
   * On PostgreSQL (READ COMMITTED) each page is its own snapshot: a status change committed while
   * the CRL is written shows in it if its serial is still ahead of the pages read, and not otherwise
   * — as a change committed just after a one-statement read would not. Either way the change has
   * scheduled a publication of its own after its commit (StatusScheduler.crlChanged), which waits
   * for this one's lock and lists it.
   */
  private async revokedEntries(store: Repositories, ca: LoadedCa, now: Date): Promise<EntrySource> {
    if (ca.record.layer !== 'tier') {
      const children = (await store.cas.list()).filter((c) => c.parentId === ca.record.id && c.status === 'revoked' && c.revokedAt);
      return listed(children.map((c) => ({ serial: c.serial, revokedAt: c.revokedAt!, reason: c.revocationReason })));
    }
    const tier = this.deps.tiers.get(ca.record.tier!);
    const archiveMs = (tier?.archiveDays ?? 365) * DAY_MS;
    const notAfterAfter = new Date(now.getTime() - archiveMs);
    const pageSize = this.deps.pageSize ?? DEFAULT_PAGE_SIZE;
    return () => {
      const pass = {
        count: 0,
        async *[Symbol.asyncIterator](): AsyncGenerator<CrlEntry> {
          for await (const page of store.certificates.revokedEntryPages(ca.record.id, notAfterAfter, pageSize)) {
            for (const row of page) {
              pass.count++;
              yield entryOf(row);
            }
          }
        },
      };
      return pass;
    };
  }

  private async store(
    store: Repositories, ca: LoadedCa, now: Date, delta: boolean, baseNumber: bigint | null, source: EntrySource, until?: Date,
  ): Promise<PublishedCrl> {
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const fullNext = new Date(thisUpdate.getTime() + this.validityHours(ca) * HOUR_MS);
    // A delta's nextUpdate is its base's, but never before its own thisUpdate (a base left past its
    // period by a stopped scheduler): then it gets a full validity.
    const nextUpdate = until && until.getTime() > thisUpdate.getTime() ? until : fullNext;
    const authorityKeyId = ca.fields.subjectKeyId ?? keyIdentifier(ca.fields.publicKeyInfo);
    // The CA's CRL lock (see `locked`) makes this number the next one; the (ca, number) key stays
    // as a backstop, and a clash is retried with the next number, so numbers never repeat.
    for (let attempt = 0; ; attempt++) {
      const number = (await store.crls.maxNumber(ca.record.id)) + 1n;
      const entries = source();
      const der = await buildCrl({
        issuer: ca.fields.subject,
        authorityKeyId,
        thisUpdate,
        nextUpdate,
        crlNumber: number,
        baseCrlNumber: delta ? (baseNumber ?? undefined) : undefined,
        // openssl applies a delta only when the full CRL (or the certificate) names where it lives.
        freshestCrl: delta ? undefined : caUrls(this.deps.publicUrl, ca.record.id).deltaCrl,
        entries,
        signer: ca.signer,
      });
      const record: CrlRecord = { caId: ca.record.id, number, delta, baseNumber, der, thisUpdate, nextUpdate };
      try {
        await store.crls.insert(record);
        return { caId: ca.record.id, number, delta, thisUpdate, nextUpdate, entries: entries.count };
      } catch (err) {
        if (err instanceof UniqueViolationError && attempt < 5) continue;
        throw err;
      }
    }
  }
}

/**
 * Starts a pass over the entries of one CRL, in order; `count` is how many the pass has given so far
 * (for a stream, the size is known only once it has been read).
 */
type EntrySource = () => (Iterable<CrlEntry> | AsyncIterable<CrlEntry>) & { readonly count: number };

/** An entry source over entries already in memory (delta CRLs, root and domain CAs). */
function listed(entries: readonly CrlEntry[]): EntrySource {
  return () => ({ count: entries.length, [Symbol.iterator]: () => entries[Symbol.iterator]() });
}

function entryOf(cert: RevokedEntryRecord): CrlEntry {
  return {
    serial: cert.serial,
    revokedAt: cert.revokedAt!,
    reason: cert.status === 'hold' ? 6 : cert.revocationReason,
    invalidityDate: cert.invalidityDate,
  };
}
