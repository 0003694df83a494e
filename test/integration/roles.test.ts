// Separation of duties: a matrix of role × action, each cell allowed (with its exact status) or
// denied (403 naming the missing permission, audited with principal, role, source, action, target
// and request id, nothing else written) — including an officer outside its domains and approving
// its own request. Then dual control end to end: CA revocation by two sysadmins, key recovery by two
// officers (the PKCS#12 opened by openssl), and requests that expire.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { startTestTierca, call, type TestTierca, addApprovingPrincipal } from '../helpers/tierca.ts';
import { snapshotCounts } from '../helpers/database.ts';
import { nodeCsr, opensslCsr } from '../helpers/pki-fixtures.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { FixedClock } from '../../server/clock.ts';
import { runCli } from '../unit/cli-fake-server.ts';

type Who = 'admin' | 'admin2' | 'officer' | 'officer2' | 'auditor' | 'device' | 'yuhuOfficer';

let t: TestTierca;
const tmp = new TempDir();
const token: Partial<Record<Who, string>> = {};
const principalId: Partial<Record<Who, string>> = {};
const fixture: Record<string, string> = {};

interface Answer {
  status: number;
  body: any;
  requestId: string;
}

/** Calls the API with `who`'s token and a request id of our own, which the audit record must carry. */
async function as(who: Who, method: string, path: string, body?: unknown): Promise<Answer> {
  const requestId = `test-${randomUUID()}`;
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token[who]}`, 'x-request-id': requestId, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text, requestId };
}

let seq = 0;
function device(domain: 'yuhu' | 'shaoshan', tier = 't1') {
  const n = ++seq;
  return { kind: 'device', domain, organ: 'court', tier, name: `roles-${n}`, dns: [`roles-${n}.${domain}.xiangtan.intranet`] };
}

async function subject(domain: 'yuhu' | 'shaoshan', tier = 't1'): Promise<string> {
  const res = await as('officer', 'POST', '/api/v1/subjects', device(domain, tier));
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

async function issue(subjectId: string, alg: 'P-256' | 'P-384' = 'P-256'): Promise<Answer> {
  return as('officer', 'POST', '/api/v1/certificates', { subjectId, csr: (await nodeCsr(alg)).csrPem });
}

beforeAll(async () => {
  t = await startTestTierca();
  for (const who of ['admin', 'admin2', 'officer', 'officer2', 'auditor'] as const) token[who] = t.tokens[who];
  const dev = await call(t, 'admin', 'POST', '/api/v1/principals', { name: 'router r1', role: 'device' });
  token.device = dev.body.token;
  const yuhu = await addApprovingPrincipal(t, { name: '雨湖区安全员', role: 'officer', domains: ['yuhu'] });
  expect(yuhu.status, JSON.stringify(yuhu.body)).toBe(201);
  expect(yuhu.body).toMatchObject({ role: 'officer', domains: ['yuhu'], disabled: false });
  token.yuhuOfficer = yuhu.body.token;
  for (const who of Object.keys(token) as Who[]) principalId[who] = (await as(who, 'GET', '/api/v1/whoami')).body.id;

  fixture.shaoshanSubject = await subject('shaoshan');
  const cert = await issue(await subject('shaoshan'));
  fixture.shaoshanSerial = cert.body.certificate.serial;
  const user = await as('officer', 'POST', '/api/v1/subjects', {
    kind: 'user', domain: 'shaoshan', organ: 'court', tier: 't2', name: '韶山用户', emails: ['user1@shaoshan.xiangtan.intranet'],
  });
  const enc = await as('officer', 'POST', '/api/v1/certificates', { subjectId: user.body.id, profile: 'user-enc', generate: {} });
  expect(enc.status, JSON.stringify(enc.body)).toBe(201);
  fixture.escrowIssuer = enc.body.certificate.issuerId;
  fixture.escrowSerial = enc.body.certificate.serial;
  fixture.escrowPem = enc.body.pem;
  const t3 = await issue(await subject('shaoshan', 't3'), 'P-384');
  expect(t3.status).toBe(202);
  fixture.t3Request = t3.body.request.id;
  const extra = await call(t, 'admin', 'POST', '/api/v1/principals', { name: 'to be disabled', role: 'auditor' });
  fixture.disableTarget = extra.body.id;
});
afterAll(async () => {
  await t?.close();
  tmp.cleanup();
});

/** One action of the matrix: who may (and the exact status), who may not (and the missing permission). */
interface Case {
  action: string;
  method: string;
  path: () => string;
  body?: () => Promise<unknown> | unknown;
  denied: Partial<Record<Who, string>>;
  allowed: Partial<Record<Who, number>>;
}

const MATRIX: Case[] = [
  { action: 'whoami', method: 'GET', path: () => '/api/v1/whoami', denied: {}, allowed: { admin: 200, officer: 200, auditor: 200, device: 200 } },
  { action: 'ca.list', method: 'GET', path: () => '/api/v1/cas', denied: { device: 'ca:read' }, allowed: { admin: 200, officer: 200, auditor: 200 } },
  {
    action: 'principal.list', method: 'GET', path: () => '/api/v1/principals',
    denied: { officer: 'principal:read', device: 'principal:read' }, allowed: { admin: 200, auditor: 200 },
  },
  {
    action: 'principal.add', method: 'POST', path: () => '/api/v1/principals', body: () => ({ name: 'new auditor', role: 'auditor' }),
    denied: { officer: 'principal:manage', auditor: 'principal:manage', device: 'principal:manage' }, allowed: { admin: 201 },
  },
  {
    action: 'principal.disable', method: 'POST', path: () => `/api/v1/principals/${fixture.disableTarget}/disable`,
    denied: { officer: 'principal:manage', auditor: 'principal:manage', device: 'principal:manage' }, allowed: { admin: 200 },
  },
  {
    action: 'subject.add', method: 'POST', path: () => '/api/v1/subjects', body: () => device('yuhu'),
    denied: { admin: 'subject:write', auditor: 'subject:write', device: 'subject:write' }, allowed: { officer: 201, yuhuOfficer: 201 },
  },
  {
    action: 'subject.add', method: 'POST', path: () => '/api/v1/subjects', body: () => device('shaoshan'),
    denied: { yuhuOfficer: 'subject:write in domain shaoshan' }, allowed: { officer: 201 },
  },
  {
    action: 'certificate.issue', method: 'POST', path: () => '/api/v1/certificates',
    body: async () => ({ subjectId: fixture.shaoshanSubject, csr: (await nodeCsr()).csrPem }),
    denied: { admin: 'certificate:issue', auditor: 'certificate:issue', device: 'certificate:issue', yuhuOfficer: 'certificate:issue in domain shaoshan' },
    allowed: { officer: 201 },
  },
  {
    action: 'certificate.list', method: 'GET', path: () => '/api/v1/certificates?domain=shaoshan',
    denied: { device: 'certificate:read' }, allowed: { admin: 200, officer: 200, auditor: 200, yuhuOfficer: 200 },
  },
  {
    action: 'certificate.revoke', method: 'POST', path: () => `/api/v1/certificates/${fixture.shaoshanSerial}/revoke`, body: () => ({ reason: 'superseded' }),
    denied: { admin: 'certificate:revoke', auditor: 'certificate:revoke', device: 'certificate:revoke', yuhuOfficer: 'certificate:revoke in domain shaoshan' },
    allowed: { officer: 200 },
  },
  { action: 'request.list', method: 'GET', path: () => '/api/v1/requests', denied: { device: 'request:read' }, allowed: { admin: 200, officer: 200, auditor: 200 } },
  {
    action: 'request.approve', method: 'POST', path: () => `/api/v1/requests/${fixture.t3Request}/approve`,
    denied: { auditor: 'request:approve', device: 'request:approve', admin: 'certificate:issue', yuhuOfficer: 'certificate:issue in domain shaoshan' },
    // The officer who asked may not approve (422, below); a second officer may.
    allowed: { officer2: 201 },
  },
  {
    action: 'crl.generate', method: 'POST', path: () => '/api/v1/crls', body: () => ({ ca: 'shaoshan-t1' }),
    denied: { officer: 'crl:generate', auditor: 'crl:generate', device: 'crl:generate' }, allowed: { admin: 201 },
  },
  {
    action: 'ca.revoke', method: 'POST', path: () => '/api/v1/cas/yuetang-t3/revoke', body: () => ({ reason: 'cessationOfOperation' }),
    denied: { officer: 'ca:revoke', auditor: 'ca:revoke', device: 'ca:revoke' }, allowed: { admin: 202 },
  },
  {
    action: 'escrow.recover', method: 'POST', path: () => `/api/v1/escrow/${fixture.escrowIssuer}/${fixture.escrowSerial}/recover`, body: () => ({ reason: 'matrix' }),
    denied: { admin: 'escrow:recover', auditor: 'escrow:recover', device: 'escrow:recover', yuhuOfficer: 'escrow:recover in domain shaoshan' },
    allowed: { officer: 202 },
  },
  {
    action: 'audit.read', method: 'GET', path: () => '/api/v1/audit?limit=5',
    denied: { admin: 'audit:read', officer: 'audit:read', device: 'audit:read' }, allowed: { auditor: 200 },
  },
  {
    action: 'audit.verify', method: 'GET', path: () => '/api/v1/audit/verify',
    denied: { admin: 'audit:read', officer: 'audit:read', device: 'audit:read' }, allowed: { auditor: 200 },
  },
  {
    action: 'audit.checkpoint', method: 'POST', path: () => '/api/v1/audit/checkpoints',
    denied: { admin: 'audit:checkpoint', officer: 'audit:checkpoint', device: 'audit:checkpoint' }, allowed: { auditor: 201 },
  },
];

const cells = MATRIX.flatMap((c) => [
  ...Object.entries(c.denied).map(([who, missing]) => ({ c, who: who as Who, missing, status: 403 })),
  ...Object.entries(c.allowed).map(([who, status]) => ({ c, who: who as Who, missing: undefined, status })),
]);

describe('role × action matrix', () => {
  it.each(cells.map((cell) => [`${cell.c.method} ${cell.c.action}`, cell.who, cell.missing ? `denied (${cell.missing})` : `allowed (${cell.status})`, cell] as const))(
    '%s as %s: %s',
    async (_a, who, _b, { c, missing, status }) => {
      const path = c.path();
      const body = c.body ? await c.body() : undefined;
      const before = await snapshotCounts(t.store);
      const res = await as(who, c.method, path, body);
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      if (!missing) return;
      const role = who === 'admin' ? 'sysadmin' : who === 'yuhuOfficer' ? 'officer' : who;
      expect(res.body).toMatchObject({ type: 'urn:tierca:problem:forbidden', status: 403, detail: `role ${role} lacks permission ${missing}` });
      const after = await snapshotCounts(t.store);
      expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
      expect(after.audit_log).toBe(before.audit_log + 1);
      const record = (await t.store.audit.last())!;
      expect(record).toMatchObject({ principalId: principalId[who], role, action: c.action, outcome: 'denied', requestId: res.requestId, detail: { missing } });
      expect(record.source).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
      expect(record.target).toBeTruthy();
    },
  );

  it('refuses an officer approving its own request (422), audited as a denial', async () => {
    const res = await issue(await subject('yuhu', 't3'), 'P-384');
    expect(res.status).toBe(202);
    const own = await as('officer', 'POST', `/api/v1/requests/${res.body.request.id}/approve`);
    expect(own.status).toBe(422);
    expect(own.body.type).toBe('urn:tierca:problem:policy-self-approval');
    expect((await t.store.audit.last())!).toMatchObject({
      principalId: principalId.officer, action: 'request.approve', target: `request:${res.body.request.id}`, outcome: 'denied', requestId: own.requestId,
      detail: { error: 'policy-self-approval' },
    });
  });
});

describe('CA revocation under dual control (two sysadmins)', () => {
  it('revokes only when a second sysadmin approves; the requester, officers and auditors cannot', async () => {
    const asked = await as('admin', 'POST', '/api/v1/cas/xiangtan-t3/revoke', { reason: 'keyCompromise' });
    expect(asked.status).toBe(202);
    expect(asked.body.request).toMatchObject({ action: 'ca.revoke', status: 'pending', requestedBy: principalId.admin, approvals: [], approvalsRequired: 1, domain: 'xiangtan' });
    const id = asked.body.request.id;
    expect((await call(t, null, 'GET', '/ca')).body.find((c: any) => c.id === 'xiangtan-t3').status).toBe('active');
    const again = await as('admin2', 'POST', '/api/v1/cas/xiangtan-t3/revoke', { reason: 'keyCompromise' });
    expect([again.status, again.body.type, again.body.request]).toEqual([409, 'urn:tierca:problem:conflict', id]);

    const own = await as('admin', 'POST', `/api/v1/requests/${id}/approve`);
    expect([own.status, own.body.type]).toEqual([422, 'urn:tierca:problem:policy-self-approval']);
    const officer = await as('officer', 'POST', `/api/v1/requests/${id}/approve`);
    expect([officer.status, officer.body.detail]).toEqual([403, 'role officer lacks permission ca:revoke']);
    const auditor = await as('auditor', 'POST', `/api/v1/requests/${id}/approve`);
    expect([auditor.status, auditor.body.detail]).toEqual([403, 'role auditor lacks permission request:approve']);
    expect((await call(t, null, 'GET', '/ca')).body.find((c: any) => c.id === 'xiangtan-t3').status).toBe('active');

    const approved = await as('admin2', 'POST', `/api/v1/requests/${id}/approve`);
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body.request).toMatchObject({ id, status: 'done', approvals: [principalId.admin2] });
    expect(approved.body.result).toMatchObject({ caId: 'xiangtan-t3', status: 'revoked', reason: 'keyCompromise' });
    expect((await call(t, null, 'GET', '/ca')).body.find((c: any) => c.id === 'xiangtan-t3').status).toBe('revoked');
    const record = (await t.store.audit.list({ action: 'ca.revoke' })).find((r) => r.outcome === 'success')!;
    expect(record).toMatchObject({
      principalId: principalId.admin2, role: 'sysadmin', target: 'ca:xiangtan-t3', requestId: approved.requestId,
      detail: { reason: 'keyCompromise', request: id, requestedBy: principalId.admin, approvedBy: [principalId.admin2] },
    });
    expect((await t.store.audit.list({ action: 'ca.revoke.request' })).map((r) => r.principalId)).toContain(principalId.admin);

    const twice = await as('admin2', 'POST', `/api/v1/requests/${id}/approve`);
    expect([twice.status, twice.body.type]).toEqual([409, 'urn:tierca:problem:request-not-pending']);
    const final = await as('admin', 'POST', '/api/v1/cas/xiangtan-t3/revoke', { reason: 'keyCompromise' });
    expect([final.status, final.body.type]).toEqual([409, 'urn:tierca:problem:revocation-final']);
  });

  it('lets a second sysadmin reject the request instead', async () => {
    const asked = await as('admin', 'POST', '/api/v1/cas/yuhu-t3/revoke', { reason: 'superseded' });
    const rejected = await as('admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/reject`);
    expect([rejected.status, rejected.body.status]).toEqual([200, 'rejected']);
    const late = await as('admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
    expect(late.status).toBe(409);
    expect((await call(t, null, 'GET', '/ca')).body.find((c: any) => c.id === 'yuhu-t3').status).toBe('active');
  });
});

