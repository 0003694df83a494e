// Exit codes come from one table (server/errors.ts EXIT_CODES, with ERROR_CODES' exit column):
// the CLI's EXIT, `tierca --help` and docs/cli.md's table are all made from it, and this file fails
// when docs/cli.md's table is not exactly what cli/exit-codes.ts renders.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../cli/cli-error.ts';
import { errorCodesExitingWith, exitCodesHelp, exitCodesMarkdown } from '../../cli/exit-codes.ts';
import { ERROR_CODES, EXIT_CODES, exitCodeForProblemType, problemType, type ErrorCode } from '../../server/errors.ts';
import { runCli } from './cli-fake-server.ts';

const docs = readFileSync(new URL('../../docs/cli.md', import.meta.url), 'utf8');

describe('exit codes, one table', () => {
  it("docs/cli.md's exit-code table is the one rendered from server/errors.ts", () => {
    const section = docs.slice(docs.indexOf('## Exit codes'));
    const table = section.slice(section.indexOf('| code |'), section.indexOf('\n\n', section.indexOf('| code |')));
    expect(table).toBe(exitCodesMarkdown());
  });

  it('tierca --help lists every code with its help line', async () => {
    const r = await runCli(['--help'], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Exit codes:\n${exitCodesHelp()}\n\n`);
    for (const e of Object.values(EXIT_CODES)) expect(r.stdout).toMatch(new RegExp(`^  ${e.code} +${e.help.replace(/[()]/g, '\\$&')}$`, 'm'));
  });

  it('codes are distinct; EXIT is the table by name; every server error exits with a code of the table', () => {
    const codes = Object.values(EXIT_CODES).map((e) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const [name, e] of Object.entries(EXIT_CODES)) expect(EXIT[name as keyof typeof EXIT]).toBe(e.code);
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      expect(codes, code).toContain(entry.exit);
      expect(exitCodeForProblemType(problemType(code as ErrorCode))).toBe(entry.exit);
    }
    expect(errorCodesExitingWith(EXIT.policy)).toContain('ca-unavailable');
    expect(exitCodeForProblemType('urn:other:thing')).toBe(EXIT.internal);
  });
});
