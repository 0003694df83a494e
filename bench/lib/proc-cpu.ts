/**
 * CPU time used by a server under load, read from /proc: a steadier figure than answers per second
 * on a VM whose load generator shares the cores with the server (how much CPU one answer costs does
 * not depend on how the scheduler split the cores during that run).
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Linux reports utime/stime in USER_HZ ticks, which is 100 on every architecture Node runs on. */
const USER_HZ = 100;

/**
 * CPU seconds (user + system) of every live process in process group `pgid`; null where /proc is
 * not readable (not Linux).
 */
export function processGroupCpuSeconds(pgid: number): number | null {
  let ticks = 0;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return null;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp … utime stime …": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) !== pgid) continue;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / USER_HZ;
}
