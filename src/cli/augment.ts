/**
 * `histoflow augment IMG --pipeline P.json --grid RxC [--seed S] [--backend B] --out grid.png [--json]`
 * Runs an augmentation pipeline on rows×cols copies of one image (dataset
 * indices 0..n−1, so every tile gets its own draw) and writes one PNG grid of
 * the results, un-normalized for display (v·std + mean, ×255, clamped), with a
 * 2-px white gutter between tiles. Augmentation is judged by looking.
 * With --json, prints the drawn parameters of every tile.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

import { checkNotInput, checkOutputPath } from '../output.js';
import { augment } from '../augment/augment.js';
import { checkPipeline, outputShape, type AugmentPipeline } from '../augment/pipeline.js';
import { checkInteger } from '../errors.js';
import { readImage, readImageHeader, writeImage, type ImageHeader } from '../image.js';
import { checkMemory, formatBytes, memoryLimit, type MemoryLimit } from '../memory_budget.js';
import { KERNEL_BACKENDS } from '../kernels/registry.js';
import type { RgbBatch } from '../kernels/types.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';
import { status } from './progress.js';

/** White space between tiles, in pixels. */
export const GRID_GUTTER = 2;
/** The largest rows or cols accepted. */
const MAX_GRID = 64;

export const AUGMENT_FLAGS = defineFlags({
  pipeline: {
    type: 'string', value: 'P.json',
    help: 'the pipeline, a JSON object, e.g.\n'
      + '{"d4": true, "hed": {"sigma": 0.05}, "hsv": {"brightness": 0.1, "hue": 0.02},\n'
      + ' "blur": {"sigma": [0.1, 1.5], "p": 0.5}, "normalize": "imagenet"}\n'
      + '(ops: d4, crop, resize, elastic, hed, hsv, blur, noise, normalize)',
  },
  grid: { type: 'string', value: 'RxC', default: '4x4', help: `rows x cols of tiles, each at most ${MAX_GRID} (default {default})` },
  seed: { type: 'int', value: 'S', min: 0, default: 0, help: 'generator seed, an integer ≥ 0 (default {default})' },
  backend: { type: 'choice', value: 'B', choices: KERNEL_BACKENDS, default: 'auto', help: '{choices} (default {default}; gpujs has no augment kernel yet)' },
  out: { type: 'string', value: 'FILE.png', help: 'the grid image (written atomically)' },
  json: { type: 'boolean', help: 'print the canonical pipeline and the drawn parameters per tile as JSON' },
  'max-memory': { type: 'string', value: 'SIZE', help: 'refuse a run that needs more memory (e.g. 512M, 8G; default $HISTOFLOW_MAX_MEMORY, else 2G)' },
});

export const AUGMENT_HELP = `Usage: histoflow augment IMG --pipeline P.json --out grid.png [options]

Run an augmentation pipeline on rows×cols copies of IMG (image indices 0..n−1,
so each tile gets its own draw) and write the outputs as one PNG grid, each
tile un-normalized for display (v·std + mean, ×255, clamped), with a
${GRID_GUTTER}-px white gutter between tiles: the grid is
cols·tile + (cols−1)·${GRID_GUTTER} wide and rows·tile + (rows−1)·${GRID_GUTTER} high.

${optionsHelp(AUGMENT_FLAGS)}`;

/** '4x4' → [4, 4]; a bad value is an error naming --grid. */
export function parseGrid(value: string): [number, number] {
  const m = /^\s*(\d+)\s*[x×]\s*(\d+)\s*$/i.exec(value);
  if (!m) throw new RangeError(`Expected --grid as ROWSxCOLS (e.g. 4x4) but received '${value}'`);
  return [checkInteger('--grid rows', Number(m[1]), 1, MAX_GRID), checkInteger('--grid cols', Number(m[2]), 1, MAX_GRID)];
}

