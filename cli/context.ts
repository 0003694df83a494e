/**
 * What a command's action works with: the printer, the API client and the global options of this
 * run. Built per action from `cmd.optsWithGlobals()` so that global options may stand before or after
 * the subcommand (`tierca --json cert list` and `tierca cert list --json` are the same).
 */
import type { Command } from 'commander';
import { ApiClient, demoRoleFor, parseServerUrl, resolveToken } from './api-client.ts';
import { Output, type Io } from './output.ts';
import { tlsFetch } from './tls-fetch.ts';
import { CliError, EXIT } from './cli-error.ts';

/** The global options (`tierca --help`). */
export interface GlobalOptions {
  server: string;
  tokenFile?: string;
  /** `--client-cert`/`--client-key`: log in with a client certificate instead of a token (cli/tls-fetch.ts). */
  clientCert?: string;
  clientKey?: string;
  /** `--ca-file`: trust anchors for an https server. */
  caFile?: string;
  json: boolean;
  /** False with `--no-color`. */
  color: boolean;
}

export interface CommandContext {
  io: Io;
  out: Output;
  globals: GlobalOptions;
  /** The client for `--server`; the token is read only when an authenticated request is made. */
  api: ApiClient;
  /** Sets the exit code of a run that otherwise succeeds (`ocsp check`: 10 revoked, 11 unknown). */
  setExitCode(code: number): void;
}

/**
 * Gives the context for the command whose action is running; `io` is there for what commands need
 * while registering (option defaults from the environment).
 */
export type ContextFactory = ((cmd: Command) => CommandContext) & { readonly io: Io };

/** The factory for one run of the CLI; `state.exitCode` collects what {@link CommandContext.setExitCode} set. */
export function contextFactory(io: Io, state: { exitCode: number }, version: string): ContextFactory {
  const factory = (cmd: Command): CommandContext => {
    const globals = cmd.optsWithGlobals<GlobalOptions>();
    const out = new Output(io, { json: Boolean(globals.json), colour: globals.color !== false });
    let api: ApiClient | undefined;
    return {
      io,
      out,
      globals,
      // Made on first use, so that the local commands (init, serve, db) never judge --server.
      get api() {
        if (!api) {
          const serverUrl = parseServerUrl(globals.server);
          const names: string[] = [];
          for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
          const demoRole = demoRoleFor(names.slice(1)); // names[0] is the program, `tierca`
          const { clientCert, clientKey, caFile } = globals;
          if (clientCert && serverUrl.protocol !== 'https:') throw new CliError('--client-cert needs an https --server (a certificate is presented only in a TLS handshake)', EXIT.usage);
          api = new ApiClient({
            baseUrl: globals.server,
            // With a client certificate the TLS handshake says who is asking: no token is looked for.
            token: () => (clientCert ? undefined : resolveToken({ tokenFile: globals.tokenFile, env: io.env, serverUrl, demoRole })),
            userAgent: `tierca-cli/${version}`,
            ...(clientCert || clientKey || caFile ? { fetch: tlsFetch({ certFile: clientCert, keyFile: clientKey, caFile }) } : {}),
          });
        }
        return api;
      },
      setExitCode: (code) => (state.exitCode = code),
    };
  };
  return Object.assign(factory, { io });
}
