/**
 * A signing thread (started by signing-pool.ts): verifies CSR signatures and signs issuances for the
 * main thread, which keeps HTTP, storage and the transaction. Jobs arrive as messages with an id;
 * each answer carries the id and either the result or the error as plain fields (errors lose their
 * class crossing threads; the pool rebuilds them).
 */
import { parentPort } from 'node:worker_threads';
import { checkCsrProofOfPossession } from '../../pki/csr.ts';
import { softwareSigner } from '../../pki/software-signer.ts';
import type { InMemoryKey, Signer } from '../../pki/signer.ts';
import { mapJobBytes, signIssuance, type IssuanceSigningJob } from './issuance-signing.ts';
import { asBuffer, tight, type SigningReply, type SigningRequest, type WireError } from './signing-pool.ts';

if (!parentPort) throw new Error('signing-worker.ts runs as a worker thread only');
const port = parentPort;

/** Signers by the pool's key id: rebuilding one reads its public key, so it is done once per key. */
const signers = new Map<number, Signer>();
const MAX_SIGNERS = 256;

function signerFor(ref: { id: number; key: InMemoryKey }): Signer {
  let signer = signers.get(ref.id);
  if (!signer) {
    if (signers.size >= MAX_SIGNERS) signers.clear();
    // This thread serves no I/O: sign here rather than hand each signature to libuv's pool and back.
    signer = softwareSigner({ ...ref.key, synchronous: true });
    signers.set(ref.id, signer);
  }
  return signer;
}

async function run(request: SigningRequest): Promise<unknown> {
  switch (request.op) {
    case 'verify-csr':
      // The calling thread parsed the request whole; the check cuts out only the parts it signs over.
      return checkCsrProofOfPossession({ der: Buffer.from(request.der) });
    case 'issue': {
      const signed = await signIssuance(revive(request.job), { ca: signerFor(request.ca), responder: signerFor(request.responder) });
      // Answered in ArrayBuffers of their own: DER made with Buffer.concat sits in Node's shared pool.
      return { certificate: tight(signed.certificate), ocsp: tight(signed.ocsp), proofOfPossession: signed.proofOfPossession };
    }
  }
}

/** Structured clone turns Buffers into Uint8Arrays: make them Buffers again (no copy). */
const revive = (job: IssuanceSigningJob): IssuanceSigningJob => mapJobBytes(job, asBuffer);

function wireError(err: unknown): WireError {
  const e = err as { name?: unknown; code?: unknown; message?: unknown; options?: { detail?: unknown } };
  return {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    code: typeof e?.code === 'string' ? e.code : undefined,
    message: typeof e?.message === 'string' ? e.message : String(err),
    detail: e?.options?.detail as Record<string, unknown> | undefined,
  };
}

port.on('message', (request: SigningRequest) => {
  run(request).then(
    (result) => port.postMessage({ id: request.id, ok: true, result } satisfies SigningReply),
    (err: unknown) => port.postMessage({ id: request.id, ok: false, error: wireError(err) } satisfies SigningReply),
  );
});
