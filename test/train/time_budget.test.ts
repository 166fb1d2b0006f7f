/**
 * train's time budget (issue 15): no epoch starts that the longest epoch so far
 * says would end past the budget; the first always runs; best/ is kept; a
 * resume takes a new budget; the schedule's horizon is planned to fit the
 * budget so the cosine anneals before it ends. Durations parse as people type them.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { parseDuration, parseFlags } from '../../src/cli/flags.js';
import { TRAIN_FLAGS } from '../../src/cli/train.js';
import { synthPatches } from '../../src/synth/dataset.js';
import { learningRateAt } from '../../src/train/schedule.js';
import { train, type TrainState } from '../../src/train/train.js';
import { nativeAvailable } from '../support/tfjs_support.js';

const BACKEND = nativeAvailable ? ('native' as const) : ('tfjs-cpu' as const);
let root = '', data = '';

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'hf-budget-'));
  data = join(root, 'synth');
  await synthPatches(data, { n: 64, seed: 3, size: 48, workers: 0 });
});
test.after.always(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const run = (out: string, extra: Record<string, unknown>) =>
  ({ data, out: join(root, out), width: 0.125, batchSize: 16, epochs: 4, patience: 0, backend: BACKEND, seed: 1, ...extra });

test('durations: 90s, 15m, 1.5h, 1h30m and plain seconds; anything else is an error naming --time-budget', (t) => {
  t.is(parseDuration('90s'), 90);
  t.is(parseDuration('15m'), 900);
  t.is(parseDuration('1.5h'), 5400);
  t.is(parseDuration('1h30m'), 5400);
  t.is(parseDuration('2m30s'), 150);
  t.is(parseDuration('45'), 45);
  for (const bad of ['', '15 m', '1d', 'm', '0x10', '1h1h']) t.true(Number.isNaN(parseDuration(bad)), bad);
  t.is(parseFlags('train', TRAIN_FLAGS, ['--time-budget', '15m']).values['time-budget'], 900);
  for (const bad of ['0', '0s', '-5m', 'soon', '400d']) {
    t.throws(() => parseFlags('train', TRAIN_FLAGS, ['--time-budget', bad]), { message: /--time-budget/ }, bad);
  }
});

test('a budget shorter than an epoch stops after the first epoch, keeping best/; a resume with a large budget runs on', async (t) => {
  const r = await train(run('short', { timeBudget: 0.001 }), { quiet: true });
  t.true(r.stopped_by_time_budget);
  t.false(r.stopped_early);
  t.is(r.epochs, 1);
  t.true((await stat(join(r.checkpoint, 'model.json'))).isFile());
  const resumed = await train({ out: r.run, resume: true, timeBudget: 3600 }, { quiet: true });
  t.false(resumed.stopped_by_time_budget);
  t.is(resumed.epochs, 4);
});

test('a budget that the epochs fit in changes nothing', async (t) => {
  const r = await train(run('long', { timeBudget: 3600 }), { quiet: true });
  t.false(r.stopped_by_time_budget);
  t.is(r.epochs, 4);
});

test('the cosine schedule is planned over the epochs the budget holds, and anneals over them', async (t) => {
  // Each step takes at least 300 ms, so an epoch (3 steps) about 1 s: a 20 s budget holds several, far fewer than 50.
  const busy = () => {
    const until = performance.now() + 300;
    while (performance.now() < until);
  };
  const r = await train(run('fit', { epochs: 50, timeBudget: 20 }), { quiet: true, onBatch: busy });
  t.true(r.stopped_by_time_budget);
  t.true(r.epochs > 1 && r.epochs < 50, String(r.epochs));
  const state = JSON.parse(await readFile(join(r.run, 'state.json'), 'utf8')) as TrainState;
  t.is(state.horizon, r.epochs);
  // The horizon may have shrunk on the way (a slower epoch), never grown: the rate only falls, and the last epoch is the curve's last.
  state.history.slice(1).forEach((row, e) => t.true(row.lr <= state.history[e]!.lr, `epoch ${e + 2}`));
  t.is(state.history.at(-1)!.lr, learningRateAt('cosine', 1e-3, r.epochs - 1, r.epochs));
});
