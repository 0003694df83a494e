/**
 * `tierca keystore status` (sysadmins; GET /api/v1/keystore): where each CA and audit key is held —
 * software, or a PKCS#11 token (label, serial, slot, object label and id) — its algorithm, the CAs
 * it signs for, and whether the server can sign with it now. Exits 7 when a key cannot sign.
 */
import type { Command } from 'commander';
import { CliError, EXIT } from '../cli-error.ts';
import type { ContextFactory } from '../context.ts';

interface KeyStatusView {
  keyId: string;
  purpose: string;
  algorithm: string;
  cas: { id: string; status: string }[];
  location: { custody: 'software' } | { custody: 'pkcs11'; tokenLabel: string; tokenSerial: string; slot: string; objectLabel: string; objectId: string };
  canSign: boolean;
  fault?: string;
}

export function register(program: Command, context: ContextFactory): void {
  const keystore = program.command('keystore').description('the CA key custody: where each CA key is held (sysadmin)');
  keystore
    .command('status')
    .description('for each CA and audit key: where it is held (software, or token, slot and object), its algorithm, and whether the server can sign with it now')
    .action(async (_opts: object, cmd: Command) => {
      const { api, out } = context(cmd);
      const status = await api.get<{ custody: string; keys: KeyStatusView[] }>('/api/v1/keystore');
      if (out.json) out.printJson(status);
      else {
        out.note(`custody: ${status.custody}`);
        out.table<KeyStatusView>([
          { header: 'KEY', value: (k) => k.keyId },
          { header: 'PURPOSE', value: (k) => k.purpose },
          { header: 'ALGORITHM', value: (k) => k.algorithm },
          { header: 'CAS', value: (k) => k.cas.map((c) => (c.status === 'active' ? c.id : `${c.id} (${c.status})`)).join(', ') || '-' },
          { header: 'WHERE', value: (k) => (k.location.custody === 'software' ? 'software' : `token ${k.location.tokenLabel} (serial ${k.location.tokenSerial}, slot ${k.location.slot}) object ${k.location.objectLabel} id ${k.location.objectId}`) },
          { header: 'CAN SIGN', value: (k) => (k.canSign ? 'yes' : `NO (${k.fault ?? 'unknown'})`), colour: (_c, k) => (k.canSign ? 'green' : 'red') },
        ], status.keys, 'no keys');
      }
      const broken = status.keys.filter((k) => !k.canSign);
      if (broken.length) throw new CliError(`${broken.length} key(s) cannot sign now: ${broken.map((k) => `${k.keyId} (${k.fault ?? 'unknown'})`).join(', ')}`, EXIT.keystore);
    });
}
