/**
 * The trainer (src/train/*): reproducible for a seed, resumable exactly
 * (also after an interruption mid-epoch), LR schedules by formula and applied
 * to the optimizer, early stopping, consistent run-folder files (the best
 * checkpoint rescored independently gives the recorded AUC), flag errors
 * naming the flag, bad data reported, and the CLI's --json last line.
 * Tiny synthetic sets (48 px patches, width 1/8) keep each test short.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir, cp, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { readKaggleLayout } from '../../src/dataset/kaggle.js';
import { PackedWriter } from '../../src/dataset/packed_writer.js';
import { readImage, stackImages } from '../../src/image.js';
import { rocAuc } from '../../src/metrics/index.js';
import { loadModel } from '../../src/models/io.js';
import { createPredictor } from '../../src/models/predict.js';
import { buildModel } from '../../src/models/zoo.js';
import { synthPatches } from '../../src/synth/dataset.js';
import { parseTrainArgs } from '../../src/cli/train.js';
import { COSINE_FLOOR, STEP_GAMMA, learningRateAt, setLearningRate, getLearningRate } from '../../src/train/schedule.js';
import { METRICS_COLUMNS, type EpochMetrics } from '../../src/train/run_folder.js';
import { train, type TrainState } from '../../src/train/train.js';
import type { TrainOptions } from '../../src/train/options.js';
import { nativeAvailable, random } from '../support/tfjs_support.js';
import { CLI } from '../support/helpers.js';
import { writePcam } from '../support/pcam_support.js';

const exec = promisify(execFile);
const BACKEND = nativeAvailable ? 'native' : 'tfjs-cpu';

let root = '';
let data = '';

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'hf-train-'));
  data = join(root, 'synth');
  await synthPatches(data, { n: 96, seed: 4, size: 48, workers: 0 });
});

test.after.always(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** A tiny run's options: 77 train / 19 validation 48 px patches, baseline CNN at width 1/8. */
function tiny(out: string, extra: TrainOptions = {}): TrainOptions {
  return { data, out: join(root, out), width: 0.125, batchSize: 16, epochs: 2, backend: BACKEND, seed: 5, ...extra };
}

const quiet = { quiet: true };

async function bytes(path: string): Promise<Buffer> {
  return readFile(path);
}

// The trainer switches TF.js's global backend: tests that train run one at a time.

test.serial('two runs with one seed end with identical weights after 2 epochs (every weight, bit for bit)', async (t) => {
  const a = await train(tiny('det-a'), quiet);
  const b = await train(tiny('det-b'), quiet);
  t.is(a.epochs, 2);
  t.is(a.backend, BACKEND);
  t.deepEqual(await bytes(join(b.run, 'last', 'weights.bin')), await bytes(join(a.run, 'last', 'weights.bin')));
  const ma = (await loadModel(join(a.run, 'last'))).model, mb = (await loadModel(join(b.run, 'last'))).model;
  const wa = ma.getWeights(), wb = mb.getWeights();
  t.true(wa.length > 10);
  for (let i = 0; i < wa.length; i++) t.deepEqual(wb[i]!.dataSync(), wa[i]!.dataSync(), ma.weights[i]!.name);
  const c = await train(tiny('det-c', { seed: 6 }), quiet);
  t.notDeepEqual(await bytes(join(c.run, 'last', 'weights.bin')), await bytes(join(a.run, 'last', 'weights.bin')));
  [ma, mb].forEach((m) => m.dispose());
});

test.serial('interrupted mid-epoch 3 and resumed equals 3 uninterrupted epochs (weights, optimizer, metrics)', async (t) => {
  const full = await train(tiny('res-full', { epochs: 3 }), quiet);
  const abort = new AbortController();
  const opts = tiny('res-cut', { epochs: 3 });
  await t.throwsAsync(train(opts, {
    quiet: true, signal: abort.signal,
    // Killed after 2 finished epochs and 2 steps of the third.
    onBatch: (epoch, batch) => {
      if (epoch === 2 && batch === 1) abort.abort(new Error('killed'));
    },
  }), { message: /killed/ });
  const cut = JSON.parse(await readFile(join(opts.out!, 'state.json'), 'utf8')) as TrainState;
  t.is(cut.epoch, 2);
  const resumed = await train({ out: opts.out!, resume: true }, quiet);
  t.is(resumed.resumed_from, 2);
  t.is(resumed.epochs, 3);
  t.deepEqual(await bytes(join(resumed.run, 'last', 'weights.bin')), await bytes(join(full.run, 'last', 'weights.bin')));
  const j = (p: string) => readFile(p, 'utf8').then((s) => JSON.parse(s) as { epochs: EpochMetrics[] });
  const mf = await j(join(full.run, 'metrics.json')), mr = await j(join(resumed.run, 'metrics.json'));
  const strip = (rows: EpochMetrics[]) => rows.map(({ seconds: _s, images_per_s: _i, ...r }) => r);
  t.deepEqual(strip(mr.epochs), strip(mf.epochs));
  // Nothing left to do: resuming a finished run trains nothing and reports it.
  const again = await train({ out: opts.out!, resume: true }, quiet);
  t.is(again.epochs, 3);
  t.is(again.resumed_from, 3);
  await t.throwsAsync(train({ out: opts.out!, resume: true, seed: 9 }, quiet), { instanceOf: RangeError, message: /for seed/ });
  await t.throwsAsync(train({ out: opts.out!, resume: true, backend: BACKEND === 'tfjs-cpu' ? 'native' : 'tfjs-cpu' }, quiet), { instanceOf: RangeError, message: /for backend/ });
});

