/**
 * ACME for officers: `tierca acme account-key add` (an external-account-binding key for a domain,
 * organ and tier, printed once: POST /api/v1/acme/account-keys), `tierca acme accounts`, `tierca acme
 * orders` and `tierca acme deactivate <account>`. Servers then run certbot (or any ACME client)
 * against the printed directory with `--eab-kid` and `--eab-hmac-key`.
 */
import type { Command } from 'commander';
import type { ContextFactory } from '../context.ts';
import { durationText, positiveInteger } from '../option-parsers.ts';

interface AccountKey { keyId: string; hmacKey: string; directory: string; domain: string; organ: string; tier: string; maxCertificates: number | null; expiresAt: string }
interface Account { id: string; status: string; domain: string; organ: string; tier: string; issued: number; maxCertificates: number | null; boundBy: string; createdAt: string }
interface Order { id: string; account: string; domain: string; status: string; identifiers: string[]; serial: string | null; createdAt: string }

export function register(program: Command, context: ContextFactory): void {
  const acme = program.command('acme').description('ACME enrolment of servers and gateways (officer of the domain)');
  acme
    .command('account-key')
    .description('external-account-binding keys for ACME clients')
    .command('add')
    .description('make a binding key for one domain, organ and tier; its HMAC key is printed once')
    .requiredOption('--domain <slug>', 'the domain the account will be held to')
    .requiredOption('--organ <slug>', 'the organ its certificates name')
    .requiredOption('--tier <id>', 'the tier (one without dual control)')
    .option('--max-certificates <n>', 'certificates the account may have issued, in all', positiveInteger)
    .option('--expires <duration>', 'how long the key may be used to register an account (e.g. 30d; default 7d)', durationText)
    .action(async (opts: { domain: string; organ: string; tier: string; maxCertificates?: number; expires?: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      const res = await api.post<AccountKey>('/api/v1/acme/account-keys', {
        domain: opts.domain, organ: opts.organ, tier: opts.tier, ...(opts.maxCertificates ? { maxCertificates: opts.maxCertificates } : {}),
        ...(opts.expires ? { expires: opts.expires } : {}),
      });
      if (out.json) return out.printJson(res.body);
      const k = res.body;
      out.print([
        `directory:    ${k.directory}`,
        `eab-kid:      ${k.keyId}`,
        `eab-hmac-key: ${k.hmacKey}`,
        `scope:        ${k.domain} / ${k.organ} / ${k.tier}${k.maxCertificates ? `, at most ${k.maxCertificates} certificates` : ''}; register by ${k.expiresAt}`,
        'The HMAC key is shown this once. On the server:',
        `  certbot register --server ${k.directory} --eab-kid ${k.keyId} --eab-hmac-key <key> --agree-tos --no-eff-email -m <admin mail>`,
      ].join('\n'));
    });
  acme
    .command('accounts')
    .description('the ACME accounts of your domains')
    .option('--domain <slug>', 'only this domain')
    .action(async (opts: { domain?: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      const accounts = await api.get<Account[]>('/api/v1/acme/accounts', { domain: opts.domain });
      if (out.json) return out.printJson(accounts);
      out.table<Account>([
        { header: 'account', value: (a) => a.id },
        { header: 'status', value: (a) => a.status },
        { header: 'scope', value: (a) => `${a.domain}/${a.organ}/${a.tier}` },
        { header: 'issued', value: (a) => `${a.issued}${a.maxCertificates ? ` of ${a.maxCertificates}` : ''}` },
        { header: 'bound by', value: (a) => a.boundBy },
        { header: 'created', value: (a) => a.createdAt },
      ], accounts, 'no ACME accounts');
    });
  acme
    .command('orders')
    .description('the newest ACME orders of your domains')
    .option('--account <id>', 'only this account')
    .option('--limit <n>', 'at most this many (default 100)', positiveInteger)
    .action(async (opts: { account?: string; limit?: number }, cmd: Command) => {
      const { api, out } = context(cmd);
      const orders = await api.get<Order[]>('/api/v1/acme/orders', { account: opts.account, limit: opts.limit?.toString() });
      if (out.json) return out.printJson(orders);
      out.table<Order>([
        { header: 'order', value: (o) => o.id },
        { header: 'account', value: (o) => o.account },
        { header: 'status', value: (o) => o.status },
        { header: 'names', value: (o) => o.identifiers.join(', ') },
        { header: 'serial', value: (o) => o.serial ?? '' },
        { header: 'created', value: (o) => o.createdAt },
      ], orders, 'no ACME orders');
    });
  acme
    .command('deactivate')
    .description('deactivate an ACME account: its key is refused from now on (its certificates stay; revoke them separately)')
    .argument('<account>', 'account id (tierca acme accounts)')
    .action(async (id: string, _opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const res = await api.post<Account>(`/api/v1/acme/accounts/${encodeURIComponent(id)}/deactivate`, {});
      if (out.json) return out.printJson(res.body);
      out.print(`ACME account ${res.body.id} is ${res.body.status}`);
    });
}
