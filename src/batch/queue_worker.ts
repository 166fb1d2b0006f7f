/**
 * A queue worker: takes a batch's jobs from Redis (BullMQ) and runs them in
 * this process, `concurrency` at a time, on as many machines as there are
 * workers (they share the output file system).
 *
 * Takeover. A running job holds a lock in Redis that its worker renews every
 * lockMs/2; when a worker dies (SIGKILL, a lost machine) the lock lapses and
 * the next stalled-job check of any worker (every lockMs) puts the job back,
 * and another worker resumes it from what was staged (job.ts). A job that
 * stalls more than MAX_STALLS times fails with BullMQ's reason.
 *
 * Loss. Beside BullMQ, the worker watches Redis's run_id: a restart that kept
 * the queue (RDB/AOF) is BullMQ's to recover; one that lost it (histoflow's
 * marker key gone) stops the worker with an error, since an empty queue would
 * otherwise look like a finished batch.
 */
import { UnrecoverableError, Worker, type Job } from 'bullmq';

import { isPermanent, runJob, type JobOutcome, type JobProgress, type JobSpec } from './job.js';
import { directClient, markerKey, openQueue, type QueueAddress, type QueuedOutcome } from './redis_queue.js';

/** Stalls a job may survive before it fails (each is a worker lost under it). */
export const MAX_STALLS = 2;
/** How often a job's progress goes to Redis: one round trip each. */
const PROGRESS_EVERY_MS = 1000;
/** How often --until-empty and the restart watch look at Redis. */
const POLL_MS = 1000;
/** The second look of --until-empty, after a first that found nothing. */
const RECHECK_MS = 100;

export type WorkerEvent =
  | { type: 'start'; job: JobSpec; attempt: number }
  /** Every step of a running job (Redis hears of it at most once a second). */
  | { type: 'progress'; job: JobSpec; progress: JobProgress }
  | { type: 'done'; job: JobSpec; outcome: JobOutcome }
  | { type: 'failed'; job: JobSpec; reason: string; attempt: number; final: boolean }
  | { type: 'stalled'; id: string }
  | { type: 'redis'; message: string };

export interface QueueWorkerOptions {
  concurrency: number;
  /** Stop once no job is waiting, delayed or running anywhere. */
  untilEmpty: boolean;
  /** Job lock in ms: a dead worker's job is taken over after about 1–2 × this. */
  lockMs: number;
  onEvent?: (event: WorkerEvent) => void;
  signal?: AbortSignal;
}

export interface QueueWorkerResult {
  done: number;
  alreadyDone: number;
  failed: number;
  /** empty: --until-empty saw nothing left; stopped: a signal; lost: Redis restarted without the queue; error: BullMQ's worker stopped. */
  ended: 'empty' | 'stopped' | 'lost' | 'error';
  /** Why, for 'lost' and 'error'. */
  reason?: string;
  seconds: number;
}

function checkSpec(data: unknown): JobSpec {
  const d = data as Partial<JobSpec> | null;
  if (!d || typeof d !== 'object' || typeof d.id !== 'string' || typeof d.slide !== 'string' || typeof d.out !== 'string' || !Array.isArray(d.argv)) {
    throw new UnrecoverableError('the job in Redis is not a histoflow batch job (enqueue with histoflow batch --queue)');
  }
  return d as JobSpec;
}

