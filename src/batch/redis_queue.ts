/**
 * A batch's queue on Redis, through BullMQ: its address, the check that Redis
 * answers before anything is enqueued, enqueueing, and the operator's view
 * (counts, failures with their reasons, each running job's progress, retry,
 * drain).
 *
 * Address: redis://[USER:PASSWORD@]HOST[:PORT]/NAME (rediss:// for TLS). The
 * path is the queue's name, not a database number: BullMQ keys live under
 * `bull:NAME:`, so several batches can share one Redis.
 *
 * Jobs get a deterministic id (job.ts: kind, stem, fingerprint), and BullMQ
 * ignores an add whose id exists: enqueueing the same manifest twice queues
 * each slide once. A key of histoflow's own, `histoflow:batch:NAME`, says the
 * queue has been used; a worker that finds Redis restarted (its run_id
 * changed) without that key knows the queue's jobs were lost with Redis's
 * memory, and says so rather than report an empty queue as a finished batch.
 */
import { Queue, type Job, type RedisOptions } from 'bullmq';
import { Redis, type RedisOptions as IORedisOptions } from 'ioredis';

import type { JobOutcome, JobProgress, JobSpec } from './job.js';

export interface QueueAddress {
  /** The address as shown: no password. */
  url: string;
  name: string;
  connection: RedisOptions;
}

const QUEUE_URL = /^(rediss?):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?(\[[0-9a-fA-F:.]+\]|[^:/@[\]]+)(?::(\d{1,5}))?\/([A-Za-z0-9_.-]+)$/;

/** Reads `redis://HOST:PORT/NAME` for `flag` (the option named in errors). */
export function parseQueueAddress(flag: string, value: string): QueueAddress {
  const m = QUEUE_URL.exec(value);
  const port = m?.[5] === undefined ? 6379 : Number(m[5]);
  if (!m || port < 1 || port > 65535) {
    throw new RangeError(`Expected redis://HOST[:PORT]/NAME (NAME: letters, digits, _ . -) for ${flag} but received '${value}'`);
  }
  const [, scheme, user, password, rawHost, , name] = m;
  const host = rawHost!.replace(/^\[|\]$/g, '');
  const connection: RedisOptions = {
    host, port,
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(password ? { password: decodeURIComponent(password) } : {}),
    ...(scheme === 'rediss' ? { tls: {} } : {}),
    // BullMQ's workers block on Redis and must never give up a command (its requirement).
    maxRetriesPerRequest: null,
  };
  return { url: `${scheme}://${rawHost}:${port}/${name}`, name: name!, connection };
}

/** The key that says histoflow enqueued on this queue. */
export function markerKey(address: QueueAddress): string {
  return `histoflow:batch:${address.name}`;
}

/** A short-lived client that fails at once instead of retrying (for checks and reads beside BullMQ's own). */
export function directClient(address: QueueAddress, timeoutMs = 3000): Redis {
  return new Redis({
    ...(address.connection as IORedisOptions), lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0,
    retryStrategy: () => null, enableOfflineQueue: false,
  });
}

export interface RedisFacts {
  version: string;
  /** Changes whenever Redis restarts. */
  runId: string;
  /** Whether Redis writes its data to disk (RDB snapshots or an AOF): only then does a restart keep the queue. */
  persistent: boolean | null;
  /** maxmemory-policy; BullMQ needs noeviction (an evicting Redis drops jobs). */
  evictionPolicy: string | null;
}

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/** Connects once, or throws a RangeError naming `flag`, the address and why (refused, timed out, auth). */
export async function checkRedis(flag: string, address: QueueAddress): Promise<RedisFacts> {
  const client = directClient(address);
  let cause: Error | undefined;
  client.on('error', (e: Error) => (cause ??= e)); // the socket's own reason (ECONNREFUSED…); connect() only says it closed
  try {
    await client.connect();
    const server = await client.info('server');
    const persistence = await client.info('persistence');
    const version = infoField(server, 'redis_version') ?? '0';
    if (Number(version.split('.')[0]) < 5) throw new RangeError(`Redis at ${address.url} is version ${version}; BullMQ needs 5 or later (given by ${flag})`);
    const aof = infoField(persistence, 'aof_enabled') === '1';
    const policy = await client.config('GET', 'maxmemory-policy').then((r) => (r as string[])[1] ?? null, () => null);
    const saves = await client.config('GET', 'save').then((r) => ((r as string[])[1] ?? '') !== '', () => null);
    return { version, runId: infoField(server, 'run_id') ?? '', persistent: saves === null ? (aof || null) : aof || saves, evictionPolicy: policy };
  } catch (e) {
    if (e instanceof RangeError) throw e;
    throw new RangeError(`Cannot reach Redis at ${address.url} (given by ${flag}): ${(cause ?? (e as Error)).message}`);
  } finally {
    client.disconnect();
  }
}

export function openQueue(address: QueueAddress): Queue {
  const queue = new Queue(address.name, { connection: address.connection });
  queue.on('error', () => undefined); // reported where a call fails
  return queue;
}

