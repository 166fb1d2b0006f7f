/**
 * Fuzz family 'pipeline': mutated augmentation pipeline JSON (src/augment/
 * pipeline.ts's schema: wrong types, absurd values, unknown ops) validated by
 * checkPipeline and run by augment() on a small batch, and given to the
 * `augment` command.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import sharp from 'sharp';

import { augment } from '../../../src/augment/augment.js';
import { checkPipeline } from '../../../src/augment/pipeline.js';
import { RawJson, cloneJson, mutateJsonText, mutateJsonTree, toJsonText, type FuzzRng } from '../fuzz.js';
import { apiVerdict, cliVerdict, WrongResult, type CaseContext, type FuzzCase, type FuzzFamily } from '../fuzz_verdict.js';
import { syntheticHE } from '../helpers.js';
import { gradient } from './slide.js';

const SEEDS: unknown[] = [
  { d4: true, hed: 'light', hsv: { brightness: 0.1, hue: 0.02 }, blur: { sigma: [0.1, 1.5], p: 0.3 }, crop: 24, normalize: 'imagenet' },
  { crop: { size: [20, 28], mode: 'center' }, resize: [16, 16], elastic: { alpha: 4, sigma: 8, p: 1 }, noise: { sigma: 0.05, p: 1 } },
  { stain: { method: 'macenko' }, hed: { sigma: 0.1, units: 'rgb2hed' }, normalize: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } },
  { stain: { method: 'ruifrok', preset: 'tiatoolbox' }, resize: 40, blur: { sigma: 2, p: 1 }, hsv: { contrast: 0.3, saturation: 0.3 } },
  {},
];

/** Values at the edge of what checkPipeline accepts, per op: they must run, or fail clearly at run time. */
const EXTREMES: Record<string, unknown[]> = {
  crop: [1, 32, [1, 32], [32, 1], { size: 16, mode: 'center' }, 33],
  resize: [1, [1, 1], [1, 512], 512, [4096, 1]],
  elastic: [{ alpha: 65536, sigma: 1, p: 1 }, { alpha: 5e-324, sigma: 65536, p: 1 }, { alpha: 0, sigma: 1, p: 1 }, { alpha: 30, sigma: 1.0000001, p: 1 }],
  blur: [{ sigma: 32, p: 1 }, { sigma: [0, 0], p: 1 }, { sigma: [5e-324, 32], p: 1 }],
  hed: [{ sigma: 1, units: 'rgb2hed' }, { sigma: 1, units: 'od' }, 'strong'],
  hsv: [{ brightness: 1, contrast: 1, saturation: 1, hue: 0.5 }, { hue: 0.5 }, { saturation: 1 }],
  noise: [{ sigma: 1, p: 1 }, { sigma: 5e-324, p: 1 }],
  normalize: [{ mean: [0, 0, 0], std: [5e-324, 1, 1] }, { mean: [1e308, -1e308, 0], std: [1e-308, 1, 1] }, 'imagenet'],
  stain: [{ method: 'macenko' }, { method: 'vahadane' }, { method: 'ruifrok', preset: 'tiatoolbox' }],
  d4: [true],
};

/** Values checkPipeline must refuse, naming the field. */
const ABSURD: Record<string, unknown[]> = {
  crop: [0, -1, 65537, 1e9, [96, 0], [3], { size: 32, mode: 'sideways' }, { size: [3] }, { size: 8, extra: 1 }, 1.5],
  resize: [0, [65537, 1], [0.5, 2], -3, [new RawJson('1e999'), 2], 'big'],
  elastic: [{ sigma: 0 }, { p: 1.0000001 }, { alpha: new RawJson('1e999') }, { alpha: 65537 }],
  blur: [{ sigma: [2, 1] }, { sigma: 32.5 }, { sigma: new RawJson('1e999') }, { sigma: [1, 2, 3] }],
  hed: ['heavy', { sigma: 1.01 }, { units: 'od' }, 0.05],
  hsv: [{ hue: 0.51 }, { brightness: -0.1 }, { gamma: 1 }, []],
  noise: [{ sigma: 2 }, { sigma: 'NaN' }, { p: new RawJson('-1e999') }],
  normalize: ['coco', { mean: [0, 0, 0], std: [0, 1, 1] }, { mean: [0, 0], std: [1, 1, 1] }],
  stain: [{ method: 'reinhard' }, { method: 'macenko', target: { method: 'macenko', he: [1, 2, 3], maxC: [1] } }, { method: 'vahadane', preset: 'x' },
    { method: 'macenko', target: { method: 'macenko', preset: 'canonical', he: [0, 0, 0, 0, 0, 0], maxC: [0, 0] } }, 'macenko'],
  d4: ['yes', 1],
  rotate: [90],
  ['__proto__']: [{ crop: 8 }],
};

