/**
 * Turns the results into the summary table printed at the end of `npm run bench` and into the
 * figures blocks of docs/benchmarks.md. Only the text between `<!-- bench:NAME:begin -->` and
 * `<!-- bench:NAME:end -->` is rewritten; the prose around it is kept.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { IssuanceRun } from './issuance.ts';
import type { OcspMeasurement, OcspResults } from './ocsp.ts';
import type { CrlResults } from './crl.ts';
import type { MachineInfo } from './lib/machine.ts';
import { fmt, fmtMs } from './lib/util.ts';

export interface RunMeta {
  date: string;
  command: string;
  quick: boolean;
  /** 1-minute load average at the end of the run. */
  loadAtEnd?: number;
}

export interface Results {
  machine: MachineInfo;
  meta: RunMeta;
  issuance?: IssuanceRun[];
  ocsp?: OcspResults;
  crl?: CrlResults;
}

export interface SummaryRow {
  benchmark: string;
  figure: string;
  aim: string;
  met: 'yes' | 'NO' | '—';
}

export const AIMS = {
  issuancePerSecond: 1000,
  ocspPerSecond: 20_000,
  ocspVersusOpenssl: 2,
  ocspVersusBare: 0.6,
  crlMillionMs: 10_000,
  crlMillionMiB: 1024,
} as const;

const yes = (ok: boolean): 'yes' | 'NO' => (ok ? 'yes' : 'NO');
const engineName = (engine: 'sqlite' | 'postgres') => (engine === 'sqlite' ? 'SQLite' : 'PostgreSQL');
const procs = (n: number) => `${n} process${n > 1 ? 'es' : ''}`;

function find(ocsp: OcspResults, target: OcspMeasurement['target'], processes: number, method: 'POST' | 'GET') {
  return ocsp.measurements.find((m) => m.target === target && m.processes === processes && m.method === method);
}

