/**
 * EST for officers: `tierca est code add --subject <id>` (a one-time enrolment code for one device,
 * printed once: POST /api/v1/est/codes) and `tierca est codes` (the codes of your domains and what
 * became of them). The device then enrols at `https://<tierca>/.well-known/est/<label>/simpleenroll`
 * with HTTP Basic: its subject id as the user, the code as the password.
 */
import type { Command } from 'commander';
import type { ContextFactory } from '../context.ts';
import { durationText } from '../option-parsers.ts';

interface IssuedCode { id: string; code: string; subjectId: string; label: string; expiresAt: string }
interface Code { id: string; subjectId: string; label: string; state: string; createdBy: string; createdAt: string; expiresAt: string; serial: string | null; requestId: string | null }

export function register(program: Command, context: ContextFactory): void {
  const est = program.command('est').description('EST enrolment of network devices (officer of the domain)');
  est
    .command('code')
    .description('one-time enrolment codes')
    .command('add')
    .description('make a one-time enrolment code for one device subject; the code is printed once')
    .requiredOption('--subject <id>', 'the device subject the code enrols')
    .option('--expires <duration>', 'how long the code may be used (e.g. 2h; default 24h, at most 30d)', durationText)
    .action(async (opts: { subject: string; expires?: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      const res = await api.post<IssuedCode>('/api/v1/est/codes', { subject: opts.subject, ...(opts.expires ? { expires: opts.expires } : {}) });
      if (out.json) return out.printJson(res.body);
      const c = res.body;
      out.print([
        `code:     ${c.code}`,
        `subject:  ${c.subjectId} (EST user name)`,
        `label:    ${c.label}  (https://<tierca>/.well-known/est/${c.label}/simpleenroll)`,
        `expires:  ${c.expiresAt}`,
        'The code is shown this once and enrols one certificate. On the device, for example:',
        `  curl --cacert tierca-tls.pem --user ${c.subjectId}:<code> -H 'Content-Type: application/pkcs10' --data-binary @csr.b64 https://<tierca>/.well-known/est/${c.label}/simpleenroll`,
      ].join('\n'));
    });
  est
    .command('codes')
    .description('the enrolment codes of your domains, newest first, and what became of each')
    .option('--subject <id>', 'only this subject')
    .action(async (opts: { subject?: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      const codes = await api.get<Code[]>('/api/v1/est/codes', { subject: opts.subject });
      if (out.json) return out.printJson(codes);
      out.table<Code>([
        { header: 'code', value: (c) => c.id },
        { header: 'subject', value: (c) => c.subjectId },
        { header: 'label', value: (c) => c.label },
        { header: 'state', value: (c) => c.state },
        { header: 'certificate', value: (c) => c.serial ?? (c.requestId ? `(request ${c.requestId})` : '') },
        { header: 'made by', value: (c) => c.createdBy },
        { header: 'expires', value: (c) => c.expiresAt },
      ], codes, 'no enrolment codes');
    });
}
