/**
 * Relying parties other than openssl and our own parser, for the interop tests:
 * Python's `cryptography` (Debian's python3-cryptography, test/helpers/relying-party.py) and the
 * JDK's PKIX CertPathValidator (test/helpers/PkixValidate.java, compiled with javac on first use).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HERE = join(process.cwd(), 'test', 'helpers');
/** Debian's interpreter, whose dist-packages hold python3-cryptography (not a pyenv shim). */
const PYTHON = '/usr/bin/python3';

export type RelyingPartyJob =
  | { kind: 'cert'; path: string; issuer?: string }
  | { kind: 'csr'; path: string }
  | { kind: 'crl'; path: string; issuer: string }
  | { kind: 'ocsp'; path: string; issuer: string }
  | { kind: 'p12'; path: string; password: string; issuer?: string };

function run(cmd: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { maxBuffer: 16 << 20, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Runs the jobs through Python's `cryptography` in one process; one result per job, in order. */
export async function pythonCheck(jobs: RelyingPartyJob[]): Promise<any[]> {
  const res = await run(PYTHON, [join(HERE, 'relying-party.py')], JSON.stringify(jobs));
  if (res.code !== 0) throw new Error(`relying-party.py failed (${res.code}): ${res.stderr}`);
  return JSON.parse(res.stdout) as any[];
}

let javaClasses: Promise<string> | undefined;

/** Compiles PkixValidate.java once per test file into a temporary folder. */
function compiledJava(): Promise<string> {
  javaClasses ??= (async () => {
    const out = mkdtempSync(join(tmpdir(), 'tierca-java-'));
    const res = await run('javac', ['-d', out, join(HERE, 'PkixValidate.java')]);
    if (res.code !== 0) throw new Error(`javac failed: ${res.stderr}`);
    return out;
  })();
  return javaClasses;
}

/**
 * The JDK's PKIX verdict on `leaf` (then `intermediates`, leaf-most first) against `root`, with
 * explicit policy required and `policy` as the initial policy set, revocation off (PEM files).
 */
export async function javaValidate(p: { root: string; policy: string; leaf: string; intermediates: string[] }): Promise<{ valid: boolean; index?: number; reason?: string; message?: string }> {
  const res = await run('java', ['-cp', await compiledJava(), 'PkixValidate', p.root, p.policy, p.leaf, ...p.intermediates]);
  if (res.code !== 0) throw new Error(`PkixValidate failed (${res.code}): ${res.stderr}`);
  return JSON.parse(res.stdout);
}
