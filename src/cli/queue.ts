/**
 * `histoflow queue status|retry|drain --queue redis://HOST:PORT/NAME [--watch] [--json]`
 * The operator's view of a batch queue (src/batch/redis_queue.ts): counts,
 * each running job's progress, failures with their reasons; failed jobs back
 * to waiting; waiting jobs removed.
 */
import { checkRedis, drainQueue, parseQueueAddress, queueStatus, retryFailed, type QueueStatus } from '../batch/redis_queue.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';

export const QUEUE_FLAGS = defineFlags({
  queue: { type: 'string', value: 'URL', help: 'redis://HOST:PORT/NAME, as given to histoflow batch --queue (required)' },
  watch: { type: 'boolean', help: 'status: redraw every 2 s until nothing is left to run (--json: a line each time)' },
  json: { type: 'boolean', help: 'print JSON' },
});

const WATCH_MS = 2000;

const ACTIONS = ['status', 'retry', 'drain'] as const;

export const QUEUE_HELP = `Usage: histoflow queue status|retry|drain --queue redis://HOST:PORT/NAME [--watch] [--json]

  status  jobs waiting, running (with progress), delayed for a retry, done
          and failed (with the reason of the last try); --watch follows it
  retry   move every failed job back to waiting, attempts starting over
  drain   remove the jobs not started yet; running ones finish

${optionsHelp(QUEUE_FLAGS)}`;

function bar(done: number, total: number, width = 20): string {
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  return '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
}

function statusText(s: QueueStatus): string {
  const c = s.counts;
  const total = c.completed + c.failed + s.unfinished;
  const lines = [
    `${s.queue}: ${bar(c.completed + c.failed, total)} ${c.completed + c.failed}/${total} finished`,
    `  ${c.waiting + c.prioritized} waiting, ${c.active} running, ${c.delayed} delayed for a retry, ${c.completed} done, ${c.failed} failed`,
  ];
  if (!s.used && total === 0) lines.push('  nothing was ever enqueued here (or Redis lost it): histoflow batch … --queue enqueues');
  for (const r of s.running) {
    const p = r.progress;
    lines.push(`  running ${r.stem} (attempt ${r.attempt}) ${p ? `${bar(p.done, p.total)} ${p.phase} ${p.done}/${p.total}` : 'starting'}`);
  }
  for (const f of s.failed) lines.push(`  failed ${f.slide} after ${f.attempts} attempt${f.attempts === 1 ? '' : 's'}: ${f.reason}`);
  if (s.moreFailed) lines.push(`  … and ${s.moreFailed} more failed (--json lists the first ${s.failed.length})`);
  return `${lines.join('\n')}\n`;
}

export async function queueCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseFlags('queue', QUEUE_FLAGS, argv, { positionals: true });
  if (help) {
    process.stdout.write(QUEUE_HELP);
    return 0;
  }
  const action = positionals[0];
  if (positionals.length !== 1 || !(ACTIONS as readonly string[]).includes(action!)) {
    throw new RangeError(`Expected one of ${ACTIONS.join(', ')} for histoflow queue but received '${positionals.join(' ')}'`);
  }
  if (!values.queue) throw new RangeError('Expected --queue redis://HOST:PORT/NAME for histoflow queue but received nothing');
  const address = parseQueueAddress('--queue', values.queue);
  await checkRedis('--queue', address);
  if (action === 'status') {
    const tty = process.stdout.isTTY === true && !values.json;
    let shown = 0;
    for (;;) {
      const s = await queueStatus(address);
      const text = values.json ? `${JSON.stringify(s)}\n` : statusText(s);
      // On a terminal the view is redrawn in place: up over the last one, clear to the end.
      process.stdout.write(tty && shown ? `\x1b[${shown}F\x1b[J${text}` : text);
      shown = text.split('\n').length - 1;
      if (!values.watch || s.unfinished === 0) break;
      await new Promise((r) => setTimeout(r, WATCH_MS));
    }
  } else if (action === 'retry') {
    const n = await retryFailed(address);
    process.stdout.write(values.json ? `${JSON.stringify({ queue: address.url, retried: n })}\n` : `${n} failed jobs moved back to waiting on ${address.url}\n`);
  } else {
    const n = await drainQueue(address);
    process.stdout.write(values.json ? `${JSON.stringify({ queue: address.url, removed: n })}\n` : `${n} jobs not started removed from ${address.url}\n`);
  }
  return 0;
}
