/**
 * The data suite: can the input pipeline keep the trainer fed? Case
 * `loader-vs-train-96-b64`, in images/s, all measured in one run:
 *
 *   loader:packed      one shuffled epoch of BatchLoader over a packed dataset
 *                      (memory-mapped reads + gather), augmented with the
 *                      training pipeline (`histoflow train`'s default preset:
 *                      D4, HED jitter, HSV jitter)
 *                      on the auto kernel backend, batched into TF.js tensors
 *                      on the `native` training backend, batch 64, prefetch 2,
 *                      reused output arrays: what a training epoch consumes.
 *   loader:kaggle-tif  the same from a Kaggle folder of 96x96 TIFFs (uncompressed,
 *                      as Kaggle's are: 27 KB each), decoded by sharp per batch
 *                      (ImageFileSource): the decode cost of training without packing.
 *   train:native       the baseline CNN's training step (trainOnBatch: forward,
 *                      gradients, Adam) at batch 64, 96², on the `native` backend.
 *
 * Targets: each loader ≥ 10x train:native, so augmentation and decoding, run
 * ahead by the loader, never make training wait. The three are measured one
 * after the other, each with the whole machine; while training, the loader
 * shares the cores with it (the ratio says how little of them it needs).
 * Inputs: 96x96 tiles cut from real H&E (test/fixtures/histolab__tcga-lung-rgb.png).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';

import { loadAddon } from '../../bindings/loader.js';
import { BatchLoader, type BatchSource } from '../augment/loader.js';
import { ImageFileSource } from '../dataset/image_files.js';
import { readKaggleLayout } from '../dataset/kaggle.js';
import { PackedDataset } from '../dataset/packed.js';
import { PackedWriter } from '../dataset/packed_writer.js';
import { useTrainingBackend } from '../tfjs/backend.js';
import { setNnEngine } from '../tfjs/native_backend.js';
import { AUGMENT_PRESETS, DEFAULT_AUGMENT } from '../train/options.js';

/** What `histoflow train` augments with by default. */
const TRAIN_PIPELINE = AUGMENT_PRESETS[DEFAULT_AUGMENT]!;
import { measure, type MeasureOptions, type Suite, type SuiteContext } from './harness.js';
import { heTiles } from './packed.js';
import { baselineCnnBatch } from './train.js';
import { makeDirectory } from '../output.js';

const CASE = 'loader-vs-train-96-b64';
const BATCH = 64;
const TILE = 96;
const TARGET = 10;

function budget(ctx: SuiteContext, slow: boolean): MeasureOptions {
  const { quick, repeats } = ctx.options;
  if (quick) return { warmup: 0, repeats: repeats ?? 1, maxTimeMs: 0 };
  return { warmup: 1, repeats: repeats ?? (slow ? 3 : 5), maxTimeMs: 60_000 };
}

/** Writes the tiles as a Kaggle folder (train/<i>.tif uncompressed, train_labels.csv). */
async function writeKaggle(dir: string, tiles: { data: Uint8Array; n: number }): Promise<void> {
  const rb = TILE * TILE * 3;
  const rows = ['id,label'];
  await makeDirectory(join(dir, 'train'));
  for (let i = 0; i < tiles.n; i++) {
    const id = `tile${String(i).padStart(6, '0')}`;
    await sharp(Buffer.from(tiles.data.buffer, tiles.data.byteOffset + i * rb, rb), { raw: { width: TILE, height: TILE, channels: 3 } })
      .tiff({ compression: 'none' })
      .toFile(join(dir, 'train', `${id}.tif`));
    rows.push(`${id},${i % 2}`);
  }
  await writeFile(join(dir, 'train_labels.csv'), `${rows.join('\n')}\n`);
}

