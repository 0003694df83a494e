// The web console (issue #19) in a real browser: Debian's Chromium, headless, driven by Playwright
// (playwright-core, no browser download). Officers issue from a CSR (openssl verifies the download),
// a t3 request waits for a second officer, a revocation reaches `openssl ocsp`, an auditor verifies
// the chain and exports, a sysadmin runs rotation as a dry run and then for real; a wrong role gets
// 403 and no menu entry, a form without its CSRF token changes nothing, a session past its idle or
// absolute timeout is sent to sign-in, a client certificate signs in over mutual TLS. A result that
// carries a secret (a server-made key's passphrase, the KMC-made encryption key's, a new principal's
// token) comes as POST → 303 → /console/shown/<id> and is gone on reload, Back/Forward and after five
// minutes (openssl opens the PKCS#12 with the passphrase shown); the issue page asks for an
// encryption certificate where the tier offers one, in both languages, and openssl verifies both
// certificates and opens the KMC's key. Every flow runs
// under the console's CSP with no violation; screenshots of each main page in both languages go to
// test-artifacts/console/ (gitignored), and axe-core finds no serious or critical violation on them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import pino from 'pino';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startTestTierca, call, type TestTierca, type RoleName } from '../helpers/tierca.ts';
import { openssl, TempDir } from '../helpers/openssl.ts';
import { nodeCsr, opensslCsr } from '../helpers/pki-fixtures.ts';
import { EXAMPLE_TIER_OIDS } from '../helpers/config.ts';
import { caPem, epochOf, ocspAt, pemBlocks } from '../helpers/rotation.ts';
import { FixedClock } from '../../server/clock.ts';
import { createHttpServer } from '../../server/http/app.ts';
import { clientCaBundle } from '../../server/listeners.ts';
import { CONSOLE_CSP } from '../../server/http/console/console.router.ts';
import { certificateToPem as certificatePem } from '../../pki/pem.ts';

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'console');
const MINUTE = 60_000;

const clock = new FixedClock(new Date(Math.floor(Date.now() / 1000) * 1000));
let t: TestTierca;
let browser: Browser;
const tmp = new TempDir();
const contexts: BrowserContext[] = [];
const ids: Partial<Record<RoleName, string>> = {};
let root: string;
/** CSP violations Chromium reported on any page of any flow (must stay empty). */
const violations: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  t = await startTestTierca({ clock });
  for (const who of ['admin', 'admin2', 'officer', 'officer2', 'auditor'] as const) ids[who] = (await call(t, who, 'GET', '/api/v1/whoami')).body.id;
  root = await caPem(t, 'root');
  // Debian's Chromium; as root it needs --no-sandbox.
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
});
afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await t?.close();
  tmp.cleanup();
});

async function newPage(opts: { bypassCSP?: boolean; baseURL?: string; clientCertificates?: { origin: string; certPath: string; keyPath: string }[] } = {}): Promise<Page> {
  const context = await browser.newContext({ acceptDownloads: true, bypassCSP: opts.bypassCSP, ignoreHTTPSErrors: !!opts.clientCertificates, clientCertificates: opts.clientCertificates });
  contexts.push(context);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to (load|execute|apply)/i.test(m.text())) violations.push(`${page.url()}: ${m.text()}`);
  });
  return page;
}

/** A browser signed in as `who` by pasting its token, in Chinese unless `lang` says English. */
async function signIn(who: RoleName, opts: { lang?: 'zh-CN' | 'en'; bypassCSP?: boolean } = {}): Promise<Page> {
  const page = await newPage(opts);
  await page.goto(`${t.url}/console/`);
  expect(page.url()).toBe(`${t.url}/console/signin`);
  if (opts.lang === 'en') {
    await page.click('#lang-switch');
    await expect.poll(() => page.getAttribute('html', 'lang')).toBe('en');
  }
  await page.fill('#token', t.tokens[who]);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/console/signin')), page.click('#signin-token')]);
  return page;
}

async function download(page: Page, selector: string, name: string): Promise<string> {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  const path = tmp.file(name);
  await dl.saveAs(path);
  return path;
}

const text = async (page: Page, selector: string) => (await page.locator(selector).first().textContent())?.trim() ?? '';
const menu = (page: Page) => page.locator('nav.menu a').allTextContents();
const csrfOf = (page: Page) => page.locator('input[name="_csrf"]').first().inputValue();

let subjectSeq = 0;
async function apiSubject(tier: 't1' | 't3'): Promise<string> {
  const name = `console-api-${++subjectSeq}`;
  const res = await call(t, 'officer', 'POST', '/api/v1/subjects', { kind: 'device', domain: 'shaoshan', organ: 'court', tier, name, dns: [`${name}.shaoshan.xiangtan.intranet`] });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

/** Filled by the first flow: a certificate issued through the console, its chain as downloaded. */
const issued: { serial?: string; issuerId?: string; chain?: string[]; subjectId?: string; csrPem?: string } = {};

describe('signing in and languages', () => {
  it('serves Chinese by default with English one click away, under the console CSP, every asset local', async () => {
    const page = await newPage();
    const res = await page.goto(`${t.url}/console/signin`);
    expect(res!.status()).toBe(200);
    expect(res!.headers()['content-security-policy']).toBe(CONSOLE_CSP);
    expect(res!.headers()['cache-control']).toBe('no-store');
    expect(await page.getAttribute('html', 'lang')).toBe('zh-CN');
    expect(await text(page, 'h1')).toBe('登录');
    // Nothing but this origin is loaded: no CDN, no web font, and no inline script (CSP) anywhere.
    const sources = await page.evaluate(() => [...document.querySelectorAll('script, link, img')].map((e) => (e as HTMLScriptElement).src || (e as HTMLLinkElement).href || ''));
    expect(sources.length).toBeGreaterThan(0);
    for (const s of sources) expect(s.startsWith(`${t.url}/console/assets/`)).toBe(true);
    expect(await page.locator('script:not([src])').count()).toBe(0);
    await page.click('#lang-switch');
    expect(await page.getAttribute('html', 'lang')).toBe('en');
    expect(await text(page, 'h1')).toBe('Sign in');
  });

  it('refuses a wrong token on the form with the API\'s message, audited, and signs in with the right one', async () => {
    const page = await newPage();
    await page.goto(`${t.url}/console/signin`);
    const before = (await t.store.audit.last())!.seq;
    await page.fill('#token', 'tca_this-is-not-a-valid-token-at-all');
    await page.click('#signin-token');
    expect(page.url()).toBe(`${t.url}/console/signin`);
    expect(await text(page, '#problem strong')).toBe('登录失败');
    // In Chinese the message is the catalogue's (the API's English sentence is not shown).
    expect(await text(page, '#problem .detail')).toBe('该令牌或证书不对应任何已启用的账号。');
    const [denied] = await t.store.audit.list({ fromSeq: before + 1 });
    expect(denied).toMatchObject({ action: 'auth.login', outcome: 'denied', target: 'POST /console/signin', detail: { reason: 'unknown-token' } });
    await page.fill('#token', t.tokens.officer);
    await Promise.all([page.waitForURL(`${t.url}/console/dashboard`), page.click('#signin-token')]);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'tierca_session')!;
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/console', secure: false });
    const signedIn = (await t.store.audit.list({ fromSeq: before + 1 })).find((a) => a.action === 'console.sign-in')!;
    expect(signedIn).toMatchObject({ principalId: ids.officer, role: 'officer', outcome: 'success', detail: { via: 'token' } });
    // Neither the token nor the session id is written anywhere in the audit log.
    const all = JSON.stringify(await t.store.audit.list({ fromSeq: 1 }));
    expect(all.includes(t.tokens.officer)).toBe(false);
    expect(all.includes(session.value)).toBe(false);
  });

  it('shows dates in the chosen language', async () => {
    const zh = await signIn('officer');
    await zh.goto(`${t.url}/console/dashboard`);
    expect(await text(zh, '#ca-tree .validity')).toMatch(/^\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d:\d\d UTC – /);
    const en = await signIn('officer', { lang: 'en' });
    await en.goto(`${t.url}/console/dashboard`);
    expect(await text(en, 'h1')).toBe('Dashboard');
    expect(await text(en, '#ca-tree .validity')).toMatch(/^\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d:\d\d UTC – /);
  });
});

