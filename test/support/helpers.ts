/** Data loading and image comparison for the ava tests. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import sharp from 'sharp';

import { dataPath } from '../../src/data/folder.js';
import type { RgbBatch } from '../../src/kernels/types.js';

/** The package root, from dist/test/support/helpers.js. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The compiled tree these tests run from (dist/, or another --outDir). */
export const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The compiled CLI (dist/src/cli/main.js). */
export const CLI = join(DIST, 'src', 'cli', 'main.js');

const exec = promisify(execFile);

/** Runs `histoflow ARGS…` in a child process: its exit code and output (never throws on a non-zero exit). */
export async function histoflow(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [CLI, ...args], { maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** In CI (CI=true) a missing prerequisite that .ci/run installs fails its test instead of skipping it. */
export const IN_CI = process.env.CI === 'true';

/** A real data file from the data folder (src/data/folder.ts: $HISTOFLOW_DATA, ../shared/data, the fetch cache). */
export { dataPath as dataFile };

/** A data file as an RGB batch of one (alpha dropped). */
export async function rgbFixture(name: string): Promise<RgbBatch> {
  const { data, info } = await sharp(dataPath(name)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`${name}: ${info.channels} channels`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), n: 1, height: info.height, width: info.width };
}

/** A single-channel data file (first channel if it has several). */
export async function greyFixture(name: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(dataPath(name)).raw().toBuffer({ resolveWithObject: true });
  const out = new Uint8Array(info.width * info.height);
  for (let i = 0; i < out.length; i++) out[i] = data[i * info.channels]!;
  return { data: out, width: info.width, height: info.height };
}

export interface Diff {
  mean: number;
  max: number;
}

export function diff(a: ArrayLike<number>, b: ArrayLike<number>): Diff {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let sum = 0, max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

/** A deterministic synthetic H&E-like batch: two stains, noise, some background. */
export function syntheticHE(n: number, height: number, width: number, seed = 1): RgbBatch {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const H = [0.65, 0.7, 0.29], E = [0.07, 0.99, 0.11];
  const data = new Uint8Array(n * height * width * 3);
  for (let p = 0; p < n * height * width; p++) {
    const background = rand() < 0.2;
    const ch = background ? 0 : rand() * 1.5, ce = background ? 0 : rand() * 1.0;
    for (let k = 0; k < 3; k++) {
      const od = ch * H[k]! + ce * E[k]! + rand() * 0.03;
      data[p * 3 + k] = Math.max(0, Math.min(255, Math.round(240 * Math.exp(-od))));
    }
  }
  return { data, n, height, width };
}

/** A 2-D numpy .npy array of bool or uint8 (format 1.0/2.0, C order), as bytes. */
export function readNpy2d(path: string): { data: Uint8Array; height: number; width: number } {
  const b = readFileSync(path);
  if (b.subarray(0, 6).toString('latin1') !== '\x93NUMPY') throw new Error(`${path}: not a .npy file`);
  const major = b[6]!;
  const headerLength = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.subarray(start, start + headerLength).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shape = /'shape':\s*\((\d+),\s*(\d+)\)/.exec(header);
  if ((descr !== '|b1' && descr !== '|u1') || !shape || /'fortran_order':\s*True/.test(header)) {
    throw new Error(`${path}: expected a 2-D C-order bool/uint8 array, header ${header}`);
  }
  const height = Number(shape[1]), width = Number(shape[2]);
  const data = new Uint8Array(b.subarray(start + headerLength, start + headerLength + height * width));
  return { data, height, width };
}

/** Intersection over union of two masks (non-zero = set). */
export function maskIoU(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let inter = 0, union = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] !== 0, y = b[i] !== 0;
    if (x && y) inter++;
    if (x || y) union++;
  }
  return union === 0 ? 1 : inter / union;
}

/** An image resized by sharp to exactly width × height (lanczos3), RGB. */
export async function resizedFixture(name: string, width: number, height: number): Promise<RgbBatch> {
  const { data, info } = await sharp(dataPath(name), { limitInputPixels: false })
    .removeAlpha()
    .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), n: 1, height: info.height, width: info.width };
}

/** A seeded uniform generator in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** numpy.rot90 (counter-clockwise) on one h x w x 3 image, written independently of the kernels: out is w x h. */
export function rot90(img: Float32Array, h: number, w: number): Float32Array {
  const out = new Float32Array(img.length);
  // out[i][j] = img[j][w − 1 − i]
  for (let i = 0; i < w; i++) for (let j = 0; j < h; j++) for (let c = 0; c < 3; c++) out[(i * h + j) * 3 + c] = img[(j * w + (w - 1 - i)) * 3 + c]!;
  return out;
}

/** numpy.fliplr on one h x w x 3 image. */
export function fliplr(img: Float32Array, h: number, w: number): Float32Array {
  const out = new Float32Array(img.length);
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) for (let c = 0; c < 3; c++) out[(i * w + j) * 3 + c] = img[(i * w + (w - 1 - j)) * 3 + c]!;
  return out;
}

/** AUC by its definition: over every (positive, negative) pair, 1 if the positive scores higher, ½ for a tie. */
export function pairwiseAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  let wins = 0, pairs = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < labels.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      wins += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
  }
  return wins / pairs;
}