/** The rows of the summary table, with each aim of the issue and whether this run met it. */
export function summaryRows(r: Results): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const run of r.issuance ?? []) {
    const api = run.mode === 'api';
    const checks = run.problems.length ? `; CHECKS FAILED: ${run.problems[0]}` : '';
    rows.push({
      benchmark: `issuance, ${run.label}`,
      figure: `${fmt(run.perSecond)} certificates/s, p50 ${fmtMs(run.p50)}, p99 ${fmtMs(run.p99)}${run.cpuMsPerCertificate === null ? '' : `, CPU ${fmtMs(run.cpuMsPerCertificate)}/cert`}${checks}`,
      aim: api ? `≥ ${fmt(AIMS.issuancePerSecond)}/s` : '—',
      met: api ? yes(run.perSecond >= AIMS.issuancePerSecond && run.problems.length === 0) : '—',
    });
  }
  if (r.ocsp) {
    const o = r.ocsp;
    for (const m of o.measurements.filter((x) => x.target === 'tierca')) {
      const peer = find(o, 'openssl ocsp', 2, m.method);
      const bare = find(o, 'node:http', m.processes, m.method);
      rows.push({
        benchmark: `OCSP, tierca ${procs(m.processes)}, ${m.method}`,
        figure: `${fmt(m.wrk.requestsPerSec)}/s, p99 ${fmtMs(m.wrk.p99)}${m.cpuUsPerAnswer === null ? '' : `, CPU ${fmt(m.cpuUsPerAnswer)} µs/answer`}`,
        aim: `≥ ${fmt(AIMS.ocspPerSecond)}/s`,
        met: yes(m.wrk.requestsPerSec >= AIMS.ocspPerSecond && m.wrk.non2xx === 0),
      });
      if (bare) {
        const ratio = m.wrk.requestsPerSec / bare.wrk.requestsPerSec;
        const cpu = m.cpuUsPerAnswer !== null && bare.cpuUsPerAnswer !== null ? `; CPU/answer ${(m.cpuUsPerAnswer / bare.cpuUsPerAnswer).toFixed(2)}× bare's` : '';
        rows.push({ benchmark: `  vs bare node:http, ${procs(m.processes)}, ${m.method}`, figure: `${ratio.toFixed(2)}× (${fmt(bare.wrk.requestsPerSec)}/s)${cpu}`, aim: `≥ ${AIMS.ocspVersusBare}×`, met: yes(ratio >= AIMS.ocspVersusBare) });
      }
      if (peer && m.processes === 2) {
        const ratio = m.wrk.requestsPerSec / peer.wrk.requestsPerSec;
        const cpu = m.cpuUsPerAnswer !== null && peer.cpuUsPerAnswer !== null ? `; openssl CPU/answer ${(peer.cpuUsPerAnswer / m.cpuUsPerAnswer).toFixed(1)}× tierca's` : '';
        rows.push({ benchmark: `  vs openssl ocsp -multi 2, ${m.method}`, figure: `${ratio.toFixed(2)}× (${fmt(peer.wrk.requestsPerSec)}/s)${cpu}`, aim: `≥ ${AIMS.ocspVersusOpenssl}×`, met: yes(ratio >= AIMS.ocspVersusOpenssl) });
      }
    }
    if (o.verified.wrong > 0) rows.push({ benchmark: 'OCSP answers checked', figure: `${o.verified.wrong} of ${o.verified.checked} WRONG`, aim: 'all right', met: 'NO' });
  }
  if (r.crl) {
    for (const b of r.crl.builds) {
      const million = b.entries === 1_000_000 && b.mode === 'array';
      rows.push({
        benchmark: `CRL buildCrl, ${fmt(b.entries)} entries${b.mode === 'generator' ? ' (generator)' : ''}`,
        figure: `${fmtMs(b.buildMs)}, peak RSS ${fmt(b.peakRssMiB)} MiB`,
        aim: million ? `< ${AIMS.crlMillionMs / 1000} s, < 1 GiB` : '—',
        met: million ? yes(b.buildMs < AIMS.crlMillionMs && b.peakRssMiB < AIMS.crlMillionMiB) : '—',
      });
    }
    for (const p of r.crl.publishers) {
      const million = p.rows === 1_000_000;
      rows.push({
        benchmark: `CRL CrlPublisher.publishFull, ${fmt(p.rows)} rows (${engineName(p.engine)})`,
        figure: `${fmtMs(p.publishMs)} (paged read alone ${fmtMs(p.readMs)}), peak RSS ${fmt(p.peakRssMiB)} MiB`,
        aim: million ? `< ${AIMS.crlMillionMs / 1000} s, < 1 GiB` : '—',
        met: million ? yes(p.publishMs < AIMS.crlMillionMs && p.peakRssMiB < AIMS.crlMillionMiB) : '—',
      });
    }
    for (const s of r.crl.skipped) rows.push({ benchmark: 'CRL CrlPublisher.publishFull', figure: `not run: ${s}`, aim: '—', met: '—' });
  }
  return rows;
}

/** A plain-text table for the console. */
export function formatSummary(rows: SummaryRow[]): string {
  const head: SummaryRow = { benchmark: 'benchmark', figure: 'figure', aim: 'aim', met: 'met' as never };
  const all = [head, ...rows];
  const w = (k: keyof SummaryRow) => Math.max(...all.map((r) => String(r[k]).length));
  const line = (r: SummaryRow) => `${r.benchmark.padEnd(w('benchmark'))}  ${r.figure.padEnd(w('figure'))}  ${r.aim.padEnd(w('aim'))}  ${r.met}`;
  return [line(head), '-'.repeat(w('benchmark') + w('figure') + w('aim') + 10), ...rows.map(line)].join('\n');
}

// ---- markdown -----------------------------------------------------------------------------------

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function stamp(meta: RunMeta): string {
  return `Measured ${meta.date} with \`${meta.command}\`${meta.quick ? ' (**--quick**: short runs, rougher figures)' : ''}.`;
}

