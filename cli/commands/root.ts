/**
 * `tierca root …`: the offline root (docs/offline-root.md). `init`, `show`, `sign`, `revoke` and
 * `crl` run on the OFFLINE machine, on its own data folder (--data, default ./root-data), with
 * no server and no online database; `import` runs on the ONLINE machine, on the service's database,
 * like `init` and `db` (there is no API for it: a person carries the file across the air gap).
 */
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { CliError, EXIT, usageError } from '../cli-error.ts';
import type { ContextFactory } from '../context.ts';
import { addDatabaseOptions, databaseParams, type DatabaseOptionValues } from '../local-options.ts';
import { readKeystorePassphrase, readPassphraseFile, readTokenPin, promptHidden } from '../passphrase.ts';
import { positiveInteger, REVOCATION_REASONS } from '../option-parsers.ts';
import type { InputSource, TextSink } from '../output.ts';

interface RootDataOptions {
  data: string;
}

interface SecretOptions {
  passphraseFile?: string;
  secondPassphraseFile?: string;
  pinFile?: string;
}

const DEFAULT_NEXT_UPDATE = '90d';

function addRootData(cmd: Command, env: Record<string, string | undefined>): Command {
  return cmd.option('--data <dir>', 'the offline root\'s own data folder, never the online service\'s (env TIERCA_ROOT_DATA)', env.TIERCA_ROOT_DATA || './root-data');
}

function addSecrets(cmd: Command): Command {
  return cmd
    .option('--passphrase-file <file>', 'file holding the root keystore passphrase (the first officer\'s under dual control); else env TIERCA_PASSPHRASE; else asked on a terminal')
    .option('--second-passphrase-file <file>', 'under dual control (config root.dualControl): file holding the second officer\'s passphrase; else asked on a terminal')
    .option('--pin-file <file>', 'a root key in a PKCS#11 token: file holding the token user PIN; else env TIERCA_PKCS11_PIN; else asked on a terminal');
}

function nextUpdateOption(): Option {
  return new Option('--next-update <duration>', 'how long the root CRL and the pre-signed OCSP answers stay valid: until the next ceremony (e.g. 90d, 180d)').default(DEFAULT_NEXT_UPDATE);
}

async function nextUpdateMs(text: string): Promise<number> {
  const { parseDuration } = await import('../../pki/duration.ts');
  try {
    const ms = parseDuration(text, ['h', 'd']);
    if (ms < 3_600_000) throw new Error('too short');
    return ms;
  } catch {
    throw usageError(`--next-update: "${text}" is not a duration of hours or days (e.g. 90d)`);
  }
}

function readBundleFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw usageError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/**
 * Keeps a copy of every response in the offline root's folder (`<data>/bundles/response-<n>.bundle`):
 * bundles hold no secret, and a copy lost on the way can be carried again (the online side takes
 * only the next in sequence).
 */
function keepCopy(dataDir: string, sequence: number, bytes: Buffer): void {
  mkdirSync(resolve(dataDir, 'bundles'), { recursive: true, mode: 0o700 });
  writeOut(resolve(dataDir, 'bundles', `response-${sequence}.bundle`), bytes);
}

