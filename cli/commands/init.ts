/**
 * `tierca init`: the key ceremony on the server machine. Makes the root CA, one domain CA per domain
 * and one issuing CA per domain × tier from a config file into an empty database, seals their keys
 * with the keystore passphrase, and prints the hierarchy and the first sysadmin token (once).
 */
import { accessSync, constants } from 'node:fs';
import type { Command } from 'commander';
import { usageError } from '../cli-error.ts';
import type { ContextFactory } from '../context.ts';
import { addDatabaseOptions, databaseParams, type DatabaseOptionValues } from '../local-options.ts';
import { readKeystorePassphrase } from '../passphrase.ts';

interface InitOptions extends DatabaseOptionValues {
  config: string;
  passphraseFile?: string;
}

export function register(program: Command, context: ContextFactory): void {
  const init = program
    .command('init')
    .description('run the key ceremony: create the CA hierarchy of a config file in an empty database (local, no server needed)')
    .requiredOption('--config <file>', 'topology and tier policy, YAML or JSON (e.g. config/xiangtan.example.yaml)');
  addDatabaseOptions(init, context.io.env)
    .option('--passphrase-file <file>', 'file holding the new keystore passphrase; else env TIERCA_PASSPHRASE; else asked twice on a terminal')
    .action(async (opts: InitOptions, cmd: Command) => {
      const { io, out } = context(cmd);
      // Before the passphrase is asked for: a typo in the path should not cost a ceremony's prompt.
      try {
        accessSync(opts.config, constants.R_OK);
      } catch {
        throw usageError(`--config: cannot read ${opts.config}`);
      }
      const passphrase = await readKeystorePassphrase({ env: io.env, file: opts.passphraseFile, stdin: io.stdin, stderr: io.stderr, confirm: true });
      // Loaded here, not at start-up: the other commands must not pay for the server's modules.
      const { initHierarchy } = await import('../../server/bootstrap.ts');
      const { tree, adminToken } = await initHierarchy({ configPath: opts.config, ...databaseParams(opts), passphrase });
      if (out.json) return out.printJson({ tree, adminToken });
      out.print(tree);
      out.print('');
      out.warn('the first sysadmin token follows. It is shown only this once and stored only as a hash:');
      out.warn('save it in a file readable only by you (chmod 600) and use it with --token-file.');
      out.print(adminToken);
    });
}
