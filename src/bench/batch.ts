/**
 * The batch suite: many slides through `histoflow batch`, and what the Redis
 * queue costs.
 *
 * batch-tile: slides/min (recorded as s/slide, extra.slides_per_min) tiling the same synthetic slides (`synth slide`,
 * 2048² — 1024² with --quick — 96-px PNG tiles) four ways, each end to end
 * from a shell: a shell loop of `histoflow tile` (one process per slide, the
 * peer), the local pool with 1 and 2 worker processes, and the Redis queue
 * with 2 `histoflow worker --until-empty` processes (counting the enqueue).
 *
 * queue-overhead: ms per job of BullMQ itself, and Redis commands per job,
 * counted by the server (INFO stats; a command is at most one round trip,
 * fewer when pipelined). The jobs are real batch jobs whose slide finished
 * before, so each run is the job's record read and nothing else: what is
 * measured is enqueue, take, lock, finish and the worker's own polling, in
 * one worker with concurrency 1 (the latency-bound case). Also Redis memory
 * per queued and per completed job, for the scaling estimate in the README.
 *
 * Redis is a redis-server of the suite's own (127.0.0.1, a free port, no
 * persistence), on this machine: the round trip is loopback's.
 *
 *   node dist/src/bench/batch.js [--quick] [--json]      (or: histoflow bench batch)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Redis } from 'ioredis';

import { runSuites, renderJson, renderMarkdown, type Suite, type SuiteContext } from './harness.js';
import { runProcess } from './suite_support.js';
import { freePort } from '../batch/free_port.js';

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The slides, made once per size and kept in the temp folder. */
async function benchSlides(count: number, size: number, log: (m: string) => void): Promise<string> {
  const dir = join(tmpdir(), `histoflow-bench-batch-${size}-${count}`);
  if (existsSync(join(dir, 'done'))) return dir;
  log(`batch: making ${count} synthetic ${size}² slides in ${dir} (once) ...`);
  const tmp = `${dir}.${process.pid}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  for (let seed = 1; seed <= count; seed++) {
    const r = await runProcess(process.execPath, [CLI, 'synth', 'slide', '--out', join(tmp, `slide-${seed}.tif`), '--size', String(size), '--seed', String(seed), '--json'], process.env);
    if (r.code !== 0) throw new Error(`synth slide: ${r.stderr.trim()}`);
  }
  await runProcess('touch', [join(tmp, 'done')], process.env);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return dir;
}

interface BenchRedis {
  port: number;
  client: Redis;
  stop(): Promise<void>;
}

async function startRedis(): Promise<BenchRedis> {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) throw new Error('redis-server is not installed (apt-get install redis-server)');
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'histoflow-bench-redis-'));
  const child: ChildProcess = spawn('redis-server', ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', '127.0.0.1', '--dir', dir], { stdio: 'ignore' });
  // Until it listens: the client retries every 50 ms, for at most 10 s.
  const client = new Redis({ port, host: '127.0.0.1', retryStrategy: (n) => (n > 200 ? null : 50) });
  client.on('error', () => undefined);
  const stop = async () => {
    client.disconnect();
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await client.ping();
  } catch (e) {
    await stop();
    throw e;
  }
  return { port, client, stop };
}

async function commandsProcessed(client: Redis): Promise<number> {
  return Number(/total_commands_processed:(\d+)/.exec(await client.info('stats'))![1]);
}

async function usedMemory(client: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1]);
}

/** Runs a shell command line, in seconds; throws with its stderr on failure. */
async function timed(script: string): Promise<number> {
  const t0 = performance.now();
  const r = await runProcess('bash', ['-c', script], process.env);
  if (r.code !== 0) throw new Error(`exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
  return (performance.now() - t0) / 1000;
}