function mutatePipeline(rng: FuzzRng, doc: unknown): { value: unknown; what: string } {
  const root = cloneJson(doc) as Record<string, unknown>;
  const n = rng.range(1, 3);
  const what: string[] = [];
  for (let k = 0; k < n; k++) {
    const table = rng.chance(0.65) ? EXTREMES : ABSURD;
    const op = rng.pick(Object.keys(table));
    const v = rng.pick(table[op]!);
    Object.defineProperty(root, op, { value: v, enumerable: true, writable: true, configurable: true });
    what.push(`${op} := ${toJsonText(v).slice(0, 80)}`);
  }
  return { value: root, what: what.join('; ') };
}

async function prepare(seeds: string): Promise<void> {
  await writeFile(join(seeds, 'seeds.json'), JSON.stringify(SEEDS));
  await sharp(gradient(32, 32), { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(join(seeds, 'patch.png'));
}

/** The largest output (floats) a case runs through augment(): beyond it the run only checks the pipeline. */
const MAX_OUTPUT_FLOATS = 1 << 26;

async function make({ rng, dir, seeds }: CaseContext): Promise<FuzzCase> {
  const all = JSON.parse(await readFile(join(seeds, 'seeds.json'), 'utf8')) as unknown[];
  const i = rng.int(all.length);
  const r = rng.float();
  let text: string, what: string;
  if (r < 0.5) {
    const m = mutatePipeline(rng, all[i]);
    [text, what] = [toJsonText(m.value), m.what];
  } else if (r < 0.9) {
    const m = mutateJsonTree(rng, all[i]);
    [text, what] = [toJsonText(m.value), m.what];
  } else {
    ({ text, what } = mutateJsonText(rng, JSON.stringify(all[i])));
  }
  const path = join(dir, 'pipeline.json');
  await writeFile(path, text);
  what = `seed ${i}: ${what}`;
  if (rng.chance(0.15)) {
    await writeFile(join(dir, 'patch.png'), await readFile(join(seeds, 'patch.png')));
    const args = ['augment', join(dir, 'patch.png'), '--pipeline', path, '--grid', '1x2', '--backend', 'cpu', '--out', join(dir, 'out', 'grid.png')];
    return { what: `${what}; CLI augment`, run: () => cliVerdict(args, dir) };
  }
  const backend = rng.pick(['cpu', 'js'] as const);
  const seed = rng.int(1000);
  return {
    what: `${what}; augment() on ${backend}`,
    run: () => apiVerdict(async () => {
      let json: unknown;
      try {
        json = JSON.parse(await readFile(path, 'utf8'));
      } catch (e) {
        throw new RangeError(`Expected a JSON pipeline in ${path}: ${(e as Error).message}`);
      }
      const pipeline = checkPipeline(json);
      const batch = syntheticHE(2, 32, 32, seed + 1);
      const [h, w] = pipeline.resize ?? pipeline.crop?.size ?? [32, 32];
      if (2 * h * w * 3 > MAX_OUTPUT_FLOATS) return; // validated; running it is a memory test, not this one
      const out = await augment(batch, pipeline, { backend, seed });
      if (out.data.length !== out.n * out.height * out.width * 3 || out.n !== 2) {
        throw new WrongResult(`augment returned n ${out.n}, ${out.width}x${out.height} with ${out.data.length} floats`);
      }
      if (out.data.some((v) => Number.isNaN(v))) throw new WrongResult('augment returned NaN');
    }),
  };
}

export const pipelineFamily: FuzzFamily = { prepare, make };
