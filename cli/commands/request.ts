/**
 * `tierca request list|approve|reject`: requests waiting for a second officer (dual control).
 * Approving an issuance answers like `cert issue` does, so its files are saved the same way.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { apiPath } from '../api-client.ts';
import type { ContextFactory } from '../context.ts';
import { shortTime, statusColour, type Column } from '../output.ts';
import { createKeyFile, saveIssued, type Issued } from './cert.ts';

export const REQUEST_STATUSES = ['pending', 'done', 'rejected', 'expired', 'failed'] as const;

/** A request as the API returns it. */
export interface ApprovalRequest {
  id: string;
  action: string;
  subjectId: string | null;
  domain: string | null;
  tier: string | null;
  requestedBy: string;
  approvals: string[];
  approvalsRequired: number;
  status: string;
  createdAt: string;
  expiresAt: string;
  [field: string]: unknown;
}

const REQUEST_COLUMNS: Column<ApprovalRequest>[] = [
  { header: 'id', value: (r) => r.id },
  { header: 'status', value: (r) => r.status, colour: (s) => statusColour(s) },
  { header: 'action', value: (r) => r.action },
  { header: 'subject', value: (r) => r.subjectId },
  { header: 'domain', value: (r) => r.domain },
  { header: 'tier', value: (r) => r.tier },
  { header: 'requested by', value: (r) => r.requestedBy },
  { header: 'approvals', value: (r) => (Array.isArray(r.approvals) ? `${r.approvals.length}/${r.approvalsRequired ?? '?'}` : undefined) },
  { header: 'expires', value: (r) => shortTime(r.expiresAt) },
];

const isIssued = (body: unknown): body is Issued =>
  typeof body === 'object' && body !== null && 'certificate' in body && 'pem' in body;

