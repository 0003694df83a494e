/**
 * `tierca rotate due|run`: scheduled rotation (GET /api/v1/rotation/due, POST /api/v1/rotation/run).
 *
 * `rotate run` renews in batches (one API call per `--batch` renewals), so a long run neither hits an
 * HTTP time limit nor loses its work when interrupted: every call carries the run's request id, and
 * running it again with the same `--request-id` renews nothing twice. A progress bar goes to stderr
 * when it is a terminal; the summary to stdout. Without `--execute` it only shows what it would do
 * (a dry run of the server's: nothing changes), as `ca revoke` does (STYLE.md practice 11).
 */
import { randomUUID } from 'node:crypto';
import { InvalidArgumentError, type Command } from 'commander';
import type { ContextFactory } from '../context.ts';
import { EXIT } from '../cli-error.ts';
import { positiveInteger } from '../option-parsers.ts';
import { shortTime, type Column, type Output, type TextSink } from '../output.ts';

/** One due item as GET /api/v1/rotation/due gives it (docs/api.md "Rotation"). */
export interface DueItem {
  kind: 'certificate' | 'supersession' | 'responder' | 'ca' | 'retirement';
  issuerId?: string;
  serial?: string;
  caId?: string;
  domain: string | null;
  tier: string | null;
  profile?: string;
  dueAt: string;
  notAfter?: string | null;
  action: string;
  why?: string;
  successor?: { issuerId: string; serial: string };
}

export interface DuePlan {
  now: string;
  horizon: string;
  items: DueItem[];
}

/** One outcome of POST /api/v1/rotation/run. */
export interface RunItem {
  kind: DueItem['kind'];
  target: string;
  domain: string | null;
  tier: string | null;
  dueAt: string;
  outcome: string;
  successor?: { issuerId: string; serial: string };
  why?: string;
  error?: { code: string; message: string };
}

export interface RunAnswer {
  requestId: string;
  dryRun: boolean;
  at: string;
  summary: Record<string, number>;
  remaining: number;
  items: RunItem[];
}

const targetOf = (i: DueItem): string => (i.serial ? `${i.issuerId}/${i.serial}` : (i.caId ?? '-'));

const DUE_COLUMNS: Column<DueItem>[] = [
  { header: 'kind', value: (i) => i.kind },
  { header: 'target', value: targetOf },
  { header: 'domain', value: (i) => i.domain },
  { header: 'tier', value: (i) => i.tier },
  { header: 'due', value: (i) => shortTime(i.dueAt) },
  { header: 'action', value: (i) => i.action, colour: (s) => (s === 'wait-for-holder' || s === 'rollover' || s === 'ceremony' ? 'yellow' : s === 'blocked' ? 'red' : undefined) },
  { header: 'note', value: (i) => i.why ?? (i.successor ? `by ${i.successor.issuerId}/${i.successor.serial}` : undefined) },
];

const RUN_COLUMNS: Column<RunItem>[] = [
  { header: 'kind', value: (i) => i.kind },
  { header: 'target', value: (i) => i.target.replace(/^(certificate|ca):/, '') },
  { header: 'tier', value: (i) => i.tier },
  {
    header: 'outcome',
    value: (i) => i.outcome,
    colour: (s) => (s === 'failed' || s === 'blocked' ? 'red' : s === 'renewed' || s === 'superseded' || s === 'retired' ? 'green' : s.startsWith('needs') || s.startsWith('waiting') ? 'yellow' : undefined),
  },
  { header: 'note', value: (i) => i.error?.message ?? i.why ?? (i.successor ? `new ${i.successor.issuerId}/${i.successor.serial}` : undefined) },
];

/** Outcomes worth a line in the table (responders replaced on schedule are only counted). */
const QUIET = new Set(['rotated', 'would-rotate']);

/** `--within`: a duration the API takes (`30d`, `12h`, `90m`). */
export function withinDuration(value: string): string {
  if (!/^\d{1,5}[dhm]$/.test(value)) throw new InvalidArgumentError('expected a duration like 30d, 12h or 90m.');
  return value;
}

/** A one-line progress bar on a terminal (nothing elsewhere): `renewing [#####.....] 12/40`. */
export class ProgressBar {
  private readonly enabled: boolean;
  private last = '';

  constructor(private readonly sink: TextSink, private readonly total: number, private readonly label: string, enabled = sink.isTTY === true) {
    this.enabled = enabled && total > 0;
  }

