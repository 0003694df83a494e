/**
 * The peer of the OCSP benchmark: `openssl ocsp -index … -multi 2`, which signs every answer with a
 * delegated responder key. tierca's CA keys never leave its keystore, so the peer gets a parallel
 * small openssl CA of the same key type (P-256) whose index.txt lists the same serials with the same
 * statuses (1,000 certificates, 100 revoked). The certificates themselves are not needed: openssl ocsp
 * answers from the index and the issuer's name and key hashes.
 *
 * openssl ocsp 3.0 binds to every interface and hangs after a connect-and-close probe, so each run
 * gets a fresh private network namespace with loopback only (`unshare -n`), also a PID namespace so
 * that everything started in it ends with it (`-p -f --kill-child`, with its own /proc to read the
 * peer's CPU time from), and wrk runs inside it too, without its probe (bench/wrk/rotate.lua).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { runCommand } from './util.ts';
import { ocspRequestsFor, writeRequestFiles } from './ocsp-requests.ts';
import { parseWrk, wrkArgs, type WrkLoad, type WrkResult } from './wrk.ts';
import { DAY_MS } from '../../pki/time-constants.ts';

export interface OpensslPeer {
  dir: string;
  files: { post: string; get: string };
  goodSerial: string;
  revokedSerial: string;
  processes: number;
}

/** Port inside the private namespace (nothing else listens there). */
const PEER_PORT = 8888;