export function register(program: Command, context: ContextFactory): void {
  const request = program.command('request').description('requests waiting for a second approver (dual control)');

  request
    .command('list')
    .description('list requests: id, status, action, subject, domain, tier, requested by, approvals, expires')
    .addOption(new Option('--status <status>', 'only this status').choices(REQUEST_STATUSES))
    .action(async (opts: { status?: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      const requests = await api.get<ApprovalRequest[]>('/api/v1/requests', { status: opts.status });
      if (out.json) return out.printJson(requests);
      out.table(REQUEST_COLUMNS, requests, 'no requests');
    });

  request
    .command('approve')
    .description('approve a pending request (you may not approve your own); an issuance is then carried out')
    .argument('<id>', 'request id')
    .option('--out <cert.pem>', 'write the issued certificate PEM here (else it is printed)')
    .option('--chain-out <chain.pem>', 'write the chain up to the root here')
    .option('--p12 <out.p12>', 'for a server-made key: new file for the PKCS#12 (mode 0600; default ./<serial>.p12)')
    .option('--p12-dir <dir>', 'for a recovered key history: the folder for one <serial>.p12 per key (mode 0600, never overwritten; default .)')
    .action(async (id: string, opts: { out?: string; chainOut?: string; p12?: string; p12Dir?: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      const p12 = opts.p12 ? await createKeyFile(opts.p12) : undefined;
      let res;
      try {
        res = await api.post<unknown>(apiPath`/api/v1/requests/${id}/approve`);
      } catch (err) {
        if (p12) await p12.handle.close().then(() => unlink(p12.path)).catch(() => undefined);
        throw err;
      }
      if (isRecoveredHistory(res.body)) {
        if (p12) await p12.handle.close().then(() => unlink(p12.path)).catch(() => undefined);
        return saveHistory(res.body, opts.p12Dir ?? '.', out);
      }
      if (!isIssued(res.body)) {
        if (p12) await p12.handle.close().then(() => unlink(p12.path)).catch(() => undefined);
        if (out.json) return out.printJson(res.body);
        if (res.status === 202) return out.print(`request ${id}: approval recorded; more approvals are needed`);
        out.print(`request ${id} approved`);
        const made = (res.body as { result?: { principal?: { id: string; name: string; role: string; domains: string[] }; token?: string } } | null)?.result;
        if (made?.principal && made.token) {
          out.record({ id: made.principal.id, name: made.principal.name, role: made.principal.role, domains: made.principal.domains });
          out.note("the new principal's token follows; it is shown only this once (the server keeps only its hash):");
          out.print(made.token);
          return;
        }
        if (res.body && typeof res.body === 'object') out.record(res.body as Record<string, unknown>);
        return;
      }
      let keyFile = p12;
      if (!res.body.pkcs12 && keyFile) {
        await keyFile.handle.close().then(() => unlink(keyFile!.path)).catch(() => undefined);
        out.warn(`the answer holds no PKCS#12 (the holder made the key); ${keyFile.path} not written`);
        keyFile = undefined;
      }
      if (res.body.pkcs12 && !keyFile && !out.json) {
        // The only copy of the key is in this answer: save it rather than drop it, and if even that
        // file cannot be made, print it so that it is not lost.
        try {
          const serial = String(res.body.certificate?.serial);
          // The name comes from the answer: only hex may become a file name here.
          keyFile = await createKeyFile(/^[0-9a-f]{1,64}$/.test(serial) ? `${serial}.p12` : 'issued.p12');
        } catch (err) {
          out.warn(`${(err as Error).message}; the PKCS#12 follows in base64 (decode it with base64 -d)`);
          out.print(res.body.pkcs12);
        }
      }
      await saveIssued(res.body, { out: opts.out, chainOut: opts.chainOut, p12: keyFile }, out);
    });

  request
    .command('reject')
    .description('reject a pending request')
    .argument('<id>', 'request id')
    .action(async (id: string, _opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const res = await api.post<ApprovalRequest>(apiPath`/api/v1/requests/${id}/reject`);
      if (out.json) return out.printJson(res.body);
      out.print(`request ${id} is now ${out.status(res.body?.status ?? 'rejected')}`);
    });
}

/** The answer to an approved `escrow.recover-history` request. */
interface RecoveredHistory {
  subjectId: string;
  keys: { keyId: string; certificate: { serial: string; issuerId: string }; pkcs12: string }[];
  passphrase: string;
}

function isRecoveredHistory(body: unknown): body is RecoveredHistory {
  return !!body && typeof body === 'object' && Array.isArray((body as RecoveredHistory).keys) && typeof (body as RecoveredHistory).passphrase === 'string';
}

/**
 * Writes one `<serial>.p12` per recovered key into `dir` and prints the passphrase once. A file
 * that cannot be made (one exists) gets its PKCS#12 printed instead, so no key is lost.
 */
async function saveHistory(body: RecoveredHistory, dir: string, out: ReturnType<ContextFactory>['out']): Promise<void> {
  const written: string[] = [];
  for (const k of body.keys) {
    const serial = /^[0-9a-f]{1,64}$/.test(k.certificate.serial) ? k.certificate.serial : k.keyId.replace(/[^A-Za-z0-9-]/g, '');
    try {
      const file = await createKeyFile(join(dir, `${serial}.p12`), '--p12-dir');
      await file.handle.writeFile(Buffer.from(k.pkcs12, 'base64'));
      await file.handle.close();
      written.push(file.path);
    } catch (err) {
      out.warn(`${(err as Error).message}; the PKCS#12 of ${k.certificate.issuerId}/${k.certificate.serial} follows in base64`);
      out.print(k.pkcs12);
    }
  }
  if (out.json) return out.printJson({ subjectId: body.subjectId, files: written, keys: body.keys.map((k) => ({ keyId: k.keyId, certificate: k.certificate })), passphrase: body.passphrase });
  out.print(`recovered ${body.keys.length} escrowed keys of ${body.subjectId}: ${written.join(', ')}`);
  out.note('their passphrase follows; it is shown only this once:');
  out.print(body.passphrase);
}
