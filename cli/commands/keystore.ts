/**
 * `tierca keystore status` (sysadmins; GET /api/v1/keystore): where each CA and audit key is held —
 * software, or a PKCS#11 token (label, serial, slot, object label and id) — its algorithm, the CAs
 * it signs for, and whether the server can sign with it now. Exits 7 when a key cannot sign.
 *
 * `tierca keystore add-token` (on the server machine, no HTTP): adds a PKCS#11 token to a software
 * installation; from then on new keys are made in the token, so a CA moves into the HSM by its next
 * rollover (docs/decisions/0021-pkcs11-custody.md).
 */
import type { Command } from 'commander';
import { CliError, EXIT, usageError } from '../cli-error.ts';
import type { ContextFactory } from '../context.ts';
import { addDatabaseOptions, databaseParams, type DatabaseOptionValues } from '../local-options.ts';
import { readPassphraseFile, readTokenPin } from '../passphrase.ts';

interface AddTokenOptions extends DatabaseOptionValues {
  module: string;
  tokenLabel: string;
  pinFile?: string;
  passphraseFile?: string;
}

interface KeyStatusView {
  keyId: string;
  purpose: string;
  algorithm: string;
  cas: { id: string; status: string }[];
  location: { custody: 'software' } | { custody: 'pkcs11'; tokenLabel: string; tokenSerial: string; slot: string; objectLabel: string; objectId: string };
  canSign: boolean;
  fault?: string;
}

export function register(program: Command, context: ContextFactory): void {
  const keystore = program.command('keystore').description('the CA key custody: where each CA key is held (sysadmin)');
  keystore
    .command('status')
    .description('for each CA and audit key: where it is held (software, or token, slot and object), its algorithm, and whether the server can sign with it now')
    .action(async (_opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const status = await api.get<{ custody: string; keys: KeyStatusView[] }>('/api/v1/keystore');
      if (out.json) out.printJson(status);
      else {
        out.note(`custody: ${status.custody}`);
        out.table<KeyStatusView>([
          { header: 'KEY', value: (k) => k.keyId },
          { header: 'PURPOSE', value: (k) => k.purpose },
          { header: 'ALGORITHM', value: (k) => k.algorithm },
          { header: 'CAS', value: (k) => k.cas.map((c) => (c.status === 'active' ? c.id : `${c.id} (${c.status})`)).join(', ') || '-' },
          { header: 'WHERE', value: (k) => (k.location.custody === 'software' ? 'software' : `token ${k.location.tokenLabel} (serial ${k.location.tokenSerial}, slot ${k.location.slot}) object ${k.location.objectLabel} id ${k.location.objectId}`) },
          { header: 'CAN SIGN', value: (k) => (k.canSign ? 'yes' : `NO (${k.fault ?? 'unknown'})`), colour: (_c, k) => (k.canSign ? 'green' : 'red') },
        ], status.keys, 'no keys');
      }
      const broken = status.keys.filter((k) => !k.canSign);
      if (broken.length) throw new CliError(`${broken.length} key(s) cannot sign now: ${broken.map((k) => `${k.keyId} (${k.fault ?? 'unknown'})`).join(', ')}`, EXIT.keystore);
    });

  const addToken = keystore
    .command('add-token')
    .description('add a PKCS#11 token to a software installation: new keys (a CA rollover\'s next generation) are made in it from then on (local, no server needed)')
    .requiredOption('--module <path>', 'the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so')
    .requiredOption('--token-label <label>', 'the label of the token');
  addDatabaseOptions(addToken, context.io.env)
    .option('--pin-file <file>', 'file holding the token user PIN; else env TIERCA_PKCS11_PIN; else asked on a terminal')
    .option('--passphrase-file <file>', 'file holding the keystore passphrase (checked before the token is added); else env TIERCA_PASSPHRASE')
    .action(async (opts: AddTokenOptions, cmd: Command) => {
      const { io, out } = context(cmd);
      const passphrase = opts.passphraseFile ? readPassphraseFile(opts.passphraseFile, '--passphrase-file') : io.env.TIERCA_PASSPHRASE || undefined;
      if (!passphrase) throw usageError('the keystore passphrase is needed: set TIERCA_PASSPHRASE or use --passphrase-file');
      const pin = await readTokenPin({ env: io.env, file: opts.pinFile, stdin: io.stdin, stderr: io.stderr, tokenLabel: opts.tokenLabel });
      const { addToken: add } = await import('../../server/bootstrap.ts');
      await add({ ...databaseParams(opts), passphrase, pin, module: opts.module, tokenLabel: opts.tokenLabel });
      if (out.json) return out.printJson({ added: { module: opts.module, tokenLabel: opts.tokenLabel } });
      out.print(`token "${opts.tokenLabel}" added: new CA keys are made in it from now on; roll each CA over (tierca ca rollover <id>) to move it into the token`);
      out.warn('serve now needs the token PIN as well as the keystore passphrase (TIERCA_PKCS11_PIN or --pin-file)');
    });
}
