// The README's "A tour of the CLI", run as written: its commands are read out of README.md and run
// one by one through bash, in a fresh folder beside a real `npm start` (server/main.ts, the demo
// hierarchy on an empty data folder, a free port), with `npx tierca` as bin/tierca.js and the demo
// tokens picked by the CLI itself. `<subject-id>`, `<serial>` and `<request-id>` are what an earlier
// command printed; each line must exit 0, or the code its comment names (`exit 10`).
// SQLite only: `npm start` on an empty folder is the embedded demo.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testEngine } from '../helpers/database.ts';
import { ROOT, startServe, type ServeProcess } from '../helpers/processes.ts';

/** One command of the tour: the text as README.md shows it (continuations joined), and its expected exit code. */
interface TourStep {
  line: string;
  command: string;
  exit: number;
}

/** The commands of the tour's `sh` block, continuation lines joined, comments taken off. */
function tourSteps(readme: string): TourStep[] {
  const section = readme.slice(readme.indexOf('## A tour of the CLI'));
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('README.md has no sh block in "A tour of the CLI"');
  const joined = block[1].replace(/\\\n\s*/g, '');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const comment = /\s+#\s(.*)$/.exec(line);
      const command = comment ? line.slice(0, comment.index) : line;
      const exit = comment ? Number(/\bexit (\d+)\b/.exec(comment[1])?.[1] ?? 0) : 0;
      return { line, command, exit };
    });
}

/** What earlier output fills each placeholder with: the last value of this pattern printed so far. */
const PLACEHOLDERS: Record<string, RegExp> = {
  '<subject-id>': /^added subject (\S+)$/gm,
  '<serial>': /^issued certificate ([0-9a-f]+) /gm,
  '<request-id>': /^request (\S+) is pending/gm,
};

function run(command: string, cwd: string, env: Record<string, string | undefined>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const steps = tourSteps(readme);

describe.skipIf(testEngine() !== 'sqlite')('the README tour against npm start', () => {
  let folder: string;
  let server: ServeProcess;

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), 'tierca-tour-'));
    mkdirSync(join(folder, 'data'));
    // `npm start` on an empty data folder: no passphrase, no DATABASE_URL, so it builds the demo.
    server = await startServe({ entry: 'npm', env: { TIERCA_DATA: join(folder, 'data'), TIERCA_PASSPHRASE: '' }, readyTimeoutMs: 120_000 });
  }, 150_000);

  afterAll(async () => {
    await server?.stop();
    if (folder) rmSync(folder, { recursive: true, force: true });
  });

  it('is read from README.md: every documented placeholder has a source, every command is a tierca, openssl or curl line', () => {
    expect(steps.length).toBeGreaterThanOrEqual(20);
    for (const step of steps) {
      expect(step.command, step.line).toMatch(/^(npx tierca|openssl|curl) /);
      for (const placeholder of step.command.match(/<[a-z-]+>/g) ?? []) expect(Object.keys(PLACEHOLDERS), step.line).toContain(placeholder);
    }
    expect(steps.filter((s) => s.exit !== 0).map((s) => s.exit)).toEqual([10]);
  });

  it('runs line by line with the exit code each line documents', async () => {
    let printed = '';
    const env = {
      TIERCA_URL: server.url,
      // Only what the README's reader has: no token, no data folder but ./data, no database URL.
      TIERCA_TOKEN: undefined,
      TIERCA_DATA: undefined,
      DATABASE_URL: undefined,
      TIERCA_PASSPHRASE: undefined,
      VITEST: undefined,
    };
    for (const step of steps) {
      let command = step.command.replaceAll('npx tierca ', `${JSON.stringify(process.execPath)} ${JSON.stringify(join(ROOT, 'bin/tierca.js'))} `);
      command = command.replaceAll('http://127.0.0.1:8080', server.url);
      for (const [placeholder, pattern] of Object.entries(PLACEHOLDERS)) {
        if (!command.includes(placeholder)) continue;
        const values = [...printed.matchAll(pattern)].map((m) => m[1]);
        expect(values.length, `${step.line}: nothing printed so far gives ${placeholder}`).toBeGreaterThan(0);
        command = command.replaceAll(placeholder, values[values.length - 1]);
      }
      const r = await run(command, folder, env);
      expect(r.code, `${step.line}\nexit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(step.exit);
      printed += r.stdout;
    }
    // What the tour says it leaves behind is there.
    for (const file of ['gw.pem', 'chain.pem', 'gw2.p12', 'yuhu-t2.crl', 'tierca-backup.jsonl']) {
      expect(statSync(join(folder, file)).size, file).toBeGreaterThan(0);
    }
    expect(printed).toMatch(/^gw\.pem: good$/m);
    expect(printed).toMatch(/^gw\.pem: revoked at \S+, reason keyCompromise$/m);
    expect(printed).toMatch(/^dry run, nothing changed: /m);
  }, 300_000);
});