describe('officer', () => {
  it('adds a subject, issues from a CSR and downloads the certificate and chain, which openssl verifies', async () => {
    const page = await signIn('officer');
    await page.goto(`${t.url}/console/subjects`);
    await page.selectOption('#s-kind', 'device');
    await page.selectOption('#s-domain', 'shaoshan');
    await page.selectOption('#s-organ', 'court');
    await page.selectOption('#s-tier', 't1');
    await page.fill('#s-name', '韶山法院网关');
    await page.fill('#s-dns', 'gw1.shaoshan.xiangtan.intranet');
    await Promise.all([page.waitForURL(/\/console\/issue\?subject=/), page.click('#add')]);
    const subjectId = new URL(page.url()).searchParams.get('subject')!;
    expect(await page.locator('#subjectId').inputValue()).toBe(subjectId);
    issued.subjectId = subjectId;
    issued.csrPem = (await nodeCsr('P-256')).csrPem;

    const csr = await opensslCsr(tmp, 'console-leaf', 'P-256');
    // The CSR is read from a file by the page's script, as an officer would upload it.
    await page.setInputFiles('#csr-file', csr.csrPath);
    await expect.poll(() => page.locator('#csr').inputValue()).toContain('BEGIN CERTIFICATE REQUEST');
    await page.click('#issue');
    await page.locator('#issued').waitFor();
    const serial = await text(page, '#serial');
    expect(serial).toMatch(/^[0-9a-f]{16,40}$/);
    const chainPath = await download(page, '#dl-chain', 'console-chain.pem');
    const pemPath = await download(page, '#dl-pem', 'console-leaf.pem');
    const derPath = await download(page, '#dl-der', 'console-leaf.der');
    const chain = pemBlocks(readFileSync(chainPath, 'utf8'));
    expect(chain.length).toBe(4); // leaf, tier CA, domain CA, root
    expect(readFileSync(pemPath, 'utf8')).toBe(chain[0]);
    const [stored] = await t.store.certificates.findBySerial(serial);
    expect(stored.der.equals(readFileSync(derPath))).toBe(true);
    expect(stored).toMatchObject({ subjectId, tier: 't1', domain: 'shaoshan', status: 'good' });
    issued.serial = serial;
    issued.issuerId = stored.issuerId;
    issued.chain = chain;

    const verify = await openssl(['verify', '-attime', epochOf(clock.now()), '-CAfile', tmp.file('root.pem', root), '-untrusted', tmp.file('console-inter.pem', chain.slice(1, 3).join('')),
      '-policy', EXAMPLE_TIER_OIDS.t1, '-explicit_policy', '-purpose', 'any', pemPath]);
    expect([verify.code, verify.stdout.trim()]).toEqual([0, `${pemPath}: OK`]);
    // The certificate carries the CSR's key.
    const certKey = await openssl(['x509', '-in', pemPath, '-noout', '-pubkey']);
    const csrKey = await openssl(['pkey', '-in', csr.keyPath, '-pubout']);
    expect(certKey.stdout).toBe(csrKey.stdout);
    expect(violations).toEqual([]);
  });

  it('shows bad input with the API\'s error on the form, in the chosen language, and changes nothing', async () => {
    const before = (await t.store.certificates.list({ subjectId: issued.subjectId })).length;
    for (const [lang, title] of [['zh-CN', '输入格式错误'], ['en', 'Malformed input']] as const) {
      const page = await signIn('officer', { lang });
      await page.goto(`${t.url}/console/issue?subject=${issued.subjectId}`);
      await page.fill('#csr', '-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n');
      const [res] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/console/issue') && r.request().method() === 'POST'), page.click('#issue')]);
      expect(res.status()).toBe(400);
      expect(await page.locator('#problem').getAttribute('data-code')).toBe('malformed-input');
      expect(await text(page, '#problem strong')).toBe(title);
      // The message in the chosen language, naming the field the API names in its detail.
      expect(await text(page, '#problem .detail')).toEqual(lang === 'en' ? expect.stringMatching(/^the CSR is not a valid PKCS#10 request: /) : '输入无法按预期格式读取，未做任何更改。');
      expect(await text(page, '#problem [data-fact="field"]')).toBe(lang === 'en' ? 'Fieldcsr' : '字段csr');
      // The form keeps what was typed.
      expect(await page.locator('#csr').inputValue()).toContain('bm90IGEgY3Ny');
      // A validity above the tier's maximum: the tier, the days asked and the maximum, worded in the language.
      await page.fill('#csr', issued.csrPem!);
      await page.fill('#days', '99999');
      const [tooLong] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/console/issue') && r.request().method() === 'POST'), page.click('#issue')]);
      expect(tooLong.status()).toBe(400);
      expect(await page.locator('#problem').getAttribute('data-code')).toBe('bad-request');
      expect(await text(page, '#problem [data-fact="fields"] dd')).toBe(lang === 'en' ? 'days: too large or too long' : 'days：过大或过长');
      expect(await text(page, '#problem .detail')).toBe(lang === 'en' ? 'invalid request: days: Too big: expected number to be <=36500' : '请求内容无效，未做任何更改。');
      await page.fill('#days', '3000');
      const [policy] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/console/issue') && r.request().method() === 'POST'), page.click('#issue')]);
      expect(policy.status()).toBe(422);
      expect(await text(page, '#problem strong')).toBe(lang === 'en' ? 'Validity above the tier maximum' : '有效期超过该级别上限');
      expect(await text(page, '#problem .detail')).toBe(lang === 'en' ? '3000 days is above the tier t1 maximum of 730 days for a device' : '所请求的有效期超过该级别的上限，未签发任何证书。');
      expect(await page.locator('#problem dd').allTextContents()).toEqual(['t1', lang === 'en' ? 'device' : 'device', '3000', '730']);
    }
    // The API answers the same body with the same code.
    const api = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: issued.subjectId, csr: '-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n' });
    expect([api.status, api.body.type]).toEqual([400, 'urn:tierca:problem:malformed-input']);
    // What the form words in its language comes from the API's language-neutral members (docs/api.md).
    const tooLong = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: issued.subjectId, csr: issued.csrPem, days: 99999 });
    expect([tooLong.status, tooLong.body.fields, tooLong.body.problems]).toEqual([400, [{ field: 'days', issue: 'too_big' }], ['days: Too big: expected number to be <=36500']]);
    const policy = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: issued.subjectId, csr: issued.csrPem, days: 3000 });
    expect([policy.status, policy.body.tier, policy.body.kind, policy.body.days, policy.body.maxDays]).toEqual([422, 't1', 'device', 3000, 730]);
    expect((await t.store.certificates.list({ subjectId: issued.subjectId })).length).toBe(before);
  });

  it('opens a t3 request that the requester cannot approve and a second officer approves', async () => {
    const subjectId = await apiSubject('t3');
    const page = await signIn('officer');
    await page.goto(`${t.url}/console/issue?subject=${subjectId}`);
    await page.fill('#csr', (await nodeCsr('P-384')).csrPem);
    await page.click('#issue');
    await page.locator('#pending').waitFor();
    const [request] = (await t.store.requests.list({ status: 'pending' })).filter((r) => r.subjectId === subjectId);
    // One approval by another officer besides the requester (dual control: two people).
    expect(request).toMatchObject({ action: 'issue', requestedBy: ids.officer, approvalsRequired: 1, approvals: [] });
    expect(await text(page, '#pending')).toContain(request.id);

    await page.goto(`${t.url}/console/requests`);
    await page.locator(`#own-${request.id}`).waitFor();
    expect(await page.locator(`#approve-${request.id}`).count()).toBe(0);
    // Posted anyway (with a valid CSRF token), the service refuses it, as the API does.
    const own = await page.request.post(`${t.url}/console/requests/${request.id}/approve`, { form: { _csrf: await csrfOf(page) }, maxRedirects: 0 });
    expect(own.status()).toBe(422);
    expect(await own.text()).toContain('申请人不得批准自己的请求');
    expect((await t.store.requests.get(request.id))!.status).toBe('pending');

    const second = await signIn('officer2');
    await second.goto(`${t.url}/console/requests`);
    await second.click(`#approve-${request.id}`);
    await second.locator('#issued').waitFor();
    const serial = await text(second, '#serial');
    const [cert] = await t.store.certificates.findBySerial(serial);
    expect(cert).toMatchObject({ subjectId, tier: 't3', status: 'good' });
    expect((await t.store.requests.get(request.id))!.status).toBe('done');
    // The requester's own attempt is recorded as a denial; the issuance under the approver.
    const ownAttempt = (await t.store.audit.list({ fromSeq: 1, action: 'request.approve' })).at(-1)!;
    expect(ownAttempt).toMatchObject({ principalId: ids.officer, outcome: 'denied', target: `request:${request.id}` });
    const issuance = (await t.store.audit.list({ fromSeq: 1, action: 'certificate.issue' })).at(-1)!;
    expect(issuance).toMatchObject({ principalId: ids.officer2, role: 'officer', outcome: 'success' });
  });

  it('revokes with a reason, and openssl ocsp reports it revoked (keyCompromise)', async () => {
    const page = await signIn('officer');
    await page.goto(`${t.url}/console/certificates`);
    await page.fill('#f-serial', issued.serial!);
    await Promise.all([page.waitForURL(`${t.url}/console/certificates/${issued.issuerId}/${issued.serial}`), page.click('#search')]);
    expect(await text(page, '#status')).toContain('有效');
    await page.selectOption('#reason', 'keyCompromise');
    await Promise.all([page.waitForURL(`${t.url}/console/certificates/${issued.issuerId}/${issued.serial}`), page.click('#revoke')]);
    expect(await text(page, '.notice.ok')).toBe('证书已撤销。');
    expect(await text(page, '#status')).toBe('已撤销 (密钥泄露)');
    const revoke = (await t.store.audit.list({ fromSeq: 1, action: 'certificate.revoke' })).at(-1)!;
    expect(revoke).toMatchObject({ principalId: ids.officer, outcome: 'success', target: `certificate:${issued.issuerId}/${issued.serial}` });

    const chain = issued.chain!;
    let answer: Awaited<ReturnType<typeof ocspAt>> | undefined;
    for (let i = 0; i < 20; i++) {
      answer = await ocspAt(t, tmp, { leafPem: chain[0], issuerPem: chain[1], root, chain: chain.slice(1, 3), at: clock.now() });
      if (answer.status === 'revoked') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect([answer!.status, answer!.reason, answer!.verified]).toEqual(['revoked', 'keyCompromise', true]);
    expect(violations).toEqual([]);
  });
});

