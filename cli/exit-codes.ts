/**
 * The exit codes as people read them, made from the one table (`EXIT_CODES` and `ERROR_CODES` of
 * server/errors.ts): the list at the end of `tierca --help` and the table of docs/cli.md, which
 * test/unit/exit-codes.test.ts compares with this output.
 */
import { ERROR_CODES, EXIT_CODES, type ErrorCode } from '../server/errors.ts';

/** The server error codes (problem types) that exit with `code`, in the order of ERROR_CODES. */
export function errorCodesExitingWith(code: number): ErrorCode[] {
  return (Object.keys(ERROR_CODES) as ErrorCode[]).filter((c) => ERROR_CODES[c].exit === code);
}

/** The `Exit codes:` block of `tierca --help`: one line per code. */
export function exitCodesHelp(): string {
  return Object.values(EXIT_CODES)
    .map((e) => `  ${String(e.code).padEnd(3)} ${e.help}`)
    .join('\n');
}

/** The markdown table of docs/cli.md's "Exit codes" section: code, meaning, and the error codes that map to it. */
export function exitCodesMarkdown(): string {
  const rows = Object.values(EXIT_CODES).map((e) => {
    const from = errorCodesExitingWith(e.code).map((c) => `\`${c}\``).join(', ');
    return `| ${e.code} | ${e.meaning} |${from ? ` ${from} ` : ' '}|`;
  });
  return ['| code | meaning | from |', '|---|---|---|', ...rows].join('\n');
}
