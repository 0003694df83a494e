/**
 * `tierca principal add|list|disable|certificate`: the principals of the admin API (sysadmins,
 * officers, auditors, devices) and their credentials. A new principal's token is shown once — the
 * server keeps only its hash — so `--token-out` writes it to a new file (mode 0600) instead of the
 * screen. `certificate` issues the principal's client certificate for mutual TLS from its CSR.
 */
import { unlink, writeFile } from 'node:fs/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { apiPath } from '../api-client.ts';
import { usageError } from '../cli-error.ts';
import type { ContextFactory } from '../context.ts';
import { positiveInteger } from '../option-parsers.ts';
import { shortTime, type Column } from '../output.ts';
import { createKeyFile, type CertificateSummary } from './cert.ts';
import { readCsrFile } from '../csr-file.ts';

export const ROLES = ['sysadmin', 'officer', 'auditor', 'device'] as const;

/** A principal as the API gives it. */
export interface PrincipalView {
  id: string;
  name: string;
  role: string;
  domains: string[];
  disabled: boolean;
  createdAt: string;
  /** Only in the answer to `add`, once. */
  token?: string;
}

const PRINCIPAL_COLUMNS: Column<PrincipalView>[] = [
  { header: 'id', value: (p) => p.id },
  { header: 'name', value: (p) => p.name },
  { header: 'role', value: (p) => p.role },
  { header: 'domains', value: (p) => p.domains },
  { header: 'status', value: (p) => (p.disabled ? 'disabled' : 'active'), colour: (s) => (s === 'disabled' ? 'red' : 'green') },
  { header: 'created', value: (p) => shortTime(p.createdAt) },
];

/** `--domains yuhu,shaoshan`: a comma-separated list of domain slugs. */
function domainList(value: string): string[] {
  const domains = value.split(',').map((d) => d.trim()).filter(Boolean);
  if (domains.length === 0 || domains.some((d) => !/^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/.test(d))) {
    throw new InvalidArgumentError('expected domain slugs separated by commas, e.g. yuhu,shaoshan.');
  }
  return domains;
}


export function register(program: Command, context: ContextFactory): void {
  const principal = program.command('principal').description('principals of the admin API and their credentials (sysadmin)');

  principal
    .command('add')
    .description('create a principal and its API token; the token is shown once (or written to --token-out) and stored only hashed. A sysadmin or an officer is a request a second sysadmin approves (`request approve` then shows the token)')
    .addOption(new Option('--role <role>', 'its one role').choices(ROLES).makeOptionMandatory())
    .requiredOption('--name <name>', 'who it is, e.g. "雨湖区安全员"')
    .option('--domains <list>', 'officers only: the domains it acts in, comma-separated (e.g. yuhu,shaoshan)', domainList)
    .option('--token-out <file>', 'write the token to this new file (mode 0600) instead of printing it')
    .action(async (opts: { role: string; name: string; domains?: string[]; tokenOut?: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      if (opts.role === 'officer' && !opts.domains) throw usageError('principal add --role officer: --domains is required');
      if (opts.role !== 'officer' && opts.domains) throw usageError(`principal add: only officers have --domains, not a ${opts.role}`);
      // Created before the request: a file that cannot be written must fail before a token exists.
      const tokenFile = opts.tokenOut ? await createKeyFile(opts.tokenOut, '--token-out') : undefined;
      let made: PrincipalView;
      try {
        const res = await api.post<PrincipalView & { request?: { id: string } }>('/api/v1/principals', { name: opts.name, role: opts.role, ...(opts.domains ? { domains: opts.domains } : {}) });
        if (res.status === 202 && res.body.request) {
          // A sysadmin or an officer waits for a second sysadmin; no token exists yet (decision 0014).
          if (tokenFile) await tokenFile.handle.close().then(() => unlink(tokenFile.path)).catch(() => undefined);
          if (out.json) return out.printJson(res.body);
          out.print(`request ${res.body.request.id}: a second sysadmin approves it with \`tierca request approve ${res.body.request.id}\`, which prints the new principal's token once`);
          return;
        }
        made = res.body;
        if (tokenFile) await tokenFile.handle.writeFile(`${made.token}\n`);
      } finally {
        await tokenFile?.handle.close().catch(() => undefined);
      }
      if (out.json) return out.printJson(tokenFile ? { ...made, token: undefined, tokenFile: tokenFile.path } : made);
      const { token, ...fields } = made;
      out.record({ id: fields.id, name: fields.name, role: fields.role, domains: fields.domains });
      if (tokenFile) return out.print(`token written to ${tokenFile.path} (mode 0600); it is not shown again`);
      out.note('the token follows; it is shown only this once (the server keeps only its hash):');
      out.print(token ?? '');
    });

  principal
    .command('list')
    .description('list principals: id, name, role, domains, status, created')
    .action(async (_opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const principals = await api.get<PrincipalView[]>('/api/v1/principals');
      if (out.json) return out.printJson(principals);
      out.table(PRINCIPAL_COLUMNS, principals, 'no principals');
    });

  principal
    .command('disable')
    .description('disable a principal: its tokens and client certificates stop working at once')
    .argument('<id>', 'principal id (prn-…)')
    .action(async (id: string, _opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const res = await api.post<PrincipalView>(apiPath`/api/v1/principals/${id}/disable`);
      if (out.json) return out.printJson(res.body);
      out.print(`principal ${res.body.id} (${res.body.name}, ${res.body.role}) is disabled`);
    });

  principal
    .command('certificate')
    .description("issue a principal's client certificate for mutual TLS on the admin API, from its CSR")
    .argument('<id>', 'principal id (prn-…)')
    .requiredOption('--csr <file>', 'the PKCS#10 request (PEM or DER); the key stays with the principal')
    .option('--days <n>', 'validity in days (default 365, at most the lowest tier\'s user maximum)', positiveInteger)
    .option('--out <cert.pem>', 'write the certificate PEM here (else it is printed)')
    .option('--chain-out <chain.pem>', 'write the chain up to the root here')
    .action(async (id: string, opts: { csr: string; days?: number; out?: string; chainOut?: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      const body = { csr: readCsrFile(opts.csr), ...(opts.days ? { days: opts.days } : {}) };
      const res = await api.post<{ certificate: CertificateSummary; pem: string; chain: string[] }>(apiPath`/api/v1/principals/${id}/certificate`, body);
      const { certificate, pem, chain } = res.body;
      if (opts.out) await writeFile(opts.out, `${pem.trimEnd()}\n`);
      if (opts.chainOut) await writeFile(opts.chainOut, chain.map((c) => `${c.trimEnd()}\n`).join(''));
      if (out.json) return out.printJson(res.body);
      out.print(`issued client certificate ${certificate.serial} by ${certificate.issuerId} to ${id}, valid until ${shortTime(certificate.notAfter)}`);
      out.print(`subject: ${certificate.subject}`);
      if (opts.out) out.print(`certificate written to ${opts.out}`);
      if (opts.chainOut) out.print(`chain (${chain.length} certificates) written to ${opts.chainOut}`);
      if (!opts.out) out.print(`\n${pem.trimEnd()}`);
    });
}
