/**
 * `histoflow batch MANIFEST --job tile|predict-slide|pack --out ROOT
 *  [job options] [--queue redis://HOST:PORT/NAME] [--workers N] [--attempts N]
 *  [--backoff 5s] [--json]`
 * One job per slide of the manifest (src/batch/manifest.ts), each writing
 * ROOT/<slide-stem>/ as the job's own command would. Without --queue the jobs
 * run here in a pool of worker processes (src/batch/local_pool.ts); with it
 * they are only enqueued, for `histoflow worker` on any number of machines.
 * Everything is checked (options, every row, Redis) before a job runs or is
 * enqueued; slides a batch finished before are skipped.
 */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';

import { isFinished, jobKind, JOB_KINDS, optionTokens, planJobs, type JobKind, type JobSpec } from '../batch/job.js';
import { runLocalPool, type FailedJob } from '../batch/local_pool.js';
import { readManifest } from '../batch/manifest.js';
import { checkOutputPath, makeDirectory } from '../output.js';
import { defineFlags, flagError, optionsHelp, parseFlags, type FlagTable } from './flags.js';
import { Progress, status } from './progress.js';

export const BATCH_FLAGS = defineFlags({
  job: { type: 'choice', value: 'J', choices: JOB_KINDS, help: 'what each slide goes through: {choices} (required)' },
  out: { type: 'string', value: 'ROOT', help: 'output root: each slide\'s outputs go to ROOT/<slide-stem>/ (required)' },
  queue: { type: 'string', value: 'URL', help: 'redis://HOST:PORT/NAME: only enqueue, for histoflow worker (default: run here)' },
  workers: { type: 'int', value: 'N', min: 1, max: 256, help: 'worker processes when running here (default: cores)' },
  attempts: { type: 'int', value: 'N', min: 1, max: 100, default: 3, help: 'tries per slide, the first included (default {default}); wrong input fails at once' },
  backoff: { type: 'duration', value: 'T', max: 86400, help: 'wait before the first retry, doubling after (default 5s)' },
  json: { type: 'boolean', help: 'print the summary as JSON, no progress' },
});

const DEFAULT_BACKOFF_S = 5;

export const BATCH_HELP = `Usage: histoflow batch MANIFEST --job tile|predict-slide|pack --out ROOT [job options] [options]

Run one job per slide. MANIFEST is a CSV with a 'slide' column (paths
relative to the CSV) and optional columns named after the job's options (a
cell overrides the command line for its slide), a quoted glob
('slides/*.svs'), or one slide. Each slide's outputs go to
ROOT/<slide-stem>/, as 'histoflow JOB SLIDE --out ROOT/<slide-stem>' writes
them (pack: ROOT/<stem>/dataset.hfpack); a slide finished before is skipped,
an interrupted one resumes. Bad rows, missing slides, duplicates and an
unreachable Redis are reported before anything runs.

Without --queue the jobs run on this machine in --workers processes. With
--queue they are only enqueued: run 'histoflow worker --queue URL' on any
number of machines that see ROOT, and 'histoflow queue status --queue URL'.
Job options: those of 'histoflow JOB --help' but --out, --json, --no-resume
and --overwrite (a batch always resumes; --help --job JOB lists them).

${optionsHelp(BATCH_FLAGS)}`;

/** The value of --job in argv, before the full parse (the job decides which other options exist). */
function jobOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === '--job') return argv[i + 1];
    if (a.startsWith('--job=')) return a.slice('--job='.length);
  }
  return undefined;
}

function jobNote(job: JobSpec, progress: { phase: string; done: number; total: number } | undefined): string {
  if (!progress || progress.total === 0) return job.stem;
  return `${job.stem} ${progress.phase} ${Math.floor((100 * progress.done) / progress.total)}%`;
}

