/**
 * inspectDataset: know your data before training on it.
 *
 * For every patch of a packed file or any `pack` source (Kaggle, PCam,
 * tile folder): the class balance, per-channel mean and standard deviation
 * (over all pixels, 0..255), and flags
 *   blank       grey-level standard deviation < 2 (a uniform patch)
 *   background  ≥ 90% of pixels glass-like (grey ≥ 220 and max−min ≤ 20)
 *   blurry      variance of the 4-neighbour Laplacian of grey < `blurThreshold`
 *               (Pech-Pacheco et al. 2000), for patches that are not background
 *   pen         ≥ `penFraction` of pixels match deephistopath's pen-ink rules
 *               (src/tissue/js_tissue.ts, the tissue detector's)
 *   duplicate   same pixels as an earlier patch (SHA-1); every group is listed
 * and, from findings.ts (each rule stated there): near-duplicates (pHash under
 * the 8 rotations/flips), over-saturated patches, colour outliers (mean
 * optical density), and per class a Macenko stain fit (H and E vectors, 99th
 * percentile concentrations) on up to STAIN_SAMPLE patches that are not
 * background. With `gridDir`, a PNG grid of up to `gridSize`² patches per
 * class; with `reportDir`, report.html and a contact sheet per finding.
 * Grey is Rec. 601 luma (0.299 R + 0.587 G + 0.114 B).
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, invalidType } from '../errors.js';
import { checkOutputPath } from '../output.js';
import { fitStainTarget } from '../stain/normalize.js';
import { writeImage } from '../image.js';
import type { RgbBatch } from '../kernels/types.js';
import { isPenInk } from '../tissue/js_tissue.js';
import {
  COLOUR_OUTLIER_D2, NEAR_DUPLICATE_BITS, SATURATED_FRACTION, d4Hashes, mahalanobis2, meanOd, nearDuplicatePairs, saturatedFraction, type Hash64,
} from './findings.js';
import { writeInspectReport } from './inspect_report.js';
import { mapLimit, openPatchSource, type PatchSource } from './pack.js';
import { PackedDataset } from './packed.js';
import { PACKED_MAGIC } from './packed_format.js';

export interface InspectOptions {
  split?: 'train' | 'test' | 'valid';
  /** Near-duplicates: at most this many of the 64 pHash bits differ (default NEAR_DUPLICATE_BITS). */
  nearBits?: number;
  /** Write report.html and a contact sheet per finding here (a new or empty folder). */
  reportDir?: string;
  blurThreshold?: number;
  penFraction?: number;
  /** Write grid_label<L>.png (and grid_unlabelled.png) here. */
  gridDir?: string;
  /** Patches per grid side (default 8). */
  gridSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface PatchFlags {
  blank: boolean;
  background: boolean;
  blurry: boolean;
  pen: boolean;
  /** Grey standard deviation, background fraction, Laplacian variance, pen fraction. */
  greyStd: number;
  backgroundFraction: number;
  laplacianVariance: number;
  penFraction: number;
}

export interface InspectResult {
  source: string;
  count: number;
  height: number;
  width: number;
  /** Patches per label ('unlabelled' for none). */
  classes: Record<string, number>;
  mean: [number, number, number];
  std: [number, number, number];
  /** Counts and the names of (up to 100) flagged patches. */
  blank: { count: number; names: string[] };
  background: { count: number; names: string[] };
  blurry: { count: number; names: string[] };
  pen: { count: number; names: string[] };
  duplicates: { count: number; pairs: Array<[string, string]>; groups: string[][] };
  /** Pairs of patches whose pHash differs in at most `bits` bits (under a rotation/flip), exact duplicates left out. */
  nearDuplicates: { bits: number; count: number; pairs: Array<[string, string, number]> };
  overSaturated: { count: number; names: string[] };
  colourOutliers: { count: number; names: string[] };
  /** Per class: the Macenko fit of a sample of its patches, or why it failed. */
  stains: Record<string, { patches: number; he: number[]; maxC: number[] } | { patches: number; error: string }>;
  unreadable: { count: number; names: string[] };
  grids: string[];
  /** report.html, when reportDir was given. */
  report?: string;
}

