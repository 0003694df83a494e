/**
 * `tierca init`: the key ceremony on the server machine. Makes the root CA, one domain CA per domain
 * and one issuing CA per domain × tier from a config file into an empty database, seals their keys
 * with the keystore passphrase — or makes them inside a PKCS#11 token (`--keystore pkcs11 --module …
 * --token-label …`, the PIN from --pin-file, TIERCA_PKCS11_PIN or a prompt) — and prints the hierarchy
 * and the first sysadmin token (once).
 */
import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { usageError } from '../cli-error.ts';
import type { ContextFactory } from '../context.ts';
import { addDatabaseOptions, databaseParams, type DatabaseOptionValues } from '../local-options.ts';
import { readKeystorePassphrase, readTokenPin } from '../passphrase.ts';
import type { KeystoreSettings } from '../../server/keystore-custody.ts';

interface InitOptions extends DatabaseOptionValues {
  config: string;
  passphraseFile?: string;
  sysadmins: number;
  keystore?: 'software' | 'pkcs11';
  module?: string;
  tokenLabel?: string;
  pinFile?: string;
  offlineRoot?: string;
  bundleOut?: string;
}

const custody = (text: string): 'software' | 'pkcs11' => {
  if (text !== 'software' && text !== 'pkcs11') throw usageError(`--keystore: "${text}" is not software or pkcs11`);
  return text;
};

function sysadminCount(text: string): number {
  if (!/^[1-9]$/.test(text)) throw usageError(`--sysadmins: "${text}" is not a whole number from 1 to 9`);
  return Number(text);
}

export function register(program: Command, context: ContextFactory): void {
  const init = program
    .command('init')
    .description('run the key ceremony: create the CA hierarchy of a config file in an empty database (local, no server needed)')
    .requiredOption('--config <file>', 'topology and tier policy, YAML or JSON (e.g. config/xiangtan.example.yaml)');
  addDatabaseOptions(init, context.io.env)
    .option('--passphrase-file <file>', 'file holding the new keystore passphrase; else env TIERCA_PASSPHRASE; else asked twice on a terminal')
    .option('--keystore <custody>', 'where the CA keys are made: software (sealed in the database; the default) or pkcs11 (inside a token); else the config\'s keystore', custody)
    .option('--module <path>', 'with --keystore pkcs11: the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so')
    .option('--token-label <label>', 'with --keystore pkcs11: the label of the token to make the keys in')
    .option('--pin-file <file>', 'with PKCS#11: file holding the token user PIN; else env TIERCA_PKCS11_PIN; else asked on a terminal')
    .option('--offline-root <root.pem>', 'the root is kept on an offline machine: its certificate (from `tierca root init`); no root key is made here and the domain CAs wait for the root\'s signature (docs/offline-root.md)')
    .option('--bundle-out <file>', 'with --offline-root: where to write the request bundle (the domain CA certificates for the root to sign) to carry to the offline machine')
    .option('--sysadmins <n>', 'sysadmins to make at the ceremony, each token printed once (2 lets a second person approve the first dual-controlled acts)', sysadminCount, 1)
    .action(async (opts: InitOptions, cmd: Command) => {
      const { io, out } = context(cmd);
      // Before the passphrase is asked for: a typo in the path should not cost a ceremony's prompt.
      try {
        accessSync(opts.config, constants.R_OK);
      } catch {
        throw usageError(`--config: cannot read ${opts.config}`);
      }
      if (opts.offlineRoot && !opts.bundleOut) throw usageError('--offline-root needs --bundle-out <file>: the request bundle for the root');
      if (opts.bundleOut && !opts.offlineRoot) throw usageError('--bundle-out goes with --offline-root');
      let offlineRoot: Buffer | undefined;
      if (opts.offlineRoot) {
        const { decodePemOrDer } = await import('../../pki/pem.ts');
        try {
          offlineRoot = decodePemOrDer(readFileSync(opts.offlineRoot), 'CERTIFICATE');
        } catch (err) {
          throw usageError(`--offline-root: cannot read a certificate from ${opts.offlineRoot}: ${(err as Error).message}`);
        }
      }
      // Loaded here, not at start-up: the other commands must not pay for the server's modules.
      // The config is validated before the passphrase is asked for and before anything is written.
      const { loadConfigFile, documentationArcOids } = await import('../../server/config/load-config.ts');
      const config = loadConfigFile(opts.config);
      const example = documentationArcOids(config);
      if (example.length) warnDocumentationArc(io.stderr, example);
      const keystore = keystoreSettings(opts, config.keystore);
      let secret: { passphrase?: string; pin?: string };
      if (keystore.custody === 'pkcs11') {
        if (opts.passphraseFile && !keystore.inSoftware?.length) throw usageError('--passphrase-file is for software keys; a PKCS#11 token takes --pin-file (keystore.inSoftware keeps layers in software)');
        secret = { pin: await readTokenPin({ env: io.env, file: opts.pinFile, stdin: io.stdin, stderr: io.stderr, tokenLabel: keystore.tokenLabel }) };
        // The layers kept in software (keystore.inSoftware, e.g. the root) are sealed under a passphrase.
        if (keystore.inSoftware?.length) secret.passphrase = await readKeystorePassphrase({ env: io.env, file: opts.passphraseFile, stdin: io.stdin, stderr: io.stderr, confirm: true });
      } else {
        if (opts.pinFile) throw usageError('--pin-file goes with --keystore pkcs11');
        secret = { passphrase: await readKeystorePassphrase({ env: io.env, file: opts.passphraseFile, stdin: io.stdin, stderr: io.stderr, confirm: true }) };
      }
      const { initHierarchy } = await import('../../server/init-ceremony.ts');
      const { tree, adminToken, sysadminTokens, requestBundle } = await initHierarchy({ config, ...databaseParams(opts), ...secret, keystore, sysadmins: opts.sysadmins, offlineRoot });
      let bundle: { file: string; signer: string } | undefined;
      if (requestBundle && opts.bundleOut) {
        const { parseBundle, sha256Hex, formatFingerprint } = await import('../../pki/offline-bundle.ts');
        writeFileSync(opts.bundleOut, requestBundle, { mode: 0o644 });
        bundle = { file: opts.bundleOut, signer: formatFingerprint(sha256Hex(Buffer.from(parseBundle(requestBundle).signer.publicKeyInfo, 'base64'))) };
      }
      if (out.json) return out.printJson({ tree, adminToken, sysadminTokens, ...(bundle ? { requestBundle: bundle.file, requestSigner: bundle.signer } : {}) });
      out.print(tree);
      if (bundle) {
        out.print('');
        out.warn(`the domain CAs await the offline root: carry ${bundle.file} to the offline machine (tierca root sign), then \`tierca root import\` its response here.`);
        out.warn(`the request is signed by this service's key SHA-256 ${bundle.signer}: write it into the ceremony record; \`root sign\` shows it.`);
      }
      out.print('');
      const which = sysadminTokens.length === 1 ? 'the first sysadmin token follows' : `the ${sysadminTokens.length} sysadmin tokens follow, one a line, one for each person`;
      out.warn(`${which}. Each is shown only this once and stored only as a hash:`);
      out.warn('save it in a file readable only by its holder (chmod 600) and use it with --token-file.');
      for (const token of sysadminTokens) out.print(token);
      if (example.length) warnDocumentationArc(io.stderr, example);
    });
}