test('learning-rate schedules follow their formulas', (t) => {
  const lr = 0.002, E = 9;
  for (let e = 0; e < E; e++) {
    t.is(learningRateAt('constant', lr, e, E), lr);
    t.is(learningRateAt('step', lr, e, E), lr * STEP_GAMMA ** Math.floor(e / 3));
    t.true(Math.abs(learningRateAt('cosine', lr, e, E) - lr * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + Math.cos((Math.PI * e) / E)))) < 1e-15);
  }
  t.is(learningRateAt('cosine', lr, 0, E), lr);
  t.true(learningRateAt('cosine', lr, E - 1, E) < 0.05 * lr);
  t.throws(() => learningRateAt('linear' as 'step', lr, 0, E), { instanceOf: RangeError, message: /schedule/ });
});

test.serial('setLearningRate changes the step the optimizer takes (0 freezes the weights)', async (t) => {
  await tf.setBackend(BACKEND);
  const { model } = await buildModel('baseline', { inputSize: 16, width: 0.125, seed: 1 });
  const x = tf.tensor4d(random(4 * 16 * 16 * 3, 3, 0, 1), [4, 16, 16, 3]), y = tf.tensor2d([0, 1, 1, 0], [4, 1]);
  const trainable = () => model.trainableWeights.map((w) => Array.from(w.read().dataSync()));
  setLearningRate(model.optimizer, 0);
  t.is(getLearningRate(model.optimizer), 0);
  const before = trainable();
  await model.trainOnBatch(x, y);
  t.deepEqual(trainable(), before);
  setLearningRate(model.optimizer, 0.01);
  await model.trainOnBatch(x, y);
  const after = trainable();
  t.true(after.every((w, i) => w.some((v, k) => v !== before[i]![k])));
  tf.dispose([x, y]);
  model.dispose();
});

test.serial('each epoch runs at its scheduled rate, recorded in metrics.json from the optimizer', async (t) => {
  for (const schedule of ['step', 'cosine'] as const) {
    const r = await train(tiny(`lr-${schedule}`, { epochs: 3, schedule, learningRate: 0.004 }), quiet);
    const m = JSON.parse(await readFile(join(r.run, 'metrics.json'), 'utf8')) as { epochs: EpochMetrics[] };
    t.deepEqual(m.epochs.map((row) => row.lr), [0, 1, 2].map((e) => learningRateAt(schedule, 0.004, e, 3)));
  }
});

test.serial('early stopping: with weights frozen (lr 0, no batch norm) the AUC never improves and the run stops after patience epochs', async (t) => {
  const r = await train(tiny('early', { model: 'vgg', learningRate: 0, epochs: 10, patience: 2 }), quiet);
  t.true(r.stopped_early);
  t.is(r.epochs, 3);
  t.is(r.best_epoch, 1);
  const state = JSON.parse(await readFile(join(r.run, 'state.json'), 'utf8')) as TrainState;
  t.true(state.stoppedEarly);
  t.is(state.sinceBest, 2);
  t.is(new Set(state.history.map((h) => h.val_auc)).size, 1);
});