export async function runQueueWorker(address: QueueAddress, options: QueueWorkerOptions): Promise<QueueWorkerResult> {
  const started = performance.now();
  const emit = options.onEvent ?? (() => undefined);
  const result: QueueWorkerResult = { done: 0, alreadyDone: 0, failed: 0, ended: 'stopped', seconds: 0 };
  let running = 0;
  /** A job's outcome until Redis has it as completed (a job whose lock was lost is not: another worker takes it). */
  const outcomes = new Map<string, JobOutcome>();

  const processor = async (job: Job): Promise<QueuedOutcome> => {
    const spec = checkSpec(job.data);
    running++;
    emit({ type: 'start', job: spec, attempt: job.attemptsMade + 1 });
    let last = 0;
    let sending: Promise<unknown> = Promise.resolve();
    const onProgress = (p: JobProgress) => {
      emit({ type: 'progress', job: spec, progress: p });
      const now = Date.now();
      if (now - last < PROGRESS_EVERY_MS && p.done < p.total) return;
      last = now;
      sending = sending.then(() => job.updateProgress(p as unknown as object)).catch(() => undefined);
    };
    try {
      const outcome = await runJob(spec, { onProgress });
      await sending;
      outcomes.set(job.id!, outcome);
      return { status: outcome.status, seconds: outcome.seconds, out: outcome.out };
    } catch (e) {
      if (isPermanent(e)) throw new UnrecoverableError((e as Error).message);
      throw e;
    } finally {
      running--;
    }
  };

  const worker = new Worker(address.name, processor, {
    connection: address.connection,
    concurrency: options.concurrency,
    lockDuration: options.lockMs,
    stalledInterval: options.lockMs,
    maxStalledCount: MAX_STALLS,
    autorun: false,
  });
  worker.on('completed', (job) => {
    const outcome = outcomes.get(job.id!);
    outcomes.delete(job.id!);
    if (!outcome) return;
    if (outcome.status === 'already-done') result.alreadyDone++;
    else result.done++;
    emit({ type: 'done', job: job.data as JobSpec, outcome });
  });
  worker.on('failed', (job, err) => {
    if (job) outcomes.delete(job.id!);
    if (!job) return;
    const attempts = job.opts.attempts ?? 1;
    const final = err instanceof UnrecoverableError || err.name === 'UnrecoverableError' || job.attemptsMade >= attempts;
    if (final) result.failed++;
    emit({ type: 'failed', job: job.data as JobSpec, reason: err.message, attempt: job.attemptsMade, final });
  });
  worker.on('stalled', (id) => emit({ type: 'stalled', id }));
  let redisDown = false;
  worker.on('error', (e) => {
    if (!redisDown) emit({ type: 'redis', message: `worker: ${e.message}` });
  });

  const queue = openQueue(address);
  const monitor = directClient(address);
  monitor.on('error', () => undefined);
  await monitor.connect();
  let runId = /^run_id:(.*)$/m.exec(await monitor.info('server'))?.[1]?.trim() ?? '';
  let used = (await monitor.exists(markerKey(address))) === 1;

  let stop: (ended: QueueWorkerResult['ended'], reason?: string) => void = () => undefined;
  let settled = false;
  const ended = new Promise<void>((resolve) => {
    stop = (how, reason) => {
      if (settled) return;
      settled = true;
      result.ended = how;
      if (reason) result.reason = reason;
      resolve();
    };
  });
  const onAbort = () => stop('stopped');
  options.signal?.addEventListener('abort', onAbort, { once: true });

  let quiet = 0;
  let polling = false;
  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      if (monitor.status !== 'ready') {
        monitor.disconnect();
        await monitor.connect();
      }
      const id = /^run_id:(.*)$/m.exec(await monitor.info('server'))?.[1]?.trim() ?? '';
      const marked = (await monitor.exists(markerKey(address))) === 1;
      if (redisDown) emit({ type: 'redis', message: `Redis at ${address.url} answers again` });
      redisDown = false;
      if (id !== runId) {
        if (used && !marked) {
          stop('lost', `Redis at ${address.url} restarted without its data (run_id ${runId.slice(0, 8)} → ${id.slice(0, 8)}; the queue's keys are gone): ` +
            'the jobs not finished are no longer queued. Enqueue them again with the same histoflow batch … --queue command (finished slides are skipped)');
          return;
        }
        emit({ type: 'redis', message: `Redis at ${address.url} restarted and kept the queue; BullMQ takes its running jobs back` });
        runId = id;
      }
      used ||= marked;
      if (options.untilEmpty) {
        const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
        const left = Object.values(c).reduce((a, b) => a + b, 0);
        quiet = left === 0 && running === 0 ? quiet + 1 : 0;
        // Twice in a row: a job between two states in one check is in one of them in the next (looked at again shortly).
        if (quiet >= 2) stop('empty');
        else if (quiet === 1) setTimeout(() => void poll(), RECHECK_MS);
      }
    } catch (e) {
      if (!redisDown) emit({ type: 'redis', message: `Redis at ${address.url} does not answer (${(e as Error).message}); waiting for it` });
      redisDown = true;
    } finally {
      polling = false;
    }
  };
  const timer = setInterval(() => void poll(), POLL_MS);
  void worker.run().catch((e: unknown) => stop('error', `the BullMQ worker stopped: ${(e as Error).message}`));
  await ended;
  clearInterval(timer);
  options.signal?.removeEventListener('abort', onAbort);
  // Lost: the jobs in hand cannot be finished in Redis; do not wait on them.
  await (result.ended === 'lost' || result.ended === 'error' ? worker.close(true) : worker.close()).catch(() => undefined);
  await queue.close().catch(() => undefined);
  monitor.disconnect();
  result.seconds = (performance.now() - started) / 1000;
  return result;
}