/** Patches per class that the stain fit pools (the first that are not background, in the data's order). */
export const STAIN_SAMPLE = 256;

const LIST_MAX = 100;

/** The flags of one RGB patch (see the file comment). */
export function patchFlags(img: RgbBatch, blurThreshold = 30, penFraction = 0.25): PatchFlags {
  const { height: h, width: w, data } = img;
  const n = h * w;
  const grey = new Float64Array(n);
  let sum = 0, sum2 = 0, bg = 0, pen = 0;
  for (let i = 0; i < n; i++) {
    const r = data[3 * i]!, g = data[3 * i + 1]!, b = data[3 * i + 2]!;
    const y = 0.299 * r + 0.587 * g + 0.114 * b;
    grey[i] = y;
    sum += y;
    sum2 += y * y;
    if (y >= 220 && Math.max(r, g, b) - Math.min(r, g, b) <= 20) bg++;
    if (isPenInk(r, g, b)) pen++;
  }
  const mean = sum / n;
  const greyStd = Math.sqrt(Math.max(0, sum2 / n - mean * mean));
  let ls = 0, ls2 = 0, m = 0;
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const i = y * w + x;
      const lap = grey[i - 1]! + grey[i + 1]! + grey[i - w]! + grey[i + w]! - 4 * grey[i]!;
      ls += lap;
      ls2 += lap * lap;
      m++;
    }
  }
  const laplacianVariance = m > 0 ? ls2 / m - (ls / m) ** 2 : 0;
  const backgroundFraction = bg / n;
  const background = backgroundFraction >= 0.9;
  return {
    blank: greyStd < 2, background, blurry: !background && laplacianVariance < blurThreshold, pen: pen / n >= penFraction,
    greyStd, backgroundFraction, laplacianVariance, penFraction: pen / n,
  };
}

/** Whether a path is a file that starts with the packed format's magic. */
export async function isPackedFile(path: string): Promise<boolean> {
  if (!(await stat(path).then((s) => s.isFile(), () => false))) return false;
  const fh = await open(path, 'r');
  try {
    const head = new Uint8Array(8);
    await fh.read(head, 0, 8, 0);
    return PACKED_MAGIC.every((b, i) => head[i] === b);
  } finally {
    await fh.close();
  }
}

/** A packed file as a patch source (views of the mapping, no decode). */
async function packedSource(path: string): Promise<PatchSource & { dataset: PackedDataset }> {
  const ds = await PackedDataset.open(path);
  return {
    kind: 'tiles', split: 'all', total: ds.count, skipped: [], dataset: ds,
    items: (from, to) => Array.from({ length: to - from }, (_, k) => {
      const rec = ds.record(from + k);
      const name = rec.id ?? (rec.slide !== undefined ? `${rec.slide}@${rec.x},${rec.y}` : `#${from + k}`);
      return { meta: {}, label: rec.label, name, load: async () => ds.batch(from + k, 1) };
    }),
    close: () => ds.close(),
  };
}