export interface EnqueueOptions {
  /** Tries per job, the first included. */
  attempts: number;
  /** Wait before the first retry (ms); doubles each time. */
  backoffMs: number;
}

export interface EnqueueResult {
  queue: string;
  /** Jobs added now. */
  added: number;
  /** Jobs whose id was there already (enqueued before: waiting, running, done or failed). */
  existing: number;
}

const CHUNK = 500;

/** Adds the jobs (each once: ids are deterministic) and marks the queue as histoflow's. */
export async function enqueueJobs(address: QueueAddress, jobs: readonly JobSpec[], options: EnqueueOptions): Promise<EnqueueResult> {
  const queue = openQueue(address);
  const client = directClient(address);
  client.on('error', () => undefined);
  let added = 0;
  try {
    await client.connect();
    for (let i = 0; i < jobs.length; i += CHUNK) {
      const chunk = jobs.slice(i, i + CHUNK);
      const pipeline = client.pipeline();
      for (const job of chunk) pipeline.exists(queue.toKey(job.id));
      const there = (await pipeline.exec())!.map(([, n]) => n === 1);
      const fresh = chunk.filter((_, k) => !there[k]);
      if (fresh.length) {
        await queue.addBulk(fresh.map((job) => ({
          name: job.kind,
          data: job,
          opts: { jobId: job.id, attempts: options.attempts, backoff: { type: 'exponential', delay: options.backoffMs }, removeOnComplete: false, removeOnFail: false },
        })));
      }
      added += fresh.length;
    }
    await client.hset(markerKey(address), { queue: address.name, updated: new Date().toISOString() });
    await client.hincrby(markerKey(address), 'jobs', added);
    return { queue: address.url, added, existing: jobs.length - added };
  } finally {
    client.disconnect();
    await queue.close();
  }
}

export interface RunningJob {
  id: string;
  slide: string;
  stem: string;
  attempt: number;
  progress: JobProgress | null;
  startedAt: string | null;
}

export interface FailedJobInfo {
  id: string;
  slide: string;
  stem: string;
  reason: string;
  attempts: number;
  failedAt: string | null;
}

export interface QueueStatus {
  queue: string;
  counts: { waiting: number; active: number; delayed: number; completed: number; failed: number; prioritized: number };
  /** Jobs still to finish (waiting, delayed, prioritized and active). */
  unfinished: number;
  /** Whether histoflow ever enqueued here (its marker key exists). */
  used: boolean;
  running: RunningJob[];
  failed: FailedJobInfo[];
  /** Failed jobs beyond those listed. */
  moreFailed: number;
}

const FAILED_SHOWN = 100;

function spec(job: Job): JobSpec {
  return job.data as JobSpec;
}

function progressOf(job: Job): JobProgress | null {
  const p = job.progress as Partial<JobProgress> | number | undefined;
  return p && typeof p === 'object' && typeof p.done === 'number' ? (p as JobProgress) : null;
}

export async function queueStatus(address: QueueAddress): Promise<QueueStatus> {
  const queue = openQueue(address);
  const client = directClient(address);
  client.on('error', () => undefined);
  try {
    await client.connect();
    const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized');
    const counts = {
      waiting: c.waiting ?? 0, active: c.active ?? 0, delayed: c.delayed ?? 0, completed: c.completed ?? 0,
      failed: c.failed ?? 0, prioritized: c.prioritized ?? 0,
    };
    const running = (await queue.getActive()).filter(Boolean).map((job) => ({
      id: job.id!, slide: spec(job).slide, stem: spec(job).stem, attempt: job.attemptsMade + 1, progress: progressOf(job),
      startedAt: job.processedOn ? new Date(job.processedOn).toISOString() : null,
    }));
    const failed = (await queue.getFailed(0, FAILED_SHOWN - 1)).filter(Boolean).map((job) => ({
      id: job.id!, slide: spec(job).slide, stem: spec(job).stem, reason: job.failedReason ?? '', attempts: job.attemptsMade,
      failedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
    }));
    return {
      queue: address.url, counts, unfinished: counts.waiting + counts.active + counts.delayed + counts.prioritized,
      used: (await client.exists(markerKey(address))) === 1, running, failed, moreFailed: Math.max(0, counts.failed - failed.length),
    };
  } finally {
    client.disconnect();
    await queue.close();
  }
}

/** Moves every failed job back to waiting (its attempts start over); resolves to how many. */
export async function retryFailed(address: QueueAddress): Promise<number> {
  const queue = openQueue(address);
  try {
    const n = await queue.getFailedCount();
    await queue.retryJobs({ state: 'failed', count: 1000 });
    return n;
  } finally {
    await queue.close();
  }
}

/** Removes the jobs not started (waiting and delayed); running ones finish. Resolves to how many went. */
export async function drainQueue(address: QueueAddress): Promise<number> {
  const queue = openQueue(address);
  try {
    const c = await queue.getJobCounts('waiting', 'delayed', 'prioritized');
    await queue.drain(true);
    return (c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0);
  } finally {
    await queue.close();
  }
}

/** What a queue job returns (kept in Redis: small). */
export type QueuedOutcome = Pick<JobOutcome, 'status' | 'seconds' | 'out'>;
