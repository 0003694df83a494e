/**
 * The key-management centre's commands: `tierca key history <subject>` (officers: a subject's
 * escrowed encryption keys, GET /api/v1/subjects/{id}/keys) and `tierca kmc rotate-master`
 * (sysadmins: re-wrap every escrowed key under a new master key, POST /api/v1/kmc/rotate-master),
 * and `tierca key recover <serial>|--subject <id> --reason …` (an officer asks; a second approves
 * with `tierca request approve`, which writes the PKCS#12 files).
 */
import type { Command } from 'commander';
import type { ContextFactory } from '../context.ts';
import { usageError } from '../cli-error.ts';

interface EscrowedKey {
  keyId: string;
  subjectId: string;
  algorithm: string;
  issuerId: string | null;
  serial: string | null;
  createdAt: string;
  masterKeyId: string;
}

export function register(program: Command, context: ContextFactory): void {
  const key = program.command('key').description('escrowed encryption keys (the key-management centre)');
  key
    .command('recover')
    .description('ask for the recovery of the escrowed key of an encryption certificate, or with --subject of a subject\'s whole key history (officer); a second officer approves with tierca request approve <id> (--p12 <file> | --p12-dir <dir>)')
    .argument('[serial]', 'serial of the encryption certificate (or --subject)')
    .option('--subject <id>', 'every escrowed encryption key of this subject, oldest first (to read old mail)')
    .option('--issuer <ca>', 'the issuing CA id, when the serial is not unique')
    .requiredOption('--reason <text>', 'why the key is needed (audited with both acts)')
    .action(async (serial: string | undefined, opts: { subject?: string; issuer?: string; reason: string }, cmd: Command) => {
      const { api, out } = context(cmd);
      if (!serial === !opts.subject) throw usageError('give the serial of an encryption certificate or --subject <id>, not both');
      let res;
      if (opts.subject) {
        res = await api.post<{ request: { id: string } }>(`/api/v1/subjects/${encodeURIComponent(opts.subject)}/keys/recover`, { reason: opts.reason });
      } else {
        const cert = await api.get<{ issuerId: string; serial: string; profile: string }>(`/api/v1/certificates/${encodeURIComponent(serial!)}`, { issuer: opts.issuer });
        res = await api.post<{ request: { id: string } }>(`/api/v1/escrow/${encodeURIComponent(cert.issuerId)}/${encodeURIComponent(cert.serial)}/recover`, { reason: opts.reason });
      }
      if (out.json) return out.printJson(res.body);
      const save = opts.subject ? '--p12-dir <dir>' : '--p12 <file>';
      out.print(`request ${res.body.request.id} is pending: a second officer of the domain approves it with tierca request approve ${res.body.request.id} ${save}`);
    });
  key
    .command('history')
    .description('list a subject\'s escrowed encryption keys, oldest first: key id, algorithm, certificate, made at (officer of its domain)')
    .argument('<subject>', 'subject id')
    .action(async (subject: string, _opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const keys = await api.get<EscrowedKey[]>(`/api/v1/subjects/${encodeURIComponent(subject)}/keys`);
      if (out.json) return out.printJson(keys);
      out.table<EscrowedKey>([
        { header: 'key', value: (k) => k.keyId },
        { header: 'algorithm', value: (k) => k.algorithm },
        { header: 'certificate', value: (k) => (k.serial ? `${k.issuerId}/${k.serial}` : '(not certified)') },
        { header: 'made', value: (k) => k.createdAt },
      ], keys, 'no escrowed keys');
    });
  program
    .command('kmc')
    .description('the key-management centre (sysadmin)')
    .command('rotate-master')
    .description('re-wrap every escrowed key under a new master key; a run cut short is finished by the next one (changes nothing without --execute)')
    .option('--execute', 'do it (without it: say what would be done)')
    .action(async (opts: { execute?: boolean }, cmd: Command) => {
      const { api, out } = context(cmd);
      const res = await api.post<{ masterKeyId: string; rewrapped: number } & { dryRun?: true; keys?: number }>('/api/v1/kmc/rotate-master', { execute: opts.execute === true });
      if (out.json) return out.printJson(res.body);
      if (res.body.dryRun) return out.print(`would re-wrap ${res.body.keys} escrowed keys under a new master key (now ${res.body.masterKeyId ?? 'none yet'}); run again with --execute`);
      out.print(`master key ${res.body.masterKeyId} is active; ${res.body.rewrapped} escrowed keys re-wrapped under it`);
    });
}