async function tileCase(ctx: SuiteContext, slides: string, count: number, work: string, redis: BenchRedis | undefined): Promise<void> {
  const name = 'batch-tile';
  const repeats = ctx.options.repeats ?? (ctx.options.quick ? 1 : 2);
  const node = JSON.stringify(process.execPath), cli = JSON.stringify(CLI);
  ctx.target(name, 'pool-2', 'peer:shell-loop', 1);
  const ways: [string, (out: string, k: number) => string][] = [
    ['peer:shell-loop', (out) => `for s in ${slides}/slide-*.tif; do ${node} ${cli} tile "$s" --out ${out}/$(basename "$s" .tif) --json > /dev/null || exit 1; done`],
    ['pool-1', (out) => `${node} ${cli} batch '${slides}/slide-*.tif' --job tile --out ${out} --workers 1 --json > /dev/null`],
    ['pool-2', (out) => `${node} ${cli} batch '${slides}/slide-*.tif' --job tile --out ${out} --workers 2 --json > /dev/null`],
  ];
  if (redis) {
    ways.push(['queue-2', (out, k) => {
      const url = `redis://127.0.0.1:${redis.port}/bench-${k}-${Date.now()}`;
      return `${node} ${cli} batch '${slides}/slide-*.tif' --job tile --out ${out} --queue ${url} --json > /dev/null && ` +
        `{ ${node} ${cli} worker --queue ${url} --until-empty --json > /dev/null & ${node} ${cli} worker --queue ${url} --until-empty --json > /dev/null & wait -n && wait -n; }`;
    }]);
  }
  for (const [way, script] of ways) {
    try {
      const samples: number[] = [];
      for (let k = 0; k < repeats; k++) {
        const out = join(work, `${way}-${k}`);
        samples.push(await timed(script(out, k)));
        await rm(out, { recursive: true, force: true });
      }
      const seconds = median(samples);
      const perMinute = (60 * count) / seconds;
      // Recorded as s/slide (the harness ranks units ending in /s as higher-is-better, anything else as a time).
      ctx.record(name, way, seconds / count, 's/slide', { slides_per_min: perMinute, slides: count, seconds, samples, repeats });
      ctx.log(`batch ${name} ${way}: ${perMinute.toFixed(1)} slides/min (${count} slides in ${seconds.toFixed(1)} s)`);
    } catch (e) {
      ctx.fail(name, way, e);
    }
  }
}

async function overheadCase(ctx: SuiteContext, slides: string, work: string, redis: BenchRedis): Promise<void> {
  const name = 'queue-overhead';
  const jobsCount = ctx.options.quick ? 200 : 1000;
  try {
    const { readManifest } = await import('../batch/manifest.js');
    const { planJobs, runJob } = await import('../batch/job.js');
    const { enqueueJobs, parseQueueAddress } = await import('../batch/redis_queue.js');
    const { runQueueWorker } = await import('../batch/queue_worker.js');
    const manifest = await readManifest(join(slides, 'slide-1.tif'), { columns: [], slideKind: 'file' });
    const root = join(work, 'overhead');
    const [job] = await planJobs(manifest, 'tile', [], root);
    await runJob(job!);
    // The same finished job under many ids: each run reads its record and returns.
    const jobs = Array.from({ length: jobsCount }, (_, i) => ({ ...job!, id: `${job!.id}.${i}` }));
    /** Enqueues and runs `n` jobs on a fresh queue; the commands Redis processed (script-internal ones included) and, with `monitor`, the commands clients sent. */
    const pass = async (n: number, monitor: boolean) => {
      const batch = jobs.slice(0, n);
      const address = parseQueueAddress('bench', `redis://127.0.0.1:${redis.port}/overhead-${monitor ? 'monitored' : 'timed'}-${Date.now()}`);
      let sent = 0;
      const watcher = monitor ? await redis.client.duplicate().monitor() : undefined;
      watcher?.on('monitor', (_time: string, args: string[], source: string) => {
        if (source !== 'lua' && !/^(info|monitor)$/i.test(args[0] ?? '')) sent++;
      });
      const mem0 = await usedMemory(redis.client);
      const c0 = await commandsProcessed(redis.client);
      const t0 = performance.now();
      await enqueueJobs(address, batch, { attempts: 3, backoffMs: 5000 });
      const enqueueMs = performance.now() - t0;
      const c1 = await commandsProcessed(redis.client);
      const sentEnqueue = sent;
      const mem1 = await usedMemory(redis.client);
      const stop = new AbortController();
      let done = 0, t1 = 0, t2 = 0;
      const finished = new Promise<void>((resolve, reject) => {
        runQueueWorker(address, {
          concurrency: 1, untilEmpty: false, lockMs: 30000, signal: stop.signal,
          onEvent: (e) => {
            if (e.type === 'start' && t1 === 0) t1 = performance.now();
            if (e.type === 'done' && ++done === batch.length) {
              t2 = performance.now();
              resolve();
            }
          },
        }).catch(reject);
      });
      const c2 = await commandsProcessed(redis.client);
      const sent2 = sent;
      await finished;
      const c3 = await commandsProcessed(redis.client);
      const sentRun = sent - sent2;
      stop.abort();
      const mem2 = await usedMemory(redis.client);
      watcher?.disconnect();
      return {
        enqueueMs: enqueueMs / n, runMs: (t2 - t1) / (n - 1), commandsEnqueue: (c1 - c0) / n, commandsRun: (c3 - c2) / n,
        sentEnqueue: sentEnqueue / n, sentRun: sentRun / n, memQueued: (mem1 - mem0) / n, memCompleted: (mem2 - mem0) / n,
      };
    };
    const timedPass = await pass(jobs.length, false);
    const counted = await pass(Math.min(200, jobs.length), true);
    const record = { job: 'finished tile job (record read only)', jobs: jobs.length, concurrency: 1 };
    ctx.record(name, 'enqueue', timedPass.enqueueMs, 'ms/job', record);
    ctx.record(name, 'take+run+finish', timedPass.runMs, 'ms/job', record);
    ctx.record(name, 'redis-round-trips', counted.sentEnqueue + counted.sentRun, 'commands sent/job', {
      ...record, jobs: Math.min(200, jobs.length), enqueue: counted.sentEnqueue, run: counted.sentRun,
      note: 'commands clients sent (MONITOR, script-internal calls excluded); pipelined ones share a round trip',
    });
    ctx.record(name, 'redis-commands', timedPass.commandsEnqueue + timedPass.commandsRun, 'commands/job', {
      ...record, enqueue: timedPass.commandsEnqueue, run: timedPass.commandsRun, note: 'processed by Redis, calls inside BullMQ\'s Lua scripts included',
    });
    ctx.record(name, 'redis-memory-queued', timedPass.memQueued, 'bytes/job', record);
    ctx.record(name, 'redis-memory-completed', timedPass.memCompleted, 'bytes/job', record);
    ctx.log(`batch ${name}: enqueue ${timedPass.enqueueMs.toFixed(2)} ms/job, take+run+finish ${timedPass.runMs.toFixed(2)} ms/job; ` +
      `${(counted.sentEnqueue + counted.sentRun).toFixed(1)} commands sent/job (enqueue ${counted.sentEnqueue.toFixed(1)}, run ${counted.sentRun.toFixed(1)}), ` +
      `${(timedPass.commandsEnqueue + timedPass.commandsRun).toFixed(1)} processed/job with script calls; ` +
      `${timedPass.memQueued.toFixed(0)} bytes/job queued, ${timedPass.memCompleted.toFixed(0)} completed`);
  } catch (e) {
    ctx.fail(name, 'bullmq', e);
  }
}

