/**
 * Signing threads: where issuance's CPU-bound work runs — CSR proof-of-possession checks and the
 * build, signature and lint of a certificate with its first OCSP answer — so that the main thread
 * keeps only HTTP, policy and storage. On this 2-core machine kind the main thread was the limit of
 * issuance (docs/benchmarks.md): moving ~0.5 ms of each certificate to a second core is what lets one
 * process approach 1,000 certificates/s, and it keeps the single SQLite writer and its group commit.
 *
 * Only software keys go to a thread: their KeyObject is posted with the job (a clone of the handle,
 * within this process; nothing is written anywhere). A signer without an in-memory key (PKCS#11)
 * signs on the calling thread, as does everything when the pool has 0 threads. Threads start on
 * first use and do not keep the process alive; a thread that dies fails its jobs with `internal`
 * and is replaced by the next job.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checkCsrProofOfPossession, type CsrProofOfPossession, type ParsedCsr } from '../../pki/csr.ts';
import { PkiError, type PkiErrorCode } from '../../pki/pki-error.ts';
import type { InMemoryKey, Signer } from '../../pki/signer.ts';
import { TiercaError, type ErrorCode } from '../errors.ts';
import { mapJobBytes, signIssuance, type IssuanceSigningJob, type SignedIssuance } from './issuance-signing.ts';

/** A job as posted to a thread. */
export type SigningRequest =
  | { id: number; op: 'verify-csr'; der: Uint8Array }
  | { id: number; op: 'issue'; job: IssuanceSigningJob; ca: KeyRef; responder: KeyRef };

/** A thread's answer to one job. */
export type SigningReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: WireError };

/** An error as it crosses threads: class name, code and message (the pool rebuilds PkiError and TiercaError). */
export interface WireError {
  name: string;
  code?: string;
  message: string;
  detail?: Record<string, unknown>;
}

interface KeyRef {
  id: number;
  key: InMemoryKey;
}

interface Thread {
  worker: Worker;
  pending: Map<number, { resolve: (value: unknown) => void; reject: (reason: unknown) => void }>;
}

/**
 * Threads of a process by default: one fewer than its cores (the main thread has one), at most 4,
 * or TIERCA_SIGNING_THREADS (0: sign on the main thread).
 */
export function defaultSigningThreads(env: NodeJS.ProcessEnv = process.env): number {
  const configured = env.TIERCA_SIGNING_THREADS;
  if (configured !== undefined && configured !== '') {
    const n = Number(configured);
    if (!Number.isInteger(n) || n < 0 || n > 64) throw new Error(`TIERCA_SIGNING_THREADS must be an integer from 0 to 64 (got ${configured})`);
    return n;
  }
  return Math.min(4, Math.max(0, availableParallelism() - 1));
}

export class SigningPool {
  private readonly threads: (Thread | undefined)[];
  /** Ids by signer key (not by KeyObject: one key may sign with two RSA paddings, each its own signer). */
  private readonly keyIds = new WeakMap<InMemoryKey, number>();
  private nextKeyId = 1;
  private nextJobId = 1;
  private closed = false;

  /** `threads`: how many signing threads at most (0: everything on the calling thread). */
  constructor(readonly size: number = defaultSigningThreads()) {
    this.threads = new Array<Thread | undefined>(size).fill(undefined);
  }

  /** Checks a CSR's proof of possession (and learns the SM2 identity); throws PkiError('bad-signature') when it does not verify. */
  async verifyCsr(csr: ParsedCsr): Promise<CsrProofOfPossession> {
    if (this.size === 0) return checkCsrProofOfPossession(csr);
    return (await this.post({ id: 0, op: 'verify-csr', der: tight(csr.der) })) as CsrProofOfPossession;
  }

