/**
 * A fresh SoftHSM2 token per test file: its own configuration and token directory in a temporary
 * folder, `SOFTHSM2_CONF` pointing at it (set in this process, so the module loaded here and the
 * `softhsm2-util` / `pkcs11-tool` children see the same token), initialised with
 * `softhsm2-util --init-token --free`. Vitest runs each file in a process of its own (pool 'forks'),
 * and SoftHSM2 reads SOFTHSM2_CONF at C_Initialize: call {@link freshSoftHsm} before opening a
 * keystore, once per file.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's SoftHSM2 module (package softhsm2). */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsm {
  dir: string;
  tokenDir: string;
  modulePath: string;
  tokenLabel: string;
  pin: string;
  soPin: string;
  /** Runs `pkcs11-tool --module <module> args…` on the token. */
  pkcs11Tool(args: string[]): Promise<ToolResult>;
  /** Runs `softhsm2-util args…`. */
  softhsmUtil(args: string[]): Promise<ToolResult>;
  cleanup(): void;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], timeoutMs = 60_000): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8', env: process.env }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Whether SoftHSM2 and pkcs11-tool are installed (`apt-get install -y softhsm2 opensc`). */
export const softHsmInstalled = (): boolean => existsSync(SOFTHSM_MODULE) && existsSync('/usr/bin/softhsm2-util') && existsSync('/usr/bin/pkcs11-tool');

/** Makes a new token directory, points SOFTHSM2_CONF at it and initialises one token. */
export async function freshSoftHsm(opts: { tokenLabel?: string; pin?: string; soPin?: string } = {}): Promise<SoftHsm> {
  const { tokenLabel = 'tierca', pin = '4711-user-pin', soPin = '0815-so-pin' } = opts;
  const dir = mkdtempSync(join(tmpdir(), 'tierca-softhsm-'));
  const tokenDir = join(dir, 'tokens');
  mkdirSync(tokenDir, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
  process.env.SOFTHSM2_CONF = conf;
  const softhsmUtil = (args: string[]) => run('softhsm2-util', args);
  const init = await softhsmUtil(['--init-token', '--free', '--label', tokenLabel, '--pin', pin, '--so-pin', soPin]);
  if (init.code !== 0) throw new Error(`softhsm2-util --init-token failed: ${init.stderr}${init.stdout}`);
  return {
    dir,
    tokenDir,
    modulePath: SOFTHSM_MODULE,
    tokenLabel,
    pin,
    soPin,
    softhsmUtil,
    pkcs11Tool: (args) => run('pkcs11-tool', ['--module', SOFTHSM_MODULE, ...args]),
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One object as `pkcs11-tool --list-objects` prints it: its header line and attribute lines. */
export interface ListedObject {
  kind: string;
  label: string;
  id: string;
  usage: string;
  access: string;
  text: string;
}

/** Parses `pkcs11-tool --list-objects` output (OpenSC 0.23) into objects. */
export function parseListedObjects(stdout: string): ListedObject[] {
  const blocks = stdout.split(/\n(?=\S)/).filter((b) => /Object;/.test(b));
  return blocks.map((text) => {
    const field = (name: string) => new RegExp(`^\\s*${name}:\\s*(.*)$`, 'm').exec(text)?.[1].trim() ?? '';
    return { kind: /^(.*?) Object;/.exec(text.trim())?.[1] ?? '', label: field('label'), id: field('ID'), usage: field('Usage'), access: field('Access'), text };
  });
}