describe('escrowed key recovery under dual control (two officers)', () => {
  it('hands the key out once, as a PKCS#12 openssl opens with the printed passphrase, on a second officer\'s approval', async () => {
    const asked = await as('officer2', 'POST', `/api/v1/escrow/${fixture.escrowIssuer}/${fixture.escrowSerial}/recover`, { reason: 'holder lost the key' });
    expect(asked.status).toBe(202);
    expect(asked.body.request).toMatchObject({ action: 'escrow.recover', domain: 'shaoshan', status: 'pending', requestedBy: principalId.officer2 });
    const id = asked.body.request.id;
    expect(JSON.stringify(asked.body)).not.toMatch(/PRIVATE KEY|pkcs12/);

    const own = await as('officer2', 'POST', `/api/v1/requests/${id}/approve`);
    expect(own.status).toBe(422);
    const outside = await as('yuhuOfficer', 'POST', `/api/v1/requests/${id}/approve`);
    expect([outside.status, outside.body.detail]).toEqual([403, 'role officer lacks permission escrow:recover in domain shaoshan']);
    const admin = await as('admin', 'POST', `/api/v1/requests/${id}/approve`);
    expect([admin.status, admin.body.detail]).toEqual([403, 'role sysadmin lacks permission escrow:recover']);

    const approved = await as('officer', 'POST', `/api/v1/requests/${id}/approve`);
    expect(approved.status, JSON.stringify(approved.body)).toBe(200);
    expect(approved.body.request).toMatchObject({ id, status: 'done', result: { issuerId: fixture.escrowIssuer, serial: fixture.escrowSerial } });
    expect(approved.body.certificate.serial).toBe(fixture.escrowSerial);
    expect(approved.body.passphrase).toMatch(/^[0-9a-z]{4}(-[0-9a-z]{4}){6}$/);
    const p12 = tmp.file('recovered.p12', Buffer.from(approved.body.pkcs12, 'base64'));
    const key = await openssl(['pkcs12', '-in', p12, '-nocerts', '-nodes', '-passin', `pass:${approved.body.passphrase}`]);
    expect(key.code, key.stderr).toBe(0);
    const fromKey = await openssl(['pkey', '-pubout'], { input: key.stdout });
    const fromCert = await openssl(['x509', '-noout', '-pubkey'], { input: fixture.escrowPem });
    expect(fromKey.stdout).toBe(fromCert.stdout);
    expect((await openssl(['pkcs12', '-in', p12, '-nokeys', '-passin', 'pass:wrong-passphrase'])).code).not.toBe(0);

    expect((await t.store.audit.list({ action: 'escrow.recover' })).find((r) => r.outcome === 'success')).toMatchObject({
      principalId: principalId.officer, target: `certificate:${fixture.escrowIssuer}/${fixture.escrowSerial}`,
      detail: { request: id, requestedBy: principalId.officer2, approvedBy: [principalId.officer] },
    });
    const again = await as('officer', 'POST', `/api/v1/requests/${id}/approve`);
    expect(again.status).toBe(409);
  });

  it('refuses to recover a key that was never escrowed', async () => {
    const res = await as('officer', 'POST', `/api/v1/escrow/shaoshan-t1/${fixture.shaoshanSerial}/recover`, {});
    expect([res.status, res.body.detail]).toEqual([404, `no escrowed key for shaoshan-t1/${fixture.shaoshanSerial}`]);
  });
});

