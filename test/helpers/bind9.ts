/**
 * A real DNS server for ACME tests: BIND 9 (Debian's bind9, installed by .ci/run) on a loopback port,
 * authoritative for one zone, with RFC 2136 updates allowed under a TSIG key (certbot's rfc2136
 * plugin uses it for dns-01).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { TempDir } from './openssl.ts';
import { freePort } from './net.ts';

export interface Bind9 {
  /** `127.0.0.1:<port>`. */
  server: string;
  port: number;
  tsig: { name: string; secret: string; algorithm: 'HMAC-SHA256' };
  stop(): Promise<void>;
}

/** Starts named for `zone` with A records `records` (name relative to the zone → address). */
export async function startBind9(zone: string, records: Record<string, string>): Promise<Bind9> {
  const dir = new TempDir();
  const port = await freePort();
  const secret = randomBytes(32).toString('base64');
  writeFileSync(dir.file('named.conf'), `
options { directory "${dir.path}"; listen-on port ${port} { 127.0.0.1; }; listen-on-v6 { none; }; pid-file "${dir.path}/named.pid";
  recursion no; allow-query { any; }; dnssec-validation no; session-keyfile "${dir.path}/session.key"; };
key "tierca-test." { algorithm hmac-sha256; secret "${secret}"; };
controls { };
zone "${zone}" { type master; file "${dir.path}/zone.db"; allow-update { key "tierca-test."; }; };
`);
  writeFileSync(dir.file('zone.db'), [
    '$TTL 5',
    `@ IN SOA ns.${zone}. admin.${zone}. 1 60 60 600 5`,
    '@ IN NS ns',
    'ns IN A 127.0.0.1',
    ...Object.entries(records).map(([name, address]) => `${name} IN ${address.includes(':') ? 'AAAA' : 'A'} ${address}`),
    '',
  ].join('\n'));
  const child: ChildProcess = spawn('named', ['-g', '-n', '1', '-c', dir.file('named.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  const started = Date.now();
  for (;;) {
    try {
      await resolver.resolve4(`ns.${zone}`);
      break;
    } catch {
      if (child.exitCode !== null || Date.now() - started > 15_000) throw new Error(`named did not start: ${log.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    server: `127.0.0.1:${port}`, port, tsig: { name: 'tierca-test.', secret, algorithm: 'HMAC-SHA256' },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      dir.cleanup();
    },
  };
}
