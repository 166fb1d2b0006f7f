/**
 * Region reads against independent references: regions read by
 * openslide-python (test/support/scripts/openslide_regions.py, run here with the
 * system python3 and apt's python3-openslide: RGBA composited on white with
 * PIL), and sharp's decode of the whole page cropped in JS. Regions include interiors, tile-straddling ones and ones
 * overhanging the level's right/bottom edge, on levels 0 and 2.
 *
 * On level 0 (and any integer downsample) both readers decode the same JPEG
 * tiles and must agree within 2 grey levels (they agree exactly). On a level
 * whose downsample is not an integer (the pyramid's level 2: 4.0020) OpenSlide
 * itself is not pixel-aligned: it takes level-0 coordinates, so level pixel x
 * is asked for as round(x·ds) and drawn from x + f, f = round(x·ds)/ds − x
 * (|f| ≤ 0.5/ds = 0.125 px), with bilinear interpolation (cairo) — worth up to
 * ~6.5 grey levels of mean |diff| on textured tissue. There the tests compare
 * OpenSlide with sharp's pixels shifted by that f (`openslideModel`), within 1.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import type { RgbBatch } from '../../src/kernels/types.js';
import { openSlide, type Slide } from '../../src/slide/slide.js';
import { IN_CI, ROOT, diff, dataFile } from '../support/helpers.js';
import { PYRAMID, SVS, withOpenSlide } from '../support/slide_support.js';

interface Region { slide: string; file: string; level: number; x: number; y: number; w: number; h: number }

/** The regions: interiors, tile-straddling ones and right/bottom overhangs, on levels 0 and 2. */
const REGIONS: Region[] = ([
  [SVS, 0, 1000, 1000, 300, 200], [SVS, 0, 1190, 1430, 100, 60], [SVS, 0, 2050, 560, 300, 100], [SVS, 0, 600, 2880, 1200, 150],
  [PYRAMID, 0, 1000, 1000, 300, 200], [PYRAMID, 0, 1020, 1270, 40, 40], [PYRAMID, 0, 2050, 2880, 300, 200],
  [PYRAMID, 2, 200, 600, 400, 200], [PYRAMID, 2, 240, 240, 40, 40],
] as const).map(([slide, level, x, y, w, h]) => ({ slide, level, x, y, w, h, file: `${slide === SVS ? 'svs' : 'pyramid'}-L${level}-x${x}-y${y}-w${w}-h${h}.png` }));