/** Reads and validates a pipeline file; errors name the file and the field. */
export async function readPipeline(path: string): Promise<AugmentPipeline> {
  if (!existsSync(path) || !statSync(path).isFile()) throw new RangeError(`Expected a pipeline JSON file for --pipeline but ${path} does not exist`);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new SyntaxError(`--pipeline ${path} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return checkPipeline(raw);
  } catch (e) {
    if (e instanceof Error) e.message = `--pipeline ${path}: ${e.message}`;
    throw e;
  }
}

/**
 * What a grid run holds at once, from the image's header and the pipeline:
 * the decoded image, its rows·cols copies (and their stain-normalized copy),
 * the float32 outputs and the grid image. Refused over the limit, before decoding.
 */
export function checkAugmentMemory(header: ImageHeader, pipeline: AugmentPipeline, rows: number, cols: number, limit: MemoryLimit): void {
  const shape = outputShape(pipeline, header.height, header.width);
  const n = rows * cols;
  const inputBytes = header.width * header.height * 3;
  const copies = n * inputBytes * (pipeline.stain ? 2 : 1);
  const outputs = n * shape.height * shape.width * 3 * 4;
  const grid = (cols * shape.width + (cols - 1) * GRID_GUTTER) * (rows * shape.height + (rows - 1) * GRID_GUTTER) * 3;
  checkMemory(
    `augment --grid ${rows}x${cols} on a ${header.width}x${header.height} image (${n} input copies ${formatBytes(copies)}, ` +
      `${n} float32 tiles of ${shape.width}x${shape.height} ${formatBytes(outputs)}, grid ${formatBytes(grid)})`,
    inputBytes + copies + outputs + grid,
    limit,
  );
}

/** n copies of one image, as a batch. */
function copies(image: RgbBatch, n: number): RgbBatch {
  const size = image.height * image.width * 3;
  const data = new Uint8Array(n * size);
  const one = image.data.subarray(0, size);
  for (let i = 0; i < n; i++) data.set(one, i * size);
  return { data, n, height: image.height, width: image.width };
}

/**
 * The augmented tiles (NHWC float32, normalized) as one uint8 RGB grid image,
 * tile i at row ⌊i / cols⌋, column i mod cols; gutters white.
 */
export function tileGrid(
  data: Float32Array,
  tileH: number,
  tileW: number,
  rows: number,
  cols: number,
  mean: readonly number[],
  std: readonly number[],
  gutter = GRID_GUTTER,
): RgbBatch {
  const width = cols * tileW + (cols - 1) * gutter;
  const height = rows * tileH + (rows - 1) * gutter;
  const out = new Uint8Array(width * height * 3).fill(255);
  for (let t = 0; t < rows * cols; t++) {
    const y0 = Math.floor(t / cols) * (tileH + gutter);
    const x0 = (t % cols) * (tileW + gutter);
    const base = t * tileH * tileW * 3;
    for (let y = 0; y < tileH; y++) {
      let o = ((y0 + y) * width + x0) * 3;
      let s = base + y * tileW * 3;
      for (let x = 0; x < tileW; x++) {
        for (let c = 0; c < 3; c++) {
          const v = (data[s++]! * std[c]! + mean[c]!) * 255;
          out[o++] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
        }
      }
    }
  }
  return { data: out, n: 1, height, width };
}

export async function augmentCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseFlags('augment', AUGMENT_FLAGS, argv, { positionals: true });
  if (help) {
    process.stdout.write(AUGMENT_HELP);
    return 0;
  }
  // Everything is checked before any work, so a bad option writes nothing.
  if (positionals.length !== 1) {
    throw new RangeError(`Expected one input image (histoflow augment IMG --pipeline P.json --out grid.png) but received ${positionals.length}`);
  }
  const input = positionals[0]!;
  if (!existsSync(input) || !statSync(input).isFile()) throw new RangeError(`Expected an image file but ${input} does not exist`);
  if (!values.pipeline) throw new RangeError('Expected --pipeline P.json');
  if (!values.out) throw new RangeError('Expected --out FILE.png');
  await checkOutputPath('--out', values.out, 'file');
  await checkNotInput('--out', values.out, [input, values.pipeline]);
  const [rows, cols] = parseGrid(values.grid);
  const { seed, backend } = values;
  const limit = memoryLimit(values['max-memory']);
  const pipeline = await readPipeline(values.pipeline);
  checkAugmentMemory(await readImageHeader(input), pipeline, rows, cols, limit);

  const image = await readImage(input);
  const n = rows * cols;
  const r = await augment(copies(image, n), pipeline, { seed, backend });
  const { mean, std } = r.batchParams;
  const grid = tileGrid(r.data, r.height, r.width, rows, cols, mean, std);
  await writeImage(values.out, grid);

  if (values.json) {
    const summary = {
      input,
      out: values.out,
      backend: r.backend,
      seed,
      epoch: 0,
      grid: { rows, cols, gutter: GRID_GUTTER, width: grid.width, height: grid.height },
      tile: { height: r.height, width: r.width },
      pipeline: r.pipeline,
      tiles: r.params.map((params, index) => ({ index, row: Math.floor(index / cols), col: index % cols, params })),
    };
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    status(false, `wrote ${rows}x${cols} grid of ${r.width}x${r.height} tiles (${grid.width}x${grid.height}) to ${values.out} (backend ${r.backend})`);
  }
  return 0;
}