async function run(ctx: SuiteContext): Promise<void> {
  const count = ctx.options.quick ? 4 : 8;
  const size = ctx.options.quick ? 1024 : 2048;
  const slides = await benchSlides(count, size, (m) => ctx.log(m));
  const work = await mkdtemp(join(tmpdir(), 'histoflow-bench-batch-'));
  let redis: BenchRedis | undefined;
  try {
    redis = await startRedis();
    const v = /redis_version:(.*)/.exec(await redis.client.info('server'))?.[1]?.trim();
    ctx.environment('redis', { version: v, where: '127.0.0.1 (loopback), no persistence' });
  } catch (e) {
    ctx.fail('queue-overhead', 'bullmq', e);
  }
  ctx.environment('batchBench', { slides: count, size, tile: 96, format: 'png', tmp: tmpdir() });
  try {
    await tileCase(ctx, slides, count, work, redis);
    if (redis) await overheadCase(ctx, slides, work, redis);
  } finally {
    await redis?.stop();
    await rm(work, { recursive: true, force: true });
  }
  ctx.note('batch-tile: end-to-end slides/min from a shell (process starts included); queue-2 includes the enqueue');
  ctx.note('queue-overhead: Redis commands counted by the server (INFO stats), the worker\'s once-a-second polling included; a command is at most one round trip');
}

export const batchSuite: Suite = {
  name: 'batch',
  description: 'many slides: shell loop of histoflow tile vs the local pool (1, 2 workers) vs the Redis queue; BullMQ overhead per job, Redis commands and memory per job',
  run,
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const json = process.argv.includes('--json');
  const report = await runSuites([batchSuite], { json, quick: process.argv.includes('--quick') }, (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(json ? renderJson(report) : renderMarkdown(report));
  process.exit(report.failures.length ? 1 : 0);
}
