/**
 * `histoflow worker --queue redis://HOST:PORT/NAME [--concurrency N]
 *  [--until-empty] [--lock 30s] [--json]`
 * Runs a batch's queued jobs (src/batch/queue_worker.ts) until stopped, or
 * with --until-empty until nothing is waiting, delayed or running on the
 * queue (exit 0). A line per finished or failed job; --json makes them JSON
 * lines on stdout. Exit 2 when Redis restarted and lost the queue.
 */
import { checkRedis, parseQueueAddress } from '../batch/redis_queue.js';
import { runQueueWorker, type WorkerEvent } from '../batch/queue_worker.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';
import { Progress, status } from './progress.js';

export const WORKER_FLAGS = defineFlags({
  queue: { type: 'string', value: 'URL', help: 'redis://HOST:PORT/NAME, as given to histoflow batch --queue (required)' },
  concurrency: { type: 'int', value: 'N', min: 1, max: 64, default: 1, help: 'jobs run at once in this process (default {default}; each already uses every core)' },
  'until-empty': { type: 'boolean', help: 'exit 0 once no job is waiting, delayed or running (for scripts)' },
  lock: { type: 'duration', value: 'T', max: 3600, help: 'job lock: a dead worker\'s job is taken over after 1-2 x T (default 30s)' },
  json: { type: 'boolean', help: 'one JSON line per event on stdout, and the summary last' },
});

const DEFAULT_LOCK_S = 30;

export const WORKER_HELP = `Usage: histoflow worker --queue redis://HOST:PORT/NAME [options]

Take jobs that 'histoflow batch --queue' enqueued and run them here, writing
into the batch's output root (every worker must see it at the same path).
Start as many as you like, on as many machines. A job whose worker dies is
taken over by another after the lock lapses and resumes from its staged
outputs; a failed try is retried with backoff; a wrong input fails at once
with its reason (histoflow queue status). Ctrl-C finishes the jobs in hand;
a second Ctrl-C leaves them to another worker.

${optionsHelp(WORKER_FLAGS)}`;

function eventLine(e: WorkerEvent): string | undefined {
  switch (e.type) {
    case 'start':
      return `start ${e.job.stem} (attempt ${e.attempt})`;
    case 'done':
      return e.outcome.status === 'already-done' ? `${e.job.stem}: finished before, nothing to do` : `done ${e.job.stem} in ${e.outcome.seconds.toFixed(1)} s → ${e.outcome.out}`;
    case 'failed':
      return `failed ${e.job.stem} (attempt ${e.attempt}${e.final ? ', final' : ', will retry'}): ${e.reason}`;
    case 'stalled':
      return `job ${e.id} lost its worker; taken back into the queue`;
    case 'redis':
      return e.message;
    case 'progress':
      return undefined;
  }
}

export async function workerCommand(argv: string[]): Promise<number> {
  const { values, help } = parseFlags('worker', WORKER_FLAGS, argv);
  if (help) {
    process.stdout.write(WORKER_HELP);
    return 0;
  }
  if (!values.queue) throw new RangeError('Expected --queue redis://HOST:PORT/NAME for histoflow worker but received nothing');
  const address = parseQueueAddress('--queue', values.queue);
  await checkRedis('--queue', address);
  const json = values.json;
  const stop = new AbortController();
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals === 1) {
      status(json, 'stopping: finishing the jobs in hand (Ctrl-C again to leave them to another worker)');
      stop.abort();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    status(json, `worker on ${address.url}, concurrency ${values.concurrency}${values['until-empty'] ? ', until the queue is empty' : ''}`);
    // One job at a time on a terminal: a bar for it (several would fight over the line).
    const bars = !json && values.concurrency === 1;
    let bar: { progress: Progress; phase: string; shown: number } | undefined;
    const endBar = () => {
      bar?.progress.end();
      bar = undefined;
    };
    const result = await runQueueWorker(address, {
      concurrency: values.concurrency,
      untilEmpty: values['until-empty'],
      lockMs: 1000 * (values.lock ?? DEFAULT_LOCK_S),
      signal: stop.signal,
      onEvent: (e) => {
        if (json) {
          if (e.type === 'progress') return; // queue status --json has each job's progress
          const job = 'job' in e ? { id: e.job.id, slide: e.job.slide, stem: e.job.stem } : {};
          process.stdout.write(`${JSON.stringify({ event: e.type, ...job, ...('outcome' in e ? { outcome: e.outcome } : {}), ...('reason' in e ? { reason: e.reason, final: e.final } : {}), ...('message' in e ? { message: e.message } : {}) })}\n`);
        } else if (e.type === 'progress') {
          if (!bars) return;
          if (bar?.phase !== e.progress.phase) {
            endBar();
            bar = { progress: new Progress(`${e.job.stem} ${e.progress.phase}`, e.progress.total), phase: e.progress.phase, shown: 0 };
          }
          bar.progress.tick(e.progress.done - bar.shown);
          bar.shown = e.progress.done;
        } else {
          if (e.type === 'done' || e.type === 'failed') endBar();
          const line = eventLine(e);
          if (line) status(false, line);
        }
      },
    });
    if (json) process.stdout.write(`${JSON.stringify({ event: 'end', ...result })}\n`);
    else status(false, `worker ${result.ended}: ${result.done} done, ${result.alreadyDone} finished before, ${result.failed} failed, ${result.seconds.toFixed(1)} s`);
    if (result.ended === 'lost' || result.ended === 'error') {
      process.stderr.write(`histoflow: ${result.reason}\n`);
      return result.ended === 'lost' ? 2 : 1;
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