async function openssl(args: string[], cwd: string): Promise<string> {
  const res = await runCommand('openssl', args, { cwd, timeoutMs: 60_000 });
  if (res.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${res.stderr}`);
  return res.stdout;
}

/** openssl's index.txt serial form: uppercase hex of whole octets, as BN_bn2hex prints it. */
export function indexSerial(hex: string): string {
  const trimmed = hex.replace(/^0+(?=.)/, '').toUpperCase();
  return trimmed.length % 2 ? `0${trimmed}` : trimmed;
}

/** YYMMDDHHMMSSZ, the index.txt time form. */
function indexTime(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
}

/** Builds the peer CA, responder, index.txt and request files in `dir`. */
export async function buildOpensslPeer(dir: string, serials: readonly string[], revoked: ReadonlySet<string>, now: Date, processes = 2): Promise<OpensslPeer> {
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-subj', '/C=CN/O=bench peer/CN=peer issuing CA', '-days', '3650',
    '-addext', 'basicConstraints=critical,CA:true,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'responder.key', '-out', 'responder.csr',
    '-subj', '/C=CN/O=bench peer/CN=peer OCSP responder'], dir);
  // A delegated responder as tierca makes them (RFC 6960 §4.2.2.2): EKU OCSPSigning and id-pkix-ocsp-nocheck.
  writeFileSync(join(dir, 'responder.ext'), [
    'basicConstraints=critical,CA:false',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=OCSPSigning',
    '1.3.6.1.5.5.7.48.1.5=ASN1:NULL',
    '',
  ].join('\n'));
  await openssl(['x509', '-req', '-in', 'responder.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '1', '-days', '7', '-extfile', 'responder.ext', '-out', 'responder.pem'], dir);

  const expiry = indexTime(new Date(now.getTime() + 730 * DAY_MS));
  const revokedAt = indexTime(new Date(now.getTime() - DAY_MS));
  const lines = serials.map((serial, i) => revoked.has(serial)
    ? `R\t${expiry}\t${revokedAt},keyCompromise\t${indexSerial(serial)}\tunknown\t/CN=bench device ${i}`
    : `V\t${expiry}\t\t${indexSerial(serial)}\tunknown\t/CN=bench device ${i}`);
  writeFileSync(join(dir, 'index.txt'), `${lines.join('\n')}\n`);

  const caDer = Buffer.from(new X509Certificate(readFileSync(join(dir, 'ca.pem'))).raw);
  const files = writeRequestFiles(join(dir, 'peer'), ocspRequestsFor(caDer, serials), '/');
  const goodSerial = serials.find((s) => !revoked.has(s))!;
  const revokedSerial = serials.find((s) => revoked.has(s))!;
  return { dir, files, goodSerial, revokedSerial, processes };
}

export interface PeerRun {
  wrk: WrkResult;
  /** CPU time of the openssl ocsp processes during the load (read from the namespace's own /proc). */
  cpuSeconds: number | null;
  /** `openssl ocsp` client checks of one good and one revoked serial, made before the load. */
  checks: { good: string; revoked: string };
}

/**
 * One run in a fresh namespace: start openssl ocsp, wait for its ACCEPT line (never probe the port),
 * check a good and a revoked serial with the openssl client, then run wrk with `method`'s requests.
 */
export async function runOpensslPeer(peer: OpensslPeer, method: 'POST' | 'GET', load: WrkLoad): Promise<PeerRun> {
  const url = `http://127.0.0.1:${PEER_PORT}`;
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = [
    'set -u',
    'ip link set lo up',
    // CPU ticks (utime + stime) of the live openssl processes; --mount-proc gives this PID namespace its /proc.
    'cpu() { local t=0 line rest; for f in /proc/[0-9]*/stat; do read -r line < "$f" 2>/dev/null || continue; case "$line" in *"(openssl)"*) rest=${line##*) }; set -- $rest; t=$((t + ${12} + ${13}));; esac; done; echo $t; }',
    `openssl ocsp -index index.txt -port ${PEER_PORT} -rsigner responder.pem -rkey responder.key -CA ca.pem -multi ${peer.processes} -ndays 1 > openssl-ocsp.log 2>&1 &`,
    // It prints "ACCEPT [::]:port PID=n" on stdout once it listens.
    // Up to 30 s: on a loaded machine (other sessions' suites) openssl has taken over 10 s to listen.
    'for i in $(seq 1 600); do grep -q ACCEPT openssl-ocsp.log && break; sleep 0.05; done',
    'grep -q ACCEPT openssl-ocsp.log || { echo "BENCH-ERROR openssl ocsp did not start"; cat openssl-ocsp.log; exit 1; }',
    `echo "BENCH-CHECK good $(openssl ocsp -issuer ca.pem -serial 0x${peer.goodSerial} -url ${url} -VAfile responder.pem -no_nonce 2>&1 | tr '\\n\\t' '  ')"`,
    `echo "BENCH-CHECK revoked $(openssl ocsp -issuer ca.pem -serial 0x${peer.revokedSerial} -url ${url} -VAfile responder.pem -no_nonce 2>&1 | tr '\\n\\t' '  ')"`,
    'echo "BENCH-CPU-BEFORE $(cpu)"',
    'echo BENCH-WRK-BEGIN',
    `wrk ${wrkArgs(url, method === 'POST' ? peer.files.post : peer.files.get, load).map(q).join(' ')}`,
    'echo BENCH-WRK-END',
    'echo "BENCH-CPU-AFTER $(cpu)"',
  ].join('\n');
  const scriptFile = join(peer.dir, `run-${method.toLowerCase()}.sh`);
  writeFileSync(scriptFile, `${script}\n`);
  const res = await runCommand('unshare', ['--net', '--pid', '--fork', '--kill-child', '--mount-proc', 'bash', scriptFile], { cwd: peer.dir, timeoutMs: (load.seconds + 60) * 1000 });
  const out = res.stdout;
  if (res.code !== 0 || !out.includes('BENCH-WRK-END')) throw new Error(`openssl ocsp peer run failed (exit ${res.code}):\n${out}\n${res.stderr}`);
  const check = (kind: string) => new RegExp(`^BENCH-CHECK ${kind} (.*)$`, 'm').exec(out)?.[1] ?? '';
  const wrkText = out.slice(out.indexOf('BENCH-WRK-BEGIN') + 'BENCH-WRK-BEGIN'.length, out.indexOf('BENCH-WRK-END'));
  const ticks = (which: string) => Number(new RegExp(`^BENCH-CPU-${which} (\\d+)$`, 'm').exec(out)?.[1] ?? NaN);
  const cpuTicks = ticks('AFTER') - ticks('BEFORE');
  return {
    wrk: parseWrk(wrkText),
    cpuSeconds: Number.isFinite(cpuTicks) ? cpuTicks / 100 : null, // USER_HZ = 100
    checks: { good: check('good'), revoked: check('revoked') },
  };
}

/** True when this machine lets us make network and PID namespaces (root, or unprivileged userns). */
export async function namespacesAvailable(): Promise<boolean> {
  try {
    const res = await runCommand('unshare', ['--net', '--pid', '--fork', '--kill-child', 'true'], { timeoutMs: 10_000 });
    return res.code === 0;
  } catch {
    return false;
  }
}
