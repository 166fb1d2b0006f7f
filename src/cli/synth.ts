/**
 * `histoflow synth patches --n N [--test M] [--seed S] [--size 96] [--positive 0.5] [--workers W] --out DIR [--json]`
 * A synthetic PatchCamelyon-like dataset in the Kaggle layout (src/synth/dataset.ts).
 *
 * `histoflow synth slide --out S.tif [--seed S] [--size W[xH]] [--compression jpeg|deflate] [--workers W] [--json]`
 * A synthetic pyramidal slide with tumour regions and its ground truth (src/synth/slide.ts).
 */
import { parseArgs } from 'node:util';

import { checkInteger, checkNumber } from '../errors.js';
import { synthPatches } from '../synth/dataset.js';
import { CENTRE_SIZE } from '../synth/patches.js';
import { MASK_DOWNSAMPLE, SYNTH_SLIDE_COMPRESSIONS, SYNTH_SLIDE_MAX_SIZE, SYNTH_SLIDE_MIN_SIZE, SYNTH_SLIDE_MPP, synthSlide, type SynthSlideCompression } from '../synth/slide.js';
import { Progress, status } from './progress.js';

export const SYNTH_HELP = `Usage: histoflow synth patches --n N --out DIR [options]
       histoflow synth slide --out S.tif [options]      (see histoflow synth slide --help)

Write a synthetic PatchCamelyon-like dataset in the Kaggle layout:
DIR/train/<id>.tif, DIR/train_labels.csv (id,label) and, with --test,
DIR/test/<id>.tif, DIR/sample_submission.csv and DIR/test_labels.csv.
H&E-looking tissue (eosin stroma, hematoxylin nuclei, glass); label 1 when
tumour-like cells lie in the centre ${CENTRE_SIZE}x${CENTRE_SIZE}; negatives include hard ones
(tumour only outside the centre, dense normal glands, lymphocyte clusters).
Deterministic for a seed.

Options:
  --n N            training patches (required, ≥ 1)
  --test M         test patches (default 0)
  --seed S         integer ≥ 0 (default 0)
  --size PX        patch side (default 96, at least ${CENTRE_SIZE + 16})
  --positive P     fraction of positives, 0..1 (default 0.5)
  --workers W      render threads (default: cores, at most 8; 0 = this thread)
  --out DIR        output folder
  --json           print a JSON summary only
  -h, --help       this help
`;

/** A decimal integer option, with the option's name in the error. */
function intOption(name: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(value)) throw new RangeError(`Expected an integer ≥ ${min} for ${name} but received '${value}'`);
  return checkInteger(name, Number(value), min, max);
}

export async function synthCommand(argv: string[]): Promise<number> {
  const [kind, ...rest] = argv;
  if (kind === undefined || kind === '--help' || kind === '-h') {
    process.stdout.write(SYNTH_HELP);
    return kind === undefined ? 1 : 0;
  }
  if (kind === 'slide') return synthSlideCommand(rest);
  if (kind !== 'patches') throw new RangeError(`Expected 'patches' or 'slide' after 'histoflow synth' but received '${kind}'`);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: false,
    strict: true,
    options: {
      n: { type: 'string' },
      test: { type: 'string', default: '0' },
      seed: { type: 'string', default: '0' },
      size: { type: 'string', default: '96' },
      positive: { type: 'string', default: '0.5' },
      workers: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(SYNTH_HELP);
    return 0;
  }
  void positionals;
  if (values.n === undefined) throw new RangeError('Expected --n N (the number of training patches)');
  if (!values.out) throw new RangeError('Expected --out DIR');
  const n = intOption('--n', values.n, 1, 10_000_000);
  const test = intOption('--test', values.test, 0, 10_000_000);
  const seed = intOption('--seed', values.seed, 0);
  const size = intOption('--size', values.size, CENTRE_SIZE + 16, 1024);
  if (values.positive.trim() === '' || Number.isNaN(Number(values.positive))) throw new RangeError(`Expected a number between 0 and 1 for --positive but received '${values.positive}'`);
  const positive = checkNumber('--positive', Number(values.positive), 0, 1);
  const workers = values.workers === undefined ? undefined : intOption('--workers', values.workers, 0, 64);

  const progress = new Progress('synth', n + test, { quiet: values.json });
  let last = 0;
  const r = await synthPatches(values.out, {
    n, test, seed, size, positive, ...(workers === undefined ? {} : { workers }),
    onProgress: (done) => {
      progress.tick(done - last);
      last = done;
    },
  });
  progress.end();
  if (values.json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
  } else {
    status(false, `wrote ${r.train} training patches (${r.positives.train} positive)` +
      `${r.test ? ` and ${r.test} test patches (${r.positives.test} positive)` : ''} to ${r.dir}`);
  }
  return 0;
}