describe('principals', () => {
  it('lists principals without any secret, and refuses domains for a non-officer and a missing domain for an officer', async () => {
    const list = await as('auditor', 'GET', '/api/v1/principals');
    expect(list.body.find((p: any) => p.id === principalId.yuhuOfficer)).toEqual({
      id: principalId.yuhuOfficer, name: '雨湖区安全员', role: 'officer', domains: ['yuhu'], disabled: false, createdAt: expect.any(String),
    });
    expect(list.body.find((p: any) => p.id === fixture.disableTarget).disabled).toBe(true);
    expect(JSON.stringify(list.body)).not.toMatch(/tca_|token/i);
    const auditorWithDomains = await as('admin', 'POST', '/api/v1/principals', { name: 'x', role: 'auditor', domains: ['yuhu'] });
    expect([auditorWithDomains.status, auditorWithDomains.body.detail]).toEqual([400, 'only officers are scoped to domains, not a auditor']);
    const officerWithout = await as('admin', 'POST', '/api/v1/principals', { name: 'x', role: 'officer' });
    expect([officerWithout.status, officerWithout.body.detail]).toEqual([400, 'an officer needs at least one domain']);
    const self = await as('admin', 'POST', `/api/v1/principals/${principalId.admin}/disable`);
    expect([self.status, self.body.detail]).toEqual([409, 'a principal may not disable itself']);
  });

  it('stops a principal\'s token the moment it is disabled', async () => {
    const made = await addApprovingPrincipal(t, { name: 'temp officer', role: 'officer', domains: ['shaoshan'] });
    const res = await fetch(`${t.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${made.body.token}` } });
    expect(res.status).toBe(200);
    expect((await as('admin', 'POST', `/api/v1/principals/${made.body.id}/disable`)).body.disabled).toBe(true);
    const after = await fetch(`${t.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${made.body.token}` } });
    expect(after.status).toBe(401);
  });
});