export function machineMarkdown(m: MachineInfo, meta: RunMeta): string {
  return [
    `Last run: ${meta.date}, \`${meta.command}\`.`,
    '',
    table(['', ''], [
      ['cores (`nproc`)', m.nproc],
      ['CPU (/proc/cpuinfo)', m.cpuModel],
      ['memory', `${m.memoryGiB.toFixed(1)} GiB`],
      ['kernel', m.kernel],
      ['Node', m.node],
      ['OpenSSL in Node', m.nodeOpenssl],
      ['OpenSSL CLI (the peer)', m.opensslCli],
      ['wrk', m.wrk ?? 'not installed'],
      ['1-minute load average, start / end of the run', `${m.loadAtStart.toFixed(2)} / ${meta.loadAtEnd?.toFixed(2) ?? '—'}`],
    ]),
    '',
    'The load generators (wrk, the issuance clients) share these cores with the server under test. A load average well above 0 at the start means other work was running on the machine (other sessions\' test suites): figures from such a run are low and noisy; CPU time per answer is the figure least affected.',
  ].join('\n');
}

export function issuanceMarkdown(runs: IssuanceRun[], meta: RunMeta): string {
  const rows = runs.map((r) => [
    r.label,
    fmt(r.count),
    r.concurrency,
    `**${fmt(r.perSecond)}**`,
    fmtMs(r.p50),
    fmtMs(r.p99),
    fmtMs(r.max),
    r.cpuMsPerCertificate === null ? '—' : fmtMs(r.cpuMsPerCertificate),
    Object.entries(r.outcomes).map(([k, v]) => `${k}: ${fmt(v)}`).join(', '),
    r.mode === 'api' ? `${fmt(r.distinctSerials)} distinct; ${fmt(r.storedCertificates ?? 0)} stored (expected ${fmt(r.expectedStored ?? 0)})` : `${fmt(r.distinctSerials)} distinct`,
    r.problems.length ? `**FAILED**: ${r.problems.join('; ')}` : 'ok',
  ]);
  const api = runs.filter((r) => r.mode === 'api');
  const best = api.length ? Math.max(...api.map((r) => r.perSecond)) : NaN;
  return [
    stamp(meta),
    '',
    table(['run', 'certificates', 'in flight', 'certificates/s', 'p50', 'p99', 'max', 'server CPU per certificate', 'answers', 'serials', 'checks'], rows),
    '',
    'Server CPU per certificate: user + system time of every server process (in-process: of the process, all threads) during the timed window, divided by the certificates. 1,000 certificates/s on 2 cores needs it well under 2 ms, since the clients share the cores.',
    '',
    `Subjects were created before the clock started (${runs.map((r) => `${r.label}: ${fmt(r.subjectsPerSecond)} subjects/s`).join('; ')}).`,
    '',
    api.length ? `Aim: ≥ ${fmt(AIMS.issuancePerSecond)} certificates/s through the API. Best API run: ${fmt(best)}/s — **${best >= AIMS.issuancePerSecond ? 'met' : 'not met'}**.` : '',
  ].join('\n');
}