export async function inspectDataset(src: string, options: InspectOptions = {}): Promise<InspectResult> {
  if (typeof src !== 'string' || src.length === 0) throw invalidType('src', 'a dataset path', src);
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['split', 'blurThreshold', 'penFraction', 'gridDir', 'gridSize', 'nearBits', 'reportDir', 'onProgress']);
  const split = o.split === undefined ? 'train' : checkOneOf('options.split', o.split, ['train', 'test', 'valid'] as const);
  const blurThreshold = o.blurThreshold === undefined ? 30 : checkNumber('options.blurThreshold', o.blurThreshold, 0);
  const penFraction = o.penFraction === undefined ? 0.25 : checkNumber('options.penFraction', o.penFraction, 0, 1);
  const gridSize = o.gridSize === undefined ? 8 : checkInteger('options.gridSize', o.gridSize, 1, 64);
  if (o.gridDir !== undefined && (typeof o.gridDir !== 'string' || o.gridDir.length === 0)) throw invalidType('options.gridDir', 'a directory path', o.gridDir);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalidType('options.onProgress', 'a function', o.onProgress);
  const nearBits = o.nearBits === undefined ? NEAR_DUPLICATE_BITS : checkInteger('options.nearBits', o.nearBits, 0, 16);
  if (o.reportDir !== undefined && (typeof o.reportDir !== 'string' || o.reportDir.length === 0)) throw invalidType('options.reportDir', 'a directory path', o.reportDir);
  const reportDir = o.reportDir as string | undefined;
  if (reportDir) await checkOutputPath('options.reportDir', reportDir, 'folder');
  const gridDir = o.gridDir as string | undefined;
  const onProgress = o.onProgress as InspectOptions['onProgress'];

  const source = (await isPackedFile(src)) ? await packedSource(src) : await openPatchSource(src, split);
  const flagged = { blank: [] as string[], background: [] as string[], blurry: [] as string[], pen: [] as string[], unreadable: [] as string[] };
  const counts = { blank: 0, background: 0, blurry: 0, pen: 0, unreadable: 0, duplicates: 0 };
  const pairs: Array<[string, string]> = [];
  const classes: Record<string, number> = {};
  const seen = new Map<string, string>();
  const groupsByHash = new Map<string, string[]>();
  const records: PatchRecord[] = [];
  const stainSamples = new Map<string, RgbBatch[]>();
  const sums = [0, 0, 0], sq = [0, 0, 0];
  let pixels = 0, height = 0, width = 0, count = 0;
  const gridTiles = new Map<string, RgbBatch[]>();
  const note = (kind: keyof typeof flagged, name: string): void => {
    counts[kind]++;
    if (flagged[kind].length < LIST_MAX) flagged[kind].push(name);
  };
  try {
    const window = 256;
    for (let from = 0; from < source.total; from += window) {
      const items = source.items(from, Math.min(source.total, from + window));
      const imgs = await mapLimit(items, Math.min(16, 2 * availableParallelism()), (it) => it.load().catch((e: unknown) => e as Error));
      for (const [k, it] of items.entries()) {
        const img = imgs[k]!;
        if (img instanceof Error) {
          note('unreadable', it.name);
          continue;
        }
        count++;
        if (height === 0) ({ height, width } = img);
        const cls = it.label === null ? 'unlabelled' : String(it.label);
        classes[cls] = (classes[cls] ?? 0) + 1;
        const d = img.data;
        for (let i = 0; i < d.length; i += 3) {
          for (let c = 0; c < 3; c++) {
            sums[c]! += d[i + c]!;
            sq[c]! += d[i + c]! * d[i + c]!;
          }
        }
        pixels += d.length / 3;
        const f = patchFlags(img, blurThreshold, penFraction);
        for (const kind of ['blank', 'background', 'blurry', 'pen'] as const) if (f[kind]) note(kind, it.name);
        const hash = createHash('sha1').update(d).digest('hex');
        const id = it.meta.id ?? it.name;
        const first = seen.get(hash);
        if (first !== undefined) {
          counts.duplicates++;
          if (pairs.length < LIST_MAX) pairs.push([first, it.name]);
          groupsByHash.get(hash)!.push(id);
        } else {
          seen.set(hash, it.name);
          groupsByHash.set(hash, [id]);
        }
        records.push({ name: it.name, sha1: hash, hashes: d4Hashes(d, img.height, img.width),
          saturated: saturatedFraction(d), od: meanOd(d), background: f.background, blank: f.blank });
        const sample = stainSamples.get(cls) ?? stainSamples.set(cls, []).get(cls)!;
        if (!f.background && sample.length < STAIN_SAMPLE && img.height === height && img.width === width) sample.push({ ...img, data: d.slice() });
        const tiles = gridTiles.get(cls) ?? gridTiles.set(cls, []).get(cls)!;
        if (gridDir && tiles.length < gridSize * gridSize && img.height === height && img.width === width) tiles.push({ ...img, data: d.slice() });
      }
      onProgress?.(Math.min(source.total, from + window), source.total);
    }
  } finally {
    source.close();
  }
  if (count === 0) throw new Error(`${src}: no readable patch to inspect`);
  const grids: string[] = [];
  if (gridDir) {
    for (const [cls, tiles] of [...gridTiles].sort()) {
      const path = join(gridDir, cls === 'unlabelled' ? 'grid_unlabelled.png' : `grid_label${cls}.png`);
      await writeImage(path, montage(tiles, gridSize));
      grids.push(path);
    }
  }
  const mean = sums.map((s) => s / pixels) as [number, number, number];
  const std = sq.map((s, c) => Math.sqrt(Math.max(0, s / pixels - mean[c]! ** 2))) as [number, number, number];
  // Blank and background patches hash alike whatever they hold: they are reported as such, not as near-duplicates.
  const content = records.filter((r) => !r.background && !r.blank);
  const near = nearDuplicatePairs(content.map((r) => r.hashes), nearBits)
    .filter(([i, j]) => content[i]!.sha1 !== content[j]!.sha1)
    .map(([i, j, bits]): [PatchRecord, PatchRecord, number] => [content[i]!, content[j]!, bits]);
  const saturated = records.filter((r) => r.saturated >= SATURATED_FRACTION);
  const d2 = mahalanobis2(records.map((r) => r.od), (i) => !records[i]!.background);
  const outliers = records.map((_, i) => i).filter((i) => d2[i]! > COLOUR_OUTLIER_D2).sort((a, b) => d2[b]! - d2[a]!).map((i) => records[i]!);
  const result: InspectResult = {
    source: src, count, height, width, classes, mean, std,
    blank: { count: counts.blank, names: flagged.blank },
    background: { count: counts.background, names: flagged.background },
    blurry: { count: counts.blurry, names: flagged.blurry },
    pen: { count: counts.pen, names: flagged.pen },
    duplicates: { count: counts.duplicates, pairs, groups: [...groupsByHash.values()].filter((g) => g.length > 1) },
    nearDuplicates: {
      bits: nearBits, count: near.length,
      pairs: near.slice(0, LIST_MAX).map(([a, b, bits]) => [a.name, b.name, bits]),
    },
    overSaturated: { count: saturated.length, names: saturated.slice(0, LIST_MAX).map((r) => r.name) },
    colourOutliers: { count: outliers.length, names: outliers.slice(0, LIST_MAX).map((r) => r.name) },
    stains: await classStains(stainSamples),
    unreadable: { count: counts.unreadable, names: flagged.unreadable },
    grids,
  };
  if (reportDir) result.report = await writeInspectReport(reportDir, result, () => reopen(src, split));
  return result;
}

