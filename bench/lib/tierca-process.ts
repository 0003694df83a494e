/**
 * tierca as a child process, started exactly as `npm start` does (server/main.ts), with
 * TIERCA_WORKERS processes on one port and a data folder of its own. On an empty folder the server
 * builds the DEMO hierarchy and writes demo-*.token files there.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ROOT, freePort, sleep, spawnOwned, stopChild } from './util.ts';

export interface TiercaProcess {
  url: string;
  port: number;
  workers: number;
  dataDir: string;
  logFile: string;
  child: ChildProcess;
  /** A demo token by role name (officer, admin, …). */
  token(name: string): string;
  stop(): Promise<void>;
}

/** A fresh, empty data folder under the system temp folder. */
export function freshDataDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `tierca-bench-${label}-`));
}

/**
 * Starts `node --import tsx server/main.ts` and waits until every worker logged "tierca is serving"
 * (a health check alone could be answered by the first worker while the second still unlocks keys).
 */
export async function startTierca(opts: { workers: number; dataDir: string; port?: number; timeoutMs?: number; nodeArgs?: string[] }): Promise<TiercaProcess> {
  const port = opts.port ?? (await freePort());
  const logFile = join(opts.dataDir, `server-${opts.workers}w-${port}.log`);
  const fd = openSync(logFile, 'a');
  // A restart on the same folder and port appends to the same log: only what this process writes counts.
  const from = statSync(logFile).size;
  const env: NodeJS.ProcessEnv = { ...process.env, TIERCA_WORKERS: String(opts.workers), TIERCA_DATA: opts.dataDir, PORT: String(port), HOST: '127.0.0.1' };
  // Neither of these may leak in from the caller's shell: the demo needs an empty SQLite folder.
  delete env.TIERCA_PASSPHRASE;
  delete env.DATABASE_URL;
  const child = spawnOwned(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', join(ROOT, 'server/main.ts')], { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const deadline = Date.now() + (opts.timeoutMs ?? 90_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`tierca exited early (${child.exitCode ?? child.signalCode}); log ${logFile}:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
    }
    const text = readFileSync(logFile).subarray(from).toString('utf8');
    const serving = text.split('\n').filter((l) => l.includes('"msg":"tierca is serving"')).length;
    if (serving >= opts.workers) break;
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`tierca did not start within the time allowed; log ${logFile}:\n${text.slice(-3000)}`);
    }
    await sleep(100);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    workers: opts.workers,
    dataDir: opts.dataDir,
    logFile,
    child,
    token: (name) => readFileSync(join(opts.dataDir, `demo-${name}.token`), 'utf8').trim(),
    stop: () => stopChild(child, 8000),
  };
}
