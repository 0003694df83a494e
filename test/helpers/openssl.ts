/**
 * Runs the openssl CLI for interop tests, with files in a temporary folder.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OpensslResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `openssl args…`; resolves with the exit code and output (never rejects on a non-zero exit). */
export function openssl(args: string[], options: { input?: string | Buffer; cwd?: string; timeoutMs?: number } = {}): Promise<OpensslResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'openssl',
      args,
      { cwd: options.cwd, timeout: options.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err);
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** A temporary folder with helpers to write and read files; `cleanup()` removes it. */
export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), 'tierca-test-'));
  file(name: string, content?: string | Uint8Array): string {
    const p = join(this.path, name);
    if (content !== undefined) writeFileSync(p, content);
    return p;
  }
  read(name: string): Buffer {
    return readFileSync(join(this.path, name));
  }
  cleanup(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}