  /** Signs one issuance (see issuance-signing.ts); on a thread when both keys are in memory. */
  async signIssuance(job: IssuanceSigningJob, signers: { ca: Signer; responder: Signer }): Promise<SignedIssuance> {
    const ca = signers.ca.inMemoryKey;
    const responder = signers.responder.inMemoryKey;
    if (this.size === 0 || !ca || !responder) return signIssuance(job, signers);
    const result = (await this.post({ id: 0, op: 'issue', job: mapJobBytes(job, (b) => tight(b) as Buffer), ca: this.refOf(ca), responder: this.refOf(responder) })) as {
      certificate: Uint8Array;
      ocsp: Uint8Array;
      proofOfPossession?: SignedIssuance['proofOfPossession'];
    };
    const signed: SignedIssuance = { certificate: asBuffer(result.certificate), ocsp: asBuffer(result.ocsp) };
    if (result.proofOfPossession) signed.proofOfPossession = result.proofOfPossession;
    return signed;
  }

  /** Each running thread's event-loop utilisation (busy and idle time since it started), for benchmarks. */
  utilization(): { idle: number; active: number }[] {
    return this.threads.flatMap((t) => (t ? [t.worker.performance.eventLoopUtilization()] : []));
  }

  /** Stops every thread; jobs still running fail. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.map((t) => t?.worker.terminate()));
    this.threads.fill(undefined);
  }

  private refOf(key: InMemoryKey): KeyRef {
    let id = this.keyIds.get(key);
    if (id === undefined) {
      id = this.nextKeyId++;
      this.keyIds.set(key, id);
    }
    return { id, key };
  }

  private post(request: SigningRequest): Promise<unknown> {
    if (this.closed) return Promise.reject(new TiercaError('unavailable', 'the signing threads are stopped'));
    const thread = this.leastBusy();
    const id = this.nextJobId++;
    return new Promise((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage({ ...request, id });
    });
  }

  /** The thread with the fewest jobs in flight; a missing one is started. */
  private leastBusy(): Thread {
    let best = 0;
    for (let i = 0; i < this.threads.length; i++) {
      const t = this.threads[i];
      if (!t) return (this.threads[i] = this.start(i));
      if (t.pending.size < this.threads[best]!.pending.size) best = i;
    }
    return this.threads[best]!;
  }

  private start(slot: number): Thread {
    const worker = new Worker(WORKER_ENTRY, { execArgv: [] });
    worker.unref();
    const thread: Thread = { worker, pending: new Map() };
    worker.on('message', (reply: SigningReply) => {
      const job = thread.pending.get(reply.id);
      if (!job) return;
      thread.pending.delete(reply.id);
      if (reply.ok) job.resolve(reply.result);
      else job.reject(rebuild(reply.error));
    });
    const fail = (reason: string) => {
      if (this.threads[slot] === thread) this.threads[slot] = undefined;
      for (const job of thread.pending.values()) job.reject(new TiercaError('internal', `signing thread failed: ${reason}`));
      thread.pending.clear();
    };
    worker.on('error', (err) => fail(err.message));
    worker.on('exit', (code) => fail(`exited with code ${code}`));
    return thread;
  }
}

/** A plain-JavaScript entry that registers tsx in the thread, then loads signing-worker.ts. */
const WORKER_ENTRY = new URL('./signing-worker.boot.mjs', import.meta.url);

/**
 * The bytes of `b` in an ArrayBuffer of their own. Structured clone copies a view's whole backing
 * ArrayBuffer, and small Buffers are slices of Node's shared 8 KiB pool (or of a larger DER they
 * were read from): posted as they are, every field of a job dragged kilobytes across — measured at
 * ~0.15 ms of main-thread time per issuance, more than the rest of the hand-over.
 */
export function tight(b: Uint8Array): Uint8Array {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b);
}

/** A Buffer over the same bytes (structured clone delivers Uint8Arrays); no copy. */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function rebuild(e: WireError): Error {
  if (e.name === 'PkiError' && e.code) return new PkiError(e.code as PkiErrorCode, e.message);
  if (e.name === 'TiercaError' && e.code) return new TiercaError(e.code as ErrorCode, e.message, { detail: e.detail });
  return new TiercaError('internal', `signing thread: ${e.message}`);
}
