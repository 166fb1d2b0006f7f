/**
 * `histoflow synth patches --n N [--test M] [--seed S] [--size 96] [--positive 0.5] [--workers W] --out DIR [--json]`
 * A synthetic PatchCamelyon-like dataset in the Kaggle layout (src/synth/dataset.ts).
 *
 * `histoflow synth slide --out S.tif [--seed S] [--size W[xH]] [--compression jpeg|deflate] [--workers W] [--json]`
 * A synthetic pyramidal slide with tumour regions and its ground truth (src/synth/slide.ts).
 */
import { checkOutputPath } from '../output.js';
import { synthPatches } from '../synth/dataset.js';
import { CENTRE_SIZE } from '../synth/patches.js';
import { MASK_DOWNSAMPLE, SYNTH_SLIDE_COMPRESSIONS, SYNTH_SLIDE_MAX_SIZE, SYNTH_SLIDE_MIN_SIZE, SYNTH_SLIDE_MPP, synthSlide } from '../synth/slide.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';
import { Progress, status } from './progress.js';

export const SYNTH_PATCHES_FLAGS = defineFlags({
  n: { type: 'int', value: 'N', min: 1, max: 10_000_000, help: 'training patches (required, ≥ 1)' },
  test: { type: 'int', value: 'M', min: 0, max: 10_000_000, default: 0, help: 'test patches (default {default})' },
  seed: { type: 'int', value: 'S', min: 0, default: 0, help: 'integer ≥ 0 (default {default})' },
  size: { type: 'int', value: 'PX', min: CENTRE_SIZE + 16, max: 1024, default: 96, help: `patch side (default {default}, at least ${CENTRE_SIZE + 16})` },
  positive: { type: 'number', value: 'P', min: 0, max: 1, default: 0.5, help: 'fraction of positives, 0..1 (default {default})' },
  workers: { type: 'int', value: 'W', min: 0, max: 64, help: 'render threads (default: cores, at most 8; 0 = this thread)' },
  out: { type: 'string', value: 'DIR', help: 'output folder' },
  json: { type: 'boolean', help: 'print a JSON summary only' },
});

export const SYNTH_HELP = `Usage: histoflow synth patches --n N --out DIR [options]
       histoflow synth slide --out S.tif [options]      (see histoflow synth slide --help)

Write a synthetic PatchCamelyon-like dataset in the Kaggle layout:
DIR/train/<id>.tif, DIR/train_labels.csv (id,label) and, with --test,
DIR/test/<id>.tif, DIR/sample_submission.csv and DIR/test_labels.csv.
H&E-looking tissue (eosin stroma, hematoxylin nuclei, glass); label 1 when
tumour-like cells lie in the centre ${CENTRE_SIZE}x${CENTRE_SIZE}; negatives include hard ones
(tumour only outside the centre, dense normal glands, lymphocyte clusters).
Deterministic for a seed.

${optionsHelp(SYNTH_PATCHES_FLAGS)}`;

export async function synthCommand(argv: string[]): Promise<number> {
  const [kind, ...rest] = argv;
  if (kind === undefined || kind === '--help' || kind === '-h') {
    process.stdout.write(SYNTH_HELP);
    return kind === undefined ? 1 : 0;
  }
  if (kind === 'slide') return synthSlideCommand(rest);
  if (kind !== 'patches') throw new RangeError(`Expected 'patches' or 'slide' after 'histoflow synth' but received '${kind}'`);
  const { values, help } = parseFlags('synth patches', SYNTH_PATCHES_FLAGS, rest);
  if (help) {
    process.stdout.write(SYNTH_HELP);
    return 0;
  }
  if (values.n === undefined) throw new RangeError('Expected --n N (the number of training patches)');
  if (!values.out) throw new RangeError('Expected --out DIR');
  await checkOutputPath('--out', values.out, 'folder');
  const { n, test, seed, size, positive, workers } = values;

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

export const SYNTH_SLIDE_FLAGS = defineFlags({
  out: { type: 'string', value: 'S.tif', help: 'output slide (.tif or .tiff)' },
  seed: { type: 'int', value: 'S', min: 0, default: 0, help: 'integer ≥ 0 (default {default})' },
  size: { type: 'string', value: 'W[xH]', default: '4096', help: `level-0 size in pixels (default {default}; ${SYNTH_SLIDE_MIN_SIZE} to ${SYNTH_SLIDE_MAX_SIZE})` },
  compression: { type: 'choice', value: 'C', choices: SYNTH_SLIDE_COMPRESSIONS, default: 'jpeg', help: `tile compression: ${SYNTH_SLIDE_COMPRESSIONS.join(' or ')} (default {default})` },
  workers: { type: 'int', value: 'W', min: 0, max: 64, help: 'render threads (default: cores, at most 8; 0 = this thread)' },
  json: { type: 'boolean', help: 'print a JSON summary only (its last line)' },
});

export const SYNTH_SLIDE_HELP = `Usage: histoflow synth slide --out S.tif [options]

Write a synthetic whole-slide image with tumour regions of known shape:
S.tif, a pyramidal tiled TIFF (256-px tiles, levels halving, ${SYNTH_SLIDE_MPP} µm/px at
level 0), and its ground truth beside it: S.tumour.png and S.tissue.png
(masks at 1/${MASK_DOWNSAMPLE} of level 0, 0/255) and S.json (seed, size, mpp, area
fractions, tumour regions as GeoJSON polygons in level-0 pixels). Glass,
tissue pieces of stroma, fat, glands and lymphocytes, and tumour regions of
crowded atypical nuclei, painted like 'synth patches'. Deterministic for a seed.

${optionsHelp(SYNTH_SLIDE_FLAGS)}`;

/** W or WxH, each in the slide's size range. */
function sizeOption(value: string): { width: number; height: number } {
  // Decimal digits only ([0-9], not \d's other scripts, never a 0x prefix): '0x10' is W 0 by H 10, out of range.
  const m = /^([0-9]+)(?:x([0-9]+))?$/.exec(value);
  const range = `between ${SYNTH_SLIDE_MIN_SIZE} and ${SYNTH_SLIDE_MAX_SIZE}`;
  const inRange = (s: string | undefined) => s === undefined || (Number(s) >= SYNTH_SLIDE_MIN_SIZE && Number(s) <= SYNTH_SLIDE_MAX_SIZE);
  if (!m || !inRange(m[1]) || !inRange(m[2])) throw new RangeError(`Expected W or WxH (decimal integers ${range}) for --size but received '${value}'`);
  const width = Number(m[1]);
  return { width, height: m[2] === undefined ? width : Number(m[2]) };
}

async function synthSlideCommand(argv: string[]): Promise<number> {
  const { values, help } = parseFlags('synth slide', SYNTH_SLIDE_FLAGS, argv);
  if (help) {
    process.stdout.write(SYNTH_SLIDE_HELP);
    return 0;
  }
  if (!values.out) throw new RangeError('Expected --out S.tif (the slide to write)');
  if (!/\.tiff?$/i.test(values.out)) throw new RangeError(`Expected a path ending in .tif or .tiff for --out but received '${values.out}'`);
  await checkOutputPath('--out', values.out, 'file');
  const { seed, compression, workers } = values;
  const { width, height } = sizeOption(values.size);

  let progress: Progress | undefined;
  let last = 0;
  const r = await synthSlide(values.out, {
    seed, width, height, compression, ...(workers === undefined ? {} : { workers }),
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