describe('tierca principal', () => {
  const cli = (argv: string[], who: Who = 'admin') => runCli(argv, { TIERCA_URL: t.url, TIERCA_TOKEN: token[who] });

  it('asks for an officer for two domains, a second sysadmin approves and gets its token once; lists and disables it', async () => {
    const file = tmp.file('officer.token');
    const asked = await cli(['principal', 'add', '--role', 'officer', '--domains', 'yuhu,shaoshan', '--name', '湘潭双区安全员', '--token-out', file]);
    expect(asked.code, asked.stderr).toBe(0);
    const requestId = /^request (req-[0-9a-f-]{36}): a second sysadmin approves it with `tierca request approve \1`, which prints the new principal's token once\n$/.exec(asked.stdout)?.[1];
    expect(requestId, asked.stdout).toBeDefined();
    // No token exists yet, so none was written.
    expect(existsSync(file)).toBe(false);
    const self = await cli(['request', 'approve', requestId!]);
    expect([self.code, self.stderr]).toEqual([6, 'error: A requester may not approve its own request: a principal may not approve its own request, nor approve twice\n']);
    const approved = await cli(['request', 'approve', requestId!], 'admin2');
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toMatch(new RegExp(`^request ${requestId} approved\nid: +prn-[0-9a-f]{16}\nname: +湘潭双区安全员\nrole: +officer\ndomains: +yuhu, shaoshan\ntca_[A-Za-z0-9_-]{43}\n$`));
    expect(approved.stderr).toBe("the new principal's token follows; it is shown only this once (the server keeps only its hash):\n");
    const id = /^id: +(prn-[0-9a-f]{16})/m.exec(approved.stdout)![1];
    const officerToken = /^(tca_\S+)$/m.exec(approved.stdout)![1];
    const me = await fetch(`${t.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${officerToken}` } });
    expect(await me.json()).toMatchObject({ id, role: 'officer', domains: ['yuhu', 'shaoshan'] });

    const auditor = await cli(['principal', 'add', '--role', 'auditor', '--name', 'file auditor', '--token-out', file]);
    expect(auditor.stdout).toMatch(/token written to .+ \(mode 0600\); it is not shown again\n$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = await cli(['principal', 'add', '--role', 'auditor', '--name', 'x', '--token-out', file]);
    expect([again.code, again.stderr]).toEqual([2, `error: --token-out: ${file} already exists; choose another file (a key file is never overwritten)\n`]);
    const noDomains = await cli(['principal', 'add', '--role', 'officer', '--name', 'x']);
    expect([noDomains.code, noDomains.stderr]).toEqual([2, 'error: principal add --role officer: --domains is required\n']);
    const byOfficer = await cli(['principal', 'add', '--role', 'auditor', '--name', 'x'], 'officer');
    expect([byOfficer.code, byOfficer.stderr]).toEqual([4, 'error: Forbidden: role officer lacks permission principal:manage\n']);

    const listed = await cli(['principal', 'list', '--json'], 'auditor');
    expect(JSON.parse(listed.stdout).find((p: any) => p.id === id)).toMatchObject({ role: 'officer', disabled: false });
    const table = await cli(['principal', 'list']);
    expect(table.stdout).toMatch(/^ID +NAME +ROLE +DOMAINS +STATUS +CREATED\n/);
    const disabled = await cli(['principal', 'disable', id]);
    expect([disabled.code, disabled.stdout]).toEqual([0, `principal ${id} (湘潭双区安全员, officer) is disabled\n`]);
  });

  it('prints a new token once on stdout, the rest on stderr, and issues a client certificate from a CSR', async () => {
    const added = await cli(['principal', 'add', '--role', 'auditor', '--name', 'cli auditor']);
    expect(added.code).toBe(0);
    expect(added.stderr).toBe('the token follows; it is shown only this once (the server keeps only its hash):\n');
    expect(added.stdout.trim().split('\n').at(-1)).toMatch(/^tca_[A-Za-z0-9_-]{43}$/);
    const id = /^id: +(prn-[0-9a-f]{16})/.exec(added.stdout)![1];
    const { csrPath } = await opensslCsr(tmp, 'cli-principal', 'P-256');
    const out = tmp.file('cli-principal.pem');
    const issued = await cli(['principal', 'certificate', id, '--csr', csrPath, '--out', out, '--days', '30']);
    expect(issued.code, issued.stderr).toBe(0);
    expect(issued.stdout).toMatch(new RegExp(`^issued client certificate [0-9a-f]+ by xiangtan-t1 to ${id}, valid until `));
    const text = (await openssl(['x509', '-in', out, '-noout', '-subject', '-nameopt', 'utf8,sep_comma_plus_space'])).stdout;
    expect(text).toBe(`subject=C=CN, ST=湖南省, L=湘潭市, O=湘潭市电子政务内网, OU=tierca principal, CN=${id} (principal)\n`);
  });
});