export async function batchCommand(argv: string[]): Promise<number> {
  const given = jobOf(argv);
  if (given !== undefined && !(JOB_KINDS as readonly string[]).includes(given)) throw flagError('--job', BATCH_FLAGS.job, given);
  const kind = given as JobKind | undefined;
  const info = kind === undefined ? undefined : await jobKind(kind);
  const table: FlagTable = { ...(info?.flags ?? {}), ...BATCH_FLAGS };
  const { values: v, positionals, help } = parseFlags('batch', table, argv, { positionals: true });
  if (help) {
    process.stdout.write(BATCH_HELP);
    if (info) process.stdout.write(`\nOptions of ${kind} jobs:\n${optionsHelp(info.flags).split('\n').slice(1).filter((l) => !/--help/.test(l)).join('\n')}\n`);
    return 0;
  }
  const values = v as Record<string, unknown>;
  if (!kind || !info) throw new RangeError(`Expected --job (one of ${JOB_KINDS.join(', ')}) for histoflow batch but received nothing`);
  if (positionals.length !== 1) {
    throw new RangeError(`Expected one MANIFEST (a CSV, or a quoted glob such as 'slides/*.svs') for histoflow batch but received ${positionals.length}` +
      (positionals.length > 1 ? ' (an unquoted glob is expanded by the shell: quote it)' : ''));
  }
  if (!values.out) throw new RangeError('Expected --out ROOT for histoflow batch but received nothing');
  const root = await checkOutputPath('--out', values.out, 'folder');
  const quiet = values.json as boolean;
  const attempts = values.attempts as number;
  const backoffMs = 1000 * ((values.backoff as number | undefined) ?? DEFAULT_BACKOFF_S);

  // Redis first: it is the quickest check, and the one most often wrong.
  const queueing = values.queue === undefined ? undefined : await import('../batch/redis_queue.js');
  const address = queueing?.parseQueueAddress('--queue', values.queue as string);
  const redis = address ? await queueing!.checkRedis('--queue', address) : undefined;

  const manifest = await readManifest(positionals[0]!, { columns: Object.keys(info.flags), slideKind: info.slideKind });
  const jobs = await planJobs(manifest, kind, optionTokens(info.flags, values, info.paths, resolve('.')), root);
  const todo: JobSpec[] = [];
  for (const job of jobs) if (!(await isFinished(job))) todo.push(job);
  const alreadyDone = jobs.length - todo.length;
  await makeDirectory(root, '--out');

  if (address) {
    const r = await queueing!.enqueueJobs(address, todo, { attempts, backoffMs });
    const summary = { job: kind, root, queue: address.url, jobs: jobs.length, enqueued: r.added, alreadyQueued: r.existing, alreadyDone, redis };
    if (quiet) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      status(false, `${r.added} ${kind} jobs enqueued on ${address.url} (${r.existing} were queued before, ${alreadyDone} slides finished before); ` +
        `run: histoflow worker --queue ${address.url}`);
      if (redis?.persistent === false) status(false, `note: Redis at ${address.url} keeps nothing on disk: if it restarts, the queue is lost (workers stop and say so; enqueue again)`);
      if (redis?.evictionPolicy && redis.evictionPolicy !== 'noeviction') {
        status(false, `note: Redis's maxmemory-policy is ${redis.evictionPolicy}; BullMQ needs noeviction, or a full Redis drops jobs`);
      }
    }
    return 0;
  }

  const workers = Math.min((values.workers as number | undefined) ?? availableParallelism(), Math.max(1, todo.length));
  const progress = new Progress(`batch ${kind}`, todo.length, { quiet });
  const notes = new Map<number, string>();
  const stop = new AbortController();
  const onSignal = () => stop.abort(new Error('interrupted: rerun the same command to resume (finished slides are skipped)'));
  process.once('SIGINT', onSignal);
  let result;
  try {
    result = await runLocalPool(todo, {
      workers, attempts, backoffMs, signal: stop.signal,
      onEvent: (e) => {
        if (e.type === 'start') notes.set(e.worker, jobNote(e.job, undefined));
        if (e.type === 'progress') notes.set(e.worker, jobNote(e.job, e.progress));
        if (e.type === 'done') notes.delete(e.worker);
        const tick = e.type === 'done' || e.type === 'failed' ? 1 : 0;
        progress.tick(tick, [...notes.values()].join(', '));
        if (e.type === 'retry') status(quiet, `${e.job.stem}: attempt ${e.attempt} failed (${e.reason}); retrying in ${(e.inMs / 1000).toFixed(0)} s`);
      },
    });
  } finally {
    process.off('SIGINT', onSignal);
  }
  progress.end();
  const failed: FailedJob[] = result.failed;
  const done = result.outcomes.filter((o) => o.status === 'done').length;
  const summary = {
    job: kind, root, jobs: jobs.length, done, alreadyDone: alreadyDone + result.outcomes.length - done, failed, workers,
    seconds: result.seconds, slidesPerMinute: result.seconds > 0 ? (60 * done) / result.seconds : 0,
  };
  if (quiet) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    status(false, `${done} slides done, ${summary.alreadyDone} finished before, ${failed.length} failed; ${workers} workers, ` +
      `${result.seconds.toFixed(1)} s (${summary.slidesPerMinute.toFixed(1)} slides/min); outputs in ${root}`);
    for (const f of failed) status(false, `  failed ${f.slide} after ${f.attempts} attempt${f.attempts === 1 ? '' : 's'}: ${f.reason}`);
  }
  return failed.length ? 1 : 0;
}
