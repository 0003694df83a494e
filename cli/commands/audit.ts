/**
 * `tierca audit tail|export|verify|checkpoint|checkpoints`: the hash-chained audit log, for auditors.
 * `verify` has the server recompute the whole chain and every signed checkpoint and exits
 * {@link AUDIT_BROKEN_EXIT} naming the first record that does not match; keep the hash it prints
 * outside the machine and give it back with `--anchor` next time.
 */
import { writeFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { DurationError, parseDuration } from '../../pki/duration.ts';
import type { ContextFactory } from '../context.ts';
import { isoTime, positiveInteger } from '../option-parsers.ts';
import { shortTime, type Column } from '../output.ts';
import { EXIT } from '../cli-error.ts';

/** Exit code of `audit verify` when the log does not verify (the command itself worked). */
export const AUDIT_BROKEN_EXIT = EXIT.auditBroken;

/** An audit record as the API gives it. */
export interface AuditRecordView {
  seq: number;
  at: string;
  principalId: string | null;
  role: string | null;
  source: string | null;
  action: string;
  target: string | null;
  outcome: string;
  requestId: string | null;
  detail: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

interface Verification {
  ok: boolean;
  checked: number;
  checkpoints: number;
  lastSeq: number;
  lastHash?: string;
  unanchored: number;
  firstBad?: { seq: number; problem: string; detail: string };
}

interface CheckpointView {
  seq: number;
  hash: string;
  at: string;
  kind: string;
  keyId: string;
  signature: string;
  payload: string;
}

const RECORD_COLUMNS: Column<AuditRecordView>[] = [
  { header: 'seq', value: (r) => r.seq },
  { header: 'time', value: (r) => r.at.replace('T', ' ').replace(/\.\d+Z$/, 'Z') },
  { header: 'principal', value: (r) => r.principalId },
  { header: 'role', value: (r) => r.role },
  { header: 'source', value: (r) => r.source },
  { header: 'action', value: (r) => r.action },
  { header: 'target', value: (r) => r.target },
  { header: 'outcome', value: (r) => r.outcome, colour: (s) => (s === 'success' ? 'green' : s === 'denied' ? 'red' : 'yellow') },
];

const CHECKPOINT_COLUMNS: Column<CheckpointView>[] = [
  { header: 'seq', value: (c) => c.seq },
  { header: 'kind', value: (c) => c.kind },
  { header: 'signed', value: (c) => shortTime(c.at) },
  { header: 'key', value: (c) => c.keyId },
  { header: 'hash', value: (c) => c.hash },
];

/** `--since 1h` (that long ago) or an ISO-8601 time with a zone; returned as UTC ISO text. */
function sinceTime(value: string): string {
  try {
    return new Date(Date.now() - parseDuration(value)).toISOString();
  } catch (err) {
    if (!(err instanceof DurationError)) throw err;
  }
  try {
    return isoTime(value);
  } catch {
    throw new InvalidArgumentError('expected a duration back from now (30m, 12h, 7d) or an ISO-8601 time with a zone.');
  }
}

/** `--anchor 1200:9f86d0…`: a seq and the hash that record had. */
function anchor(value: string): string {
  if (!/^\d{1,15}:[0-9a-f]{64}$/.test(value)) throw new InvalidArgumentError('expected seq:hash, as audit verify prints it.');
  return value;
}

export function register(program: Command, context: ContextFactory): void {
  const audit = program.command('audit').description('the hash-chained audit log: read, export, verify (auditor)');

  audit
    .command('tail')
    .description('show audit records: the newest --limit, or from --since on; seq, time, principal, role, source, action, target, outcome')
    .option('--since <when>', 'from this time on: a duration back from now (30m, 12h, 7d) or an ISO-8601 time', sinceTime)
    .option('--until <time>', 'before this ISO-8601 time', isoTime)
    .option('--actor <principal>', 'only records of this principal id')
    .option('--action <action>', 'only this action, e.g. certificate.revoke, auth.login')
    .option('--limit <n>', 'at most this many records (default 20)', positiveInteger)
    .action(async (opts: { since?: string; until?: string; actor?: string; action?: string; limit?: number }, cmd: Command) => {
      const { api, out } = context(cmd);
      const records = await api.get<AuditRecordView[]>('/api/v1/audit', {
        since: opts.since, until: opts.until, actor: opts.actor, action: opts.action, limit: opts.limit ?? 20,
      });
      if (out.json) return out.printJson(records);
      out.table(RECORD_COLUMNS, records, 'no audit records');
    });

  audit
    .command('export')
    .description('export audit records as JSON Lines (one record per line, every hashed field), to stdout or --out')
    .option('--from <time>', 'from this ISO-8601 time (inclusive)', isoTime)
    .option('--to <time>', 'to this ISO-8601 time (exclusive)', isoTime)
    .option('--out <file>', 'write to this file instead of stdout')
    .action(async (opts: { from?: string; to?: string; out?: string }, cmd: Command) => {
      const { api, out, io } = context(cmd);
      const query = new URLSearchParams();
      if (opts.from) query.set('from', opts.from);
      if (opts.to) query.set('to', opts.to);
      const path = `/api/v1/audit/export${query.size ? `?${query}` : ''}`;
      const res = await api.binary({ method: 'GET', path, accept: 'application/jsonl', auth: true });
      const lines = res.body.length ? res.body.toString('utf8').split('\n').filter(Boolean).length : 0;
      if (opts.out) {
        await writeFile(opts.out, res.body, { mode: 0o600 });
        out.note(`exported ${lines} audit records to ${opts.out}`);
      } else {
        io.stdout.write(res.body.toString('utf8'));
        out.note(`exported ${lines} audit records`);
      }
    });

  audit
    .command('verify')
    .description(`recompute the whole hash chain and every signed checkpoint; exit ${AUDIT_BROKEN_EXIT} naming the first record that does not match`)
    .option('--anchor <seq:hash>', 'a record hash kept outside the machine from an earlier verify: it must still match', anchor)
    .action(async (opts: { anchor?: string }, cmd: Command) => {
      const { api, out, setExitCode } = context(cmd);
      const result = await api.get<Verification>('/api/v1/audit/verify', { anchor: opts.anchor });
      if (!result.ok) setExitCode(AUDIT_BROKEN_EXIT);
      if (out.json) return out.printJson(result);
      if (!result.ok && result.firstBad) {
        out.print(`audit log does NOT verify: record ${result.firstBad.seq}: ${result.firstBad.problem}`);
        out.print(result.firstBad.detail);
        out.print(`(${result.checked} records and ${result.checkpoints} checkpoints before it matched)`);
        return;
      }
      out.print(`audit log verified: ${result.checked} records, ${result.checkpoints} signed checkpoints`);
      if (result.unanchored > 0) out.print(`the last ${result.unanchored} records are not under a checkpoint yet (the chain covers them)`);
      if (result.lastSeq > 0 && result.lastHash) {
        out.print(`last record ${result.lastSeq}: ${result.lastHash}`);
        out.print(`keep it elsewhere and check against it later: tierca audit verify --anchor ${result.lastSeq}:${result.lastHash}`);
      }
    });

  audit
    .command('checkpoint')
    .description('have the server sign a checkpoint now, over the audit record of this very request')
    .action(async (_opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const res = await api.post<CheckpointView>('/api/v1/audit/checkpoints');
      if (out.json) return out.printJson(res.body);
      out.print(`checkpoint at record ${res.body.seq} signed with ${res.body.keyId}: ${res.body.hash}`);
    });

  audit
    .command('checkpoints')
    .description('list the signed checkpoints (with --json: signatures, signed payloads and the audit public keys)')
    .action(async (_opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const res = await api.get<{ keys: unknown[]; checkpoints: CheckpointView[] }>('/api/v1/audit/checkpoints');
      if (out.json) return out.printJson(res);
      out.table(CHECKPOINT_COLUMNS, res.checkpoints, 'no checkpoints yet');
    });
}
