/**
 * `tierca crl generate|show`: publish CRLs now rather than on schedule (POST /api/v1/crls) and read
 * the newest one of a CA (GET /api/v1/crls/{ca}).
 */
import type { Command } from 'commander';
import { apiPath } from '../api-client.ts';
import type { ContextFactory } from '../context.ts';
import { shortTime, type Column } from '../output.ts';

/** One CRL made by `crl generate`. */
export interface PublishedCrl {
  caId: string;
  number: string | number;
  delta: boolean;
  thisUpdate: string;
  nextUpdate: string;
  entries: number | unknown[];
}

/** The newest CRL of a CA with its entries. */
export interface CrlDetail {
  caId: string;
  number: string | number;
  thisUpdate: string;
  nextUpdate: string;
  entries: Array<{ serial: string; revokedAt: string; reason: string | null }>;
  [field: string]: unknown;
}

const PUBLISHED_COLUMNS: Column<PublishedCrl>[] = [
  { header: 'ca', value: (c) => c.caId },
  { header: 'number', value: (c) => c.number },
  { header: 'kind', value: (c) => (c.delta ? 'delta' : 'full') },
  { header: 'this update', value: (c) => shortTime(c.thisUpdate) },
  { header: 'next update', value: (c) => shortTime(c.nextUpdate) },
  { header: 'entries', value: (c) => (Array.isArray(c.entries) ? c.entries.length : c.entries) },
];

const ENTRY_COLUMNS: Column<CrlDetail['entries'][number]>[] = [
  { header: 'serial', value: (e) => e.serial },
  { header: 'revoked at', value: (e) => shortTime(e.revokedAt) },
  { header: 'reason', value: (e) => e.reason },
];

export function register(program: Command, context: ContextFactory): void {
  const crl = program.command('crl').description('certificate revocation lists');

  crl
    .command('generate')
    .description('publish new CRLs now (full and delta) for one CA or for every CA')
    .option('--ca <id>', 'only this CA (default: every CA)')
    .action(async (opts: { ca?: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      const res = await api.post<PublishedCrl[]>('/api/v1/crls', opts.ca ? { ca: opts.ca } : {});
      if (out.json) return out.printJson(res.body);
      out.table(PUBLISHED_COLUMNS, res.body ?? [], 'no CRL was published');
    });

  crl
    .command('show')
    .description("show a CA's newest full CRL: number, this and next update, entries")
    .argument('<ca>', 'CA id')
    .action(async (ca: string, _opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const detail = await api.get<CrlDetail>(apiPath`/api/v1/crls/${ca}`);
      if (out.json) return out.printJson(detail);
      const { entries = [], ...fields } = detail;
      out.record({ ...fields, entries: entries.length });
      out.print('');
      out.table(ENTRY_COLUMNS, entries, 'no revoked certificates');
    });
}
