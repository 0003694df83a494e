/**
 * Console sessions: a server-side store keyed by a random id that only the browser's cookie holds.
 * The store keeps the SHA-256 of the id, never the id itself (a dump of the store or a log line
 * cannot be replayed as a cookie), and each session's CSRF token. A session ends at sign-out, after
 * `idleMs` without a request (default 15 minutes) or `absoluteMs` after sign-in (default 8 hours),
 * all on the injected clock.
 *
 * In memory, per process (docs/decisions/0025-console.md): a restart signs everyone out, and with
 * several instances behind one address the balancer must keep a browser on one instance.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import type { View } from './console-context.ts';
import type { SafeHtml } from './html.ts';

export interface SessionTimeouts {
  /** Without a request for this long, a session ends. Default 15 minutes. */
  idleMs: number;
  /** This long after sign-in, a session ends whatever happens. Default 8 hours. */
  absoluteMs: number;
}

export const DEFAULT_TIMEOUTS: SessionTimeouts = { idleMs: 15 * 60_000, absoluteMs: 8 * 60 * 60_000 };

/** At most this many sessions are kept; past it the oldest is dropped (a flood of sign-ins cannot fill memory). */
const MAX_SESSIONS = 10_000;

/** A one-time notice shown on the next page (after a redirect). */
export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

export interface ConsoleSession {
  principalId: string;
  via: 'token' | 'certificate';
  /** The client certificate a certificate session signed in with: checked again on every request. */
  certificate?: Buffer;
  /** The CSRF token of every state-changing form of this session. */
  readonly csrf: string;
  readonly createdAt: number;
  lastSeen: number;
  flash?: Flash;
  /** Secrets delivered once (a PKCS#12): by delivery id; removed when downloaded. */
  deliveries: Map<string, { name: string; type: string; body: Buffer; until: number }>;
  /** Result pages shown once (shown.ts): by result id; removed when shown. */
  shown: Map<string, ShownEntry>;
}

/** A result page kept for one showing: rendered in the language of the GET that shows it, until `until` (ms). */
export interface ShownEntry {
  until: number;
  render: (view: View) => { title: string; body: SafeHtml };
}

export type SessionLookup = { state: 'active'; session: ConsoleSession } | { state: 'expired' } | { state: 'none' };

const hashId = (id: string): string => createHash('sha256').update(id, 'utf8').digest('hex');

export class SessionStore {
  private readonly sessions = new Map<string, ConsoleSession>();

  constructor(
    private readonly clock: Clock,
    readonly timeouts: SessionTimeouts = DEFAULT_TIMEOUTS,
    private readonly random: (n: number) => Buffer = randomBytes,
  ) {}

  /** A new session; the id is returned once, for the cookie. */
  create(p: { principalId: string; via: 'token' | 'certificate'; certificate?: Buffer }): { id: string; session: ConsoleSession } {
    this.sweep();
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const id = this.random(32).toString('base64url');
    const now = this.clock.now().getTime();
    const session: ConsoleSession = {
      principalId: p.principalId, via: p.via, certificate: p.certificate, csrf: this.random(32).toString('base64url'),
      createdAt: now, lastSeen: now, deliveries: new Map(), shown: new Map(),
    };
    this.sessions.set(hashId(id), session);
    return { id, session };
  }

  /** The session of a cookie value, touched; an expired one is removed and reported as such. */
  find(id: string | undefined): SessionLookup {
    if (!id || !/^[A-Za-z0-9_-]{20,100}$/.test(id)) return { state: 'none' };
    const key = hashId(id);
    const session = this.sessions.get(key);
    if (!session) return { state: 'none' };
    const now = this.clock.now().getTime();
    if (this.expired(session, now)) {
      this.sessions.delete(key);
      return { state: 'expired' };
    }
    session.lastSeen = now;
    return { state: 'active', session };
  }

  destroy(id: string | undefined): void {
    if (id) this.sessions.delete(hashId(id));
  }

  /** Ends every session of a principal (it was disabled, or its certificate stopped authenticating). */
  destroyPrincipal(principalId: string): void {
    for (const [key, s] of this.sessions) if (s.principalId === principalId) this.sessions.delete(key);
  }

  get size(): number {
    return this.sessions.size;
  }

  private expired(s: ConsoleSession, now: number): boolean {
    return now - s.lastSeen >= this.timeouts.idleMs || now - s.createdAt >= this.timeouts.absoluteMs;
  }

  private sweep(): void {
    const now = this.clock.now().getTime();
    for (const [key, s] of this.sessions) if (this.expired(s, now)) this.sessions.delete(key);
  }
}

/** Whether `given` is `expected`, compared in constant time (CSRF tokens, sign-in nonces). */
export function sameSecret(expected: string, given: unknown): boolean {
  if (typeof given !== 'string' || given.length === 0 || given.length > 200) return false;
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(given).digest();
  return timingSafeEqual(a, b);
}