/** Times shuffled epochs of BatchLoader over `source` (a new epoch, so a new order, each run). */
async function measureLoader(ctx: SuiteContext, name: string, source: BatchSource): Promise<void> {
  const loader = new BatchLoader(source, TRAIN_PIPELINE, { batchSize: BATCH, shuffle: true, seed: 1, prefetch: 2, reuse: true, tf });
  let epoch = 0;
  const m = await measure(async () => {
    for await (const b of loader.epoch(epoch)) b.release();
    epoch++;
  }, budget(ctx, false));
  const value = source.size / m.median;
  const kernel = await loader.backend();
  ctx.record(CASE, name, value, 'images/s', {
    median_s: m.median, first_s: m.first, min_s: m.min, repeats: m.repeats, images: source.size, batch: BATCH,
    input: `${TILE}x${TILE}x3`, augment_backend: kernel.name, tensors_on: tf.getBackend(),
  });
  ctx.log(`data ${CASE} ${name}: ${value.toFixed(0)} images/s (${source.size} images, augment on ${kernel.name}, median ${(m.median * 1000).toFixed(0)} ms of ${m.repeats})`);
}

async function measureTraining(ctx: SuiteContext): Promise<void> {
  const addon = loadAddon();
  const engine = addon.ok && addon.addon.nn.info().onednn ? 'onednn' : 'builtin';
  setNnEngine(engine); // the train suite may have left the other one selected
  const net = baselineCnnBatch(BATCH);
  try {
    const m = await measure(async () => {
      await net.model.trainOnBatch(net.x, net.y);
    }, budget(ctx, true));
    const value = BATCH / m.median;
    ctx.record(CASE, 'train:native', value, 'images/s', {
      median_s: m.median, first_s: m.first, min_s: m.min, repeats: m.repeats, batch: BATCH, input: `${TILE}x${TILE}x3`, engine,
    });
    ctx.log(`data ${CASE} train:native (${engine}): ${value.toFixed(1)} images/s (median ${(m.median * 1000).toFixed(0)} ms of ${m.repeats})`);
  } finally {
    net.dispose();
  }
}

async function run(ctx: SuiteContext): Promise<void> {
  const quick = ctx.options.quick;
  const nPacked = quick ? 256 : 4096;
  const nKaggle = quick ? 256 : 1024;
  const previous = tf.getBackend();
  const chosen = await useTrainingBackend('native'); // throws when the addon did not load: the suite fails as a whole
  ctx.environment('dataBench', { tile: TILE, batch: BATCH, packedImages: nPacked, kaggleImages: nKaggle, trainingBackend: chosen.backend, pipeline: JSON.stringify(TRAIN_PIPELINE), tmp: tmpdir() });
  const dir = await mkdtemp(join(tmpdir(), 'histoflow-bench-data-'));
  try {
    const tiles = await heTiles(Math.max(nPacked, nKaggle));
    const file = join(dir, 'train.hfpack');
    const w = await PackedWriter.create(file, { height: TILE, width: TILE });
    const rb = TILE * TILE * 3;
    await w.append({ ...tiles, n: nPacked, data: tiles.data.subarray(0, nPacked * rb) }, { labels: Array.from({ length: nPacked }, (_, i) => i % 2) });
    await w.finish();
    const ds = await PackedDataset.open(file);
    try {
      await measureLoader(ctx, 'loader:packed', ds);
    } catch (e) {
      ctx.fail(CASE, 'loader:packed', e);
    } finally {
      ds.close();
    }

    try {
      await writeKaggle(dir, { data: tiles.data, n: nKaggle });
      const layout = await readKaggleLayout(dir);
      await measureLoader(ctx, 'loader:kaggle-tif', await ImageFileSource.open(layout.train));
    } catch (e) {
      ctx.fail(CASE, 'loader:kaggle-tif', e);
    }

    try {
      await measureTraining(ctx);
    } catch (e) {
      ctx.fail(CASE, 'train:native', e);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    if (previous) await tf.setBackend(previous);
  }
  ctx.target(CASE, 'loader:packed', 'train:native', TARGET);
  ctx.target(CASE, 'loader:kaggle-tif', 'train:native', TARGET);
}

export const dataSuite: Suite = {
  name: 'data',
  description: 'training input pipeline (packed or Kaggle TIFFs → augment → tensors, BatchLoader) vs the native backend\'s training step, images/s, 96², batch 64',
  run,
};
