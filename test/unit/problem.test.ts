/** RFC 9457 documents from errors: the defined members cannot be replaced by an error's detail. */
import express from 'express';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { TiercaError } from '../../server/errors.ts';
import { problemHandler, problemOf } from '../../server/http/problem.ts';

async function answerOf(err: unknown): Promise<{ status: number; body: Record<string, unknown>; type: string | null }> {
  const app = express();
  app.get('/x', () => {
    throw err;
  });
  app.use(problemHandler(pino({ level: 'silent' })));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    const { port } = server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/x`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, type: res.headers.get('content-type') };
  } finally {
    server.close();
  }
}

describe('problem documents', () => {
  it('keeps status, type, title and detail when an extension member has the same name', () => {
    const doc = problemOf('conflict', 'the request is done', { status: 'approved', type: 'x', title: 'y', detail: 'z', request: 'r1' });
    expect(doc.status).toBe(409);
    expect(doc.type).toBe('urn:tierca:problem:conflict');
    expect(doc.title).not.toBe('y');
    expect(doc.detail).toBe('the request is done');
    expect(doc.request).toBe('r1');
  });

  it('answers with the code status even when the error detail carries a `status` key', async () => {
    const answer = await answerOf(new TiercaError('not-found', 'no such request', { detail: { status: 'pending', id: 'q1' } }));
    expect(answer.status).toBe(404);
    expect(answer.type).toMatch(/^application\/problem\+json/);
    expect(answer.body).toMatchObject({ status: 404, type: 'urn:tierca:problem:not-found', detail: 'no such request', id: 'q1', instance: '/x' });
  });

  it('hides the cause of an unexpected error behind an error id', async () => {
    const answer = await answerOf(new Error('secret key material 3082'));
    expect(answer.status).toBe(500);
    expect(JSON.stringify(answer.body)).not.toContain('3082');
    expect(answer.body.errorId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('token faults while serving', () => {
  it('answers 503 unavailable with Retry-After when the token session is lost, naming no secret', async () => {
    const { KeystoreError } = await import('../../pki/keystore/pkcs11-errors.ts');
    const answer = await answerOf(new KeystoreError('session-lost', 'signing with key "yuhu-t2": the token session was lost', 'CKR_SESSION_HANDLE_INVALID'));
    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ type: 'urn:tierca:problem:unavailable', status: 503 });
  });

  it('answers 503 keystore-fault naming the fault for a key object missing from the token', async () => {
    const { KeystoreError } = await import('../../pki/keystore/pkcs11-errors.ts');
    const answer = await answerOf(new KeystoreError('key-missing', 'no key object "tierca:yuhu-t2" in token "tierca"'));
    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ type: 'urn:tierca:problem:keystore-fault', fault: 'key-missing' });
    expect(String(answer.body.detail)).toMatch(/tierca:yuhu-t2.*is it the token the ceremony used/);
  });
});
