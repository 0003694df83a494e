/**
 * wrk, the HTTP load generator (apt package `wrk`; bench/setup.sh installs it): runs it with
 * bench/wrk/rotate.lua over a file of pre-made requests and reads its report.
 */
import { join } from 'node:path';
import { ROOT, runCommand } from './util.ts';

export const ROTATE_SCRIPT = join(ROOT, 'bench/wrk/rotate.lua');

export interface WrkLoad {
  threads: number;
  connections: number;
  seconds: number;
}

export interface WrkResult {
  requestsPerSec: number;
  requests: number;
  seconds: number;
  /** Latency percentiles in milliseconds (wrk --latency). */
  p50: number;
  p75: number;
  p90: number;
  p99: number;
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  /** wrk's own report, for the record. */
  report: string;
}

/** The wrk command line for `load` against `url` with the rotating request file. */
export function wrkArgs(url: string, requestsFile: string, load: WrkLoad): string[] {
  return ['-t', String(load.threads), '-c', String(load.connections), '-d', `${load.seconds}s`, '--latency', '-s', ROTATE_SCRIPT, url, '--', requestsFile];
}

/** Runs wrk in this network namespace. */
export async function runWrk(url: string, requestsFile: string, load: WrkLoad): Promise<WrkResult> {
  const res = await runCommand('wrk', wrkArgs(url, requestsFile, load), { timeoutMs: (load.seconds + 30) * 1000 });
  if (res.code !== 0) throw new Error(`wrk failed (exit ${res.code}): ${res.stderr}${res.stdout}`);
  return parseWrk(res.stdout);
}

const UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function duration(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) throw new Error(`wrk: cannot read the duration ${text}`);
  return Number(m[1]) * UNITS[m[2]];
}

/** Reads wrk's text report. */
export function parseWrk(report: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(report);
  const total = /(\d+) requests in ([\d.]+\w+),/.exec(report);
  if (!rps || !total) throw new Error(`wrk: unexpected report:\n${report}`);
  const pct = (p: number) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+\\w+)\\s*$`, 'm').exec(report);
    return m ? duration(m[1]) : NaN;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(report);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(report);
  return {
    requestsPerSec: Number(rps[1]),
    requests: Number(total[1]),
    seconds: duration(total[2]) / 1000,
    p50: pct(50),
    p75: pct(75),
    p90: pct(90),
    p99: pct(99),
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: socket
      ? { connect: Number(socket[1]), read: Number(socket[2]), write: Number(socket[3]), timeout: Number(socket[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
    report: report.trim(),
  };
}

/** The installed wrk's version line, or null when wrk is missing. */
export async function wrkVersion(): Promise<string | null> {
  try {
    const res = await runCommand('wrk', ['--version'], { timeoutMs: 5000 });
    return (res.stdout + res.stderr).split('\n')[0]?.trim() || null;
  } catch {
    return null;
  }
}