  update(done: number): void {
    if (!this.enabled) return;
    const width = 30;
    const filled = Math.min(width, Math.round((Math.min(done, this.total) / this.total) * width));
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.min(done, this.total)}/${this.total}`;
    if (line === this.last) return;
    this.last = line;
    this.sink.write(`\r${line}`);
  }

  finish(): void {
    if (this.enabled && this.last) this.sink.write('\n');
  }
}

/** `renewed 3, waiting for the holder 1, …` in a stable order; outcomes with 0 are left out. */
export function summaryLine(summary: Record<string, number>): string {
  const order = ['renewed', 'already-renewed', 'would-renew', 'waiting-for-holder', 'blocked', 'superseded', 'would-supersede', 'rotated', 'would-rotate', 'retired', 'would-retire', 'needs-rollover', 'needs-ceremony', 'failed'];
  const names: Record<string, string> = {
    'waiting-for-holder': 'waiting for the holder', 'already-renewed': 'already renewed', rotated: 'OCSP responders replaced',
    'would-rotate': 'OCSP responders to replace', 'needs-rollover': 'CAs needing a rollover (tierca ca rollover)',
    'needs-ceremony': 'roots needing a key ceremony', 'would-renew': 'would renew', 'would-supersede': 'would revoke as superseded',
    superseded: 'revoked as superseded', 'would-retire': 'CA keys would retire', retired: 'CA keys retired',
  };
  const parts = order.filter((k) => summary[k]).map((k) => `${names[k] ?? k} ${summary[k]}`);
  return parts.length ? parts.join(', ') : 'nothing was due';
}

function printRun(out: Output, items: RunItem[], summary: Record<string, number>, header: string): void {
  const shown = items.filter((i) => !QUIET.has(i.outcome));
  if (shown.length) out.table(RUN_COLUMNS, shown, '');
  out.print(`${header}: ${summaryLine(summary)}`);
}

export function register(program: Command, context: ContextFactory): void {
  const rotate = program.command('rotate').description('scheduled rotation: what is due (rotate due) and renewing it (rotate run)');

  rotate
    .command('due')
    .description(
      'list what is due: certificates past their tier\'s renewal point, superseded certificates whose grace ends, ' +
        'OCSP responders, CAs that can no longer give a full lifetime, old CA keys to retire',
    )
    .option('--within <duration>', 'also what becomes due within this time, e.g. 30d, 12h, 90m (default: what is due now)', withinDuration)
    .option('--domain <slug>', 'only this domain')
    .option('--tier <tier>', 'only this tier')
    .action(async (opts: { within?: string; domain?: string; tier?: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      const plan = await api.get<DuePlan>('/api/v1/rotation/due', { within: opts.within, domain: opts.domain, tier: opts.tier });
      if (out.json) return out.printJson(plan);
      out.table(DUE_COLUMNS, plan.items, `nothing is due${opts.within ? ` within ${opts.within}` : ''}`);
    });

  rotate
    .command('run')
    .description(
      'renew everything due that the server may renew (keeping keys), revoke superseded certificates whose grace is over, ' +
        'replace OCSP responders, retire old CA keys; report what waits for a holder (CSR-only tiers) or a CA rollover',
    )
    .option('--execute', 'really renew, revoke and retire (without it, nothing changes: it shows what it would do)')
    .option('--domain <slug>', 'only this domain')
    .option('--tier <tier>', 'only this tier')
    .option('--request-id <id>', 'the run\'s id: run again with the same id after an interruption and nothing is renewed twice (default: a new one, printed)')
    .option('--batch <n>', 'renewals per API call (default 25)', positiveInteger)
    .action(async (opts: { execute?: boolean; domain?: string; tier?: string; requestId?: string; batch?: number }, cmd: Command) => {
      const { api, out, io, setExitCode } = context(cmd);
      const filters = { domain: opts.domain, tier: opts.tier };
      if (!opts.execute) {
        const res = await api.post<RunAnswer>('/api/v1/rotation/run', { ...filters, dryRun: true });
        if (out.json) return out.printJson(res.body);
        printRun(out, res.body.items, res.body.summary, 'dry run, nothing changed');
        out.print('run again with --execute to do it');
        return;
      }
      const requestId = opts.requestId ?? `run-${randomUUID()}`;
      const plan = await api.get<DuePlan>('/api/v1/rotation/due', filters);
      const total = plan.items.filter((i) => i.kind === 'certificate' && i.action === 'renew').length;
      const bar = new ProgressBar(io.stderr, total, 'renewing', io.stderr.isTTY === true && !out.json);
      const items = new Map<string, RunItem>();
      let renewed = 0;
      try {
        for (;;) {
          const res = await api.post<RunAnswer>('/api/v1/rotation/run', { ...filters, requestId, limit: opts.batch ?? 25 });
          let progress = 0;
          for (const item of res.body.items) {
            const before = items.get(item.target);
            if (item.kind === 'certificate' && (item.outcome === 'renewed' || item.outcome === 'failed') && before?.outcome !== item.outcome) progress++;
            items.set(item.target, item);
          }
          renewed = [...items.values()].filter((i) => i.kind === 'certificate' && (i.outcome === 'renewed' || i.outcome === 'failed' || i.outcome === 'already-renewed')).length;
          bar.update(renewed);
          // Stop when nothing is left, or when a call made no headway (every remaining one fails).
          if (res.body.remaining === 0 || progress === 0) break;
        }
      } catch (err) {
        bar.finish();
        out.note(`the run was interrupted; run \`tierca rotate run --execute --request-id ${requestId}\` to finish it (nothing is renewed twice)`);
        throw err;
      }
      bar.finish();
      const all = [...items.values()];
      const summary: Record<string, number> = {};
      for (const item of all) summary[item.outcome] = (summary[item.outcome] ?? 0) + 1;
      if (summary.failed) setExitCode(EXIT.internal);
      if (out.json) return out.printJson({ requestId, summary, items: all });
      printRun(out, all, summary, `run ${requestId}`);
    });
}
