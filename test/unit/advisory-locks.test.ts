// The one table of PostgreSQL advisory locks (server/storage/advisory-locks.ts): distinct ids, and
// no lock taken anywhere in server/ with a number or key written at its call site.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADVISORY_LOCK_IDS, ADVISORY_LOCK_PREFIXES } from '../../server/storage/advisory-locks.ts';

const ROOT = join(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('advisory lock ids', () => {
  it('are distinct positive integers, and the one-key prefixes distinct', () => {
    const ids = Object.values(ADVISORY_LOCK_IDS);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(Number.isInteger(id) && id > 0).toBe(true);
    const prefixes = Object.values(ADVISORY_LOCK_PREFIXES);
    expect(new Set(prefixes).size).toBe(prefixes.length);
  });

  it('every advisory lock in server/ takes its id or prefix from the table', () => {
    const offenders: string[] = [];
    for (const file of sources(join(ROOT, 'server'))) {
      if (file.endsWith('advisory-locks.ts')) continue;
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        if (/pg_(try_)?advisory/.test(line) && !/^\s*(\*|\/\/)/.test(line) && !/ADVISORY_LOCK_(IDS|PREFIXES)\./.test(line)) {
          offenders.push(`${file.slice(ROOT.length + 1)}:${i + 1}: ${line.trim()}`);
        }
      });
    }
    expect(offenders).toEqual([]);
  });
});
