/**
 * Watches what keeps an offline root's children trusted between ceremonies: the root CRL and the
 * root's pre-signed OCSP answers both end at the nextUpdate the root chose (`root crl --next-update`),
 * and nothing online can renew them. Well before they end — {@link OFFLINE_ROOT_WARN_DAYS} — the
 * service warns: in its log (status scheduler, hourly), in metrics (`tierca_offline_root_warning`,
 * `tierca_offline_root_next_update_timestamp_seconds`) and in `GET /ca` / `tierca ca list`
 * (docs/offline-root.md).
 */
import { DAY_MS } from '../../pki/time-constants.ts';
import type { Repositories } from '../storage/storage.ts';
import { readOfflineRootMeta } from './offline-root-import.ts';

/** How long before the root CRL or the pre-signed OCSP answers expire the service starts warning. */
export const OFFLINE_ROOT_WARN_DAYS = 30;

/** The offline root's artifacts as the last import left them, and the warning they call for now. */
export interface OfflineRootArtifacts {
  crlNextUpdate: string | null;
  ocspNextUpdate: string | null;
  /** Null while both have more than {@link OFFLINE_ROOT_WARN_DAYS} left. */
  warning: string | null;
}

export class OfflineRootWatch {
  private crl: Date | null = null;
  private ocsp: Date | null = null;
  /** The status at the last {@link refresh}: what `GET /ca` and the metric show. */
  current: OfflineRootArtifacts = { crlNextUpdate: null, ocspNextUpdate: null, warning: null };

  /** Reads the nextUpdates the last import recorded (meta `offline-root`) and judges them at `now`. */
  async refresh(repos: Pick<Repositories, 'meta'>, now: Date): Promise<OfflineRootArtifacts> {
    const meta = await readOfflineRootMeta(repos);
    this.crl = meta?.crlNextUpdate ? new Date(meta.crlNextUpdate) : null;
    this.ocsp = meta?.ocspNextUpdate ? new Date(meta.ocspNextUpdate) : null;
    this.current = this.status(now);
    return this.current;
  }

  status(now: Date): OfflineRootArtifacts {
    const horizon = now.getTime() + OFFLINE_ROOT_WARN_DAYS * DAY_MS;
    const parts: string[] = [];
    const say = (what: string, d: Date | null, plural: boolean) => {
      if (!d) parts.push(`no ${what} ${plural ? 'have' : 'has'} been imported yet`);
      else if (d.getTime() <= now.getTime()) parts.push(`the ${what} expired at ${d.toISOString()}`);
      else if (d.getTime() <= horizon) parts.push(`the ${what} ${plural ? 'expire' : 'expires'} at ${d.toISOString()} (in ${Math.ceil((d.getTime() - now.getTime()) / DAY_MS)} days)`);
    };
    say('root CRL', this.crl, false);
    say('pre-signed OCSP answers of the root', this.ocsp, true);
    return {
      crlNextUpdate: this.crl?.toISOString() ?? null,
      ocspNextUpdate: this.ocsp?.toISOString() ?? null,
      warning: parts.length ? `offline root: ${parts.join('; ')} — hold the next ceremony (tierca root crl on the offline machine) and tierca root import its response before then` : null,
    };
  }
}
