/**
 * Usage of `tierca`: commander errors exit 2, help exits 0, every command's --help lists its real
 * options, and docs/cli.md describes every command, option and exit code the code has.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../cli/cli-error.ts';
import { buildProgram } from '../../cli/main.ts';
import { Capture, fakeStdin, runCli } from './cli-fake-server.ts';

const program = buildProgram({ stdout: new Capture(), stderr: new Capture(), env: {}, stdin: fakeStdin() }, { exitCode: 0 });

/** Every command that runs an action, with its path (`cert issue`). */
function leaves(cmd: Command, path: string[] = []): { path: string[]; cmd: Command }[] {
  return cmd.commands.flatMap((sub) => {
    const p = [...path, sub.name()];
    return sub.commands.length ? leaves(sub, p) : sub.name() === 'help' ? [] : [{ path: p, cmd: sub }];
  });
}
const commands = leaves(program);
const longFlag = (flags: string) => flags.match(/--[a-z0-9-]+/)![0];
const docs = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');

describe('usage errors exit 2', () => {
  it.each([
    [[], 'Usage: tierca [options] [command]'],
    [['ca'], 'Usage: tierca ca [options] [command]'],
    [['frobnicate'], "error: unknown command 'frobnicate'"],
    [['ca', 'lst'], "error: unknown command 'lst'\n(Did you mean list?)"],
    [['ca', 'list', 'extra'], "error: too many arguments for 'list'. Expected 0 arguments but got 1."],
    [['ca', 'show'], "error: missing required argument 'id'"],
    [['cert', 'list', '--colour'], "error: unknown option '--colour'"],
    [['--server'], "error: option '--server <url>' argument missing"],
  ])('%j', async (argv, message) => {
    const r = await runCli(argv, {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });
});

describe('help', () => {
  it('--help and --version exit 0 on stdout', async () => {
    const help = await runCli(['--help'], {});
    expect([help.code, help.stderr]).toEqual([0, '']);
    expect(help.stdout).toMatch(/^Usage: tierca \[options\] \[command\]\n/);
    for (const flag of ['--server <url>', '--token-file <path>', '--json', '--no-color', 'Exit codes:', 'TIERCA_URL']) expect(help.stdout).toContain(flag);
    const version = await runCli(['--version'], {});
    expect(version).toEqual({ code: 0, stdout: `${JSON.parse(readFileSync('package.json', 'utf8')).version}\n`, stderr: '' });
  });

  it('shows TIERCA_URL as the --server default when it is set', async () => {
    const help = await runCli(['--help'], { TIERCA_URL: 'https://ca.intranet' });
    // Commander wraps the help text; compare with the line breaks taken out.
    expect(help.stdout.replace(/\s+/g, ' ')).toContain('tierca server (env TIERCA_URL) (default: "https://ca.intranet")');
  });

  it('every command has --help listing exactly its own options', async () => {
    expect(commands.map((c) => c.path.join(' '))).toEqual([
      'whoami', 'ca list', 'ca show', 'ca add-domain', 'ca revoke', 'ca rollover', 'ca links', 'subject add', 'subject list', 'subject show', 'subject revoke',
      'cert issue', 'cert list', 'cert show', 'cert revoke', 'cert hold', 'cert release', 'cert renew',
      'request list', 'request approve', 'request reject', 'crl generate', 'crl show', 'rotate due', 'rotate run',
      'principal add', 'principal list', 'principal disable', 'principal certificate',
      'audit tail', 'audit export', 'audit verify', 'audit checkpoint', 'audit checkpoints', 'keystore status', 'keystore add-token', 'key recover', 'key history', 'kmc rotate-master',
      'acme account-key add', 'acme accounts', 'acme orders', 'acme deactivate', 'est code add', 'est codes', 'ocsp check',
      'init', 'serve', 'db migrate', 'db status', 'backup', 'restore',
      'root init', 'root show', 'root sign', 'root revoke', 'root crl', 'root rollover', 'root request', 'root import',
    ]);
    for (const { path, cmd } of commands) {
      const r = await runCli([...path, '--help'], {});
      expect([path, r.code]).toEqual([path, 0]);
      expect(r.stdout).toContain(`Usage: tierca ${path.join(' ')} `);
      const listed = [...r.stdout.matchAll(/^ {2}(-[^ ]+(?: <[^>]+>)?)/gm)].map((m) => m[1]).filter((f) => f !== '-h,');
      const expected = cmd.options.map((o) => o.flags);
      expect([path, listed.filter((f) => f.startsWith('--'))]).toEqual([path, expected]);
    }
  });

  it('tierca help <command> works too', async () => {
    const r = await runCli(['help', 'cert'], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: tierca cert [options] [command]');
  });
});

describe('docs/cli.md', () => {
  /** The text of the `### tierca <path>` section. */
  const section = (path: string[]) => {
    const start = docs.search(new RegExp(`^### tierca ${path.join(' ')}(?= |$)`, 'm'));
    if (start < 0) return undefined;
    const next = docs.indexOf('\n### ', start + 1);
    return docs.slice(start, next < 0 ? undefined : next);
  };

  it('has a section for every command naming each of its options', () => {
    for (const { path, cmd } of commands) {
      const text = section(path);
      expect([path, text !== undefined]).toEqual([path, true]);
      for (const option of cmd.options) expect([path, text!.includes(`\`${option.flags}\``)]).toEqual([path, true]);
      for (const arg of cmd.registeredArguments) expect([path, text!.includes(`<${arg.name()}>`)]).toEqual([path, true]);
    }
  });

  it('documents every global option and no command that does not exist', () => {
    for (const option of program.options) expect([option.flags, docs.includes(`\`${option.flags}\``)]).toEqual([option.flags, true]);
    const documented = [...docs.matchAll(/^### tierca ([a-z -]+?)(?: `|$| --| \[)/gm)].map((m) => m[1].trim());
    expect(documented.sort()).toEqual([...commands.map((c) => c.path.join(' ')), 'help'].sort());
  });

  it('lists every exit code, as --help does', async () => {
    const help = (await runCli(['--help'], {})).stdout;
    for (const code of Object.values(EXIT)) {
      expect([code, new RegExp(`^\\| ${code} \\|`, 'm').test(docs)]).toEqual([code, true]);
      expect([code, new RegExp(`^ {2}${code} +\\S`, 'm').test(help)]).toEqual([code, true]);
    }
  });

  it('describes no option the code does not have', () => {
    const known = new Set([...program.options, ...commands.flatMap((c) => c.cmd.options)].map((o) => longFlag(o.flags)));
    known.add('--help');
    known.add('--version');
    const mentioned = new Set([...docs.matchAll(/`(--[a-z0-9-]+)/g)].map((m) => m[1]));
    // `--token` appears only to say that it does not exist.
    mentioned.delete('--token');
    expect([...mentioned].filter((f) => !known.has(f))).toEqual([]);
  });
});
