/**
 * The local pool: a batch's jobs on this machine, in N worker processes
 * (pool_process.ts) that each run one job at a time and stay up for the next,
 * so the addon, and a model, load once per process rather than once per slide.
 *
 * A job that throws is retried after a backoff that doubles (backoffMs, 2×,
 * 4× …) until `attempts` is spent, unless its error is a wrong input or
 * option (isPermanent), which fails it at once. A process that dies mid-job
 * (a crash, the OOM killer, SIGKILL) costs that job an attempt: a new process
 * takes it, and resumes from what the dead one staged (job.ts). Failures keep
 * their reason.
 */
import { fork, type ChildProcess } from 'node:child_process';

import type { JobOutcome, JobProgress, JobSpec } from './job.js';

export type PoolRequest = { type: 'run'; job: JobSpec };
export type PoolReply =
  | { type: 'ready' }
  | { type: 'progress'; id: string; progress: JobProgress }
  | { type: 'done'; id: string; outcome: JobOutcome }
  | { type: 'failed'; id: string; reason: string; permanent: boolean };

export interface FailedJob {
  id: string;
  slide: string;
  stem: string;
  reason: string;
  attempts: number;
}

export type PoolEvent =
  | { type: 'start'; job: JobSpec; attempt: number; worker: number }
  | { type: 'progress'; job: JobSpec; progress: JobProgress; worker: number }
  | { type: 'done'; job: JobSpec; outcome: JobOutcome; worker: number }
  | { type: 'retry'; job: JobSpec; reason: string; attempt: number; inMs: number }
  | { type: 'failed'; job: JobSpec; failure: FailedJob };

export interface LocalPoolOptions {
  /** Worker processes (at most one per job). */
  workers: number;
  /** Tries per job, the first included. */
  attempts: number;
  /** Wait before the first retry, in ms; doubles on each after. */
  backoffMs: number;
  onEvent?: (event: PoolEvent) => void;
  /** Aborting stops the pool: its processes are killed, their jobs stay resumable. */
  signal?: AbortSignal;
}

export interface LocalPoolResult {
  outcomes: JobOutcome[];
  failed: FailedJob[];
  seconds: number;
}

interface Pending {
  job: JobSpec;
  /** Attempts made so far. */
  attempts: number;
  notBefore: number;
}

interface Slot {
  index: number;
  child: ChildProcess;
  ready: boolean;
  running?: Pending;
  /** The last of the process's stderr, for the reason when it dies. */
  stderr: string;
}

const STDERR_TAIL = 2000;
/** Processes in a row that may die before they are ready. */
const MAX_START_FAILURES = 3;

/** Runs every job through a pool of worker processes; resolves when each has finished or failed for good. */
export function runLocalPool(jobs: readonly JobSpec[], options: LocalPoolOptions): Promise<LocalPoolResult> {
  const started = performance.now();
  const queue: Pending[] = jobs.map((job) => ({ job, attempts: 0, notBefore: 0 }));
  const outcomes: JobOutcome[] = [];
  const failed: FailedJob[] = [];
  const slots: Slot[] = [];
  const emit = options.onEvent ?? (() => undefined);
  let timer: NodeJS.Timeout | undefined;
  let finished = false;
  let startFailures = 0;

  return new Promise((resolve, reject) => {
    const remaining = () => queue.length + slots.filter((s) => s.running).length;

    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      for (const s of slots) s.child.disconnect?.();
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ outcomes, failed, seconds: (performance.now() - started) / 1000 });
    };

    const onAbort = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      for (const s of slots) s.child.kill('SIGKILL');
      reject(options.signal!.reason instanceof Error ? options.signal!.reason : new Error('interrupted'));
    };
    if (options.signal?.aborted) {
      onAbort();
      return;
    }
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const fail = (p: Pending, reason: string, permanent: boolean) => {
      if (permanent || p.attempts >= options.attempts) {
        const failure = { id: p.job.id, slide: p.job.slide, stem: p.job.stem, reason, attempts: p.attempts };
        failed.push(failure);
        emit({ type: 'failed', job: p.job, failure });
        return;
      }
      const inMs = options.backoffMs * 2 ** (p.attempts - 1);
      p.notBefore = Date.now() + inMs;
      queue.push(p);
      emit({ type: 'retry', job: p.job, reason, attempt: p.attempts, inMs });
    };

    const dispatch = () => {
      if (finished) return;
      clearTimeout(timer);
      if (remaining() === 0) {
        finish();
        return;
      }
      const now = Date.now();
      for (const slot of slots) {
        if (!slot.ready || slot.running) continue;
        const k = queue.findIndex((p) => p.notBefore <= now);
        if (k < 0) break;
        const [p] = queue.splice(k, 1);
        p!.attempts++;
        slot.running = p;
        slot.child.send({ type: 'run', job: p!.job } satisfies PoolRequest);
        emit({ type: 'start', job: p!.job, attempt: p!.attempts, worker: slot.index });
      }
      // Processes for the work there is (one died, or none started yet).
      const alive = slots.filter((s) => s.child.exitCode === null && s.child.signalCode === null).length;
      for (let n = alive; n < Math.min(options.workers, remaining()); n++) spawnSlot();
      const waiting = queue.filter((p) => p.notBefore > now);
      if (waiting.length) timer = setTimeout(dispatch, Math.max(10, Math.min(...waiting.map((p) => p.notBefore)) - now));
    };

    const spawnSlot = () => {
      const index = slots.length;
      const child = fork(new URL('./pool_process.js', import.meta.url), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
      const slot: Slot = { index, child, ready: false, stderr: '' };
      slots.push(slot);
      child.stderr!.setEncoding('utf8').on('data', (d: string) => {
        slot.stderr = (slot.stderr + d).slice(-STDERR_TAIL);
      });
      child.on('message', (reply: PoolReply) => {
        if (finished) return;
        if (reply.type === 'ready') {
          slot.ready = true;
        } else if (reply.type === 'progress' && slot.running) {
          emit({ type: 'progress', job: slot.running.job, progress: reply.progress, worker: index });
          return;
        } else if (reply.type === 'done' && slot.running) {
          outcomes.push(reply.outcome);
          emit({ type: 'done', job: slot.running.job, outcome: reply.outcome, worker: index });
          slot.running = undefined;
        } else if (reply.type === 'failed' && slot.running) {
          const p = slot.running;
          slot.running = undefined;
          fail(p, reply.reason, reply.permanent);
        }
        dispatch();
      });
      child.on('error', (e) => {
        if (!finished && !slot.running && !slots.some((s) => s.ready)) reject(new Error(`Cannot start a batch worker process: ${e.message}`));
      });
      child.on('exit', (code, signal) => {
        const wasReady = slot.ready;
        slot.ready = false;
        if (finished) return;
        // A process that cannot even start would be respawned forever: stop after a few in a row.
        startFailures = wasReady ? 0 : startFailures + 1;
        if (startFailures >= MAX_START_FAILURES) {
          finished = true;
          clearTimeout(timer);
          for (const s of slots) s.child.kill('SIGKILL');
          reject(new Error(`A batch worker process exited before it was ready ${startFailures} times (last: ${signal ?? `exit code ${code}`}): ${slot.stderr.trim().split('\n').slice(-3).join(' | ')}`));
          return;
        }
        const p = slot.running;
        slot.running = undefined;
        if (p) {
          const tail = slot.stderr.trim().split('\n').slice(-3).join(' | ');
          fail(p, `its worker process ended (${signal ? `signal ${signal}` : `exit code ${code}`})${tail ? `: ${tail}` : ''}`, false);
        }
        dispatch();
      });
    };

    dispatch();
  });
}