function writeOut(path: string, bytes: Buffer | string): void {
  try {
    writeFileSync(path, bytes, { mode: 0o644 });
  } catch (err) {
    throw usageError(`cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** The root's passphrases: one, or — under dual control — two from two people (files or prompts), never the same. */
async function readRootSecrets(
  opts: SecretOptions, custody: 'software' | 'pkcs11', dualControl: boolean, io: { env: Record<string, string | undefined>; stdin: InputSource; stderr: TextSink }, confirm: boolean,
): Promise<{ passphrases?: string[]; pin?: string }> {
  if (custody === 'pkcs11') {
    if (opts.passphraseFile || opts.secondPassphraseFile) throw usageError('the root key is in a PKCS#11 token: give --pin-file, not passphrases');
    return { pin: await readTokenPin({ env: io.env, file: opts.pinFile, stdin: io.stdin, stderr: io.stderr, tokenLabel: 'root' }) };
  }
  if (opts.pinFile) throw usageError('--pin-file goes with a root key in a PKCS#11 token');
  if (!dualControl && opts.secondPassphraseFile) throw usageError('--second-passphrase-file: the root is not under dual control (config root.dualControl)');
  const first = await readKeystorePassphrase({ env: io.env, file: opts.passphraseFile, stdin: io.stdin, stderr: io.stderr, confirm });
  if (!dualControl) return { passphrases: [first] };
  let second: string;
  if (opts.secondPassphraseFile) second = readPassphraseFile(opts.secondPassphraseFile, '--second-passphrase-file');
  else if (io.stdin.isTTY) {
    second = await promptHidden({ stdin: io.stdin, stderr: io.stderr, prompt: 'Second officer\'s passphrase: ' });
    if (confirm && (await promptHidden({ stdin: io.stdin, stderr: io.stderr, prompt: 'Second officer, repeat it: ' })) !== second) throw usageError('the two passphrases differ');
  } else throw usageError('the root is under dual control: give --second-passphrase-file (the second officer\'s), or run on a terminal');
  return { passphrases: [first, second] };
}

/** Asks "yes" on a terminal; without one, --yes must have been given. */
async function confirmed(io: { stdin: InputSource; stderr: TextSink }, question: string, yes: boolean | undefined): Promise<boolean> {
  if (yes) return true;
  if (!io.stdin.isTTY) throw usageError('nothing signed: confirm with --yes (there is no terminal to ask on)');
  const answer = await promptVisible(io, `${question} [yes/no] `);
  return answer.trim().toLowerCase() === 'yes';
}

function promptVisible(io: { stdin: InputSource; stderr: TextSink }, prompt: string): Promise<string> {
  return new Promise((resolveAnswer) => {
    io.stderr.write(prompt);
    let text = '';
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      const end = text.indexOf('\n');
      if (end >= 0) {
        io.stdin.removeListener('data', onData);
        io.stdin.pause();
        resolveAnswer(text.slice(0, end));
      }
    };
    io.stdin.on('data', onData);
    io.stdin.resume();
  });
}

export function register(program: Command, context: ContextFactory): void {
  const env = context.io.env;
  const root = program.command('root').description('the offline root: key ceremony and bundles across the air gap (local, no server; docs/offline-root.md)');

  addSecrets(addRootData(root
    .command('init')
    .description('OFFLINE machine: make the root key and self-signed root certificate in the root\'s own data folder; prints its SHA-256 fingerprint')
    .requiredOption('--config <file>', 'topology and policy, YAML or JSON (root name, algorithm, lifetime, root.dualControl)')
    .option('--cert-out <file>', 'also write the root certificate (PEM) here; it is always in <data>/root.pem')
    .option('--keystore <custody>', 'software (sealed under the passphrase; the default) or pkcs11 (made inside a token); else the config\'s keystore')
    .option('--module <path>', 'with --keystore pkcs11: the PKCS#11 module')
    .option('--token-label <label>', 'with --keystore pkcs11: the token to make the key in'), env))
    .action(async (opts: RootDataOptions & SecretOptions & { config: string; certOut?: string; keystore?: string; module?: string; tokenLabel?: string }, cmd: Command) => {
      const { io, out } = context(cmd);
      try {
        accessSync(opts.config, constants.R_OK);
      } catch {
        throw usageError(`--config: cannot read ${opts.config}`);
      }
      const { loadConfigFile } = await import('../../server/config/load-config.ts');
      const config = loadConfigFile(opts.config);
      const chosen = opts.keystore ?? config.keystore?.custody ?? 'software';
      if (chosen !== 'software' && chosen !== 'pkcs11') throw usageError(`--keystore: "${chosen}" is not software or pkcs11`);
      let keystore: import('../../server/keystore-custody.ts').KeystoreSettings = { custody: 'software' };
      if (chosen === 'pkcs11') {
        const fromConfig = config.keystore?.custody === 'pkcs11' ? config.keystore : undefined;
        const module = opts.module ?? fromConfig?.module;
        const tokenLabel = opts.tokenLabel ?? fromConfig?.tokenLabel;
        if (!module || !tokenLabel) throw usageError('--keystore pkcs11 needs --module and --token-label (or keystore.module and keystore.tokenLabel in the config)');
        keystore = { custody: 'pkcs11', module, tokenLabel };
      }
      const secrets = await readRootSecrets(opts, chosen, config.root.dualControl ?? false, io, true);
      const { rootInit } = await import('../../server/offline-root/machine.ts');
      const { systemClock } = await import('../../server/clock.ts');
      const { certificateToPem } = await import('../../pki/pem.ts');
      const { formatFingerprint } = await import('../../pki/offline-bundle.ts');
      const dataDir = resolve(opts.data);
      const made = await rootInit({ dataDir, config, keystore, secrets, now: systemClock.now() });
      const pem = certificateToPem(made.certificate);
      writeOut(resolve(dataDir, 'root.pem'), pem);
      if (opts.certOut) writeOut(opts.certOut, pem);
      const result = { fingerprint: made.fingerprint, certificate: resolve(dataDir, 'root.pem'), notAfter: made.notAfter.toISOString(), dualControl: config.root.dualControl ?? false };
      if (out.json) return out.printJson(result);
      out.record({ root: made.subject, 'SHA-256': formatFingerprint(made.fingerprint), until: result.notAfter, certificate: result.certificate, 'dual control': result.dualControl ? 'yes' : 'no' });
      out.warn('write the SHA-256 fingerprint into the ceremony record; the online machine takes root.pem with `tierca init --offline-root`.');
    });

  addRootData(root.command('show').description('OFFLINE machine: the root\'s fingerprint, ceremony counters and the certificates it issued'), env)
    .action(async (opts: RootDataOptions, cmd: Command) => {
      const { out } = context(cmd);
      const { rootShow } = await import('../../server/offline-root/machine.ts');
      const { formatFingerprint } = await import('../../pki/offline-bundle.ts');
      const shown = await rootShow(resolve(opts.data));
      const { certificate: _c, ...rest } = shown;
      if (out.json) return out.printJson(rest);
      out.record({ 'SHA-256': formatFingerprint(shown.fingerprint), 'dual control': shown.dualControl ? 'yes' : 'no', 'last request signed': shown.lastRequest, 'last response written': shown.lastResponse });
      out.table([
        { header: 'ca', value: (i: (typeof shown.issued)[number]) => i.ca },
        { header: 'serial', value: (i) => i.serial },
        { header: 'until', value: (i) => i.notAfter.slice(0, 10) },
        { header: 'status', value: (i) => i.status },
      ], shown.issued, 'the root has issued no certificate yet');
    });

  addSecrets(addRootData(root
    .command('sign <request-bundle>')
    .description('OFFLINE machine: show what a request bundle asks (domain CA certificates: subjects, key fingerprints, name constraints, validity; revocations: CA, serial, reason), ask for confirmation and the officers\' passphrases, and write the response bundle')
    .requiredOption('--out <file>', 'the response bundle to write (carry it to the online machine: tierca root import)')
    .option('--yes', 'sign without asking (scripts); what is signed is still printed')
    .addOption(nextUpdateOption()), env))
    .action(async (file: string, opts: RootDataOptions & SecretOptions & { out: string; yes?: boolean; nextUpdate: string }, cmd: Command) => {
      const { io, out } = context(cmd);
      const bytes = readBundleFile(file);
      const ms = await nextUpdateMs(opts.nextUpdate);
      const { rootReadRequest, rootSign } = await import('../../server/offline-root/machine.ts');
      const { formatFingerprint } = await import('../../pki/offline-bundle.ts');
      const dataDir = resolve(opts.data);
      const checked = await rootReadRequest(dataDir, bytes);
      // What will be signed goes to stderr for people (stdout stays for --json), before any secret is asked.
      const say = (line: string) => io.stderr.write(`${line}\n`);
      say(`request bundle ${checked.envelope.sequence} of ${checked.envelope.createdAt}, signed by the online service key SHA-256 ${formatFingerprint(checked.signerFingerprint)}`);
      if (checked.pinsSigner) say('  (first request: this key is pinned now; compare its fingerprint with the one `tierca init` printed on the online machine)');
      for (const s of checked.summaries) {
        say(`\n  domain CA ${s.ca}`);
        say(`    subject:          ${s.subject}`);
        say(`    key SHA-256:      ${formatFingerprint(s.keyFingerprint)}`);
        say(`    validity:         ${s.notBefore} → ${s.notAfter}`);
        say(`    policies:         ${s.policies.join(', ')}`);
        say(`    name constraints: ${s.nameConstraints.join('; ')}`);
      }
      const { reasonName } = await import('../../pki/revocation-reason.ts');
      for (const r of checked.revocations) {
        say(`\n  revoke domain CA ${r.ca}${r.already ? ' (revoked on this machine already: nothing more to do)' : ''}`);
        say(`    serial:           ${r.serial}`);
        say(`    reason:           ${reasonName(r.reason)}`);
      }
      say(`\n  and a root CRL and OCSP answers valid for ${opts.nextUpdate}`);
      const revoking = checked.revocations.filter((r) => !r.already).length;
      if (!(await confirmed(io, `Sign ${checked.summaries.length} certificate(s)${revoking ? ` and revoke ${revoking}` : ''}?`, opts.yes))) throw new CliError('nothing signed: not confirmed', EXIT.usage);
      const { readCustodyOfRoot } = await custodyHelper();
      const secrets = await readRootSecrets(opts, await readCustodyOfRoot(dataDir), checked.dualControl, io, false);
      const { systemClock } = await import('../../server/clock.ts');
      const made = await rootSign({ dataDir, bytes, secrets, now: systemClock.now(), nextUpdateMs: ms });
      keepCopy(dataDir, made.sequence, made.bytes);
      writeOut(opts.out, made.bytes);
      const revoked = checked.revocations.filter((r) => !r.already).map((r) => r.ca);
      const result = { response: made.sequence, out: opts.out, certified: made.certified, revoked, crlNumber: made.crlNumber, nextUpdate: made.nextUpdate.toISOString() };
      if (out.json) return out.printJson(result);
      out.print(`wrote response bundle ${made.sequence} to ${opts.out}: ${made.certified.map((c) => `${c.ca} (serial ${c.serial})`).join(', ') || 'no certificate'}${revoked.length ? `; revoked ${revoked.join(', ')}` : ''}; root CRL ${made.crlNumber} valid until ${result.nextUpdate}`);
    });

  addSecrets(addRootData(root
    .command('revoke <ca>')
    .description('OFFLINE machine: revoke a domain CA certificate the root issued (by CA id or serial); `root crl` then carries it across')
    .addOption(new Option('--reason <reason>', 'RFC 5280 revocation reason').choices(REVOCATION_REASONS).makeOptionMandatory())
    .option('--yes', 'revoke without asking'), env))
    .action(async (ca: string, opts: RootDataOptions & SecretOptions & { reason: string; yes?: boolean }, cmd: Command) => {
      const { io, out } = context(cmd);
      const dataDir = resolve(opts.data);
      const { rootShow, rootRevoke } = await import('../../server/offline-root/machine.ts');
      const { reasonCode } = await import('../../pki/revocation-reason.ts');
      const shown = await rootShow(dataDir);
      if (!(await confirmed(io, `Revoke ${ca} (${opts.reason})? This is final.`, opts.yes))) throw new CliError('nothing revoked: not confirmed', EXIT.usage);
      const { readCustodyOfRoot } = await custodyHelper();
      const secrets = await readRootSecrets(opts, await readCustodyOfRoot(dataDir), shown.dualControl, io, false);
      const { systemClock } = await import('../../server/clock.ts');
      const done = await rootRevoke({ dataDir, ca, reason: reasonCode(opts.reason), secrets, now: systemClock.now() });
      if (out.json) return out.printJson(done);
      out.print(`revoked ${done.ca} (serial ${done.serial}) on the offline root; carry it across with \`tierca root crl --out …\` and \`tierca root import\``);
    });

  addSecrets(addRootData(root
    .command('crl')
    .description('OFFLINE machine: a new root CRL and pre-signed OCSP answers for the domain CAs (and any revocation since the last bundle) as a response bundle')
    .requiredOption('--out <file>', 'the response bundle to write')
    .addOption(nextUpdateOption()), env))
    .action(async (opts: RootDataOptions & SecretOptions & { out: string; nextUpdate: string }, cmd: Command) => {
      const { io, out } = context(cmd);
      const ms = await nextUpdateMs(opts.nextUpdate);
      const dataDir = resolve(opts.data);
      const { rootShow, rootCrl } = await import('../../server/offline-root/machine.ts');
      const shown = await rootShow(dataDir);
      const { readCustodyOfRoot } = await custodyHelper();
      const secrets = await readRootSecrets(opts, await readCustodyOfRoot(dataDir), shown.dualControl, io, false);
      const { systemClock } = await import('../../server/clock.ts');
      const made = await rootCrl({ dataDir, secrets, now: systemClock.now(), nextUpdateMs: ms });
      keepCopy(dataDir, made.sequence, made.bytes);
      writeOut(opts.out, made.bytes);
      const result = { response: made.sequence, out: opts.out, crlNumber: made.crlNumber, nextUpdate: made.nextUpdate.toISOString() };
      if (out.json) return out.printJson(result);
      out.print(`wrote response bundle ${made.sequence} to ${opts.out}: root CRL ${made.crlNumber} valid until ${result.nextUpdate}`);
    });

  addSecrets(addRootData(root
    .command('rollover')
    .description('OFFLINE machine: a new root key and certificate, the two link certificates and every domain CA re-certified under the new root, as a response bundle signed by the old root key (docs/offline-root.md, "Root rollover")')
    .requiredOption('--config <file>', 'the configuration `root init` took (the root\'s name, algorithm and lifetime; publicUrl for the new root\'s URLs)')
    .requiredOption('--out <file>', 'the response bundle to write (carry it to the online machine: tierca root import)')
    .option('--validity <years>', 'the new root\'s lifetime in years (default: the config\'s root.validityYears)')
    .option('--yes', 'sign without asking (scripts); what is signed is still printed')
    .addOption(nextUpdateOption()), env))
    .action(async (opts: RootDataOptions & SecretOptions & { config: string; out: string; validity?: string; yes?: boolean; nextUpdate: string }, cmd: Command) => {
      const { io, out } = context(cmd);
      const ms = await nextUpdateMs(opts.nextUpdate);
      const validityYears = opts.validity === undefined ? undefined : Number(opts.validity);
      if (validityYears !== undefined && !/^\d+$/.test(opts.validity!)) throw usageError(`--validity: "${opts.validity}" is not a whole number of years`);
      try {
        accessSync(opts.config, constants.R_OK);
      } catch {
        throw usageError(`--config: cannot read ${opts.config}`);
      }
      const config = (await import('../../server/config/load-config.ts')).loadConfigFile(opts.config);
      const { rootRolloverPlan, rootRollover } = await import('../../server/offline-root/rollover.ts');
      const { systemClock } = await import('../../server/clock.ts');
      const { formatFingerprint } = await import('../../pki/offline-bundle.ts');
      const { certificateToPem } = await import('../../pki/pem.ts');
      const dataDir = resolve(opts.data);
      const plan = await rootRolloverPlan({ dataDir, config, now: systemClock.now(), validityYears });
      const say = (line: string) => io.stderr.write(`${line}\n`);
      say(`root rollover: ${plan.old.ca} (SHA-256 ${formatFingerprint(plan.old.fingerprint)}, until ${plan.old.notAfter}) → ${plan.ca}`);
      say(`  new root:   ${plan.subject}, a new ${plan.algorithm} key, ${plan.notBefore} → ${plan.notAfter}`);
      say(`  links:      new-with-old (the new key signed by the old) and old-with-new (the old key signed by the new)`);
      for (const r of plan.recertify) say(`  domain CA ${r.ca} again under ${plan.ca}: ${r.subject}, key SHA-256 ${formatFingerprint(r.keyFingerprint)}, until ${r.notAfter}`);
      say(`  the response is signed by the old root key; root CRLs and OCSP answers valid for ${opts.nextUpdate}`);
      if (!(await confirmed(io, `Roll the root over and sign ${plan.recertify.length} domain CA certificate(s)?`, opts.yes))) throw new CliError('nothing signed: not confirmed', EXIT.usage);
      const { readCustodyOfRoot } = await custodyHelper();
      const secrets = await readRootSecrets(opts, await readCustodyOfRoot(dataDir), plan.dualControl, io, false);
      const made = await rootRollover({ dataDir, config, secrets, now: systemClock.now(), nextUpdateMs: ms, validityYears });
      keepCopy(dataDir, made.sequence, made.bytes);
      writeOut(opts.out, made.bytes);
      writeOut(resolve(dataDir, `${made.ca}.pem`), certificateToPem(made.certificate));
      writeOut(resolve(dataDir, `${made.ca}-links.pem`), certificateToPem(made.links.oldWithNew) + certificateToPem(made.links.newWithOld));
      const result = { response: made.sequence, out: opts.out, root: made.ca, fingerprint: made.fingerprint, certificate: resolve(dataDir, `${made.ca}.pem`), recertified: made.certified, nextUpdate: made.nextUpdate.toISOString() };
      if (out.json) return out.printJson(result);
      out.record({ response: made.sequence, 'new root': made.ca, 'SHA-256': formatFingerprint(made.fingerprint), certificate: result.certificate, links: resolve(dataDir, `${made.ca}-links.pem`), recertified: made.certified.map((c) => `${c.ca} (serial ${c.serial})`) });
      out.warn('write the new root\'s SHA-256 fingerprint into the ceremony record and carry the response to the online machine (tierca root import); relying parties take the new root and the links out of band.');
    });

  addDatabaseOptions(root
    .command('request')
    .description('ONLINE machine: write the next request bundle with everything decided online that the root must sign (domain CA revocations and rollovers, new domains), signed by the audit key; refused when nothing is pending')
    .requiredOption('--out <file>', 'the request bundle to write (carry it to the offline machine: tierca root sign)')
    .option('--again <sequence>', 'write request bundle <sequence> again, as it was written (a copy lost on the way; not one a response answered); needs no passphrase', positiveInteger)
    .option('--passphrase-file <file>', 'file holding the keystore passphrase (the audit key signs the bundle); else env TIERCA_PASSPHRASE')
    .option('--pin-file <file>', 'with CA keys in a PKCS#11 token: file holding its user PIN; else env TIERCA_PKCS11_PIN'), env)
    .action(async (opts: DatabaseOptionValues & { out: string; again?: number; passphraseFile?: string; pinFile?: string }, cmd: Command) => {
      const { io, out } = context(cmd);
      if (opts.again !== undefined) {
        const { requestRootBundleCopy } = await import('../../server/online-root-commands.ts');
        const { formatFingerprint } = await import('../../pki/offline-bundle.ts');
        const copy = await requestRootBundleCopy({ ...databaseParams(opts), sequence: opts.again });
        writeOut(opts.out, copy.bytes);
        if (out.json) return out.printJson({ request: copy.sequence, out: opts.out, digest: copy.digest, copy: true });
        return out.record({ request: copy.sequence, out: opts.out, copy: 'as written before', 'SHA-256': formatFingerprint(copy.digest) });
      }
      const passphrase = opts.passphraseFile ? readPassphraseFile(opts.passphraseFile, '--passphrase-file') : io.env.TIERCA_PASSPHRASE || undefined;
      const pin = opts.pinFile ? readPassphraseFile(opts.pinFile, '--pin-file') : io.env.TIERCA_PKCS11_PIN || undefined;
      const { requestRootBundle } = await import('../../server/online-root-commands.ts');
      const { formatFingerprint } = await import('../../pki/offline-bundle.ts');
      const made = await requestRootBundle({ ...databaseParams(opts), passphrase, pin });
      writeOut(opts.out, made.bytes);
      const result = { request: made.sequence, out: opts.out, digest: made.digest, certify: made.certify, revoke: made.revoke };
      if (out.json) return out.printJson(result);
      out.record({ request: made.sequence, out: opts.out, certify: made.certify.length ? made.certify : '—', revoke: made.revoke.length ? made.revoke : '—', 'SHA-256': formatFingerprint(made.digest) });
    });

  addDatabaseOptions(root
    .command('import <response-bundle>')
    .description('ONLINE machine: install a response bundle of the offline root (certificates, revocations, root CRL, OCSP answers, offline audit records) into the service\'s database; a running service takes it up within seconds'), env)
    .action(async (file: string, opts: DatabaseOptionValues, cmd: Command) => {
      const { out } = context(cmd);
      const bytes = readBundleFile(file);
      const { importResponse } = await import('../../server/online-root-commands.ts');
      const done = await importResponse({ ...databaseParams(opts), bytes });
      if (out.json) return out.printJson(done);
      out.record({
        response: done.sequence, answers: done.answered ?? '—', certified: done.certified, activated: done.activated, revoked: done.revoked,
        'root CRL until': done.crlNextUpdate.toISOString(), 'OCSP answers': done.ocspAnswers, 'offline audit records': done.auditRecords,
        ...(done.rolledOver ? { 'rolled over to': `${done.rolledOver.root} (SHA-256 ${done.rolledOver.fingerprint})`, recertified: done.rolledOver.recertified } : {}),
      });
    });
}

/** Reads which custody the root key is in, without any secret (to know whether to ask for passphrases or a PIN). */
async function custodyHelper(): Promise<{ readCustodyOfRoot(dataDir: string): Promise<'software' | 'pkcs11'> }> {
  const { rootCustody } = await import('../../server/offline-root/machine.ts');
  return { readCustodyOfRoot: rootCustody };
}
