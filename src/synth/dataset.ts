/**
 * synthPatches: a synthetic PatchCamelyon-like dataset in the Kaggle
 * "Histopathologic Cancer Detection" layout,
 *
 *   DIR/train/<id>.tif        96x96 RGB TIFF (LZW: lossless, so pixels are the generator's)
 *   DIR/train_labels.csv      id,label
 *   DIR/test/<id>.tif         with `test` > 0
 *   DIR/sample_submission.csv id,label (label 0, as Kaggle's)
 *   DIR/test_labels.csv       the test set's true labels (Kaggle keeps these; we can score with them)
 *   DIR/synth.json            the settings, counts and per-scene tallies
 *
 * Train patch i is synthPatch(seed, i), test patch j is synthPatch(seed, n + j);
 * an id is the SHA-1 of "histoflow-synth:<seed>:<index>" (40 hex digits, like
 * Kaggle's). Patches render on worker threads (bounded queue) and encode
 * through sharp; every file is written atomically (temporary + rename), the
 * CSVs last, so an interrupted run leaves no CSV that names a missing image.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

import sharp from 'sharp';

import { checkInteger, checkKnownKeys, checkObject, invalidType } from '../errors.js';
import { writeFileAtomic } from '../image.js';
import { checkSynthOptions, synthPatch, type SynthPatchOptions } from './patches.js';
import type { SynthDone, SynthJob } from './worker.js';

export interface SynthDatasetOptions extends Omit<SynthPatchOptions, 'tumourMask'> {
  /** Training patches (≥ 1). */
  n: number;
  /** Test patches (default 0). */
  test?: number;
  seed?: number;
  /** Worker threads (default: available cores, at most 8; 0 renders on this thread). */
  workers?: number;
  /** Called after each written patch with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface SynthDatasetResult {
  dir: string;
  train: number;
  test: number;
  positives: { train: number; test: number };
  seed: number;
  size: number;
  workers: number;
}

/** Kaggle-like id of patch `index` of the dataset keyed by `seed`. */
export function synthId(seed: number, index: number): string {
  return createHash('sha1').update(`histoflow-synth:${seed}:${index}`).digest('hex');
}

/** Encodes one RGB patch as an LZW TIFF. */
export async function encodeTiff(pixels: Uint8Array, size: number): Promise<Uint8Array> {
  const buf = await sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.length), { raw: { width: size, height: size, channels: 3 } })
    .tiff({ compression: 'lzw' })
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

const BATCH = 16;

/** Renders indices [0, total) in batches, on workers or in-process, calling `sink` per batch as it arrives. */
async function renderAll(
  job: Omit<SynthJob, 'indices'>,
  total: number,
  workers: number,
  sink: (done: SynthDone) => Promise<void>,
): Promise<void> {
  const batches: number[][] = [];
  for (let i = 0; i < total; i += BATCH) batches.push(Array.from({ length: Math.min(BATCH, total - i) }, (_, k) => i + k));
  if (workers === 0) {
    for (const indices of batches) {
      const done: SynthDone = { indices, labels: [], pixels: [] };
      for (const i of indices) {
        const p = synthPatch(job.seed, i, { size: job.size, positive: job.positive });
        done.labels.push(p.label);
        done.pixels.push(p.image.data);
      }
      await sink(done);
    }
    return;
  }
  const url = new URL('./worker.js', import.meta.url);
  const pool = Array.from({ length: Math.min(workers, batches.length) }, () => new Worker(url));
  let next = 0;
  try {
    await Promise.all(pool.map((w) => new Promise<void>((resolve, reject) => {
      let writing = Promise.resolve();
      const give = (): void => {
        if (next >= batches.length) {
          writing.then(resolve, reject);
          return;
        }
        w.postMessage({ ...job, indices: batches[next++]! } satisfies SynthJob);
      };
      w.on('message', (done: SynthDone) => {
        // Encode and write this batch while the worker renders the next one.
        writing = writing.then(() => sink(done));
        writing.catch(reject);
        give();
      });
      w.on('error', reject);
      w.on('exit', (code) => {
        if (code !== 0) reject(new Error(`synth worker exited with code ${code}`));
      });
      give();
    })));
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
}

/** Writes a synthetic dataset in the Kaggle layout to `dir` (see the file comment). */
export async function synthPatches(dir: string, options: SynthDatasetOptions): Promise<SynthDatasetResult> {
  if (typeof dir !== 'string' || dir.length === 0) throw invalidType('dir', 'a directory path', dir);
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['n', 'test', 'seed', 'size', 'positive', 'workers', 'onProgress']);
  const n = checkInteger('options.n', o.n, 1, 10_000_000);
  const test = o.test === undefined ? 0 : checkInteger('options.test', o.test, 0, 10_000_000);
  const seed = o.seed === undefined ? 0 : checkInteger('options.seed', o.seed, 0, Number.MAX_SAFE_INTEGER);
  const workers = o.workers === undefined ? Math.min(8, availableParallelism()) : checkInteger('options.workers', o.workers, 0, 64);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalidType('options.onProgress', 'a function', o.onProgress);
  const onProgress = o.onProgress as SynthDatasetOptions['onProgress'];
  const { size, positive } = checkSynthOptions({ size: o.size as number | undefined, positive: o.positive as number | undefined });

  const total = n + test;
  const labels = new Uint8Array(total);
  let written = 0;
  await renderAll({ seed, size, positive }, total, workers, async (done) => {
    await Promise.all(done.indices.map(async (index, k) => {
      labels[index] = done.labels[k]!;
      const folder = index < n ? 'train' : 'test';
      await writeFileAtomic(join(dir, folder, `${synthId(seed, index)}.tif`), await encodeTiff(done.pixels[k]!, size));
    }));
    written += done.indices.length;
    onProgress?.(written, total);
  });

  const csv = (from: number, to: number, label: (i: number) => number): string => {
    const rows = ['id,label'];
    for (let i = from; i < to; i++) rows.push(`${synthId(seed, i)},${label(i)}`);
    return `${rows.join('\n')}\n`;
  };
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  const count = (from: number, to: number): number => labels.subarray(from, to).reduce((s, v) => s + v, 0);
  const result: SynthDatasetResult = { dir, train: n, test, positives: { train: count(0, n), test: count(n, total) }, seed, size, workers };
  if (test > 0) {
    await writeFileAtomic(join(dir, 'test_labels.csv'), enc(csv(n, total, (i) => labels[i]!)));
    await writeFileAtomic(join(dir, 'sample_submission.csv'), enc(csv(n, total, () => 0)));
  }
  await writeFileAtomic(join(dir, 'synth.json'), enc(`${JSON.stringify({ generator: 'histoflow synth patches', positive, ...result }, null, 2)}\n`));
  await writeFileAtomic(join(dir, 'train_labels.csv'), enc(csv(0, n, (i) => labels[i]!)));
  return result;
}