test.serial('run folder: CSV equals JSON, best/ holds the best AUC, and rescoring best/ on the split\'s validation ids gives that AUC', async (t) => {
  const r = await train(tiny('files', { epochs: 3 }), quiet);
  const m = JSON.parse(await readFile(join(r.run, 'metrics.json'), 'utf8')) as { columns: string[]; epochs: EpochMetrics[] };
  const csv = (await readFile(join(r.run, 'metrics.csv'), 'utf8')).trim().split('\n');
  t.is(csv[0], METRICS_COLUMNS.join(','));
  t.is(csv.length, 4);
  csv.slice(1).forEach((line, i) => {
    const cells = line.split(',').map(Number);
    METRICS_COLUMNS.forEach((c, k) => t.is(cells[k], m.epochs[i]![c], `${c} of epoch ${i + 1}`));
  });
  t.deepEqual(m.epochs.map((e) => e.epoch), [1, 2, 3]);
  const best = m.epochs.reduce((a, b) => (b.val_auc > a.val_auc ? b : a));
  t.is(r.best_val_auc, best.val_auc);
  t.is(r.best_epoch, best.epoch);
  const { model, card } = await loadModel(r.checkpoint);
  t.is(card.epoch, best.epoch);
  t.is(card.val_auc, best.val_auc);
  t.is(card.inputSize, 48);
  // Independent rescoring: the validation ids of split.json, read from disk, through the predictor.
  const split = JSON.parse(await readFile(join(r.run, 'split.json'), 'utf8')) as { train: string[]; validation: string[] };
  t.is(split.train.length + split.validation.length, 96);
  t.is(split.validation.length, r.val_images);
  const layout = await readKaggleLayout(data);
  const byId = new Map(layout.train.map((e) => [e.id, e]));
  const entries = split.validation.map((id) => byId.get(id)!);
  const batch = stackImages(await Promise.all(entries.map((e) => readImage(e.path))));
  const scores = await createPredictor(model, card).predict(batch);
  t.true(Math.abs(rocAuc(entries.map((e) => e.label!), scores) - r.best_val_auc) < 1e-12);
  model.dispose();
  const png = await readFile(join(r.run, 'curves.png'));
  t.deepEqual([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
  t.deepEqual(JSON.parse(await readFile(join(r.run, 'skipped.json'), 'utf8')), { count: 0, skipped: [] });
});

test('bad flags are TypeError / RangeError naming the flag', async (t) => {
  const bad: Array<[string[], new (...a: never[]) => Error, RegExp]> = [
    [[], TypeError, /--data/],
    [['--data', 'd', '--epochs', '0'], RangeError, /--epochs/],
    [['--data', 'd', '--epochs', 'ten'], RangeError, /--epochs/],
    [['--data', 'd', '--lr', 'fast'], RangeError, /--lr/],
    [['--data', 'd', '--lr=-1'], RangeError, /--lr/],
    [['--data', 'd', '--batch', '0'], RangeError, /--batch/],
    [['--data', 'd', '--schedule', 'linear'], RangeError, /--schedule/],
    [['--data', 'd', '--backend', 'webgl'], RangeError, /--backend/],
    [['--data', 'd', '--val', '1'], RangeError, /--val/],
    [['--data', 'd', '--width', '0'], RangeError, /--width/],
    [['--data', 'd', '--patience=-2'], RangeError, /--patience/],
    [['--data', 'd', '--normalize', 'magic'], RangeError, /--normalize/],
    [['--data', 'd', '--target', 't.png'], RangeError, /--target/],
    [['--resume'], TypeError, /--out/],
  ];
  for (const [argv, type, message] of bad) t.throws(() => parseTrainArgs(argv), { instanceOf: type, message }, argv.join(' '));
  t.deepEqual(parseTrainArgs(['--data', 'd', '--epochs', '3', '--batch', '8', '--lr', '0.01', '--val', '0.25', '--group-by', 'slide']).options,
    { data: 'd', epochs: 3, batchSize: 8, learningRate: 0.01, validation: 0.25, groupBy: 'slide' });
  await t.throwsAsync(train({ data, augment: 'wild' }, quiet), { instanceOf: RangeError, message: /for augment/ });
  await t.throwsAsync(train({ data, epochs: 1.5 }, quiet), { instanceOf: RangeError, message: /for epochs/ });
  await t.throwsAsync(train({ data, model: 'alexnet', out: join(root, 'bad-model') }, quiet), { instanceOf: RangeError, message: /for model/ });
  await t.throwsAsync(train({ out: join(root, 'nothing-here'), resume: true }, quiet), { message: /Nothing to resume/ });
});

test.serial('bad data: a corrupt image, a non-0/1 label and an id without an image are reported skips; an empty folder is a clear error', async (t) => {
  const dir = join(root, 'dirty');
  await cp(data, dir, { recursive: true });
  const layout = await readKaggleLayout(dir);
  await writeFile(layout.train[0]!.path, 'not a tiff at all');
  const csv = join(dir, 'train_labels.csv');
  const lines = (await readFile(csv, 'utf8')).trim().split('\n');
  lines[2] = `${lines[2]!.split(',')[0]},2`;
  await writeFile(csv, `${lines.join('\n')}\n`);
  await appendFile(csv, 'ffffffffffffffffffffffffffffffffffffffff,1\n');
  const r = await train(tiny('dirty-run', { data: dir, epochs: 1 }), quiet);
  t.is(r.skipped, 3);
  t.is(r.train_images + r.val_images, 94); // 96 images, one unreadable, one labelled 2
  const skipped = JSON.parse(await readFile(join(r.run, 'skipped.json'), 'utf8')) as { count: number; skipped: { reason: string }[] };
  t.is(skipped.count, 3);
  const reasons = skipped.skipped.map((s) => s.reason).join('\n');
  t.regex(reasons, /unreadable/);
  t.regex(reasons, /label '2' is not 0 or 1/);
  t.regex(reasons, /no image/);
  const empty = join(root, 'empty');
  await mkdir(empty);
  await t.throwsAsync(train(tiny('empty-run', { data: empty }), quiet), { message: /empty or not a dataset/ });
  await t.throwsAsync(train(tiny('missing-run', { data: join(root, 'no-such') }), quiet), { message: /does not exist/ });
});

test.serial('histoflow train --json: the last line printed is the JSON summary', async (t) => {
  const out = join(root, 'cli-json');
  const { stdout } = await exec(process.execPath, [
    CLI, 'train', '--data', data, '--width', '0.125', '--batch', '16', '--epochs', '1', '--backend', BACKEND, '--seed', '1', '--out', out, '--json',
  ], { maxBuffer: 1 << 24 });
  const last = stdout.trim().split('\n').at(-1)!;
  const r = JSON.parse(last) as Record<string, unknown>;
  for (const key of ['best_val_auc', 'epochs', 'backend', 'checkpoint', 'best_epoch', 'seconds', 'images_per_s', 'run']) t.true(key in r, key);
  t.is(r.epochs, 1);
  t.is(r.backend, BACKEND);
  t.is(r.checkpoint, join(out, 'best'));
  t.true((r.best_val_auc as number) >= 0 && (r.best_val_auc as number) <= 1);
  const again = await exec(process.execPath, [CLI, 'train', '--data', data, '--out', out, '--json']).catch((e: { stderr: string; code: number }) => e);
  t.is((again as { code: number }).code, 1);
  t.regex((again as { stderr: string }).stderr, /already holds a run/);
});

test.serial('a packed file trains with --group-by slide: no slide straddles the split, unlabelled records are skipped', async (t) => {
  const layout = await readKaggleLayout(data);
  const path = join(root, 'slides.hfpack');
  const w = await PackedWriter.create(path, { height: 48, width: 48, labels: 'int32' });
  for (const [i, e] of layout.train.entries()) {
    // 12 slides of 8 patches; every 16th record unlabelled.
    await w.append(await readImage(e.path), { labels: [i % 16 === 15 ? null : e.label!], meta: [{ slide: `s${i % 12}`, level: 0, x: i, y: 0 }] });
  }
  await w.finish();
  const r = await train(tiny('packed-run', { data: path, epochs: 1, groupBy: 'slide', validation: 0.25 }), quiet);
  t.is(r.skipped, 6);
  t.is(r.train_images + r.val_images, 90);
  const split = JSON.parse(await readFile(join(r.run, 'split.json'), 'utf8')) as { kind: string; train: string[]; validation: string[] };
  t.is(split.kind, 'packed');
  const slides = (ids: string[]) => new Set(ids.map((id) => id.split(':')[0]));
  const trainSlides = slides(split.train);
  t.true(slides(split.validation).size > 0);
  for (const s of slides(split.validation)) t.false(trainSlides.has(s), `${s} on both sides`);
  await t.throwsAsync(train(tiny('packed-bad-group', { data: path, groupBy: 'scanner' }), quiet), { message: /no scanner to group by/ });
});

test.serial('a PatchCamelyon folder trains with its own valid split as validation', async (t) => {
  const dir = join(root, 'pcam');
  await mkdir(dir);
  await writePcam(dir, 'train', 40, 1);
  await writePcam(dir, 'valid', 16, 2);
  const r = await train(tiny('pcam-run', { data: dir, epochs: 1 }), quiet);
  t.is(r.train_images, 40);
  t.is(r.val_images, 16);
  const split = JSON.parse(await readFile(join(r.run, 'split.json'), 'utf8')) as { split: string; validation: string[] };
  t.is(split.split, 'pcam-valid');
  t.is(split.validation[0], 'valid-0');
  t.true(r.best_val_auc >= 0 && r.best_val_auc <= 1);
});
