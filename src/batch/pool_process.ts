/**
 * One process of the local pool (local_pool.ts): runs the jobs its parent
 * sends over IPC, one at a time, and answers with progress, the outcome or the
 * error. It ends when its parent goes away (the IPC channel closes), so a
 * killed `histoflow batch` leaves no process behind.
 */
import { isPermanent, runJob, type JobSpec } from './job.js';
import type { PoolReply, PoolRequest } from './local_pool.js';

/** A job's progress goes to the parent at most this often (and always its last step). */
const PROGRESS_EVERY_MS = 200;

function send(reply: PoolReply): void {
  process.send?.(reply);
}

async function run(job: JobSpec): Promise<void> {
  let last = 0;
  try {
    const outcome = await runJob(job, {
      onProgress: (progress) => {
        const now = Date.now();
        if (now - last < PROGRESS_EVERY_MS && progress.done < progress.total) return;
        last = now;
        send({ type: 'progress', id: job.id, progress });
      },
    });
    send({ type: 'done', id: job.id, outcome });
  } catch (e) {
    send({ type: 'failed', id: job.id, reason: e instanceof Error ? e.message : String(e), permanent: isPermanent(e) });
  }
}

process.on('message', (request: PoolRequest) => {
  if (request.type === 'run') void run(request.job);
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