export const SYNTH_SLIDE_HELP = `Usage: histoflow synth slide --out S.tif [options]

Write a synthetic whole-slide image with tumour regions of known shape:
S.tif, a pyramidal tiled TIFF (256-px tiles, levels halving, ${SYNTH_SLIDE_MPP} µm/px at
level 0), and its ground truth beside it: S.tumour.png and S.tissue.png
(masks at 1/${MASK_DOWNSAMPLE} of level 0, 0/255) and S.json (seed, size, mpp, area
fractions, tumour regions as GeoJSON polygons in level-0 pixels). Glass,
tissue pieces of stroma, fat, glands and lymphocytes, and tumour regions of
crowded atypical nuclei, painted like 'synth patches'. Deterministic for a seed.

Options:
  --out S.tif          output slide (.tif or .tiff)
  --seed S             integer ≥ 0 (default 0)
  --size W[xH]         level-0 size in pixels (default 4096; ${SYNTH_SLIDE_MIN_SIZE} to ${SYNTH_SLIDE_MAX_SIZE})
  --compression C      tile compression: ${SYNTH_SLIDE_COMPRESSIONS.join(' or ')} (default jpeg)
  --workers W          render threads (default: cores, at most 8; 0 = this thread)
  --json               print a JSON summary only (its last line)
  -h, --help           this help
`;

/** W or WxH, each in the slide's size range. */
function sizeOption(value: string): { width: number; height: number } {
  const m = /^(\d+)(?:x(\d+))?$/.exec(value);
  const range = `between ${SYNTH_SLIDE_MIN_SIZE} and ${SYNTH_SLIDE_MAX_SIZE}`;
  if (!m) throw new RangeError(`Expected W or WxH (integers ${range}) for --size but received '${value}'`);
  const width = checkInteger('--size', Number(m[1]), SYNTH_SLIDE_MIN_SIZE, SYNTH_SLIDE_MAX_SIZE);
  const height = m[2] === undefined ? width : checkInteger('--size', Number(m[2]), SYNTH_SLIDE_MIN_SIZE, SYNTH_SLIDE_MAX_SIZE);
  return { width, height };
}

async function synthSlideCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: {
      out: { type: 'string' },
      seed: { type: 'string', default: '0' },
      size: { type: 'string', default: '4096' },
      compression: { type: 'string', default: 'jpeg' },
      workers: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(SYNTH_SLIDE_HELP);
    return 0;
  }
  if (!values.out) throw new RangeError('Expected --out S.tif (the slide to write)');
  if (!/\.tiff?$/i.test(values.out)) throw new RangeError(`Expected a path ending in .tif or .tiff for --out but received '${values.out}'`);
  const seed = intOption('--seed', values.seed, 0);
  const { width, height } = sizeOption(values.size);
  if (!(SYNTH_SLIDE_COMPRESSIONS as readonly string[]).includes(values.compression)) {
    throw new RangeError(`Expected one of ${SYNTH_SLIDE_COMPRESSIONS.join(', ')} for --compression but received '${values.compression}'`);
  }
  const workers = values.workers === undefined ? undefined : intOption('--workers', values.workers, 0, 64);

  let progress: Progress | undefined;
  let last = 0;
  const r = await synthSlide(values.out, {
    seed, width, height, compression: values.compression as SynthSlideCompression, ...(workers === undefined ? {} : { workers }),
    onProgress: (done, total) => {
      progress ??= new Progress('synth slide', total, { quiet: values.json });
      progress.tick(done - last, done < total - 1 ? 'painting' : 'writing the pyramid');
      last = done;
    },
  });
  progress?.end();
  if (values.json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
  } else {
    status(false, `wrote ${r.slide} (${r.width}x${r.height}, ${r.regions} tumour regions, ${(100 * r.tumourAreaFraction).toFixed(1)}% of the tissue) ` +
      `and its truth ${r.tumourMask}, ${r.tissueMask}, ${r.meta} in ${r.seconds.toFixed(1)} s`);
  }
  return 0;
}
