/**
 * `tierca ca list|show|revoke`: the CA hierarchy (GET /api/v1/cas, /api/v1/cas/{id}) and CA
 * revocation. Revoking a CA is a bulk change — everything below it stops validating — so without
 * `--execute` it only shows what it would do (STYLE.md practice 11).
 */
import { Option, type Command } from 'commander';
import { apiPath } from '../api-client.ts';
import type { ContextFactory } from '../context.ts';
import { REVOCATION_REASONS } from '../option-parsers.ts';
import { shortTime, statusColour, type Column } from '../output.ts';

/** A CA summary as docs/api.md gives it. */
export interface CaSummary {
  id: string;
  name: string;
  layer: 'root' | 'domain' | 'tier';
  domain: string | null;
  tier: string | null;
  parent: string | null;
  status: string;
  /** The generation that replaced this one (a rollover); it keeps serving status for what it issued. */
  successor?: string;
  notBefore: string;
  notAfter: string;
  fingerprint: string;
  serial: string;
  urls?: Record<string, string>;
  /** A root kept offline: when its CRL and pre-signed OCSP answers end, and the warning they call for. */
  offline?: { crlNextUpdate: string | null; ocspNextUpdate: string | null; warning: string | null } | null;
}

/** A CA's detail: the summary and its certificate. */
export interface CaDetail extends CaSummary {
  subject?: string;
  issuer?: string;
  keyAlgorithm?: string;
  policies?: string[];
  pem?: string;
  children?: string[];
}

/** Fingerprints are shortened in tables to this many characters (`ca show` prints all of it). */
const SHORT_FINGERPRINT = 16;

export const shortFingerprint = (fp: unknown): string | undefined =>
  typeof fp === 'string' && fp.length > SHORT_FINGERPRINT ? `${fp.slice(0, SHORT_FINGERPRINT)}…` : (fp as string | undefined);

const CA_COLUMNS: Column<CaSummary>[] = [
  { header: 'id', value: (c) => c.id },
  { header: 'name', value: (c) => c.name },
  { header: 'layer', value: (c) => c.layer },
  { header: 'domain', value: (c) => c.domain },
  { header: 'tier', value: (c) => c.tier },
  { header: 'status', value: (c) => (c.successor && c.status === 'active' ? `superseded by ${c.successor}` : c.status), colour: (s) => statusColour(s) },
  { header: 'not after', value: (c) => shortTime(c.notAfter) },
  { header: 'fingerprint', value: (c) => shortFingerprint(c.fingerprint) },
];

export function register(program: Command, context: ContextFactory): void {
  const ca = program.command('ca').description('certificate authorities: the hierarchy of root, domain and tier CAs');

  ca.command('list')
    .description('list every CA: id, name, layer, domain, tier, status, not after, fingerprint (first 16 characters)')
    .action(async (_opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const cas = await api.get<CaSummary[]>('/api/v1/cas');
      if (out.json) return out.printJson(cas);
      out.table(CA_COLUMNS, cas, 'no CAs (run tierca init, or start the demo with npm start)');
      // An offline root's CRL and OCSP answers run out unless a ceremony renews them: say so here too.
      for (const c of cas) {
        if (c.offline) out.print(`\n${c.id}: offline root; CRL until ${c.offline.crlNextUpdate ?? '(none imported)'}, OCSP answers until ${c.offline.ocspNextUpdate ?? '(none imported)'}`);
        if (c.offline?.warning) out.warn(c.offline.warning);
      }
    });

  ca.command('show')
    .description("show one CA: its fields, its children and its certificate (PEM)")
    .argument('<id>', 'CA id, e.g. root, xiangtan, yuhu-t2')
    .action(async (id: string, _opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const detail = await api.get<CaDetail>(apiPath`/api/v1/cas/${id}`);
      if (out.json) return out.printJson(detail);
      const { pem, ...fields } = detail;
      out.record(fields);
      if (pem) out.print(`\n${pem.trimEnd()}`);
    });

  ca.command('add-domain')
    .description('ask for a new domain, with its domain CA and a tier CA per tier, as the updated configuration file names it; a second sysadmin approves (tierca request approve). Under an offline root its domain CA then awaits the root (tierca root request)')
    .requiredOption('--config <file>', 'the configuration file with the new domain added (YAML or JSON; checked as tierca init checks it)')
    .requiredOption('--domain <slug>', 'the slug of the new domain in that file')
    .action(async (opts: { config: string; domain: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      const { readDomainFromConfig } = await import('../config-domain.ts');
      const body = readDomainFromConfig(opts.config, opts.domain);
      const res = await api.post<{ request?: { id?: string } }>('/api/v1/domains', body);
      if (out.json) return out.printJson(res.body);
      const id = res.body?.request?.id ?? '<id>';
      out.print(`request ${id} to add domain ${body.slug} (${body.name}, DNS ${body.dnsSuffix}) is pending: a second sysadmin must approve it (tierca request approve ${id})`);
    });

  ca.command('revoke')
    .description('revoke a CA: every CA and certificate below it stops validating. Shows what it would do unless --execute')
    .argument('<id>', 'CA id')
    .addOption(new Option('--reason <reason>', 'RFC 5280 revocation reason').choices(REVOCATION_REASONS).makeOptionMandatory())
    .option('--execute', 'really revoke (without it, nothing changes)')
    .action(async (id: string, opts: { reason: string; execute?: boolean }, cmd: Command) => {
      const { api, out } = context(cmd);
      const detail = await api.get<CaDetail>(apiPath`/api/v1/cas/${id}`);
      if (!opts.execute) {
        if (out.json) return out.printJson({ dryRun: true, action: 'revoke-ca', reason: opts.reason, ca: detail });
        out.print(`would revoke CA ${detail.id} (${detail.name}, ${detail.layer}) with reason ${opts.reason}`);
        const children = detail.children ?? [];
        out.print(
          children.length
            ? `every certificate it issued and every CA below it would stop validating: ${children.join(', ')}`
            : 'every certificate it issued would stop validating',
        );
        out.print(`nothing changed; run again with --execute to revoke`);
        return;
      }
      const res = await api.post<unknown>(apiPath`/api/v1/cas/${id}/revoke`, { reason: opts.reason });
      if (out.json) return out.printJson(res.body);
      if (res.status === 202) {
        const request = (res.body as { request?: { id?: string } })?.request;
        return out.print(`request ${request?.id ?? '?'} is pending: a second sysadmin must approve it (tierca request approve ${request?.id ?? '<id>'})`);
      }
      out.print(`revoked CA ${detail.id} (${detail.name}) with reason ${opts.reason}`);
    });
}
