/**
 * Shared fixtures of the predict and evaluate tests: a tiny synthetic Kaggle
 * folder, a saved untrained model in a run folder, the CLI runner, and the
 * independent scoring path (sharp decode + createPredictor on TF.js cpu).
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';

import type { Tta } from '../../src/augment/params.js';
import { loadModel, saveModel } from '../../src/models/io.js';
import { createPredictor } from '../../src/models/predict.js';
import { baselineCnn } from '../../src/models/baseline_cnn.js';
import { synthPatches } from '../../src/synth/dataset.js';
import type { RgbBatch } from '../../src/kernels/types.js';

export const SIZE = 48;

export { histoflow, pairwiseAuc } from './helpers.js';

/** The last line of stdout as JSON. */
export function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

export interface Workspace {
  root: string;
  /** Kaggle layout: 8 train, `test` test patches of SIZE², test_labels.csv. */
  data: string;
  /** A run folder holding best/ (an untrained baseline CNN, SIZE² input). */
  run: string;
}

export async function workspace(test = 20, seed = 5): Promise<Workspace> {
  const root = await mkdtemp(join(tmpdir(), 'hf-infer-'));
  const data = join(root, 'data'), run = join(root, 'runs', 'tiny');
  await synthPatches(data, { n: 8, test, seed, size: SIZE, workers: 0 });
  await tf.setBackend('cpu');
  const model = baselineCnn({ inputSize: SIZE, filters: [4, 4, 4], seed: 7 });
  await saveModel(model, join(run, 'best'), { card: { inputSize: SIZE, architecture: 'baseline', preprocess: {} } });
  model.dispose();
  return { root, data, run };
}

/** Rows of a CSV with a header, as objects of strings. */
export async function readCsv(path: string): Promise<Array<Record<string, string>>> {
  const [head, ...rows] = (await readFile(path, 'utf8')).trim().split('\n');
  const keys = head!.split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [keys[i]!, v])));
}

/** Decodes files with sharp directly (not histoflow's readImage) into one batch. */
export async function decodeWithSharp(paths: string[]): Promise<RgbBatch> {
  const data = new Uint8Array(paths.length * SIZE * SIZE * 3);
  for (const [k, p] of paths.entries()) {
    const { data: px, info } = await sharp(p).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    if (info.width !== SIZE || info.height !== SIZE || info.channels !== 3) throw new Error(`${p}: ${info.width}x${info.height}x${info.channels}`);
    data.set(px, k * SIZE * SIZE * 3);
  }
  return { data, n: paths.length, height: SIZE, width: SIZE };
}

/** createPredictor's probabilities for these images on TF.js cpu: the independent path. */
export async function referenceScores(run: string, batch: RgbBatch, tta: Tta): Promise<Float32Array> {
  await tf.setBackend('cpu');
  const { model, card } = await loadModel(join(run, 'best'));
  try {
    return await createPredictor(model, card, { batchSize: 16 }).predict(batch, { tta });
  } finally {
    model.dispose();
  }
}

