/**
 * The weight average of `train --ema` (src/train/ema.ts): it follows its
 * recurrence, leaves the raw weights as they were, is what best/ keeps and
 * validation scores, and resumes exactly.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { loadModel } from '../../src/models/io.js';
import { synthPatches } from '../../src/synth/dataset.js';
import { EMA_FILE, WeightAverage } from '../../src/train/ema.js';
import type { TrainOptions } from '../../src/train/options.js';
import { train, type TrainState } from '../../src/train/train.js';
import { nativeAvailable } from '../support/tfjs_support.js';

const BACKEND = nativeAvailable ? 'native' : 'tfjs-cpu';
let root = '', data = '';

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'hf-ema-'));
  data = join(root, 'synth');
  await synthPatches(data, { n: 64, seed: 8, size: 48, workers: 0 });
});
test.after.always(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const tiny = (out: string, extra: TrainOptions = {}): TrainOptions =>
  ({ data, out: join(root, out), width: 0.125, batchSize: 16, epochs: 2, patience: 0, backend: BACKEND, seed: 3, ema: 0.9, ...extra });

/** A one-layer model whose weights the test sets directly. */
function denseModel(): tf.LayersModel {
  const m = tf.sequential();
  m.add(tf.layers.dense({ inputShape: [3], units: 2 }));
  return m;
}

const flat = async (ts: tf.Tensor[]) => Float32Array.from((await Promise.all(ts.map((x) => x.data()))).flatMap((d) => Array.from(d)));

test.serial('the average follows d = min(decay, (1+t)/(10+t)), shadow ← d·shadow + (1−d)·w, from the initial weights', async (t) => {
  const model = denseModel();
  const ema = new WeightAverage(model, 0.95);
  let expected = Array.from(await flat(model.getWeights()), Number);
  for (let step = 0; step < 40; step++) {
    const w = model.weights.map((v) => tf.randomNormal(v.shape as number[], 0, 1, 'float32', step * 10 + 1));
    model.setWeights(w);
    const now = Array.from(await flat(w), Number);
    const d = Math.min(0.95, (1 + step) / (10 + step));
    expected = expected.map((s, i) => d * s + (1 - d) * now[i]!);
    ema.update();
    tf.dispose(w);
  }
  t.is(ema.steps, 40);
  const averaged = await ema.withAverage(async () => flat(model.getWeights()));
  averaged.forEach((v, i) => t.true(Math.abs(v - expected[i]!) <= 1e-5 * (1 + Math.abs(expected[i]!)), `weight ${i}: ${v} vs ${expected[i]}`));
  const bytes = await ema.bytes();
  t.deepEqual(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), averaged);
  ema.dispose();
  model.dispose();
});

test.serial('withAverage puts the raw weights back, also when its function throws, and leaks no tensor', async (t) => {
  const model = denseModel();
  const ema = new WeightAverage(model, 0.5);
  const w = model.weights.map((v) => tf.fill(v.shape as number[], 7));
  model.setWeights(w);
  ema.update();
  const raw = await flat(model.getWeights());
  const before = tf.memory().numTensors;
  const inside = await ema.withAverage(async () => flat(model.getWeights()));
  t.notDeepEqual(inside, raw);
  await t.throwsAsync(ema.withAverage(async () => {
    throw new Error('scoring failed');
  }), { message: 'scoring failed' });
  t.deepEqual(await flat(model.getWeights()), raw);
  t.is(tf.memory().numTensors, before);
  tf.dispose(w);
  ema.dispose();
  model.dispose();
});

test.serial('restore reads ema.bin back, and one that does not fit the model is an error naming the file', async (t) => {
  const model = denseModel();
  const a = new WeightAverage(model, 0.9);
  model.setWeights(model.weights.map((v) => tf.fill(v.shape as number[], 3)));
  a.update();
  const file = join(root, 'a.bin');
  await writeFile(file, await a.bytes());
  const b = new WeightAverage(model, 0.9);
  await b.restore(file, a.steps);
  t.deepEqual(await b.bytes(), await a.bytes());
  t.is(b.steps, 1);
  await writeFile(file, new Uint8Array(12));
  await t.throwsAsync(b.restore(file, 1), { message: new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} holds 12 bytes`) });
  [a, b].forEach((e) => e.dispose());
  model.dispose();
});

test.serial('a run with ema: best/ holds the average, last/ the raw weights and ema.bin; validation scored the average', async (t) => {
  const r = await train(tiny('one', { epochs: 1 }), { quiet: true });
  const state = JSON.parse(await readFile(join(r.run, 'state.json'), 'utf8')) as TrainState;
  t.is(state.emaSteps, Math.ceil(state.history.length * (r.train_images / 16)));
  const best = (await loadModel(r.checkpoint)).model, last = (await loadModel(join(r.run, 'last'))).model;
  const ema = await readFile(join(r.run, 'last', EMA_FILE));
  const averaged = new Float32Array(ema.buffer, ema.byteOffset, ema.byteLength / 4);
  t.deepEqual(await flat(best.weights.map((w) => w.read())), averaged);
  t.notDeepEqual(await flat(last.weights.map((w) => w.read())), averaged);
  [best, last].forEach((m) => m.dispose());
});

test.serial('interrupted and resumed with ema equals the uninterrupted run (average, best/, steps)', async (t) => {
  const full = await train(tiny('full', { epochs: 3 }), { quiet: true });
  const abort = new AbortController();
  const cut = tiny('cut', { epochs: 3 });
  await t.throwsAsync(train(cut, {
    quiet: true, signal: abort.signal,
    onBatch: (epoch, batch) => {
      if (epoch === 2 && batch === 1) abort.abort(new Error('killed'));
    },
  }), { message: /killed/ });
  const resumed = await train({ out: cut.out!, resume: true }, { quiet: true });
  t.is(resumed.resumed_from, 2);
  for (const file of [join('last', EMA_FILE), join('last', 'weights.bin'), join('best', 'weights.bin')]) {
    t.deepEqual(await readFile(join(resumed.run, file)), await readFile(join(full.run, file)), file);
  }
  const steps = async (run: string) => (JSON.parse(await readFile(join(run, 'state.json'), 'utf8')) as TrainState).emaSteps;
  t.is(await steps(resumed.run), await steps(full.run));
  await t.throwsAsync(train({ out: cut.out!, resume: true, ema: 0.5 }), { instanceOf: RangeError, message: /for ema/ });
});

test('bad ema values are errors naming ema', async (t) => {
  for (const bad of [1, 1.5, -0.1, Number.NaN]) {
    await t.throwsAsync(train(tiny('bad', { ema: bad })), { message: /for ema/ }, String(bad));
  }
  await t.throwsAsync(train(tiny('bad', { ema: '0.9' as unknown as number })), { instanceOf: TypeError, message: /for ema/ });
});