describe('auditor', () => {
  it('filters the audit log, verifies the chain (the verdict streamed after its progress line) and exports it', async () => {
    const page = await signIn('auditor');
    expect(page.url()).toBe(`${t.url}/console/audit`);
    await page.selectOption('#a-action', 'certificate.revoke');
    await page.fill('#a-actor', ids.officer!);
    await page.fill('#a-target', issued.serial!);
    await page.click('#filter');
    const rows = page.locator('#audit tbody tr');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-action')).toBe('certificate.revoke');
    expect(await rows.first().textContent()).toContain(issued.serial!);

    await page.click('#verify');
    await page.locator('#verify-result').waitFor();
    expect(await page.locator('#verify-progress').count()).toBe(1);
    expect(await page.locator('#verify-result').getAttribute('data-ok')).toBe('true');
    expect(await text(page, '#verify-result strong')).toBe('审计日志链完整。');
    const verified = (await t.store.audit.list({ fromSeq: 1, action: 'audit.verify' })).at(-1)!;
    expect(verified).toMatchObject({ principalId: ids.auditor, outcome: 'success', detail: { ok: true } });

    await page.goto(`${t.url}/console/audit`);
    const exported = readFileSync(await download(page, '#export', 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(exported.length).toBeGreaterThan(10);
    expect(exported.map((r) => r.seq)).toEqual(exported.map((_, i) => i + 1));
    expect(exported.some((r) => r.action === 'certificate.revoke' && r.target === `certificate:${issued.issuerId}/${issued.serial}`)).toBe(true);
    for (let i = 1; i < exported.length; i++) expect(exported[i].prevHash).toBe(exported[i - 1].hash);
    expect(violations).toEqual([]);
  });
});

// Before the timeout tests walk the clock: TLS verifies the client certificate at the real time.
describe('client certificate over mutual TLS', () => {
  let server: Server | undefined;
  afterAll(() => {
    server?.closeAllConnections();
    server?.close();
  });

  it('signs in with the principal certificate, Secure cookie; a revoked certificate ends the session', async () => {
    const csr = await opensslCsr(tmp, 'principal', 'P-256');
    const issuedTo = await call(t, 'admin', 'POST', `/api/v1/principals/${ids.officer2}/certificate`, { csr: csr.csrPem });
    expect(issuedTo.status, JSON.stringify(issuedTo.body)).toBe(201);
    const certPath = tmp.file('principal.pem', issuedTo.body.pem);
    const key = tmp.file('tls.key');
    const crt = tmp.file('tls.crt');
    expect((await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-subj', '/CN=127.0.0.1', '-days', '1'])).code).toBe(0);
    const s = t.service.services;
    server = createHttpServer({ ...s, publicUrl: s.config.publicUrl, log: pino({ level: 'silent' }), health: async () => undefined },
      { key: tmp.read('tls.key'), cert: tmp.read('tls.crt'), ca: clientCaBundle(s.cas) });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const page = await newPage({ clientCertificates: [{ origin, certPath, keyPath: csr.keyPath }] });
    await page.goto(`${origin}/console/signin`);
    await Promise.all([page.waitForURL(`${origin}/console/dashboard`), page.click('#signin-certificate')]);
    expect(await text(page, '#who')).toContain('安全保密员');
    const cookie = (await page.context().cookies()).find((c) => c.name === 'tierca_session')!;
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/console' });
    expect((await t.store.audit.list({ fromSeq: 1, action: 'console.sign-in' })).at(-1)).toMatchObject({ principalId: ids.officer2, detail: { via: 'certificate' } });

    const revoked = await call(t, 'officer', 'POST', `/api/v1/certificates/${issuedTo.body.certificate.serial}/revoke`, { reason: 'affiliationChanged', issuer: issuedTo.body.certificate.issuerId });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    await page.goto(`${origin}/console/requests`);
    expect(page.url()).toBe(`${origin}/console/signin`);
  });
});

/** The POST a click sends and the page it lands on: the console answers a result with 303 to /console/shown/<id>. */
async function postAndShow(page: Page, selector: string, path: string): Promise<{ location: string; shown: import('playwright-core').Response }> {
  const [posted, shown] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === path && r.request().method() === 'POST'),
    page.waitForResponse((r) => new URL(r.url()).pathname.startsWith('/console/shown/') && r.request().method() === 'GET'),
    page.click(selector),
  ]);
  expect(posted.status()).toBe(303);
  const location = posted.headers()['location'];
  expect(location).toMatch(/^\/console\/shown\/[A-Za-z0-9_-]{22}$/);
  expect([shown.status(), shown.headers()['cache-control']]).toEqual([200, 'no-store']);
  return { location, shown };
}

/** `openssl pkcs12 -info -noout` on a downloaded file with the passphrase the page showed, then the certificate and key inside it. */
async function openPkcs12(path: string, passphrase: string): Promise<{ info: string; certPem: string; keyPem: string }> {
  const info = await openssl(['pkcs12', '-info', '-noout', '-in', path, '-passin', `pass:${passphrase}`]);
  expect(info.code, info.stderr).toBe(0);
  const certs = await openssl(['pkcs12', '-in', path, '-nokeys', '-clcerts', '-passin', `pass:${passphrase}`]);
  const keys = await openssl(['pkcs12', '-in', path, '-nocerts', '-nodes', '-passin', `pass:${passphrase}`]);
  expect([certs.code, keys.code]).toEqual([0, 0]);
  // A wrong passphrase does not open it (the check above can fail).
  expect((await openssl(['pkcs12', '-info', '-noout', '-in', path, '-passin', `pass:${passphrase}x`])).code).not.toBe(0);
  return { info: info.stderr, certPem: pemBlocks(certs.stdout)[0]!, keyPem: keys.stdout.slice(keys.stdout.indexOf('-----BEGIN PRIVATE KEY-----')) };
}

const pubkeyOf = async (args: string[]) => (await openssl(args)).stdout;

/** The encryption certificates the dual-certificate flows issued (their keys are escrowed). */
const dualEnc: { issuerId: string; serial: string; pem: string }[] = [];

let userSeq = 0;
async function apiUser(tier: 't1' | 't2'): Promise<string> {
  const n = ++userSeq;
  const res = await call(t, 'officer', 'POST', '/api/v1/subjects', { kind: 'user', domain: 'yuhu', organ: 'government', tier, name: `控制台用户${n}`, emails: [`console-user${n}@yuhu.xiangtan.intranet`] });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

// After the mutual-TLS test (these walk the clock), before the timeout tests.
describe('secrets shown once', () => {
  it('issues with a server-made key: POST → 303 → the passphrase once; a reload, Back/Forward show it no more; openssl opens the PKCS#12', async () => {
    const subjectId = await apiSubject('t1');
    const page = await signIn('officer');
    await page.goto(`${t.url}/console/issue?subject=${subjectId}`);
    await page.check('#mode-generate');
    await page.selectOption('#algorithm', 'P-256');
    const { location } = await postAndShow(page, '#issue', '/console/issue');
    expect(page.url()).toBe(`${t.url}${location}`);
    expect(await text(page, 'h1')).toBe('证书已签发');
    const passphrase = await text(page, '#p12-passphrase');
    expect(passphrase.length).toBeGreaterThanOrEqual(16);
    expect(await text(page, '.secret .warn')).toBe('仅显示这一次，系统不保存（刷新本页也不会再显示）：请立即记下。');
    const serial = await text(page, '#serial');
    const p12 = await download(page, '#p12-download', 'server-made.p12');
    const opened = await openPkcs12(p12, passphrase);
    expect(opened.info).toMatch(/Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC/);
    const [stored] = await t.store.certificates.findBySerial(serial);
    expect(stored).toMatchObject({ subjectId, tier: 't1', status: 'good' });
    expect(pemBlocks(certificatePem(stored.der))[0]).toBe(opened.certPem);
    // The key in the file is the certificate's.
    expect(await pubkeyOf(['pkey', '-in', tmp.file('server-made.key', opened.keyPem), '-pubout'])).toBe(await pubkeyOf(['x509', '-in', tmp.file('server-made.pem', opened.certPem), '-noout', '-pubkey']));

    // Reload: the result is gone, said in the chosen language; the secret is not on the page.
    const reloaded = await page.reload();
    expect([reloaded!.status(), reloaded!.headers()['cache-control']]).toEqual([410, 'no-store']);
    expect(await text(page, 'h1')).toBe('已显示过');
    expect(await text(page, '#shown-gone')).toContain('此结果已显示过一次');
    expect(await page.content()).not.toContain(passphrase);
    // Back lands on the form (the POST is not in the history, nothing is posted again); Forward is gone too.
    await page.goBack();
    expect(page.url()).toBe(`${t.url}/console/issue?subject=${subjectId}`);
    await page.goForward();
    expect(page.url()).toBe(`${t.url}${location}`);
    expect(await text(page, 'h1')).toBe('已显示过');
    expect(await page.content()).not.toContain(passphrase);
    expect((await t.store.certificates.list({ subjectId })).length).toBe(1);
    // In English the same page in English; the PKCS#12 was given once too.
    await page.goto(`${t.url}/console/lang/en?next=${encodeURIComponent(location)}`);
    expect([await text(page, 'h1'), await text(page, '#shown-gone')]).toEqual(['Already shown', expect.stringMatching(/^This result was shown once already/)]);
    // Neither the passphrase nor the result's id is written in the audit log.
    const all = JSON.stringify(await t.store.audit.list({ fromSeq: 1 }));
    expect(all.includes(passphrase)).toBe(false);
    expect(all.includes(location.split('/').pop()!)).toBe(false);
    expect(violations).toEqual([]);
  });

  it('forgets a result not looked at within five minutes (the injected clock), and a result is its session\'s only', async () => {
    const page = await signIn('officer');
    const post = async () => {
      await page.goto(`${t.url}/console/issue?subject=${await apiSubject('t1')}`);
      const res = await page.request.post(`${t.url}/console/issue`, { form: { _csrf: await csrfOf(page), subjectId: await page.locator('#subjectId').inputValue(), mode: 'generate' }, maxRedirects: 0 });
      expect(res.status()).toBe(303);
      return res.headers()['location']!;
    };
    const [early, late, other] = [await post(), await post(), await post()];
    // Another officer's session cannot see it (nor use it up): the owner still can.
    const second = await signIn('officer2');
    expect((await second.goto(`${t.url}${other}`))!.status()).toBe(410);
    expect((await page.goto(`${t.url}${other}`))!.status()).toBe(200);
    expect(await page.locator('#p12-passphrase').count()).toBe(1);
    clock.advance(5 * MINUTE - 1000);
    expect((await page.goto(`${t.url}${early}`))!.status()).toBe(200);
    expect(await page.locator('#p12-passphrase').count()).toBe(1);
    clock.advance(2000);
    expect((await page.goto(`${t.url}${late}`))!.status()).toBe(410);
    expect(await page.locator('#p12-passphrase').count()).toBe(0);
  });

  it('adds a principal: its token shown once (POST → 303), gone on reload, and it authenticates', async () => {
    const page = await signIn('admin');
    await page.goto(`${t.url}/console/principals`);
    await page.fill('#p-name', 'console-auditor-2');
    await page.selectOption('#p-role', 'auditor');
    const { location } = await postAndShow(page, '#add', '/console/principals');
    const token = await text(page, '#new-token');
    expect(token).toMatch(/^tca_/);
    expect(await text(page, '#added')).toMatch(/^已添加 console-auditor-2（prn-/);
    const whoami = await fetch(`${t.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
    expect([whoami.status, (await whoami.json()).name]).toEqual([200, 'console-auditor-2']);
    const reloaded = await page.reload();
    expect(reloaded!.status()).toBe(410);
    expect(await page.content()).not.toContain(token);
    expect(page.url()).toBe(`${t.url}${location}`);
    expect(JSON.stringify(await t.store.audit.list({ fromSeq: 1 })).includes(token)).toBe(false);
    expect((await t.store.principals.list()).filter((p) => p.name === 'console-auditor-2').length).toBe(1);
    expect(violations).toEqual([]);
  });
});

describe('secrets shown once after an approval', () => {
  it('adds an officer as a request; the second sysadmin\'s approval shows its token once', async () => {
    const page = await signIn('admin');
    await page.goto(`${t.url}/console/principals`);
    await page.fill('#p-name', 'console-officer-3');
    await page.selectOption('#p-role', 'officer');
    await page.check('input[name="domains"][value="yuhu"]');
    await Promise.all([page.waitForURL(`${t.url}/console/principals`), page.click('#add')]);
    const [request] = (await t.store.requests.list({ status: 'pending' })).filter((r) => r.action === 'principal.add' && r.requestedBy === ids.admin);
    expect(request).toBeDefined();
    const second = await signIn('admin2');
    await second.goto(`${t.url}/console/requests`);
    const { location } = await postAndShow(second, `#approve-${request!.id}`, `/console/requests/${request!.id}/approve`);
    expect(await text(second, '#done')).toContain(request!.id);
    const token = await text(second, '#new-token');
    const whoami = await fetch(`${t.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
    expect([whoami.status, (await whoami.json()).role]).toEqual([200, 'officer']);
    expect((await second.reload())!.status()).toBe(410);
    expect(await second.content()).not.toContain(token);
    expect(second.url()).toBe(`${t.url}${location}`);
    expect(JSON.stringify(await t.store.audit.list({ fromSeq: 1 })).includes(token)).toBe(false);
  });
});

describe('dual certificates on the issue page', () => {
  for (const lang of ['zh-CN', 'en'] as const) {
    it(`issues a user's signing and encryption certificates (t1, asked for) in ${lang}; openssl verifies both and opens the KMC's key`, async () => {
      const L = lang === 'en'
        ? { issued: 'The signing certificate and its encryption certificate were issued.', notice: /^The encryption certificate's key is made and escrowed by the key-management centre/, h: 'Encryption certificate (escrowed key)', gone: 'Already shown' }
        : { issued: '签名证书及其加密证书已签发。', notice: /^加密证书的密钥由密钥管理中心生成并托管/, h: '加密证书（密钥已托管）', gone: '已显示过' };
      const subjectId = await apiUser('t1');
      const page = await signIn('officer', { lang });
      await page.goto(`${t.url}/console/issue?subject=${subjectId}`);
      // t1 makes a user's encryption certificate optional: the checkbox, and the notice.
      expect(await page.locator('#encryption').isVisible()).toBe(true);
      expect(await page.locator('#encryption-required').isVisible()).toBe(false);
      expect(await text(page, '#encryption-notice')).toMatch(L.notice);
      const csr = await opensslCsr(tmp, `dual-${lang}`, 'P-256');
      await page.fill('#csr', csr.csrPem);
      await page.check('#encryption');
      const { location } = await postAndShow(page, '#issue', '/console/issue');
      expect(await text(page, '#issued')).toBe(L.issued);
      expect(await text(page, '#h-encryption')).toBe(L.h);
      const signSerial = await text(page, '#serial');
      const encSerial = await text(page, '#enc-serial');
      const passphrase = await text(page, '#p12-enc-passphrase');
      // A CSR's key stays the holder's: no PKCS#12 for the signing certificate.
      expect(await page.locator('#p12-passphrase').count()).toBe(0);
      const signPem = await download(page, '#dl-pem', `dual-sign-${lang}.pem`);
      const encPem = await download(page, '#dl-enc-pem', `dual-enc-${lang}.pem`);
      const encChain = pemBlocks(readFileSync(await download(page, '#dl-enc-chain', `dual-enc-chain-${lang}.pem`), 'utf8'));
      const p12 = await download(page, '#p12-enc-download', `dual-enc-${lang}.p12`);
      const [sign] = await t.store.certificates.findBySerial(signSerial);
      const [enc] = await t.store.certificates.findBySerial(encSerial);
      dualEnc.push({ issuerId: enc.issuerId, serial: encSerial, pem: readFileSync(encPem, 'utf8') });
      expect([sign.profile, enc.profile, sign.subjectId, enc.subjectId]).toEqual(['user-sign', 'user-enc', subjectId, subjectId]);
      for (const pem of [signPem, encPem]) {
        const verify = await openssl(['verify', '-attime', epochOf(clock.now()), '-CAfile', tmp.file('root.pem', root), '-untrusted', tmp.file(`dual-inter-${lang}.pem`, encChain.slice(1, 3).join('')),
          '-policy', EXAMPLE_TIER_OIDS.t1, '-explicit_policy', '-purpose', 'any', pem]);
        expect([verify.code, verify.stdout.trim()]).toEqual([0, `${pem}: OK`]);
      }
      const encText = (await openssl(['x509', '-in', encPem, '-noout', '-text'])).stdout;
      expect(encText).toMatch(/X509v3 Key Usage: critical\s+Key Agreement\n/);
      expect(encText).toMatch(/X509v3 Extended Key Usage:\s+E-mail Protection/);
      const signText = (await openssl(['x509', '-in', signPem, '-noout', '-text'])).stdout;
      expect(signText).toMatch(/X509v3 Key Usage: critical\s+Digital Signature, Non Repudiation/);
      // The signing certificate carries the holder's key; the PKCS#12 the KMC's key of the encryption certificate.
      expect(await pubkeyOf(['x509', '-in', signPem, '-noout', '-pubkey'])).toBe(await pubkeyOf(['pkey', '-in', csr.keyPath, '-pubout']));
      const opened = await openPkcs12(p12, passphrase);
      expect(opened.certPem).toBe(pemBlocks(readFileSync(encPem, 'utf8'))[0]);
      expect(await pubkeyOf(['pkey', '-in', tmp.file(`dual-enc-${lang}.key`, opened.keyPem), '-pubout'])).toBe(await pubkeyOf(['x509', '-in', encPem, '-noout', '-pubkey']));
      // The key is escrowed at the KMC, bound to the encryption certificate.
      expect((await call(t, 'officer', 'GET', `/api/v1/subjects/${subjectId}/keys`)).body).toEqual([expect.objectContaining({ serial: encSerial, issuerId: enc.issuerId })]);
      // Once: a reload shows neither passphrase.
      expect((await page.reload())!.status()).toBe(410);
      expect(await text(page, 'h1')).toBe(L.gone);
      expect(await page.content()).not.toContain(passphrase);
      expect(page.url()).toBe(`${t.url}${location}`);
      expect(violations).toEqual([]);
    });
  }

  it('recovers an escrowed encryption key under dual control: the approval shows the passphrase once, and openssl opens the PKCS#12', async () => {
    const enc = dualEnc[0]!;
    const asked = await call(t, 'officer', 'POST', `/api/v1/escrow/${enc.issuerId}/${enc.serial}/recover`, { reason: 'console test: archived mail' });
    expect(asked.status, JSON.stringify(asked.body)).toBe(202);
    const page = await signIn('officer2');
    await page.goto(`${t.url}/console/requests`);
    await postAndShow(page, `#approve-${asked.body.request.id}`, `/console/requests/${asked.body.request.id}/approve`);
    expect(await text(page, 'h1')).toBe('密钥已恢复');
    const passphrase = await text(page, '#p12-passphrase');
    const opened = await openPkcs12(await download(page, '#p12-download', 'recovered.p12'), passphrase);
    expect(opened.certPem).toBe(pemBlocks(enc.pem)[0]);
    expect(await pubkeyOf(['pkey', '-in', tmp.file('recovered.key', opened.keyPem), '-pubout'])).toBe(await pubkeyOf(['x509', '-in', tmp.file('recovered-enc.pem', enc.pem), '-noout', '-pubkey']));
    expect((await page.reload())!.status()).toBe(410);
    expect(await page.content()).not.toContain(passphrase);
    expect(JSON.stringify(await t.store.audit.list({ fromSeq: 1 })).includes(passphrase)).toBe(false);
  });

  it('offers the choice only where the subject\'s tier and kind allow it; without it no encryption certificate; a device never', async () => {
    const page = await signIn('officer');
    // t2 requires it for users: a note, no checkbox.
    const t2 = await apiUser('t2');
    await page.goto(`${t.url}/console/issue?subject=${t2}`);
    expect([await page.locator('#encryption').isVisible(), await page.locator('#encryption-required').isVisible()]).toEqual([false, true]);
    expect(await text(page, '#encryption-required')).toBe('该级别签发签名证书时总是同时签发加密证书。');
    // A device at t1: devices get none by default, so no choice; choosing a t1 user offers it (console.js).
    const device = await apiSubject('t1');
    const t1 = await apiUser('t1');
    await page.goto(`${t.url}/console/issue?subject=${device}`);
    expect(await page.locator('#encryption-choice').isVisible()).toBe(false);
    await page.selectOption('#subjectId', t1);
    expect(await page.locator('#encryption').isVisible()).toBe(true);
    // With no subject chosen the choice is there, and follows the subject chosen.
    await page.goto(`${t.url}/console/issue`);
    expect(await page.locator('#encryption').isVisible()).toBe(true);
    await page.selectOption('#subjectId', device);
    expect(await page.locator('#encryption-choice').isVisible()).toBe(false);
    await page.selectOption('#subjectId', t1);
    expect(await page.locator('#encryption').isVisible()).toBe(true);
    // Not ticked: the signing certificate alone.
    await page.fill('#csr', (await nodeCsr()).csrPem);
    await postAndShow(page, '#issue', '/console/issue');
    expect(await text(page, '#issued')).toBe('证书已签发。');
    expect(await page.locator('#enc-serial').count()).toBe(0);
    expect((await t.store.certificates.list({ subjectId: t1 })).map((c) => c.profile)).toEqual(['user-sign']);
  });
});

describe('roles, CSRF, sessions', () => {
  it('shows a role only its pages; any other is a 403 page, and the denial is audited', async () => {
    const cases: [RoleName, string[], string[], string][] = [
      ['officer', ['总览', '证书', '签发', '待审批请求'], ['审计日志', '用户与设备账号', '轮换', '密钥库'], '/console/audit'],
      ['auditor', ['审计日志', '证书'], ['签发', '总览', '用户与设备账号', '轮换'], '/console/issue'],
      ['admin', ['用户与设备账号', '轮换', '密钥库', '待审批请求'], ['签发', '审计日志', '总览', '主体'], '/console/issue'],
    ];
    for (const [who, shown, hidden, forbidden] of cases) {
      const page = await signIn(who);
      const entries = await menu(page);
      for (const s of shown) expect([who, entries]).toEqual([who, expect.arrayContaining([s])]);
      for (const h of hidden) expect([who, entries.includes(h)]).toEqual([who, false]);
      const before = (await t.store.audit.last())!.seq;
      const res = await page.goto(`${t.url}${forbidden}`);
      expect([who, res!.status(), await text(page, 'h1')]).toEqual([who, 403, '无权访问（403）']);
      const [denied] = await t.store.audit.list({ fromSeq: before + 1 });
      expect(denied).toMatchObject({ principalId: ids[who], outcome: 'denied', target: `GET ${forbidden}` });
    }
    // Sysadmins and auditors are refused the officer's actions too, not only its pages.
    const admin = await signIn('admin');
    const res = await admin.request.post(`${t.url}/console/certificates/${issued.issuerId}/${issued.serial}/hold`, { form: { _csrf: await csrfOf(admin) }, maxRedirects: 0 });
    expect(res.status()).toBe(403);
  });

  it('refuses a form posted without its CSRF token (or with another), changes nothing and records the refusal', async () => {
    const serial = (await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId: await apiSubject('t1'), csr: (await nodeCsr()).csrPem })).body.certificate.serial;
    const [cert] = await t.store.certificates.findBySerial(serial);
    const page = await signIn('officer');
    await page.goto(`${t.url}/console/certificates/${cert.issuerId}/${serial}`);
    await page.evaluate(() => document.querySelectorAll('input[name="_csrf"]').forEach((e) => e.remove()));
    const before = (await t.store.audit.last())!.seq;
    const [res] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/hold')), page.click('#hold')]);
    expect(res.status()).toBe(403);
    expect(await text(page, '#problem strong')).toBe('表单被拒绝');
    const forged = await page.request.post(`${t.url}/console/certificates/${cert.issuerId}/${serial}/hold`, { form: { _csrf: 'x'.repeat(43) }, maxRedirects: 0 });
    expect(forged.status()).toBe(403);
    expect((await t.store.certificates.findBySerial(serial))[0].status).toBe('good');
    const records = await t.store.audit.list({ fromSeq: before + 1 });
    expect(records.map((r) => [r.action, r.outcome, r.principalId, r.detail])).toEqual([
      ['console.page', 'denied', ids.officer, { missing: 'csrf-token' }],
      ['console.page', 'denied', ids.officer, { missing: 'csrf-token' }],
    ]);
    // With its token the same form works.
    await page.goto(`${t.url}/console/certificates/${cert.issuerId}/${serial}`);
    await Promise.all([page.waitForURL(`${t.url}/console/certificates/${cert.issuerId}/${serial}`), page.click('#hold')]);
    expect((await t.store.certificates.findBySerial(serial))[0].status).toBe('hold');
  });

  it('sends a session past its idle timeout (15 min) or its absolute one (8 h) to sign-in, and ends it at sign-out', async () => {
    const idle = await signIn('officer');
    clock.advance(14 * MINUTE);
    expect((await idle.goto(`${t.url}/console/certificates`))!.status()).toBe(200);
    clock.advance(15 * MINUTE + 1000);
    await idle.goto(`${t.url}/console/certificates`);
    expect(idle.url()).toBe(`${t.url}/console/signin?expired=1`);
    expect(await text(idle, '#expired')).toBe('会话已超时结束，请重新登录。');

    const busy = await signIn('officer');
    let minutes = 0;
    while (minutes + 14 < 8 * 60) {
      clock.advance(14 * MINUTE);
      minutes += 14;
      await busy.goto(`${t.url}/console/requests`);
      expect([minutes, busy.url()]).toEqual([minutes, `${t.url}/console/requests`]);
    }
    clock.advance(14 * MINUTE);
    await busy.goto(`${t.url}/console/requests`);
    expect(busy.url()).toBe(`${t.url}/console/signin?expired=1`);

    const out = await signIn('officer');
    const cookie = (await out.context().cookies()).find((c) => c.name === 'tierca_session')!.value;
    await Promise.all([out.waitForURL(`${t.url}/console/signin`), out.click('#sign-out')]);
    await out.goto(`${t.url}/console/certificates`);
    expect(out.url()).toBe(`${t.url}/console/signin`);
    // The old cookie is worth nothing now.
    const replay = await fetch(`${t.url}/console/certificates`, { headers: { cookie: `tierca_session=${cookie}` }, redirect: 'manual' });
    expect([replay.status, replay.headers.get('location')]).toEqual([303, '/console/signin']);
    expect((await t.store.audit.list({ fromSeq: 1, action: 'console.sign-out' })).at(-1)).toMatchObject({ principalId: ids.officer, outcome: 'success' });
  });
});

describe('screenshots and accessibility', () => {
  const PAGES: [RoleName, string, string][] = [
    ['officer', 'dashboard', '/console/dashboard'],
    ['officer', 'certificates', '/console/certificates'],
    ['officer', 'certificate', ''],
    ['officer', 'issue', '/console/issue'],
    ['officer', 'subjects', '/console/subjects'],
    ['officer', 'requests', '/console/requests'],
    ['officer', 'crls', '/console/crls'],
    ['officer', 'forbidden', '/console/keystore'],
    ['officer', 'shown-gone', '/console/shown/already-shown-or-expired'],
    ['auditor', 'audit', '/console/audit'],
    ['auditor', 'audit-verify', '/console/audit/verify'],
    ['admin', 'principals', '/console/principals'],
    ['admin', 'rotation', '/console/rotation'],
    ['admin', 'keystore', '/console/keystore'],
  ];

  for (const lang of ['zh-CN', 'en'] as const) {
    it(`each main page in ${lang}: a screenshot, and no serious or critical axe-core violation`, async () => {
      const found: string[] = [];
      const check = async (page: Page, name: string) => {
        await page.screenshot({ path: join(ARTIFACTS, `${lang}-${name}.png`), fullPage: true });
        await page.addScriptTag({ path: AXE });
        const result = await page.evaluate(async () => (window as unknown as { axe: { run: (d: Document) => Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe.run(document));
        for (const v of result.violations) if (v.impact === 'serious' || v.impact === 'critical') found.push(`${name}: ${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
      };
      // Fifteen pages with axe each: past the default minute when the two cores are shared.
      // axe is injected as a script tag, which the console's own CSP would (rightly) refuse: these
      // contexts bypass it; every flow above runs under it.
      const anonymous = await newPage({ bypassCSP: true });
      await anonymous.goto(`${t.url}/console/lang/${lang}?next=/console/signin`);
      await check(anonymous, 'signin');
      const pages = new Map<RoleName, Page>();
      for (const [who, name, path] of PAGES) {
        if (!pages.has(who)) pages.set(who, await signIn(who, { lang, bypassCSP: true }));
        const page = pages.get(who)!;
        await page.goto(`${t.url}${path || `/console/certificates/${issued.issuerId}/${issued.serial}`}`);
        expect([name, await page.getAttribute('html', 'lang')]).toEqual([name, lang]);
        await check(page, name);
      }
      expect(found).toEqual([]);
    }, 180_000);
  }
});

describe('sysadmin rotation', () => {
  it('shows what is due, runs a dry run that changes nothing, then executes with progress', async () => {
    const subjectId = await apiSubject('t1');
    const short = await call(t, 'officer', 'POST', '/api/v1/certificates', { subjectId, csr: (await nodeCsr()).csrPem, days: 1 });
    expect(short.status, JSON.stringify(short.body)).toBe(201);
    const serial = short.body.certificate.serial;
    // Past two thirds of its one-day life: due for renewal by the server.
    clock.advance(17 * 60 * MINUTE);
    const page = await signIn('admin');
    await page.goto(`${t.url}/console/rotation`);
    expect(await page.locator('#due').textContent()).toContain(serial);
    const count = async () => (await t.store.certificates.list({ subjectId })).length;
    const auditBefore = (await t.store.audit.last())!.seq;
    await page.click('#dry-run');
    const dry = page.locator(`#dry-run-items tr:has-text("${serial}")`);
    expect(await dry.getAttribute('data-outcome')).toBe('would-renew');
    expect(await count()).toBe(1);
    expect((await t.store.audit.list({ fromSeq: auditBefore + 1 })).filter((a) => a.action === 'certificate.renew')).toEqual([]);

    await page.click('#execute');
    await page.locator('#run-done').waitFor({ timeout: 60_000 });
    expect(await page.locator('#run-progress li.batch').count()).toBeGreaterThanOrEqual(1);
    expect(await page.locator(`#run-progress tr:has-text("${serial}")`).first().getAttribute('data-outcome')).toBe('renewed');
    expect(await count()).toBe(2);
    const run = (await t.store.audit.list({ fromSeq: auditBefore + 1 })).filter((a) => a.action === 'rotation.run');
    expect(run.length).toBeGreaterThanOrEqual(2);
    for (const r of run) expect(r).toMatchObject({ principalId: ids.admin, role: 'sysadmin' });
    expect(violations).toEqual([]);
  });

  it('asks for a CA rollover, which the asker cannot approve and a second sysadmin approves', async () => {
    const before = (await call(t, 'auditor', 'GET', '/api/v1/cas')).body.length;
    const page = await signIn('admin');
    await page.goto(`${t.url}/console/rotation`);
    await page.selectOption('#rollover-ca', 'yuhu-t1');
    await Promise.all([page.waitForURL(`${t.url}/console/rotation`), page.click('#request-rollover')]);
    const [request] = (await t.store.requests.list({ status: 'pending' })).filter((r) => r.action === 'ca.rollover');
    expect(request).toMatchObject({ requestedBy: ids.admin, payload: { ca: 'yuhu-t1' } });
    expect(await text(page, '.notice.ok')).toBe(`已创建请求 ${request.id}：需另一名系统管理员批准。`);
    await page.goto(`${t.url}/console/requests`);
    await page.locator(`#own-${request.id}`).waitFor();
    expect(await page.locator(`#approve-${request.id}`).count()).toBe(0);
    const second = await signIn('admin2');
    await second.goto(`${t.url}/console/requests`);
    await second.click(`#approve-${request.id}`);
    await second.locator('#done').waitFor();
    expect((await t.store.requests.get(request.id))!.status).toBe('done');
    expect((await call(t, 'auditor', 'GET', '/api/v1/cas')).body.length).toBe(before + 1);
    expect(violations).toEqual([]);
  });
});
