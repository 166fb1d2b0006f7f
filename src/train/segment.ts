/**
 * What `train --task segment` adds to the classifier's trainer: tiles with
 * label masks (`histoflow tile --annotations A --masks`, a tile folder or a
 * packed file) as per-pixel targets of one label (`positive`), and the
 * validation scores of a pixel map.
 *
 *   targets      1 where the mask holds the positive label, 0 for background
 *                and every other label, MASK_TARGET_IGNORE (−1) for pixels in
 *                annotated exclusion regions (the masks' ignore value): no
 *                loss and no score counts them (augment/masks.ts)
 *   data         a tile folder or packed file, or a folder of them (one per
 *                slide, as `histoflow batch --job tile` writes ROOT/<slide>/):
 *                their labels merged by name, each tile's slide its folder's
 *                name when the tiles do not record one
 *   split        stratified by whether a tile holds any positive pixel, and
 *                grouped by slide with groupBy 'slide' (the only per-tile
 *                field of a masked tile set)
 *   validation   each tile through the model's own preprocessing, the whole
 *                tile at once (a UNet is trained on whole tiles, no crop);
 *                loss = the training loss (Dice + BCE); Dice and IoU at 0.5
 *                over every valid pixel of the set (global counts, not a mean
 *                of per-tile scores, which empty tiles would dominate); pixel
 *                accuracy at 0.5; pixel ROC AUC on at most AUC_PIXELS valid
 *                pixels taken at a fixed stride
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { augment } from '../augment/augment.js';
import { InMemorySource, type BatchSource } from '../augment/loader.js';
import { MASK_TARGET_IGNORE, maskTargets } from '../augment/masks.js';
import { checkPipeline, outputShape, type AugmentPipelineInput } from '../augment/pipeline.js';
import { readMaskedTiles, type MaskedTiles } from '../dataset/masked_tiles.js';
import { stratifiedSplit } from '../dataset/split.js';
import { invalidRange } from '../errors.js';
import { stackImages } from '../image.js';
import { rocAuc } from '../metrics/index.js';
import { MASK_IGNORE, checkMaskLabels } from '../tiling/masks.js';
import type { TrainingData, TrainingDataOptions } from './data.js';
import { SubsetSource } from './data.js';
import { diceBceLoss, segmentationScores } from './segment_loss.js';

export const TRAIN_TASKS = ['classify', 'segment'] as const;
export type TrainTask = (typeof TRAIN_TASKS)[number];

/** Validation pixels the pixel ROC AUC is computed on, at most. */
export const AUC_PIXELS = 2_000_000;

export interface SegmentationData extends TrainingData {
  /** The masks' labels (index = mask value; 'background' first). */
  labels: string[];
  /** The label trained as foreground. */
  positive: string;
}

/** The positive label: the one asked for, else 'tumour' when the masks have it, else their only label. */
export function choosePositive(labels: readonly string[], asked: string | null | undefined): string {
  const named = labels.slice(1);
  if (asked !== undefined && asked !== null) {
    if (!named.includes(asked)) throw invalidRange('positive', `a label of the masks (${named.join(', ') || 'none'})`, asked);
    return asked;
  }
  if (named.includes('tumour')) return 'tumour';
  if (named.length === 1) return named[0]!;
  throw invalidRange('positive', `the label to segment, one of ${named.join(', ') || '(the masks have no label but background)'}`, asked);
}

/** Opens a masked tile set (folder or packed file) as per-pixel targets of `positive`, split for validation. */
export async function openSegmentationData(path: string, options: TrainingDataOptions & { positive?: string | null }): Promise<SegmentationData> {
  const s = await stat(path).catch(() => undefined);
  if (!s) throw new Error(`${path} does not exist`);
  const set = await readMaskedTileSets(path);
  const positive = choosePositive(set.labels, options.positive);
  const p = set.labels.indexOf(positive);
  const { images, masks } = set;
  const pixels = images.height * images.width;
  const targets = maskTargets(masks, p, MASK_IGNORE);
  const holds = new Uint8Array(images.n);
  for (let i = 0; i < images.n; i++) {
    for (let k = i * pixels; k < (i + 1) * pixels; k++) {
      if (targets[k] === 1) {
        holds[i] = 1;
        break;
      }
    }
  }
  if (options.groupBy !== undefined && options.groupBy !== 'slide') {
    throw invalidRange('groupBy', 'slide (the only per-tile field of a masked tile set)', options.groupBy);
  }
  const split = stratifiedSplit(holds, {
    validation: options.validation ?? 0.2, seed: options.seed ?? 0, ...(options.groupBy ? { groups: set.slides } : {}),
  });
  if (split.train.length === 0 || split.validation.length === 0) {
    throw invalidRange('validation', `a split leaving tiles on both sides (${images.n} tiles)`, options.validation ?? 0.2);
  }
  const all = new InMemorySource(images, targets);
  return {
    kind: s.isFile() ? 'packed' : 'tiles', split: 'stratified',
    train: new SubsetSource(all, split.train), validation: new SubsetSource(all, split.validation),
    trainIds: split.train.map((i) => set.ids[i]!), validationIds: split.validation.map((i) => set.ids[i]!),
    height: images.height, width: images.width, skipped: [], close: () => undefined,
    labels: set.labels, positive,
  };
}