/** The system python3 with openslide-python (apt python3-openslide), or why not. */
const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import openslide, PIL'], { encoding: 'utf8' });
const WHY_NO_PYTHON = probe.error ? `${PYTHON} not found` : probe.status !== 0 ? `${PYTHON} lacks openslide-python (apt install python3-openslide)` : '';
/** The references are made once, by the first test that needs them. */
let references: string | undefined;
function referenceDir(): string {
  if (references) return references;
  const dir = mkdtempSync(join(tmpdir(), 'hf-openslide-regions-'));
  const r = spawnSync(PYTHON, [join(ROOT, 'test', 'support', 'scripts', 'openslide_regions.py'), dir,
    ...REGIONS.map((q) => `${dataFile(q.slide)}:${q.level}:${q.x}:${q.y}:${q.w}:${q.h}:${q.file}`)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openslide_regions.py failed: ${r.stderr || r.error?.message}`);
  return (references = dir);
}
test.after.always(() => {
  if (references) rmSync(references, { recursive: true, force: true });
});
async function reference(r: Region): Promise<Uint8Array> {
  const { data } = await sharp(join(referenceDir(), r.file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}
/** A test that needs openslide-python: skipped with the reason where it is missing, failed in CI (which installs it). */
function withPython(title: string): [typeof test | typeof test.skip, string] {
  if (!WHY_NO_PYTHON) return [test, title];
  if (IN_CI) return [test, `${title} (CI installs python3-openslide: ${WHY_NO_PYTHON})`];
  return [test.skip, `${title} (skipped: ${WHY_NO_PYTHON})`];
}

const slides = new Map<string, Promise<Slide>>();
function slideFor(path: string, reader: 'sharp' | 'openslide'): Promise<Slide> {
  const key = `${reader}:${path}`;
  if (!slides.has(key)) slides.set(key, openSlide(dataFile(path), { reader }));
  return slides.get(key)!;
}
test.after.always(async () => {
  for (const s of slides.values()) await (await s).close();
});

/** OpenSlide's sub-pixel offset for level coordinate v asked for at level 0 as round(v·ds). */
const offset = (v: number, ds: number): number => Math.round(v * ds) / ds - v;

/**
 * What OpenSlide draws for a level region, rebuilt from sharp's pixels of that
 * level: each pixel sampled bilinearly at (X + fx, Y + fy), where the offsets
 * come from the position OpenSlide was asked for (`origin`: the region's
 * corner for one call, each tile's corner for the tile-aligned reader).
 */
async function openslideModel(slide: Slide, level: number, x: number, y: number, w: number, h: number,
  origin: (X: number, Y: number) => [number, number]): Promise<Uint8Array> {
  const ds = slide.levels[level]!.downsample;
  // One pixel of margin each side, for the bilinear neighbours (white outside, like both readers).
  const src = await slide.readRegion(level, Math.max(0, x - 1), Math.max(0, y - 1), w + 2, h + 2);
  const sx0 = Math.max(0, x - 1), sy0 = Math.max(0, y - 1);
  const at = (X: number, Y: number, k: number): number => {
    const c = X - sx0, r = Y - sy0;
    return c < 0 || r < 0 || c >= src.width || r >= src.height ? 255 : src.data[(r * src.width + c) * 3 + k]!;
  };
  const out = new Uint8Array(w * h * 3);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      const [ox, oy] = origin(x + c, y + r);
      const px = x + c + offset(ox, ds), py = y + r + offset(oy, ds);
      const x0 = Math.floor(px), y0 = Math.floor(py), a = px - x0, b = py - y0;
      for (let k = 0; k < 3; k++) {
        const v = (1 - a) * (1 - b) * at(x0, y0, k) + a * (1 - b) * at(x0 + 1, y0, k) + (1 - a) * b * at(x0, y0 + 1, k) + a * b * at(x0 + 1, y0 + 1, k);
        out[(r * w + c) * 3 + k] = Math.round(v);
      }
    }
  }
  return out;
}

const integerDownsample = (s: Slide, level: number): boolean => Number.isInteger(s.levels[level]!.downsample);

const [runPy, pyTitle] = withPython('the sharp reader agrees with openslide-python\'s regions: mean |diff| ≤ 2 on level 0, ≤ 1 against OpenSlide\'s shift on level 2');
runPy(pyTitle, async (t) => {
  if (WHY_NO_PYTHON) return t.fail(WHY_NO_PYTHON);
  for (const r of REGIONS) {
    const slide = await slideFor(r.slide, 'sharp');
    const expected = await reference(r);
    let got: Uint8Array;
    if (integerDownsample(slide, r.level)) {
      got = (await slide.readRegion(r.level, r.x, r.y, r.w, r.h)).data;
    } else {
      got = await openslideModel(slide, r.level, r.x, r.y, r.w, r.h, () => [r.x, r.y]); // python: one call at the region's corner
    }
    const d = diff(got, expected);
    t.log(`${r.file}: mean |diff| ${d.mean.toFixed(3)}`);
    t.true(d.mean <= (r.level === 0 ? 2 : 1), `${r.file}: mean |diff| ${d.mean.toFixed(3)}, max ${d.max}`);
  }
});

const [runOs, osTitle] = WHY_NO_PYTHON ? withPython('the OpenSlide reader reproduces openslide-python\'s level-0 regions (mean |diff| ≤ 0.5)')
  : withOpenSlide('the OpenSlide reader reproduces openslide-python\'s level-0 regions (mean |diff| ≤ 0.5)');
runOs(osTitle, async (t) => {
  if (WHY_NO_PYTHON) return t.fail(WHY_NO_PYTHON);
  for (const r of REGIONS.filter((q) => q.level === 0)) {
    const got = await (await slideFor(r.slide, 'openslide')).readRegion(r.level, r.x, r.y, r.w, r.h);
    const d = diff(got.data, await reference(r));
    t.true(d.mean <= 0.5, `${r.file}: mean |diff| ${d.mean.toFixed(3)}, max ${d.max}`);
  }
});

/** Regions for the reader-against-reader comparison: interiors, a 3x3 on a tile corner, edge overhangs. */
const CROSS: Array<[string, number, number, number, number, number]> = [
  [SVS, 0, 700, 1100, 517, 389], [SVS, 0, 1439, 959, 3, 3], [SVS, 0, 2000, 2900, 500, 500],
  [PYRAMID, 0, 255, 511, 258, 300], [PYRAMID, 0, 2100, 2800, 300, 300],
  [PYRAMID, 2, 100, 200, 300, 300], [PYRAMID, 2, 250, 250, 12, 12], [PYRAMID, 2, 450, 600, 200, 200],
];

const [runCross, crossTitle] = withOpenSlide('sharp and OpenSlide readers agree: mean |diff| ≤ 2 on level 0, ≤ 1 against OpenSlide\'s shift on level 2');
runCross(crossTitle, async (t) => {
  for (const [path, level, x, y, w, h] of CROSS) {
    const viaSharp = await slideFor(path, 'sharp');
    const viaOpenSlide = await (await slideFor(path, 'openslide')).readRegion(level, x, y, w, h);
    const { tileWidth: tw, tileHeight: th } = viaSharp.levels[level]!;
    const reference = integerDownsample(viaSharp, level)
      ? (await viaSharp.readRegion(level, x, y, w, h)).data
      // The OpenSlide reader reads whole tiles: each tile's own offset.
      : await openslideModel(viaSharp, level, x, y, w, h, (X, Y) => [Math.floor(X / tw) * tw, Math.floor(Y / th) * th]);
    const d = diff(viaOpenSlide.data, reference);
    t.log(`${path} L${level} ${x},${y} ${w}x${h}: mean |diff| ${d.mean.toFixed(3)} (raw sharp vs OpenSlide: ${diff(viaOpenSlide.data, (await viaSharp.readRegion(level, x, y, w, h)).data).mean.toFixed(3)})`);
    t.true(d.mean <= (level === 0 ? 2 : 1), `${path} L${level} ${x},${y} ${w}x${h}: mean |diff| ${d.mean.toFixed(3)}`);
  }
});

test('the sharp reader\'s tile assembly equals sharp\'s whole-page decode, cropped (exact), on levels 0 and 2', async (t) => {
  for (const [path, page, level] of [[SVS, 0, 0], [PYRAMID, 0, 0], [PYRAMID, 2, 2]] as const) {
    const { data: full, info } = await sharp(dataFile(path), { page }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const slide = await slideFor(path, 'sharp');
    for (const [x, y, w, h] of [[0, 0, 37, 41], [230, 470, 300, 299], [info.width - 50, info.height - 20, 90, 60]] as const) {
      const got: RgbBatch = await slide.readRegion(level, x, y, w, h);
      const want = new Uint8Array(w * h * 3).fill(255);
      for (let r = 0; r < h && y + r < info.height; r++) {
        const cols = Math.min(w, info.width - x);
        want.set(full.subarray(((y + r) * info.width + x) * 3, ((y + r) * info.width + x + cols) * 3), r * w * 3);
      }
      t.is(diff(got.data, want).max, 0, `${path} page ${page} at ${x},${y} ${w}x${h}`);
    }
  }
});
