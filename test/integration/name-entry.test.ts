// Defect 4 (issue 13): names are checked where they enter. A subject name or a principal name with
// a control, bidi or invisible character, a lone surrogate, non-NFC text or over its RFC 5280 bound
// is a 400 problem naming the field and the reason, and nothing is stored (no subject, no principal;
// only the audit record of the refused write).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestTierca, call, type TestTierca } from '../helpers/tierca.ts';
import { snapshotCounts } from '../helpers/database.ts';

let t: TestTierca;
beforeAll(async () => {
  t = await startTestTierca();
});
afterAll(async () => {
  await t?.close();
});

const subject = (name: string) => ({ kind: 'device', domain: 'yuhu', organ: 'government', tier: 't1', name, dns: ['gw-n.yuhu.xiangtan.intranet'] });

const BAD: [string, string, string][] = [
  ['NUL', 'gw\u0000', 'control character U+0000 at position 3'],
  ['CR LF', 'gw\r\nSet-Cookie: x', 'control character U+000D at position 3'],
  ['ESC', '\u001b[2Jgw', 'control character U+001B at position 1'],
  ['C1', 'gw\u0085', 'control character U+0085 at position 3'],
  ['RLO', 'gw-\u202eexe.zip', 'bidirectional control character U+202E at position 4'],
  ['isolate', 'gw\u2067', 'bidirectional control character U+2067 at position 3'],
  ['zero-width space', 'g\u200bw', 'invisible format character U+200B at position 2'],
  ['BOM', '\ufeffgw', 'invisible format character U+FEFF at position 1'],
  ['lone surrogate', 'gw\ud83d', 'lone surrogate U+D83D at position 3'],
  ['not NFC', 'Ze\u0301', 'not in Unicode normalization form C (NFC)'],
  ['65 characters', '网'.repeat(65), 'longer than 64 characters (65)'],
  ['65 non-BMP characters', '𠮷'.repeat(65), 'longer than 64 characters (65)'],
  ['empty', '', 'empty'],
];

describe('POST /api/v1/subjects', () => {
  for (const [what, name, reason] of BAD) {
    it(`refuses a name with ${what}: 400 naming the field, no subject stored`, async () => {
      const before = await snapshotCounts(t.store);
      const res = await call(t, 'officer', 'POST', '/api/v1/subjects', subject(name));
      expect([res.status, res.headers.get('content-type'), res.body.type]).toEqual([400, 'application/problem+json', 'urn:tierca:problem:bad-request']);
      expect(res.body.problems).toEqual([`name: ${reason}`]);
      const after = await snapshotCounts(t.store);
      expect(after.subjects).toBe(before.subjects);
      expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
      expect(after.audit_log - before.audit_log).toBe(1); // the refused write is audited, nothing else
    });
  }

  it('registers a name of 64 non-BMP characters as sent (the same text comes back)', async () => {
    const name = `${'𠮷'.repeat(62)} 网`;
    const res = await call(t, 'officer', 'POST', '/api/v1/subjects', subject(name));
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.name).toBe(name);
  });
});

describe('POST /api/v1/principals', () => {
  for (const [what, name, reason] of BAD.filter(([w]) => !w.startsWith('65'))) {
    it(`refuses a principal name with ${what}, no principal stored`, async () => {
      const before = await snapshotCounts(t.store);
      const res = await call(t, 'admin', 'POST', '/api/v1/principals', { name, role: 'auditor' });
      expect([res.status, res.body.type, res.body.problems]).toEqual([400, 'urn:tierca:problem:bad-request', [`name: ${reason}`]]);
      const after = await snapshotCounts(t.store);
      expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
    });
  }

  it('allows 200 characters and refuses 201', async () => {
    const ok = await call(t, 'admin', 'POST', '/api/v1/principals', { name: '审'.repeat(200), role: 'auditor' });
    expect(ok.status).toBe(201);
    const long = await call(t, 'admin', 'POST', '/api/v1/principals', { name: '审'.repeat(201), role: 'auditor' });
    expect([long.status, long.body.problems]).toEqual([400, ['name: longer than 200 characters (201)']]);
  });
});
