/**
 * `tierca cert renew` and `tierca ca rollover` (and `ca links`): renewal of one certificate
 * (POST /api/v1/certificates/{serial}/renew) and CA key rollover (POST /api/v1/cas/{id}/rollover),
 * registered on the existing `cert` and `ca` commands.
 *
 * `cert renew` without --csr or --generate keeps the key (renew); with them it certifies a new key
 * (rekey). The request id makes it idempotent: after a network failure, run it again with the same
 * `--request-id` and the same successor comes back. A rollover is a bulk change under dual control:
 * without --execute it only shows what it would ask for.
 */
import { writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { Option, type Command } from 'commander';
import { KEY_ALGORITHMS } from '../../pki/algorithms.ts';
import { apiPath } from '../api-client.ts';
import { CliError, EXIT, usageError } from '../cli-error.ts';
import type { CommandContext, ContextFactory } from '../context.ts';
import { hexSerial } from '../option-parsers.ts';
import { shortTime } from '../output.ts';
import { readPkcs12Passphrase } from '../passphrase.ts';
import { createKeyFile, type CertificateSummary } from './cert.ts';
import type { CaDetail } from './ca.ts';
import { readCsrFile } from '../csr-file.ts';

/** The answer to a renewal (201, or 200 when the request id had already been done). */
export interface Renewed {
  certificate: CertificateSummary;
  pem: string;
  chain: string[];
  replaced: CertificateSummary;
  mode: 'renew' | 'rekey';
  supersedeAt: string;
  replayed: boolean;
  pkcs12?: string;
  passphrase?: string;
}

interface RenewOptions {
  issuer?: string;
  csr?: string;
  generate?: boolean;
  alg?: string;
  p12?: string;
  p12PassphraseFile?: string;
  requestId?: string;
  out?: string;
  chainOut?: string;
}

const pemText = (pem: string): string => `${pem.trimEnd()}\n`;


async function renew(ctx: CommandContext, serial: string, opts: RenewOptions): Promise<void> {
  const { api, out, io } = ctx;
  if (opts.generate && !opts.p12) throw usageError('cert renew --generate: --p12 <out.p12> is required (the new private key comes back only in it)');
  if (!opts.generate && (opts.alg || opts.p12 || opts.p12PassphraseFile)) throw usageError('cert renew: --alg, --p12 and --p12-passphrase-file go with --generate only');
  const requestId = opts.requestId ?? `renew-${randomUUID()}`;
  const body: Record<string, unknown> = { requestId, ...(opts.issuer ? { issuer: opts.issuer } : {}) };
  let p12: Awaited<ReturnType<typeof createKeyFile>> | undefined;
  if (opts.csr) body.csr = readCsrFile(opts.csr);
  if (opts.generate) {
    const passphrase = await readPkcs12Passphrase({ file: opts.p12PassphraseFile, stdin: io.stdin, stderr: io.stderr });
    p12 = await createKeyFile(opts.p12!);
    body.generate = { ...(opts.alg ? { algorithm: opts.alg } : {}), ...(passphrase !== undefined ? { passphrase } : {}) };
  }
  let renewed: Renewed;
  try {
    renewed = (await api.post<Renewed>(apiPath`/api/v1/certificates/${serial}/renew`, body)).body;
  } catch (err) {
    if (p12) await p12.handle.close().catch(() => undefined);
    if (err instanceof CliError && err.exitCode === EXIT.unavailable) {
      out.note(`if the server did renew it, \`tierca cert renew ${serial} --request-id ${requestId}\` returns the same successor`);
    }
    throw err;
  }
  if (p12) {
    try {
      if (!renewed.pkcs12) throw new Error('the answer holds no PKCS#12 (this request id was done before: the key was delivered then)');
      await p12.handle.writeFile(Buffer.from(renewed.pkcs12, 'base64'));
    } catch (err) {
      throw new CliError(`certificate ${renewed.certificate.serial} was issued but ${p12.path} could not be written: ${(err as Error).message}`, EXIT.internal);
    } finally {
      await p12.handle.close();
    }
  }
  if (opts.out) await writeFile(opts.out, pemText(renewed.pem));
  if (opts.chainOut) await writeFile(opts.chainOut, renewed.chain.map(pemText).join(''));
  if (out.json) return out.printJson(renewed);
  const c = renewed.certificate;
  const old = renewed.replaced;
  out.print(`${renewed.replayed ? 'already renewed' : renewed.mode === 'rekey' ? 'renewed with a new key' : 'renewed (same key)'}: ${old.issuerId}/${old.serial} → ${c.issuerId}/${c.serial}, valid until ${shortTime(c.notAfter)}`);
  out.print(
    old.status === 'revoked'
      ? `the old certificate is revoked (${old.reason ?? 'superseded'})`
      : `the old certificate stays good until ${shortTime(renewed.supersedeAt)}, then is revoked (superseded)`,
  );
  if (opts.out) out.print(`certificate written to ${opts.out}`);
  if (opts.chainOut) out.print(`chain (${renewed.chain.length} certificates) written to ${opts.chainOut}`);
  if (p12) out.print(`PKCS#12 with the new private key written to ${p12.path} (mode 0600)`);
  if (renewed.passphrase) out.print(`PKCS#12 passphrase (shown only this once; the server does not keep it): ${renewed.passphrase}`);
  if (!opts.out) out.print(`\n${pemText(renewed.pem).trimEnd()}`);
}

async function rollover(ctx: CommandContext, id: string, opts: { ceremony?: boolean; execute?: boolean }): Promise<void> {
  const { api, out } = ctx;
  const detail = await api.get<CaDetail>(apiPath`/api/v1/cas/${id}`);
  if (detail.layer === 'root' && !opts.ceremony) {
    throw usageError('rolling the root over replaces the trust anchor: do it as a key ceremony, with --ceremony');
  }
  if (!opts.execute) {
    if (out.json) return out.printJson({ dryRun: true, action: 'ca-rollover', ca: detail, ceremony: !!opts.ceremony });
    out.print(`would ask to roll CA ${detail.id} (${detail.name}, ${detail.layer}) over to a new key:`);
    out.print('  a new generation with the same name and a new key and certificate; new issuance moves to it at once;');
    out.print('  link certificates (old-with-new, new-with-old) keep both the old and the new certificate valid as anchors;');
    out.print('  the old key keeps signing CRLs and OCSP answers for what it issued until that has expired, then retires.');
    out.print('a second sysadmin must approve the request. Nothing changed; run again with --execute to ask');
    return;
  }
  const res = await api.post<{ request: { id: string } }>(apiPath`/api/v1/cas/${id}/rollover`, opts.ceremony ? { ceremony: true } : {});
  if (out.json) return out.printJson(res.body);
  const request = res.body.request?.id ?? '<id>';
  out.print(`request ${request} to roll CA ${detail.id} over is pending: a second sysadmin must approve it (tierca request approve ${request})`);
}

/** Registers `cert renew`, `ca rollover` and `ca links` on the `cert` and `ca` commands (register those first). */
export function register(program: Command, context: ContextFactory): void {
  const cert = program.commands.find((c) => c.name() === 'cert');
  const ca = program.commands.find((c) => c.name() === 'ca');
  if (!cert || !ca) throw new Error('cli/commands/renew.ts registers on `cert` and `ca`: register those commands first');

  cert
    .command('renew')
    .description('renew a certificate: the same subject, tier, profile and names; the same key, a new one from a CSR, or one the server makes')
    .argument('<serial>', 'serial in hex', hexSerial)
    .option('--issuer <ca>', 'CA id, when the serial is not unique across CAs')
    .addOption(new Option('--csr <file>', 'PKCS#10 request for a new key (rekey), PEM or DER').conflicts('generate'))
    .option('--generate', 'let the server make a new key, delivered as PKCS#12 (where the tier allows it)')
    .addOption(new Option('--alg <algorithm>', 'with --generate: key algorithm').choices(KEY_ALGORITHMS))
    .option('--p12 <out.p12>', 'with --generate: new file for the PKCS#12 (mode 0600, never overwritten)')
    .option('--p12-passphrase-file <file>', 'with --generate: file holding the PKCS#12 passphrase (else asked on a terminal, else made by the server and printed once)')
    .option('--request-id <id>', 'idempotency key: the same id returns the same successor (default: a new one)')
    .option('--out <cert.pem>', 'write the new certificate PEM here (else it is printed)')
    .option('--chain-out <chain.pem>', 'write the chain up to the root here')
    .action(async (serial: string, opts: RenewOptions, cmd: Command) => renew(context(cmd), serial, opts));

  ca
    .command('rollover')
    .description('roll a CA over to a new key (dual control: a second sysadmin approves). Shows what it would ask for unless --execute')
    .argument('<id>', 'CA id, e.g. yuhu-t2 (any generation names the CA)')
    .option('--ceremony', 'required for the root: its rollover replaces the trust anchor')
    .option('--execute', 'really ask for it (without it, nothing changes)')
    .action(async (id: string, opts: { ceremony?: boolean; execute?: boolean }, cmd: Command) => rollover(context(cmd), id, opts));

  ca
    .command('links')
    .description('print the link certificates of a CA\'s rollovers (PEM): give them to relying parties that hold the old or the new anchor')
    .argument('<id>', 'CA id')
    .action(async (id: string, _opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const links = await api.get<{ kind: string; oldCaId: string; newCaId: string; notAfter: string; pem: string }[]>(apiPath`/api/v1/cas/${id}/links`);
      if (out.json) return out.printJson(links);
      if (links.length === 0) return out.print(`CA ${id} has not been rolled over: no link certificates`);
      for (const l of links) out.print(`# ${l.kind}: ${l.oldCaId} ↔ ${l.newCaId}, until ${shortTime(l.notAfter)}\n${pemText(l.pem).trimEnd()}`);
    });
}
