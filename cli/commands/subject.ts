/**
 * `tierca subject add|list|show|revoke`: the organs, devices and users certificates are issued to
 * (/api/v1/subjects). `subject revoke` revokes everything a subject holds, so without `--execute`
 * it only lists what it would revoke (STYLE.md practice 11).
 */
import { Option, type Command } from 'commander';
import { apiPath } from '../api-client.ts';
import type { ContextFactory } from '../context.ts';
import { collect, collectIp, REVOCATION_REASONS } from '../option-parsers.ts';
import { statusColour, type Column } from '../output.ts';
import { CERTIFICATE_COLUMNS, type CertificateSummary } from './cert.ts';

export const SUBJECT_KINDS = ['organ', 'device', 'user'] as const;

/** A subject as the API returns it (name lists under either spelling the server may use). */
export interface Subject {
  id: string;
  kind: string;
  domain: string;
  organ: string;
  tier: string;
  name: string;
  status?: string;
  dns?: string[];
  ips?: string[];
  emails?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  certificates?: CertificateSummary[];
  [field: string]: unknown;
}

/** Every SAN of a subject, DNS names first. */
const namesOf = (s: Subject): string[] => [...(s.dns ?? s.dnsNames ?? []), ...(s.ips ?? s.ipAddresses ?? []), ...(s.emails ?? [])];

const SUBJECT_COLUMNS: Column<Subject>[] = [
  { header: 'id', value: (s) => s.id },
  { header: 'kind', value: (s) => s.kind },
  { header: 'domain', value: (s) => s.domain },
  { header: 'organ', value: (s) => s.organ },
  { header: 'tier', value: (s) => s.tier },
  { header: 'name', value: (s) => s.name },
  { header: 'status', value: (s) => s.status, colour: (c) => statusColour(c) },
  { header: 'names', value: (s) => namesOf(s) },
];

/** Certificates that a revocation would still change: good and on hold. */
const revocable = (certs: readonly CertificateSummary[]): CertificateSummary[] => certs.filter((c) => c.status !== 'revoked');

export function register(program: Command, context: ContextFactory): void {
  const subject = program.command('subject').description('subjects: the organs, devices and users that certificates are issued to');

  subject
    .command('add')
    .description('register a subject (POST /api/v1/subjects)')
    .addOption(new Option('--kind <kind>', 'what the subject is').choices(SUBJECT_KINDS).makeOptionMandatory())
    .requiredOption('--domain <slug>', 'domain slug, e.g. yuhu')
    .requiredOption('--organ <slug>', 'organ slug, e.g. government')
    .requiredOption('--tier <tier>', 'tier, e.g. t2')
    .requiredOption('--name <name>', 'the name that goes into the certificate subject (UTF-8, e.g. 张三 or vpn-gw-01)')
    .option('--dns <name>', 'DNS name for the subjectAltName (repeatable)', collect)
    .option('--ip <address>', 'IPv4 or IPv6 address for the subjectAltName (repeatable)', collectIp)
    .option('--email <address>', 'e-mail address for the subjectAltName (repeatable)', collect)
    .action(
      async (
        opts: { kind: string; domain: string; organ: string; tier: string; name: string; dns?: string[]; ip?: string[]; email?: string[] },
        cmd: Command,
      ) => {
        const { api, out } = context(cmd);
        const body = {
          kind: opts.kind,
          domain: opts.domain,
          organ: opts.organ,
          tier: opts.tier,
          name: opts.name,
          ...(opts.dns ? { dns: opts.dns } : {}),
          ...(opts.ip ? { ips: opts.ip } : {}),
          ...(opts.email ? { emails: opts.email } : {}),
        };
        const created = (await api.post<Subject>('/api/v1/subjects', body)).body;
        if (out.json) return out.printJson(created);
        out.print(`added subject ${created.id}`);
        out.record(created);
      },
    );

  subject
    .command('list')
    .description('list subjects: id, kind, domain, organ, tier, name, status, names')
    .option('--domain <slug>', 'only this domain')
    .option('--tier <tier>', 'only this tier')
    .addOption(new Option('--kind <kind>', 'only this kind').choices(SUBJECT_KINDS))
    .action(async (opts: { domain?: string; tier?: string; kind?: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      const subjects = await api.get<Subject[]>('/api/v1/subjects', { domain: opts.domain, tier: opts.tier, kind: opts.kind });
      if (out.json) return out.printJson(subjects);
      out.table(SUBJECT_COLUMNS, subjects, 'no subjects');
    });

  subject
    .command('show')
    .description('show a subject and the certificates it holds')
    .argument('<id>', 'subject id')
    .action(async (id: string, _opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const found = await api.get<Subject>(apiPath`/api/v1/subjects/${id}`);
      if (out.json) return out.printJson(found);
      const { certificates = [], ...fields } = found;
      out.record(fields);
      out.print('');
      out.table(CERTIFICATE_COLUMNS, certificates, 'no certificates');
    });

  subject
    .command('revoke')
    .description('revoke every certificate a subject holds (it left, the device was lost). Shows what it would revoke unless --execute')
    .argument('<id>', 'subject id')
    .addOption(new Option('--reason <reason>', 'RFC 5280 revocation reason').choices(REVOCATION_REASONS).makeOptionMandatory())
    .option('--execute', 'really revoke (without it, nothing changes)')
    .action(async (id: string, opts: { reason: string; execute?: boolean }, cmd: Command) => {
      const { api, out } = context(cmd);
      if (!opts.execute) {
        const found = await api.get<Subject>(apiPath`/api/v1/subjects/${id}`);
        const targets = revocable(found.certificates ?? []);
        if (out.json) return out.printJson({ dryRun: true, action: 'revoke-subject', reason: opts.reason, subject: found, certificates: targets });
        out.print(`would revoke ${targets.length} certificate(s) of subject ${found.id} (${found.name}) with reason ${opts.reason}`);
        if (targets.length) out.table(CERTIFICATE_COLUMNS, targets, '');
        out.print('nothing changed; run again with --execute to revoke');
        return;
      }
      const res = await api.post<{ revoked: string[] }>(apiPath`/api/v1/subjects/${id}/revoke`, { reason: opts.reason });
      if (out.json) return out.printJson(res.body);
      const revoked = res.body?.revoked ?? [];
      out.print(`revoked ${revoked.length} certificate(s) of subject ${id}${revoked.length ? `: ${revoked.join(', ')}` : ''}`);
    });
}