export function ocspMarkdown(o: OcspResults, meta: RunMeta): string {
  const rows = o.measurements.map((m) => {
    const errors = Object.values(m.wrk.socketErrors).reduce((a, b) => a + b, 0);
    return [
      m.target === 'tierca' ? `**tierca**` : m.target === 'openssl ocsp' ? 'openssl ocsp -multi 2' : 'bare node:http (500-byte body)',
      m.processes,
      m.method,
      m.target === 'tierca' ? `**${fmt(m.wrk.requestsPerSec)}**` : fmt(m.wrk.requestsPerSec),
      m.runs.length > 1 ? `${fmt(Math.min(...m.runs.map((x) => x.requestsPerSec)))}–${fmt(Math.max(...m.runs.map((x) => x.requestsPerSec)))}` : '—',
      fmtMs(m.wrk.p50),
      fmtMs(m.wrk.p99),
      m.cpuUsPerAnswer === null ? '—' : `${fmt(m.cpuUsPerAnswer)} µs`,
      fmt(m.wrk.requests),
      m.wrk.non2xx ? fmt(m.wrk.non2xx) : '0',
      errors ? Object.entries(m.wrk.socketErrors).filter(([, v]) => v).map(([k, v]) => `${k} ${fmt(v)}`).join(', ') : '0',
    ];
  });
  const ratios: string[][] = [];
  for (const m of o.measurements.filter((x) => x.target === 'tierca')) {
    const bare = find(o, 'node:http', m.processes, m.method);
    const peer = m.processes === 2 ? find(o, 'openssl ocsp', 2, m.method) : undefined;
    ratios.push([
      `${procs(m.processes)}, ${m.method}`,
      `${fmt(m.wrk.requestsPerSec)}/s ${m.wrk.requestsPerSec >= AIMS.ocspPerSecond ? '(met)' : '(**not met**)'}`,
      bare ? `${(m.wrk.requestsPerSec / bare.wrk.requestsPerSec).toFixed(2)}× ${m.wrk.requestsPerSec / bare.wrk.requestsPerSec >= AIMS.ocspVersusBare ? '(met)' : '(**not met**)'}` : '—',
      peer ? `${(m.wrk.requestsPerSec / peer.wrk.requestsPerSec).toFixed(2)}× ${m.wrk.requestsPerSec / peer.wrk.requestsPerSec >= AIMS.ocspVersusOpenssl ? '(met)' : '(**not met**)'}` : '—',
      bare && m.cpuUsPerAnswer !== null && bare.cpuUsPerAnswer !== null ? `${(m.cpuUsPerAnswer / bare.cpuUsPerAnswer).toFixed(2)}×` : '—',
      peer && m.cpuUsPerAnswer !== null && peer.cpuUsPerAnswer !== null ? `${(peer.cpuUsPerAnswer / m.cpuUsPerAnswer).toFixed(1)}×` : '—',
    ]);
  }
  return [
    stamp(meta),
    '',
    `${fmt(o.certificates)} certificates issued through the API, ${fmt(o.revoked)} revoked; one request per serial (one SHA-1 CertID, no nonce), rotated by wrk; load \`wrk -t${o.load.threads} -c${o.load.connections} -d${o.load.seconds}s --latency\` (keep-alive; openssl ocsp closes after every answer). Every server was up at once; ${o.measurements[0]?.runs.length ?? 0} round(s) went over every server and method in turn, and each figure is the median round (p50/p99 are that round's).`,
    `Before the load, ${fmt(o.verified.checked)} answers were read back (every serial over POST and GET): ${o.verified.wrong === 0 ? 'all successful with the right status' : `**${fmt(o.verified.wrong)} wrong**: ${o.verified.notes.join('; ')}`}. A pre-signed answer is ${fmt(o.verified.answerBytes)} bytes.`,
    o.peerChecks ? `openssl peer check before each load: good serial → \`${summariseCheck(o.peerChecks.good)}\`, revoked serial → \`${summariseCheck(o.peerChecks.revoked)}\`.` : `openssl peer: ${o.peerSkipped ?? 'not run'}.`,
    '',
    table(['server', 'processes', 'method', 'answers/s (median)', 'rounds, min–max', 'p50', 'p99', 'server CPU per answer', 'requests', 'non-2xx', 'socket errors'], rows),
    '',
    table(['tierca', `aim ≥ ${fmt(AIMS.ocspPerSecond)}/s`, `÷ bare node:http, same processes (aim ≥ ${AIMS.ocspVersusBare}×)`, `÷ openssl ocsp -multi 2 (aim ≥ ${AIMS.ocspVersusOpenssl}×)`, 'CPU per answer ÷ bare node:http', 'openssl CPU per answer ÷ tierca'], ratios),
    '',
    'Server CPU per answer is the user + system time of every process of the server (cluster primary included; for openssl the parent and its children) during the run, divided by the answers: it does not depend on how the scheduler shared the two cores with wrk, so it is the steadier comparison on this VM.',
  ].join('\n');
}

function summariseCheck(text: string): string {
  const status = /0x[0-9A-Fa-f]+: (\w+)/.exec(text)?.[1] ?? '?';
  const verify = /Response verify OK/.test(text) ? 'Response verify OK' : 'verify ?';
  const reason = /Reason: (\w+)/.exec(text)?.[1];
  return `${verify}, ${status}${reason ? `, ${reason}` : ''}`;
}

