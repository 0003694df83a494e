/**
 * The `tierca` command: builds the commander program, runs it against injected I/O and turns every
 * outcome into an exit code (docs/cli.md). `bin/tierca.js` calls {@link run}; tests call it
 * in-process with capturing streams.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ERROR_CODES, TiercaError } from '../server/errors.ts';
import { DEFAULT_SERVER_URL } from './api-client.ts';
import { CliError, EXIT } from './cli-error.ts';
import { contextFactory } from './context.ts';
import { exitCodesHelp } from './exit-codes.ts';
import { Output, type Io } from './output.ts';
import * as auditCommands from './commands/audit.ts';
import * as caCommands from './commands/ca.ts';
import * as certCommands from './commands/cert.ts';
import * as crlCommands from './commands/crl.ts';
import * as dbCommands from './commands/db.ts';
import * as backupCommands from './commands/backup.ts';
import * as initCommand from './commands/init.ts';
import * as keystoreCommands from './commands/keystore.ts';
import * as kmcCommands from './commands/kmc.ts';
import * as acmeCommands from './commands/acme.ts';
import * as estCommands from './commands/est.ts';
import * as ocspCommands from './commands/ocsp.ts';
import * as principalCommands from './commands/principal.ts';
import * as rootCommands from './commands/root.ts';
import * as renewCommands from './commands/renew.ts';
import * as requestCommands from './commands/request.ts';
import * as rotateCommands from './commands/rotate.ts';
import * as serveCommand from './commands/serve.ts';
import * as subjectCommands from './commands/subject.ts';
import * as whoamiCommand from './commands/whoami.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const EXIT_CODES_HELP = `
Exit codes:
${exitCodesHelp()}

Environment:
  TIERCA_URL         default of --server
  TIERCA_TOKEN       the API token itself (--token-file wins)
  TIERCA_CLIENT_CERT, TIERCA_CLIENT_KEY, TIERCA_CA_FILE  defaults of --client-cert, --client-key, --ca-file
  TIERCA_DATA        data folder of init/serve/db and of the demo token (default ./data)
  TIERCA_PASSPHRASE  keystore passphrase of init/serve and of the offline root (--passphrase-file wins)
  TIERCA_ROOT_DATA   data folder of the offline root's commands (root init/show/sign/revoke/crl; default ./root-data)
  DATABASE_URL       default of --database-url (PostgreSQL); else SQLite in the data folder
  NO_COLOR           no colours, as --no-color

See docs/cli.md for every command.`;

/** Builds the program for one run; commands register themselves from `cli/commands/`. */
export function buildProgram(io: Io, state: { exitCode: number }): Command {
  const program = new Command('tierca')
    .description('tierca: certificate authority and network trust service of the intranet (tiers, layers, domains; OCSP and CRLs)')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for a command')
    .option('--server <url>', 'tierca server (env TIERCA_URL)', io.env.TIERCA_URL || DEFAULT_SERVER_URL)
    .option(
      '--token-file <path>',
      'file holding the API token; else env TIERCA_TOKEN; else, for a server on this machine only, the demo token for the command role in $TIERCA_DATA (demo-officer.token, demo-auditor.token, demo-admin.token)',
    )
    .option('--client-cert <file>', 'log in with this PEM client certificate (a principal\'s, from `principal certificate`) instead of a token; needs an https --server (env TIERCA_CLIENT_CERT)', io.env.TIERCA_CLIENT_CERT || undefined)
    .option('--client-key <file>', 'PEM private key of --client-cert, unencrypted (env TIERCA_CLIENT_KEY)', io.env.TIERCA_CLIENT_KEY || undefined)
    .option('--ca-file <file>', 'PEM certificates that verify an https --server (the tierca root) instead of the system store (env TIERCA_CA_FILE)', io.env.TIERCA_CA_FILE || undefined)
    .option('--json', 'machine output: the API JSON as it came (errors: the problem document on stdout)')
    .option('--no-color', 'no ANSI colours (also NO_COLOR; never when output is not a terminal)')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EXIT_CODES_HELP);

  const context = contextFactory(io, state, VERSION);
  program.commandsGroup('Certificate authority (through the API):');
  whoamiCommand.register(program, context);
  caCommands.register(program, context);
  subjectCommands.register(program, context);
  certCommands.register(program, context);
  requestCommands.register(program, context);
  crlCommands.register(program, context);
  renewCommands.register(program, context); // cert renew, ca rollover, ca links (on the commands above)
  rotateCommands.register(program, context);
  principalCommands.register(program, context);
  auditCommands.register(program, context);
  keystoreCommands.register(program, context);
  kmcCommands.register(program, context);
  acmeCommands.register(program, context);
  estCommands.register(program, context);
  program.commandsGroup('Revocation status (public, no token):');
  ocspCommands.register(program, context);
  program.commandsGroup('On the server machine (no HTTP):');
  initCommand.register(program, context);
  serveCommand.register(program, context);
  dbCommands.register(program, context);
  backupCommands.register(program, context);
  program.commandsGroup('Offline root (local, no server; init/show/sign/revoke/crl on the offline machine, import on the online one):');
  rootCommands.register(program, context);
  program.commandsGroup('Help:').helpCommand('help [command]', 'show help for a command');
  return program;
}

/**
 * Runs `tierca` with `argv` (the arguments after the program name) and returns its exit code; the
 * CLI never calls `process.exit` itself. `io` defaults to the process's streams and environment.
 */
export async function run(argv: string[], io: Partial<Io> = {}): Promise<number> {
  const fullIo: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env, stdin: process.stdin, ...io };
  const state = { exitCode: EXIT.ok as number };
  let program: Command | undefined;
  try {
    program = buildProgram(fullIo, state);
    await program.parseAsync(argv, { from: 'user' });
    return state.exitCode;
  } catch (err) {
    const globals = program?.opts() ?? {};
    return report(err, fullIo, Boolean(globals.json), globals.color !== false);
  }
}

function report(err: unknown, io: Io, json: boolean, colour: boolean): number {
  if (err instanceof CommanderError) {
    // Commander has printed its message or the help already.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT.ok;
    // `tierca help <command>` ends with code 'commander.help' and exit code 0; help shown because a
    // subcommand is missing (`tierca ca`) has exit code 1 and is a usage error.
    if (err.code === 'commander.help' && err.exitCode === 0) return EXIT.ok;
    return EXIT.usage;
  }
  const out = new Output(io, { json, colour });
  if (err instanceof CliError) {
    out.error(err.message);
    if (json && err.problem) out.printJson(err.problem);
    return err.exitCode;
  }
  if (err instanceof TiercaError) {
    // From the local commands (init, serve, db), which call the server's code directly.
    out.error(err.message);
    return ERROR_CODES[err.code]?.exit ?? EXIT.internal;
  }
  // A bug in the CLI: say so plainly; the stack only on request.
  const e = err as Error;
  out.error(`internal error: ${e?.message ?? String(err)}`);
  if (io.env.TIERCA_DEBUG) io.stderr.write(`${e?.stack ?? ''}\n`);
  return EXIT.internal;
}
