/**
 * The CLI's exit codes and its one error type. `EXIT` is made from the table of exit codes in
 * `server/errors.ts` (EXIT_CODES), where the error codes of the server map onto them too (a problem
 * document becomes an exit code through `exitCodeForProblemType`); `tierca --help` and docs/cli.md
 * list them from the same table (cli/exit-codes.ts).
 */
import { EXIT } from '../server/errors.ts';

export { EXIT };

/** An RFC 9457 problem document as the server sends it (extra members are kept). */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
  errorId?: string;
  [member: string]: unknown;
}

/**
 * A failure the CLI reports as `error: <message>` on stderr and turns into `exitCode`. `problem`
 * is the server's problem document when there was one (printed as JSON with `--json`).
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly problem?: Problem,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A usage error (exit 2): a bad or missing option, an unreadable input file. */
export const usageError = (message: string): CliError => new CliError(message, EXIT.usage);