export function crlMarkdown(c: CrlResults, meta: RunMeta): string {
  const rows = c.builds.map((b) => [
    `${fmt(b.entries)}${b.mode === 'generator' ? ' (generator)' : ''}`,
    b.mode === 'array' ? fmtMs(b.prepareMs) : 'during build',
    `**${fmtMs(b.buildMs)}**`,
    `${(b.derBytes / 1024 / 1024).toFixed(1)} MiB`,
    `${fmt(b.rssBeforeMiB)} MiB`,
    `**${fmt(b.peakRssMiB)} MiB**`,
    fmt(b.parsedEntries),
  ]);
  const million = c.builds.find((b) => b.entries === 1_000_000 && b.mode === 'array');
  const out = [
    stamp(meta),
    '',
    table(['entries', 'making the entries', 'buildCrl (sign included)', 'CRL size', 'RSS before build', 'peak RSS of the process', 'parsed back'], rows),
    '',
    million
      ? `Aim: 1,000,000 entries in < 10 s and < 1 GiB: ${fmtMs(million.buildMs)} and ${fmt(million.peakRssMiB)} MiB peak — **${million.buildMs < AIMS.crlMillionMs && million.peakRssMiB < AIMS.crlMillionMiB ? 'met' : 'not met'}**.`
      : 'The 1,000,000-entry size was not run (--quick).',
  ];
  if (c.publishers.length) {
    const ps = c.publishers;
    out.push('', table(['CrlPublisher.publishFull', ...ps.map((p) => engineName(p.engine))], [
      ['revoked rows of one CA', ...ps.map((p) => fmt(p.rows))],
      ['inserting them (setup: multi-row INSERTs, 1,000 rows each)', ...ps.map((p) => fmtMs(p.insertMs))],
      ['**publishFull (paged read + build + sign + store)**', ...ps.map((p) => `**${fmtMs(p.publishMs)}**`)],
      ['the paged read alone (`revokedEntryPages`, 10,000 a page)', ...ps.map((p) => fmtMs(p.readMs))],
      ['CRL size', ...ps.map((p) => `${(p.crlBytes / 1024 / 1024).toFixed(1)} MiB`)],
      ['RSS before / **peak RSS of the publishing process**', ...ps.map((p) => `${fmt(p.rssBeforeMiB)} MiB / **${fmt(p.peakRssMiB)} MiB**`)],
      ['entries parsed back (parseCrl)', ...ps.map((p) => fmt(p.parsedEntries))],
    ]));
    const millions = ps.filter((p) => p.rows === 1_000_000);
    out.push(
      '',
      millions.length
        ? `Aim for the publisher: 1,000,000 revoked rows in < 10 s and < 1 GiB: ${millions
          .map((p) => `${engineName(p.engine)} ${fmtMs(p.publishMs)} and ${fmt(p.peakRssMiB)} MiB — **${p.publishMs < AIMS.crlMillionMs && p.peakRssMiB < AIMS.crlMillionMiB ? 'met' : 'not met'}**`)
          .join('; ')}.`
        : `The publisher ran with ${fmt(ps[0].rows)} rows, not 1,000,000 (--quick).`,
    );
  }
  for (const s of c.skipped) out.push('', `Not run: ${s}.`);
  if (c.problems.length) out.push('', `**Problems:** ${c.problems.join('; ')}`);
  return out.join('\n');
}

// ---- docs/benchmarks.md -------------------------------------------------------------------------

/** Replaces the named blocks in `file` (appending a block whose markers are missing). */
export function updateDoc(file: string, blocks: Record<string, string>): void {
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  for (const [name, body] of Object.entries(blocks)) {
    const begin = `<!-- bench:${name}:begin -->`;
    const end = `<!-- bench:${name}:end -->`;
    const block = `${begin}\n${body.trim()}\n${end}`;
    const i = text.indexOf(begin);
    const j = text.indexOf(end);
    if (i >= 0 && j > i) text = text.slice(0, i) + block + text.slice(j + end.length);
    else text = `${text.trimEnd()}\n\n## ${name}\n\n${block}\n`;
  }
  writeFileSync(file, text.endsWith('\n') ? text : `${text}\n`);
}
