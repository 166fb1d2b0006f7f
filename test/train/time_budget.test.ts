/**
 * train's time budget (issue 15): no epoch starts that the slowest epoch so
 * far (a call's first left out once a second is timed) says would end past
 * the budget; the first always runs; best/ is kept; a resume takes a new
 * budget; the schedule's horizon is planned to fit the budget so the cosine
 * anneals before it ends, and grows when the pace turns out faster than the
 * first epoch's without the rate ever rising. Durations parse as people type them.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { parseDuration, parseFlags } from '../../src/cli/flags.js';
import { TRAIN_FLAGS } from '../../src/cli/train.js';
import { synthPatches } from '../../src/synth/dataset.js';
import { learningRateAt } from '../../src/train/schedule.js';
import { planHorizon, train, type TrainState } from '../../src/train/train.js';
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
  // The horizon moves with the pace (planHorizon's own test has the arithmetic), but the rate only ever falls.
  state.history.slice(1).forEach((row, e) => t.true(row.lr <= state.history[e]!.lr, `epoch ${e + 2}`));
  t.true(state.horizon! >= r.epochs && state.horizon! < 50, String(state.horizon));
  if (state.horizon === r.epochs) {
    t.is(state.history.at(-1)!.lr, learningRateAt('cosine', 1e-3, r.epochs - 1, r.epochs), 'the last epoch is the curve\'s last');
  } else {
    // Only when an epoch ran more than 10 % slower than every one before it (other test files share the cores).
    const seconds = state.history.map((row) => row.seconds.toFixed(2)).join(', ');
    t.log(`the budget stopped the run ${state.horizon! - r.epochs} epoch(s) before its planned end: epochs took ${seconds} s`);
  }
});

test('planHorizon: the pace leaves out a slow first epoch once a second is timed, the horizon grows as far as keeps the rate from rising', (t) => {
  const args = { epochs: 100, schedule: 'cosine' as const, learningRate: 1e-3 };
  const rows = (...seconds: number[]) => seconds.map((s, i) => ({ epoch: i + 1, seconds: s }));
  // Epochs are planned at the pace × 1.1 (the margin). After the first epoch (114 s, a 90-minute budget) its pace is
  // all there is: (5400 - 114) / 125.4 = 42.2 → 1 + 42.
  t.deepEqual(planHorizon(args, 5400 - 114, rows(114), 0, 1, 100), { horizon: 43, pace: 114 });
  // After the second (78 s): 5208 / 85.8 = 60.7 → 2 + 60 = 62, within 2 · 43 (the rate of epoch 3 at 62 ≤ epoch 2's at 43).
  t.deepEqual(planHorizon(args, 5400 - 192, rows(114, 78), 0, 2, 43), { horizon: 62, pace: 78 });
  t.true(learningRateAt('cosine', 1e-3, 2, 62) <= learningRateAt('cosine', 1e-3, 1, 43));
  // (Counting the first epoch's 114 s, as the former rule did, it would have stayed at 2 + floor(5208 / 125.4) = 43.)
  // Growth is capped where the rate would rise: after 10 epochs under horizon 12, a pace allowing 55 grows only to 13
  // (the cosine's rate falls with e / h: 10 / h ≥ 9 / 12 ⇔ h ≤ 13.3).
  t.is(planHorizon(args, 50 * 10, rows(30, ...Array(9).fill(10)), 0, 10, 12).horizon, 13);
  t.true(learningRateAt('cosine', 1e-3, 10, 13) <= learningRateAt('cosine', 1e-3, 9, 12));
  t.true(learningRateAt('cosine', 1e-3, 10, 14) > learningRateAt('cosine', 1e-3, 9, 12));
  // A constant rate never rises: the horizon follows the pace.
  t.is(planHorizon({ ...args, schedule: 'constant' }, 50 * 10, rows(30, ...Array(9).fill(10)), 0, 10, 12).horizon, 10 + 45);
  // A slower epoch brings the end closer; never past args.epochs, never below the epochs done; no time left: stop.
  t.is(planHorizon(args, 10 * 20, rows(30, 10, 20), 0, 3, 68).horizon, 3 + 9);
  t.is(planHorizon({ ...args, epochs: 20 }, 5000, rows(30, 10), 0, 2, 20).horizon, 20);
  t.deepEqual(planHorizon(args, 5, rows(30, 10), 0, 2, 40), { horizon: 2, pace: 10 });
  // One epoch that fits at the pace runs, margin or not.
  t.is(planHorizon(args, 10.5, rows(30, 10), 0, 2, 40).horizon, 3);
  // A resume plans at once from the earlier calls' epochs (all of them: none of this call's yet), then leaves out its own first.
  t.is(planHorizon(args, 600, rows(30, 10, 10), 3, 3, 100).horizon, 3 + 18);
  t.is(planHorizon(args, 600, [...rows(30, 10, 10), { epoch: 4, seconds: 60 }], 3, 4, 21).horizon, 4 + 9);
  // Its second epoch (12 s) sets the pace: 600 / 13.2 = 45 would allow 50, the rate caps it at 16 (5 / h ≥ 4 / 13).
  t.deepEqual(planHorizon(args, 600, [...rows(30, 10, 10), { epoch: 4, seconds: 60 }, { epoch: 5, seconds: 12 }], 3, 5, 13), { horizon: 16, pace: 12 });
});
