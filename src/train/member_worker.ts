/**
 * One member of an ensemble run (ensemble.ts), in a process of its own: the
 * parent forks it with OMP_NUM_THREADS set to the member's share of the
 * threads (read once by the kernels' and oneDNN's thread pools), sends
 * `{ type: 'train', options }`, and hears back each epoch, every few
 * batches, and the end: `{ type: 'done', result }` or `{ type: 'error' }`.
 * Ctrl-C reaches the whole process group: the member ignores SIGINT and
 * stops after its current batch when the parent says `{ type: 'abort' }`
 * (Ctrl-C, or another member failed) or goes away, so that every member
 * stops at a resumable point.
 */
import { train, type TrainResult } from './train.js';
import type { EpochMetrics } from './run_folder.js';
import type { TrainOptions } from './options.js';

/** Parent → member. */
export type MemberRequest = { type: 'train'; options: TrainOptions } | { type: 'abort'; reason: string };

/** Member → parent. */
export type MemberReport =
  | { type: 'epoch'; row: EpochMetrics; horizon: number; best: number | null }
  | { type: 'batch'; epoch: number; batch: number }
  | { type: 'done'; result: TrainResult }
  | { type: 'error'; name: string; message: string; aborted: boolean };

/** Batches between two progress reports. */
const BATCH_REPORT_EVERY = 8;

const abort = new AbortController();
const send = (m: MemberReport) => {
  if (process.connected) process.send!(m);
};

process.on('SIGINT', () => undefined);
process.on('disconnect', () => abort.abort(new Error('the ensemble\'s process went away')));
process.on('message', (m: MemberRequest) => {
  if (m.type === 'abort') abort.abort(new Error(m.reason));
  else if (m.type === 'train') void run(m.options);
});

async function run(options: TrainOptions): Promise<void> {
  try {
    // members: 1 — a member never starts an ensemble of its own, whatever its recipe says.
    const result = await train({ ...options, members: 1 }, {
      quiet: true, signal: abort.signal,
      onEpoch: (row, state) => send({ type: 'epoch', row, horizon: state.horizon ?? state.args.epochs, best: state.best?.val_auc ?? null }),
      onBatch: (epoch, batch) => {
        if (batch % BATCH_REPORT_EVERY === 0) send({ type: 'batch', epoch, batch });
      },
    });
    send({ type: 'done', result });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    send({ type: 'error', name: err.name, message: err.message, aborted: abort.signal.aborted });
  } finally {
    process.disconnect?.();
  }
}