/** What inspect keeps of each readable patch for the findings made after the pass. */
interface PatchRecord {
  name: string;
  sha1: string;
  hashes: Hash64[];
  saturated: number;
  od: [number, number, number];
  background: boolean;
  blank: boolean;
}

async function reopen(src: string, split: 'train' | 'test' | 'valid'): Promise<PatchSource> {
  return (await isPackedFile(src)) ? packedSource(src) : openPatchSource(src, split);
}

/** A Macenko fit per class on its sampled patches (pooled pixels). */
async function classStains(samples: Map<string, RgbBatch[]>): Promise<InspectResult['stains']> {
  const out: InspectResult['stains'] = {};
  for (const [cls, list] of [...samples].sort()) {
    if (list.length === 0) {
      out[cls] = { patches: 0, error: 'no patch that is not background' };
      continue;
    }
    try {
      const t = await fitStainTarget(list, { method: 'macenko' });
      if (t.method === 'reinhard') throw new Error('unexpected target kind');
      out[cls] = { patches: list.length, he: t.he, maxC: t.maxC };
    } catch (e) {
      out[cls] = { patches: list.length, error: e instanceof Error ? e.message : String(e) };
    }
  }
  return out;
}

/** Tiles in rows of `cols`, 2-px white gutters. */
export function montage(tiles: RgbBatch[], cols: number): RgbBatch {
  const { height: th, width: tw } = tiles[0]!;
  const c = Math.min(cols, tiles.length), rows = Math.ceil(tiles.length / c), g = 2;
  const width = c * tw + (c - 1) * g, height = rows * th + (rows - 1) * g;
  const data = new Uint8Array(width * height * 3).fill(255);
  tiles.forEach((t, k) => {
    const y0 = Math.floor(k / c) * (th + g), x0 = (k % c) * (tw + g);
    for (let y = 0; y < th; y++) data.set(t.data.subarray(y * tw * 3, (y + 1) * tw * 3), ((y0 + y) * width + x0) * 3);
  });
  return { data, n: 1, height, width };
}