/** The masked tiles of one set (folder or packed file), or of every set in the subfolders of `path`, merged. */
export async function readMaskedTileSets(path: string): Promise<MaskedTiles> {
  const s = await stat(path);
  const isSet = async (dir: string) => (await stat(join(dir, 'manifest.json')).catch(() => undefined))?.isFile() ?? false;
  if (!s.isDirectory() || (await isSet(path))) return readMaskedTiles(path);
  const sets: Array<{ name: string; path: string }> = [];
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const sub = join(path, entry.name);
    if (entry.isDirectory() && (await isSet(sub))) sets.push({ name: entry.name, path: sub });
    else if (entry.isDirectory() && (await stat(join(sub, 'tiles.hfpack')).catch(() => undefined))) sets.push({ name: entry.name, path: join(sub, 'tiles.hfpack') });
  }
  if (sets.length === 0) {
    throw new Error(`${path} holds no tile set: expected a tile folder (manifest.json), a packed file, or subfolders of them (histoflow tile --masks)`);
  }
  const parts: MaskedTiles[] = [];
  for (const set of sets) {
    const part = await readMaskedTiles(set.path);
    parts.push({ ...part, slides: part.slides.map((slide) => slide || set.name), ids: part.ids.map((id) => `${set.name}/${id}`) });
  }
  const first = parts[0]!.images;
  for (const [k, part] of parts.entries()) {
    if (part.images.height !== first.height || part.images.width !== first.width) {
      throw new Error(`${sets[k]!.path} holds ${part.images.width}x${part.images.height} tiles, ${sets[0]!.path} ${first.width}x${first.height}: tile every slide at one size`);
    }
  }
  // Labels merged by name: background first, then every other name in sorted order.
  // At most 255 in all: a merged value of 255 would read as ignore.
  const labels = checkMaskLabels(`the labels of the tile sets in ${path}`, ['background', ...[...new Set(parts.flatMap((p) => p.labels.slice(1)))].sort()]);
  const masks = new Uint8Array(parts.reduce((n, p) => n + p.masks.length, 0));
  let offset = 0;
  for (const part of parts) {
    const remap = new Uint8Array(256).fill(MASK_IGNORE);
    part.labels.forEach((l, v) => { remap[v] = labels.indexOf(l); });
    for (let i = 0; i < part.masks.length; i++) masks[offset + i] = remap[part.masks[i]!]!;
    offset += part.masks.length;
  }
  return {
    images: stackImages(parts.map((p) => p.images)), masks, labels,
    ids: parts.flatMap((p) => p.ids), slides: parts.flatMap((p) => p.slides),
  };
}

/** The pixel map of each image of a chunk: the model's preprocessing, then the model; n·H·W probabilities. */
export async function predictPixels(model: tf.LayersModel, preprocess: AugmentPipelineInput, batch: { data: Uint8Array; n: number; height: number; width: number }): Promise<Float32Array> {
  const x = await augment(batch, checkPipeline(preprocess));
  const out = tf.tidy(() => model.predict(tf.tensor4d(x.data, [x.n, x.height, x.width, 3], 'float32')) as tf.Tensor);
  try {
    return (await out.data()) as Float32Array;
  } finally {
    out.dispose();
  }
}

export interface SegmentationScores {
  loss: number;
  /** Pixel accuracy at 0.5 over the valid pixels. */
  acc: number;
  /** Pixel ROC AUC (see the file comment). */
  auc: number;
  dice: number;
  iou: number;
}

/** Scores every tile of `source` (targets as labels) with the model (see the file comment). */
export async function evaluateSegmentation(model: tf.LayersModel, preprocess: AugmentPipelineInput, source: BatchSource): Promise<SegmentationScores> {
  const shape = outputShape(checkPipeline(preprocess), source.height, source.width);
  const pixels = shape.height * shape.width;
  if (pixels !== source.labelSize) {
    throw invalidRange('preprocess', `a pipeline that keeps the tiles' ${source.height}x${source.width} size (the masks are per pixel)`, preprocess);
  }
  const probs = new Float32Array(source.size * pixels), targets = new Float32Array(source.size * pixels);
  let lossSum = 0;
  for (let start = 0; start < source.size; start += 64) {
    const n = Math.min(64, source.size - start);
    const chunk = await source.read(Array.from({ length: n }, (_, k) => start + k));
    const p = await predictPixels(model, preprocess, chunk.batch);
    probs.set(p, start * pixels);
    targets.set(chunk.labels!, start * pixels);
    const loss = tf.tidy(() => diceBceLoss(
      tf.tensor4d(chunk.labels!, [n, shape.height, shape.width, 1]), tf.tensor4d(p, [n, shape.height, shape.width, 1])).dataSync()[0]!);
    lossSum += loss * n;
  }
  const { dice, iou } = segmentationScores(probs, targets, source.size, 0.5);
  let valid = 0, right = 0;
  for (let i = 0; i < probs.length; i++) {
    if (targets[i] === MASK_TARGET_IGNORE) continue;
    valid++;
    if ((probs[i]! >= 0.5 ? 1 : 0) === (targets[i]! >= 0.5 ? 1 : 0)) right++;
  }
  return { loss: lossSum / source.size, acc: valid ? right / valid : Number.NaN, auc: pixelAuc(probs, targets, valid), dice, iou };
}

/** ROC AUC over the valid pixels (binary truth at 0.5), on at most AUC_PIXELS of them at a fixed stride; NaN with one class only. */
function pixelAuc(probs: Float32Array, targets: Float32Array, valid: number): number {
  const stride = Math.max(1, Math.ceil(valid / AUC_PIXELS));
  const labels: number[] = [], scores: number[] = [];
  let k = 0;
  let pos = 0;
  for (let i = 0; i < probs.length; i++) {
    if (targets[i] === MASK_TARGET_IGNORE) continue;
    if (k++ % stride !== 0) continue;
    const y = targets[i]! >= 0.5 ? 1 : 0;
    pos += y;
    labels.push(y);
    scores.push(probs[i]!);
  }
  if (pos === 0 || pos === labels.length) return Number.NaN;
  return rocAuc(labels, scores);
}