describe('request expiry', () => {
  it('expires a request nobody approved in time: approving it then is refused, and it lists as expired', async () => {
    const clock = new FixedClock(new Date());
    const other = await startTestTierca({ clock });
    try {
      const asked = await call(other, 'admin', 'POST', '/api/v1/cas/yuhu-t2/revoke', { reason: 'superseded' });
      expect(asked.status).toBe(202);
      expect(new Date(asked.body.request.expiresAt).getTime() - clock.now().getTime()).toBe(24 * 3600_000);
      clock.advance(24 * 3600_000 + 1);
      const late = await call(other, 'admin2', 'POST', `/api/v1/requests/${asked.body.request.id}/approve`);
      expect([late.status, late.body.type, late.body.detail]).toEqual([409, 'urn:tierca:problem:request-not-pending', `request ${asked.body.request.id} is expired`]);
      const listed = await call(other, 'auditor', 'GET', '/api/v1/requests?status=expired');
      expect(listed.body.map((r: any) => r.id)).toEqual([asked.body.request.id]);
      expect((await other.store.requests.get(asked.body.request.id))!.status).toBe('expired');
      expect((await call(other, null, 'GET', '/ca')).body.find((c: any) => c.id === 'yuhu-t2').status).toBe('active');
    } finally {
      await other.close();
    }
  });
});
