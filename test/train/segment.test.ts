/**
 * `train --task segment` (src/train/segment.ts): masked tiles of a synthetic
 * slide to a UNet run folder with per-epoch Dice and IoU, resumed exactly;
 * validation scores against their definitions; tile sets of several slides
 * merged by label name; bad options named.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { InMemorySource } from '../../src/augment/loader.js';
import { MASK_TARGET_IGNORE } from '../../src/augment/masks.js';
import { parseTrainArgs } from '../../src/cli/train.js';
import { readMaskedTiles } from '../../src/dataset/masked_tiles.js';
import { loadModel, outputTask } from '../../src/models/io.js';
import { synthSlide } from '../../src/synth/slide.js';
import { tileSlide } from '../../src/tiling/tile.js';
import { resolveRunArgs } from '../../src/train/options.js';
import { choosePositive, evaluateSegmentation, readMaskedTileSets } from '../../src/train/segment.js';
import { train } from '../../src/train/train.js';
import { pairwiseAuc, seededRandom } from '../support/helpers.js';
import { nativeAvailable } from '../support/tfjs_support.js';

const BACKEND = nativeAvailable ? 'native' : 'tfjs-cpu';
let root = '';
let slide = '';
let tiles = '';

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'hf-segment-'));
  slide = join(root, 's.tif');
  await synthSlide(slide, { seed: 3, width: 1024, height: 1024, workers: 0 });
  tiles = join(root, 'tiles');
  // The synthetic slide's S.json is an annotation file (its tumour regions).
  await tileSlide(slide, tiles, { level: 1, size: 32, minTissue: 0.5, annotations: slide.replace(/\.tif$/, '.json'), masks: true });
});
test.after.always(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const RUN = { task: 'segment', width: 0.25, batchSize: 16, seed: 2, ema: 0, patience: 0, backend: BACKEND } as const;

test('a UNet trains on masked tiles: Dice and IoU per epoch, best/ is a segmentation model, a resume equals the uninterrupted run byte for byte', async (t) => {
  const straight = join(root, 'straight'), halves = join(root, 'halves');
  const a = await train({ ...RUN, data: tiles, epochs: 2, out: straight }, { quiet: true });
  await train({ ...RUN, data: tiles, epochs: 1, out: halves }, { quiet: true });
  const b = await train({ out: halves, resume: true, epochs: 2 }, { quiet: true });
  t.is(a.epochs, 2);
  t.is(b.resumed_from, 1);
  t.true(a.best_val_dice! >= 0 && a.best_val_dice! <= 1, `best Dice ${a.best_val_dice}`);
  const metrics = JSON.parse(await readFile(join(straight, 'metrics.json'), 'utf8')) as { columns: string[]; epochs: Array<Record<string, number>> };
  t.true(metrics.columns.includes('val_dice') && metrics.columns.includes('val_iou'));
  for (const row of metrics.epochs) {
    t.true(row.val_dice! >= 0 && row.val_dice! <= 1 && row.val_iou! >= 0 && row.val_iou! <= row.val_dice! + 1e-12, JSON.stringify(row));
    // IoU and Dice of one confusion matrix: IoU = D / (2 − D).
    t.true(Math.abs(row.val_iou! - row.val_dice! / (2 - row.val_dice!)) < 1e-9);
  }
  t.regex((await readFile(join(straight, 'metrics.csv'), 'utf8')).split('\n')[0]!, /val_dice,val_iou/);
  for (const dir of ['last', 'best']) {
    t.deepEqual(await readFile(join(halves, dir, 'weights.bin')), await readFile(join(straight, dir, 'weights.bin')), `${dir}/weights.bin`);
  }
  const { model } = await loadModel(join(straight, 'best'));
  t.is(outputTask(model), 'segment');
  model.dispose();
});

test('evaluateSegmentation: Dice, IoU, pixel accuracy and AUC of a known model against their definitions, ignored pixels left out', async (t) => {
  const n = 5, h = 8, w = 8;
  const rnd = seededRandom(4);
  const images = { data: Uint8Array.from({ length: n * h * w * 3 }, () => Math.floor(rnd() * 256)), n, height: h, width: w };
  const targets = Float32Array.from({ length: n * h * w }, () => { const u = rnd(); return u < 0.15 ? MASK_TARGET_IGNORE : u < 0.55 ? 1 : 0; });
  // p = sigmoid(4·R − 2) per pixel: a 1x1 convolution with fixed weights.
  const model = tf.sequential({ layers: [tf.layers.conv2d({ inputShape: [h, w, 3], filters: 1, kernelSize: 1, activation: 'sigmoid', weights: [tf.tensor4d([4, 0, 0], [1, 1, 3, 1]), tf.tensor1d([-2])] })] });
  const s = await evaluateSegmentation(model, {}, new InMemorySource(images, targets));
  model.dispose();
  let tp = 0, fp = 0, fn = 0, right = 0, valid = 0;
  const labels: number[] = [], scores: number[] = [];
  for (let i = 0; i < targets.length; i++) {
    if (targets[i] === MASK_TARGET_IGNORE) continue;
    const p = 1 / (1 + Math.exp(-(4 * images.data[3 * i]! / 255 - 2)));
    const y = targets[i]!, yhat = p >= 0.5 ? 1 : 0;
    valid++;
    if (yhat === y) right++;
    if (yhat && y) tp++; else if (yhat) fp++; else if (y) fn++;
    labels.push(y);
    scores.push(p);
  }
  t.true(Math.abs(s.dice - (2 * tp) / (2 * tp + fp + fn)) < 1e-9, `Dice ${s.dice}`);
  t.true(Math.abs(s.iou - tp / (tp + fp + fn)) < 1e-9, `IoU ${s.iou}`);
  t.true(Math.abs(s.acc - right / valid) < 1e-12);
  t.true(Math.abs(s.auc - pairwiseAuc(labels, scores)) < 1e-6, `AUC ${s.auc}`);
  t.true(Number.isFinite(s.loss) && s.loss > 0);
});

test('tile sets of several slides merge by label name; each tile keeps its slide', async (t) => {
  const both = join(root, 'both');
  const square = (x: number, label: string) => ({
    type: 'Feature', properties: { classification: { name: label } },
    geometry: { type: 'Polygon', coordinates: [[[x, 100], [x + 300, 100], [x + 300, 900], [x, 900], [x, 100]]] },
  });
  await tileSlide(slide, join(both, 'a'), { level: 1, size: 32, minTissue: 0.5, masks: true, annotations: { type: 'FeatureCollection', features: [square(100, 'tumour')] } });
  await tileSlide(slide, join(both, 'b'), { level: 1, size: 32, minTissue: 0.5, masks: true, annotations: { type: 'FeatureCollection', features: [square(100, 'tumour'), square(500, 'necrosis')] } });
  const a = await readMaskedTiles(join(both, 'a')), b = await readMaskedTiles(join(both, 'b'));
  const merged = await readMaskedTileSets(both);
  t.deepEqual(merged.labels, ['background', 'necrosis', 'tumour']);
  t.is(merged.images.n, a.images.n + b.images.n);
  const name = (labels: string[], v: number) => (v === 255 ? 'ignore' : labels[v]);
  const expected = [...Array.from(a.masks, (v) => name(a.labels, v)), ...Array.from(b.masks, (v) => name(b.labels, v))];
  t.deepEqual(Array.from(merged.masks, (v) => name(merged.labels, v)), expected);
  t.deepEqual(merged.slides, [...a.slides, ...b.slides].map((s, k) => s || (k < a.images.n ? 'a' : 'b')));
  t.true(merged.ids.every((id) => id.startsWith('a/') || id.startsWith('b/')));
  t.is(choosePositive(merged.labels, undefined), 'tumour');
  t.is(choosePositive(merged.labels, 'necrosis'), 'necrosis');
  t.throws(() => choosePositive(['background', 'necrosis', 'stroma'], undefined), { instanceOf: RangeError, message: /for positive/ });
});

test('segmentation options: errors name the option; --task segment defaults to unet and the segment augmentation', async (t) => {
  t.like(await resolveRunArgs({ data: 'd', task: 'segment' }), { task: 'segment', model: 'unet', augmentSource: 'segment', crop: null });
  await t.throwsAsync(resolveRunArgs({ data: 'd', task: 'segment', model: 'baseline' }), { instanceOf: RangeError, message: /for model/ });
  await t.throwsAsync(resolveRunArgs({ data: 'd', model: 'unet' }), { instanceOf: RangeError, message: /for model/ });
  await t.throwsAsync(resolveRunArgs({ data: 'd', positive: 'tumour' }), { instanceOf: RangeError, message: /for positive/ });
  await t.throwsAsync(resolveRunArgs({ data: 'd', task: 'segment', crop: 16 }), { instanceOf: RangeError, message: /for crop/ });
  await t.throwsAsync(resolveRunArgs({ data: 'd', task: 'tumour' as 'segment' }), { instanceOf: RangeError, message: /for task/ });
  t.like(parseTrainArgs(['--data', 'd', '--task', 'segment', '--positive', 'tumour']).options, { task: 'segment', positive: 'tumour' });
  // Tiles without masks, and a positive label the masks lack.
  const plain = join(root, 'plain');
  await tileSlide(slide, plain, { level: 1, size: 32, minTissue: 0.5 });
  await t.throwsAsync(train({ ...RUN, data: plain, epochs: 1, out: join(root, 'r1') }, { quiet: true }), { message: /--masks/ });
  await t.throwsAsync(train({ ...RUN, data: tiles, epochs: 1, positive: 'necrosis', out: join(root, 'r2') }, { quiet: true }), { instanceOf: RangeError, message: /for positive/ });
});
