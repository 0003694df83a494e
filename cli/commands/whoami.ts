/** `tierca whoami`: the principal the token belongs to (GET /api/v1/whoami). */
import type { Command } from 'commander';
import type { ContextFactory } from '../context.ts';

interface Whoami {
  id: string;
  name: string;
  role: string;
  domains: string[];
}

export function register(program: Command, context: ContextFactory): void {
  program
    .command('whoami')
    .description('show the principal the API token belongs to: id, name, role, domains')
    .action(async (_opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const me = await api.get<Whoami>('/api/v1/whoami');
      if (out.json) return out.printJson(me);
      out.record({ id: me.id, name: me.name, role: me.role, domains: me.domains });
    });
}
