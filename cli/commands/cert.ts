/**
 * `tierca cert issue|list|show|revoke|hold|release`: end-entity certificates (/api/v1/certificates).
 *
 * `cert issue --generate` gets the private key back only inside the PKCS#12 of the answer and the
 * server keeps neither the key nor the passphrase, so the `--p12` file is created (exclusively,
 * mode 0600) before the request is sent: a path that cannot be written fails before anything is
 * issued, not after.
 */
import { open, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { KEY_ALGORITHMS } from '../../pki/algorithms.ts';
import { apiPath } from '../api-client.ts';
import { CliError, EXIT, usageError } from '../cli-error.ts';
import type { CommandContext, ContextFactory } from '../context.ts';
import { durationText, hexSerial, isoTime, positiveInteger, REVOCATION_REASONS } from '../option-parsers.ts';
import { shortTime, statusColour, type Column, type Output } from '../output.ts';
import { readPkcs12Passphrase } from '../passphrase.ts';
import { readCsrFile } from '../csr-file.ts';

/** A certificate summary as docs/api.md gives it. */
export interface CertificateSummary {
  serial: string;
  issuerId: string;
  subjectId: string | null;
  profile: string;
  tier: string | null;
  domain: string | null;
  subject: string;
  notBefore: string;
  notAfter: string;
  status: string;
  revokedAt: string | null;
  reason: string | null;
  fingerprint: string;
  keyAlgorithm: string;
}

/** The answer to an issuance (201): the certificate, its chain, and the PKCS#12 when the server made the key. */
export interface Issued {
  certificate: CertificateSummary;
  pem: string;
  chain: string[];
  pkcs12?: string;
  passphrase?: string;
  /** The encryption half of a dual certificate: its certificate and the KMC-made key, delivered once. */
  encryption?: { certificate: CertificateSummary; pem: string; chain: string[]; pkcs12: string; passphrase: string; envelopedKey?: string };
}

/** A pending request (202 when a second officer must approve). */
export interface PendingRequest {
  request: { id: string; [field: string]: unknown };
}

export const CERTIFICATE_STATUSES = ['good', 'revoked', 'hold'] as const;
export const PROFILES = ['organ', 'organ-enc', 'device', 'device-enc', 'user-sign', 'user-enc'] as const;

export const CERTIFICATE_COLUMNS: Column<CertificateSummary>[] = [
  { header: 'serial', value: (c) => c.serial },
  { header: 'issuer', value: (c) => c.issuerId },
  { header: 'subject', value: (c) => c.subject },
  { header: 'profile', value: (c) => c.profile },
  { header: 'tier', value: (c) => c.tier },
  { header: 'status', value: (c) => (c.status === 'revoked' && c.reason ? `revoked (${c.reason})` : c.status), colour: (_s, c) => statusColour(c.status) },
  { header: 'not after', value: (c) => shortTime(c.notAfter) },
];

const pemText = (pem: string): string => `${pem.trimEnd()}\n`;

/** Creates `path` for a private-key file: it must not exist yet; mode 0600. */
export async function createKeyFile(path: string, option = '--p12'): Promise<{ path: string; handle: FileHandle }> {
  try {
    return { path, handle: await open(path, 'wx', 0o600) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw usageError(`${option}: ${path} already exists; choose another file (a key file is never overwritten)`);
    throw usageError(`${option}: cannot create ${path}: ${code ?? String(err)}`);
  }
}

/** Where {@link saveIssued} writes an answer's parts. */
export interface IssuedFiles {
  /** `--out`: the certificate PEM; without it the PEM is printed. */
  out?: string;
  /** `--chain-out`: the chain PEMs, one after the other. */
  chainOut?: string;
  /** The PKCS#12 file, already created by {@link createKeyFile}. */
  p12?: { handle: FileHandle; path: string };
  /** `--enc-out`: the encryption certificate PEM of a dual pair. */
  encOut?: string;
  /** `--enc-key-out` and `--enveloped-out`: the encryption key's PKCS#12 and SM2EnvelopedKey files, already created. */
  encKey?: { handle: FileHandle; path: string };
  enveloped?: { handle: FileHandle; path: string };
}

/**
 * Writes an issuance answer to the files asked for and tells the user what was issued. The PKCS#12
 * goes first: it holds the only copy of the private key. A server-made passphrase is printed once.
 */
export async function saveIssued(issued: Issued, files: IssuedFiles, out: Output): Promise<void> {
  const cert = issued.certificate;
  if (files.p12) {
    if (!issued.pkcs12) {
      throw new CliError(`certificate ${cert?.serial} was issued but the answer holds no PKCS#12`, EXIT.internal);
    }
    try {
      await files.p12.handle.writeFile(Buffer.from(issued.pkcs12, 'base64'));
      await files.p12.handle.chmod(0o600);
    } catch (err) {
      throw new CliError(
        `certificate ${cert.serial} was issued but ${files.p12.path} could not be written (${(err as Error).message}); the key is lost: revoke the certificate and issue again`,
        EXIT.internal,
      );
    } finally {
      await files.p12.handle.close();
    }
  }
  if (files.out) await writeFile(files.out, pemText(issued.pem));
  if (files.chainOut) await writeFile(files.chainOut, (issued.chain ?? []).map(pemText).join(''));
  const enc = issued.encryption;
  for (const [file, content] of [[files.encKey, enc?.pkcs12], [files.enveloped, enc?.envelopedKey]] as const) {
    if (!file) continue;
    try {
      if (content) await file.handle.writeFile(Buffer.from(content, 'base64'));
    } finally {
      await file.handle.close();
    }
    if (!content) await unlink(file.path).catch(() => undefined);
  }
  if (enc && files.encOut) await writeFile(files.encOut, pemText(enc.pem));
  if (out.json) return out.printJson(issued);

  out.print(`issued certificate ${cert.serial} (${cert.profile}, ${cert.tier ?? '-'}, ${cert.domain ?? '-'}) by ${cert.issuerId}, valid until ${shortTime(cert.notAfter)}`);
  out.print(`subject: ${cert.subject}`);
  if (files.out) out.print(`certificate written to ${files.out}`);
  if (files.chainOut) out.print(`chain (${(issued.chain ?? []).length} certificates) written to ${files.chainOut}`);
  if (files.p12) out.print(`PKCS#12 with the private key written to ${files.p12.path} (mode 0600)`);
  if (issued.passphrase) {
    out.print(`PKCS#12 passphrase (shown only this once; the server does not keep it): ${issued.passphrase}`);
  }
  if (enc) {
    out.print(`with its encryption certificate ${enc.certificate.serial} (${enc.certificate.profile}), whose key the key-management centre made and escrowed`);
    if (files.encOut) out.print(`encryption certificate written to ${files.encOut}`);
    if (files.encKey) out.print(`encryption key (PKCS#12) written to ${files.encKey.path} (mode 0600); its passphrase, shown only this once: ${enc.passphrase}`);
    if (files.enveloped && enc.envelopedKey) out.print(`encryption key (SM2EnvelopedKey, to the signing key) written to ${files.enveloped.path}`);
    if (!files.encKey && !(files.enveloped && enc.envelopedKey)) {
      out.warn(`the encryption key was not saved (no --enc-key-out): it stays escrowed; two officers can recover it (tierca key recover ${enc.certificate.serial} --reason …)`);
    }
  }
  if (!files.out) out.print(`\n${pemText(issued.pem).trimEnd()}`);
}


interface IssueOptions {
  subject: string;
  csr?: string;
  generate?: boolean;
  alg?: string;
  p12?: string;
  p12PassphraseFile?: string;
  days?: number;
  profile?: string;
  out?: string;
  chainOut?: string;
  encryption?: boolean;
  encOut?: string;
  encKeyOut?: string;
  envelopedOut?: string;
}

async function issue(ctx: CommandContext, opts: IssueOptions): Promise<void> {
  const { api, out, io } = ctx;
  if (!opts.csr && !opts.generate) throw usageError('cert issue: give --csr <file> (key made by the holder) or --generate (key made by the server)');
  if (opts.generate && !opts.p12) throw usageError('cert issue --generate: --p12 <out.p12> is required (the private key comes back only in it)');
  if (!opts.generate && (opts.alg || opts.p12 || opts.p12PassphraseFile)) {
    throw usageError('cert issue: --alg, --p12 and --p12-passphrase-file go with --generate only');
  }

  const body: Record<string, unknown> = { subjectId: opts.subject };
  if (opts.encryption) body.encryption = true;
  if (opts.profile) body.profile = opts.profile;
  if (opts.days) body.days = opts.days;
  let p12: IssuedFiles['p12'];
  if (opts.csr) {
    body.csr = readCsrFile(opts.csr);
  } else {
    const passphrase = await readPkcs12Passphrase({ file: opts.p12PassphraseFile, stdin: io.stdin, stderr: io.stderr });
    p12 = await createKeyFile(opts.p12!);
    body.generate = { ...(opts.alg ? { algorithm: opts.alg } : {}), ...(passphrase !== undefined ? { passphrase } : {}) };
  }

  const encKey = opts.encKeyOut ? await createKeyFile(opts.encKeyOut, '--enc-key-out') : undefined;
  const enveloped = opts.envelopedOut ? await createKeyFile(opts.envelopedOut, '--enveloped-out') : undefined;
  const made = [p12, encKey, enveloped].filter((f): f is NonNullable<typeof f> => !!f);
  let res;
  try {
    res = await api.post<Issued | PendingRequest>('/api/v1/certificates', body);
  } catch (err) {
    for (const f of made) await discard(f);
    throw err;
  }
  if (res.status === 202) {
    for (const f of made) await discard(f);
    const pending = res.body as PendingRequest;
    if (out.json) return out.printJson(pending);
    const id = pending.request?.id;
    out.print(`request ${id} is pending: a second officer must approve it (tierca request approve ${id})`);
    return;
  }
  await saveIssued(res.body as Issued, { out: opts.out, chainOut: opts.chainOut, p12, encOut: opts.encOut, encKey, enveloped }, out);
}

/** Removes the empty key file made for an issuance that did not happen. */
async function discard(p12: NonNullable<IssuedFiles['p12']>): Promise<void> {
  await p12.handle.close().catch(() => undefined);
  await unlink(p12.path).catch(() => undefined);
}

/** Prints a certificate summary after a status change. */
function printChanged(out: Output, what: string, cert: CertificateSummary): void {
  if (out.json) return out.printJson(cert);
  const reason = cert.status === 'revoked' && cert.reason ? ` (${cert.reason}${cert.revokedAt ? `, ${cert.revokedAt}` : ''})` : '';
  out.print(`${what} certificate ${cert.serial} of ${cert.issuerId}: status ${out.status(cert.status)}${reason}`);
}

export function register(program: Command, context: ContextFactory): void {
  const cert = program.command('cert').description('end-entity certificates: issue, list, show, revoke, hold, release');

  cert
    .command('issue')
    .description('issue a certificate to a registered subject, from a CSR or with a key the server makes (delivered as PKCS#12)')
    .requiredOption('--subject <id>', 'subject id (tierca subject list)')
    .addOption(new Option('--csr <file>', 'PKCS#10 request, PEM or DER (key made by the holder)').conflicts('generate'))
    .option('--generate', 'let the server make the key pair and return it in a PKCS#12 (where the tier allows it)')
    .addOption(new Option('--alg <algorithm>', 'with --generate: key algorithm (default: the server chooses one the tier allows)').choices(KEY_ALGORITHMS))
    .option('--p12 <out.p12>', 'with --generate: new file for the PKCS#12 (created with mode 0600, never overwritten)')
    .option(
      '--p12-passphrase-file <file>',
      'with --generate: file holding the PKCS#12 passphrase; else asked twice on a terminal; else the server makes one and it is printed once',
    )
    .option('--days <n>', 'validity in days (at most the tier maximum)', positiveInteger)
    .addOption(new Option('--profile <profile>', 'certificate profile (default: from the subject kind)').choices(PROFILES))
    .option('--out <cert.pem>', 'write the certificate PEM here (else it is printed)')
    .option('--chain-out <chain.pem>', 'write the chain up to the root here')
    .option('--encryption', 'a user signing certificate: also issue its encryption certificate where the tier makes it optional (where it is required, it always comes)')
    .option('--enc-out <enc.pem>', 'write the encryption certificate of a dual pair here')
    .option('--enc-key-out <key.p12>', 'new file for the encryption key of a dual pair, a PKCS#12 (mode 0600, never overwritten; its passphrase is printed once)')
    .option('--enveloped-out <key.env>', 'new file for an SM2 encryption key as a GM/T 0009 SM2EnvelopedKey to the signing key (what a USB key imports)')
    .action(async (opts: IssueOptions, cmd: Command) => issue(context(cmd), opts));

  cert
    .command('list')
    .description('list certificates: serial, issuer, subject, profile, tier, status, not after')
    .option('--domain <slug>', 'only this domain')
    .option('--tier <tier>', 'only this tier')
    .addOption(new Option('--status <status>', 'only this status').choices(CERTIFICATE_STATUSES))
    .option('--issuer <ca>', 'only certificates issued by this CA id')
    .option('--subject <id>', 'only certificates of this subject id')
    .option('--expiring-within <duration>', 'only certificates that expire within this time, e.g. 30d, 12h, 90m', durationText)
    .option('--limit <n>', 'at most this many', positiveInteger)
    .action(
      async (
        opts: { domain?: string; tier?: string; status?: string; issuer?: string; subject?: string; expiringWithin?: string; limit?: number },
        cmd: Command,
      ) => {
        const { api, out } = context(cmd);
        const certs = await api.get<CertificateSummary[]>('/api/v1/certificates', {
          domain: opts.domain,
          tier: opts.tier,
          status: opts.status,
          issuer: opts.issuer,
          subject: opts.subject,
          expiringWithin: opts.expiringWithin,
          limit: opts.limit,
        });
        if (out.json) return out.printJson(certs);
        out.table(CERTIFICATE_COLUMNS, certs, 'no certificates');
      },
    );

  cert
    .command('show')
    .description('show a certificate: decoded fields, status, PEM')
    .argument('<serial>', 'serial in hex (colons and upper case accepted)', hexSerial)
    .option('--issuer <ca>', 'CA id, when the serial is not unique across CAs')
    .action(async (serial: string, opts: { issuer?: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      const detail = await api.get<Record<string, unknown>>(apiPath`/api/v1/certificates/${serial}`, { issuer: opts.issuer });
      if (out.json) return out.printJson(detail);
      const { pem, chain, ...fields } = detail;
      out.record({ ...fields, ...(Array.isArray(chain) ? { chain: `${chain.length} certificate(s) up to the root (--json shows them)` } : {}) });
      if (typeof pem === 'string') out.print(`\n${pem.trimEnd()}`);
    });

  cert
    .command('revoke')
    .description('revoke a certificate (final, except certificateHold: see cert hold)')
    .argument('<serial>', 'serial in hex', hexSerial)
    .addOption(new Option('--reason <reason>', 'RFC 5280 revocation reason').choices(REVOCATION_REASONS).makeOptionMandatory())
    .option('--invalidity-date <time>', 'when the key is known or suspected to have been compromised (ISO-8601, e.g. 2026-03-01T08:00:00Z)', isoTime)
    .option('--issuer <ca>', 'CA id, when the serial is not unique across CAs')
    .action(async (serial: string, opts: { reason: string; invalidityDate?: string; issuer?: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      const body = { reason: opts.reason, ...(opts.invalidityDate ? { invalidityDate: opts.invalidityDate } : {}), ...(opts.issuer ? { issuer: opts.issuer } : {}) };
      const res = await api.post<CertificateSummary>(apiPath`/api/v1/certificates/${serial}/revoke`, body);
      printChanged(out, 'revoked', res.body);
    });

  for (const [name, verb, description] of [
    ['hold', 'held', 'put a certificate on hold (revoked with reason certificateHold, reversible with cert release)'],
    ['release', 'released', 'release a certificate from hold (good again)'],
  ] as const) {
    cert
      .command(name)
      .description(description)
      .argument('<serial>', 'serial in hex', hexSerial)
      .option('--issuer <ca>', 'CA id, when the serial is not unique across CAs')
      .action(async (serial: string, opts: { issuer?: string }, cmd: Command) => {
        const { api, out } = context(cmd);
        const res = await api.post<CertificateSummary>(apiPath`/api/v1/certificates/${serial}/${name}`, opts.issuer ? { issuer: opts.issuer } : {});
        printChanged(out, verb, res.body);
      });
  }
}