/** The custody of the ceremony: the flags, else the config file's `keystore`, else software. */
function keystoreSettings(
  opts: InitOptions,
  configured: KeystoreSettings | undefined,
): KeystoreSettings {
  const chosen = opts.keystore ?? configured?.custody ?? 'software';
  if (chosen === 'software') {
    if (opts.module || opts.tokenLabel) throw usageError('--module and --token-label go with --keystore pkcs11');
    return { custody: 'software' };
  }
  const fromConfig = configured?.custody === 'pkcs11' ? configured : undefined;
  const module = opts.module ?? fromConfig?.module;
  const tokenLabel = opts.tokenLabel ?? fromConfig?.tokenLabel;
  if (!module || !tokenLabel) throw usageError('--keystore pkcs11 needs --module and --token-label (or keystore.module and keystore.tokenLabel in the config)');
  return { custody: 'pkcs11', module, tokenLabel, ...(fromConfig?.sessions ? { sessions: fromConfig.sessions } : {}), ...(fromConfig?.inSoftware ? { inSoftware: fromConfig.inSoftware } : {}) };
}

/**
 * The loud warning for tier policies under RFC 5612's documentation arc (1.3.6.1.4.1.32473), as the
 * demo gives one: that arc belongs to no one, so such certificates assert a policy nobody defined.
 */
function warnDocumentationArc(stderr: { write(text: string): unknown }, oids: readonly string[]): void {
  const bar = '!'.repeat(78);
  const lines = [
    bar,
    '!!  DOCUMENTATION POLICY ARC — NOT FOR PRODUCTION',
    `!!  The tier policy OIDs (${oids.join(', ')})`,
    '!!  lie under 1.3.6.1.4.1.32473, RFC 5612\'s arc for examples, which identifies no one.',
    '!!  Set policyArc in the configuration to the arc your OID registry assigned',
    '!!  (typically under 1.2.156), and run the ceremony again into an empty database.',
    bar,
  ];
  stderr.write(`${lines.join('\n')}\n`);
}
