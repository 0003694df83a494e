// The console's two small foundations: the `html` template escapes every interpolation (only another
// `html` result passes through), and the session store keeps no session id, only its hash, and ends
// sessions at their idle and absolute timeouts on the injected clock.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { html, escapeHtml } from '../../server/http/console/html.ts';
import { SessionStore, sameSecret, type ConsoleSession } from '../../server/http/console/session-store.ts';
import { SHOWN_MS, showOnce, takeShown } from '../../server/http/console/shown.ts';
import type { Response } from 'express';
import { FixedClock } from '../../server/clock.ts';
import { EN } from '../../server/http/console/messages.en.ts';
import { ZH_CN } from '../../server/http/console/messages.zh-CN.ts';
import { errorFacts, errorText, errorTitle, translator } from '../../server/http/console/i18n.ts';
import { ERROR_CODES, ERROR_DETAIL_KEYS, type ErrorCode } from '../../server/errors.ts';

describe('html', () => {
  it('escapes text, attributes and arrays; passes html results; drops null, undefined and false', () => {
    const name = '<script>alert("x")</script> & \'q\' `b`';
    expect(html`<p title="${name}">${name}</p>`.value).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39; &#96;b&#96;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39; &#96;b&#96;</p>',
    );
    expect(html`<ul>${['<a>', html`<li>${'&'}</li>`]}</ul>`.value).toBe('<ul>&lt;a&gt;<li>&amp;</li></ul>');
    expect(html`${null}${undefined}${false}${0}`.value).toBe('0');
    expect(escapeHtml('a"b')).toBe('a&quot;b');
  });
});

describe('SessionStore', () => {
  const start = new Date('2026-12-03T08:00:00Z');

  it('keeps only the SHA-256 of a session id, and finds the session by the id', () => {
    const store = new SessionStore(new FixedClock(start));
    const { id, session } = store.create({ principalId: 'prn-1', via: 'token' });
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const keys = [...(store as unknown as { sessions: Map<string, unknown> }).sessions.keys()];
    expect(keys).toEqual([createHash('sha256').update(id).digest('hex')]);
    expect(JSON.stringify([...(store as unknown as { sessions: Map<string, unknown> }).sessions.values()])).not.toContain(id);
    expect(store.find(id)).toEqual({ state: 'active', session });
    // Change the last character to one it is not, whatever it was (an id ending in A once made this pass by accident).
    expect(store.find(`${id.slice(0, -1)}${id.endsWith('A') ? 'B' : 'A'}`).state).toBe('none');
    expect(store.find(undefined).state).toBe('none');
    expect(session.csrf).not.toBe(id);
  });

  it('ends a session after 15 idle minutes, or 8 hours after sign-in however busy', () => {
    const clock = new FixedClock(start);
    const store = new SessionStore(clock);
    const idle = store.create({ principalId: 'prn-1', via: 'token' }).id;
    clock.advance(15 * 60_000 - 1);
    expect(store.find(idle).state).toBe('active');
    clock.advance(15 * 60_000);
    expect(store.find(idle).state).toBe('expired');
    expect(store.find(idle).state).toBe('none');

    const busy = store.create({ principalId: 'prn-2', via: 'certificate' }).id;
    for (let m = 0; m < 8 * 60 - 10; m += 10) {
      clock.advance(10 * 60_000);
      expect([m, store.find(busy).state]).toEqual([m, 'active']);
    }
    clock.advance(10 * 60_000);
    expect(store.find(busy).state).toBe('expired');
  });

  it('ends sessions at sign-out and when their principal goes', () => {
    const store = new SessionStore(new FixedClock(start), { idleMs: 1000, absoluteMs: 5000 });
    const a = store.create({ principalId: 'prn-1', via: 'token' }).id;
    const b = store.create({ principalId: 'prn-1', via: 'token' }).id;
    const c = store.create({ principalId: 'prn-2', via: 'token' }).id;
    store.destroy(a);
    expect(store.find(a).state).toBe('none');
    store.destroyPrincipal('prn-1');
    expect([store.find(b).state, store.find(c).state]).toEqual(['none', 'active']);
  });
});

