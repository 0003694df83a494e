/**
 * What the figures were measured on: cores, CPU model, memory, kernel, Node, OpenSSL (the library
 * Node links and the CLI the peer runs), wrk, the date.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, totalmem } from 'node:os';
import { runCommand } from './util.ts';
import { wrkVersion } from './wrk.ts';

export interface MachineInfo {
  date: string;
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  nodeOpenssl: string;
  opensslCli: string;
  wrk: string | null;
  /** 1-minute load average when the run started (other work on the machine skews the figures). */
  loadAtStart: number;
}

/** The 1-minute load average now. */
export const loadNow = (): number => loadavg()[0];

export async function machineInfo(): Promise<MachineInfo> {
  let cpuModel = 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpuModel;
  } catch {
    // not Linux
  }
  let nproc = availableParallelism();
  try {
    nproc = Number((await runCommand('nproc', [], { timeoutMs: 5000 })).stdout.trim()) || nproc;
  } catch {
    // keep Node's count
  }
  let opensslCli = 'not installed';
  try {
    opensslCli = (await runCommand('openssl', ['version'], { timeoutMs: 5000 })).stdout.trim();
  } catch {
    // keep
  }
  return {
    date: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    nproc,
    cpuModel,
    memoryGiB: totalmem() / 1024 ** 3,
    kernel: `Linux ${release()}`,
    node: process.version,
    nodeOpenssl: process.versions.openssl,
    opensslCli,
    wrk: await wrkVersion(),
    loadAtStart: loadavg()[0],
  };
}