describe('sameSecret and the catalogues', () => {
  it('compares secrets whole', () => {
    expect(sameSecret('abc', 'abc')).toBe(true);
    for (const wrong of ['abd', 'ab', '', undefined, ['abc'], 'abc '.repeat(60)]) expect(sameSecret('abc', wrong)).toBe(false);
  });

  it('has every message in both languages, and the same parameters in each', () => {
    expect(Object.keys(ZH_CN).sort()).toEqual(Object.keys(EN).sort());
    const params = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of Object.keys(EN) as (keyof typeof EN)[]) expect([key, params(ZH_CN[key])]).toEqual([key, params(EN[key])]);
  });
});

describe('errors in the chosen language', () => {
  const zh = translator('zh-CN');
  const en = translator('en');

  it('has a title and a message for every error code in both catalogues, different from each other', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      for (const t of [zh, en]) {
        expect(errorTitle(t, code), code).not.toMatch(/^error\./);
        expect(errorText(t, code), code).not.toMatch(/^errorText\./);
      }
      expect(errorText(zh, code), code).toMatch(/[\u4e00-\u9fff]/);
      expect(errorText(zh, code)).not.toBe(errorText(en, code));
    }
    for (const key of ERROR_DETAIL_KEYS) for (const t of [zh, en]) expect(t(`detail.${key}`), key).not.toBe(`detail.${key}`);
  });

  it("words the detail's names and fields in the language, in the order of ERROR_DETAIL_KEYS, and shows nothing else", () => {
    const detail = {
      problems: ['days: Too big: expected number to be <=36500'], fields: [{ field: 'days', issue: 'too_big' }, { field: 'csr', issue: 'something-new' }],
      tier: 't3', allowed: ['p-384', 'sm2'], secretish: 'not shown', issuer: undefined,
    };
    expect(errorFacts(zh, detail)).toEqual([
      { key: 'fields', label: '字段', value: 'days：过大或过长；csr：无效' },
      { key: 'tier', label: '级别', value: 't3' },
      { key: 'allowed', label: '允许的取值', value: 'p-384；sm2' },
    ]);
    expect(errorFacts(en, detail)).toEqual([
      { key: 'fields', label: 'Fields', value: 'days: too large or too long, csr: not valid' },
      { key: 'tier', label: 'Tier', value: 't3' },
      { key: 'allowed', label: 'Allowed', value: 'p-384, sm2' },
    ]);
    expect(errorFacts(zh, undefined)).toEqual([]);
  });
});

describe('results shown once (shown.ts)', () => {
  const start = new Date('2026-12-03T08:00:00Z');
  const render = () => ({ title: 'x', body: html`<p>secret</p>` });
  /** A response stand-in: the session in locals, the redirect recorded. */
  const responseOf = (session: ConsoleSession) => {
    const sent: { status?: number; to?: string } = {};
    const res = { locals: { session }, redirect: (status: number, to: string) => Object.assign(sent, { status, to }) } as unknown as Response;
    return { res, sent };
  };

  it('keeps a result under a random id and answers 303 to /console/shown/<id>; it is taken once', () => {
    const clock = new FixedClock(start);
    const { session } = new SessionStore(clock).create({ principalId: 'prn-1', via: 'token' });
    const { res, sent } = responseOf(session);
    showOnce(res, { clock }, render);
    expect(sent.status).toBe(303);
    const id = sent.to!.replace('/console/shown/', '');
    expect(sent.to).toMatch(/^\/console\/shown\/[A-Za-z0-9_-]{22}$/);
    expect(takeShown(session.shown, id, clock.now())?.render).toBe(render);
    expect(takeShown(session.shown, id, clock.now())).toBeUndefined();
    expect(session.shown.size).toBe(0);
  });

  it('forgets a result at five minutes on the injected clock, and keeps at most 20 per session', () => {
    const clock = new FixedClock(start);
    const { session } = new SessionStore(clock).create({ principalId: 'prn-1', via: 'token' });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { res, sent } = responseOf(session);
      showOnce(res, { clock }, render);
      ids.push(sent.to!.split('/').pop()!);
    }
    clock.advance(SHOWN_MS - 1);
    expect(takeShown(session.shown, ids[0]!, clock.now())).toBeDefined();
    clock.advance(1);
    expect(takeShown(session.shown, ids[1]!, clock.now())).toBeUndefined();
    // Taken even when expired: nothing is left behind.
    expect(session.shown.has(ids[1]!)).toBe(false);
    // A new result sweeps the expired ones; past 20 the oldest goes.
    for (let i = 0; i < 25; i++) showOnce(responseOf(session).res, { clock }, render);
    expect(session.shown.size).toBe(20);
    expect(session.shown.has(ids[2]!)).toBe(false);
  });
});
