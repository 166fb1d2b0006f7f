/**
 * `histoflow tile SLIDE --out DIR [--size 96] [--stride S] [--level L | --mpp M]
 *  [--min-tissue 0.5] [--normalize M [--target T]] [--format png|jpeg|packed]
 *  [--annotations A.geojson [--masks]] [--json]`
 * Cuts a slide's tissue into tiles (src/tiling/tile.ts): a folder of tiles with
 * manifest.csv/json, or DIR/tiles.hfpack, plus DIR/mask.png and DIR/overview.png;
 * with --masks, each tile's label mask from the annotations (src/tiling/masks.ts).
 * A progress bar on a TTY; --json prints one JSON summary and nothing else.
 * Ctrl-C stops cleanly: finished tiles and the journal stay, a rerun resumes.
 */
import { readFile } from 'node:fs/promises';

import { memoryLimit } from '../memory_budget.js';
import { checkOutputPath } from '../output.js';
import { SLIDE_READERS } from '../slide/slide.js';
import { TISSUE_CHANNELS } from '../tissue/options.js';
import { STAIN_METHODS, type StainTarget } from '../stain/normalize.js';
import { TILE_OUTPUT_FORMATS, tileSlide, type TileSlideOptions } from '../tiling/tile.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';
import { Progress, status } from './progress.js';

export const TILE_FLAGS = defineFlags({
  out: { type: 'string', value: 'DIR', help: 'output folder (required)' },
  size: { type: 'int', value: 'N', min: 0, help: 'tile size in output pixels (default 96)' },
  stride: { type: 'int', value: 'S', min: 0, help: 'step between tiles (default size; smaller overlaps)' },
  level: { type: 'int', value: 'L', min: 0, help: 'pyramid level to tile (default 0), or' },
  mpp: { type: 'number', value: 'M', help: 'target µm/px: the coarsest level at least that fine, resampled' },
  'min-tissue': { type: 'number', value: 'F', help: 'keep tiles with tissue fraction ≥ F, 0..1 (default 0.5)' },
  roi: { type: 'string', value: 'X,Y,W,H', help: 'only tiles inside this rectangle (level-0 px)' },
  normalize: { type: 'choice', value: 'M', choices: STAIN_METHODS, help: '{choices}: stain-normalize every tile (source stains fitted once per slide)' },
  target: { type: 'string', value: 'T', help: 'stain target: an image, or a JSON target (histoflow stain --json); default: the method\'s reference' },
  format: { type: 'choice', value: 'F', choices: TILE_OUTPUT_FORMATS, help: '{choices} (default png)' },
  quality: { type: 'int', value: 'Q', min: 0, help: 'JPEG quality 1..100 (default 90)' },
  annotations: { type: 'string', value: 'A', help: 'GeoJSON (QuPath), ASAP XML or synth slide S.json polygons (level-0 px): each tile gets the label covering ≥ 50 % of it' },
  masks: { type: 'boolean', help: 'with --annotations: write each tile\'s label mask (class per pixel: 0 background, 1.. the labels, 255 exclusion)' },
  'tissue-channel': { type: 'choice', value: 'C', choices: TISSUE_CHANNELS, help: '{choices}: what Otsu thresholds on the thumbnail (default saturation)' },
  'exclude-pen': { type: 'boolean', help: 'drop red, green and blue pen ink from the tissue mask' },
  thumbnail: { type: 'int', value: 'N', min: 16, max: 16384, help: 'longer side of the thumbnail the mask is computed on (default 1024)' },
  reader: { type: 'choice', value: 'R', choices: SLIDE_READERS, help: '{choices} (default auto)' },
  'no-resume': { type: 'boolean', help: 'start over instead of resuming an interrupted run in DIR' },
  json: { type: 'boolean', help: 'print a JSON summary, no progress' },
  'max-memory': { type: 'string', value: 'SIZE', help: 'refuse a plan that needs more memory (e.g. 512M, 8G; default $HISTOFLOW_MAX_MEMORY, else 2G)' },
});

export const TILE_HELP = `Usage: histoflow tile SLIDE --out DIR [options]

Detect the slide's tissue, lay a tile grid over it and write the tiles with
enough tissue: DIR/tiles/… + DIR/manifest.csv|json (png, jpeg) or
DIR/tiles.hfpack (packed), and DIR/mask.png (tissue mask, white = tissue, at
the thumbnail's scale) and DIR/overview.png (thumbnail, kept tiles outlined).
Rerun the same command to resume an interrupted run.

With --annotations A --masks, every tile also gets its label mask at the
tile's size, level and µm/px: a pixel takes the label whose polygons contain
its centre (the later label in DIR/masks.json's list where labels overlap),
0 is background and 255 an exclusion region (train with it ignored). Folder
output: STEM.mask.png (8-bit grey) beside each tile, a 'mask' manifest column
and DIR/masks.json { labels, ignore, level, downsample, mpp }; packed output:
a mask per record in tiles.hfpack (format version 2).

${optionsHelp(TILE_FLAGS)}`;

/** `--roi X,Y,WIDTH,HEIGHT` (level-0 px); histoflow batch reads it the same way. */
export function parseRoi(value: string): { x: number; y: number; width: number; height: number } {
  const parts = value.split(',').map((v) => Number(v.trim()));
  if (parts.length !== 4 || parts.some((v) => !Number.isFinite(v))) {
    throw new RangeError(`Expected --roi as X,Y,WIDTH,HEIGHT (level-0 px) but received '${value}'`);
  }
  return { x: parts[0]!, y: parts[1]!, width: parts[2]!, height: parts[3]! };
}

/** `--target`: an image path, or a JSON stain target (`histoflow stain --json` output or a bare target). */
export async function readTarget(path: string): Promise<string | StainTarget> {
  if (!/\.json$/i.test(path)) return path;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new RangeError(`Expected a JSON stain target in ${path} for --target: ${(e as Error).message}`);
  }
  // `histoflow stain --json` prints { target, images }; a bare target works too.
  const o = parsed as { target?: unknown };
  return (o && typeof o === 'object' && 'target' in o ? o.target : parsed) as StainTarget;
}

export async function tileCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseFlags('tile', TILE_FLAGS, argv, { positionals: true });
  if (help) {
    process.stdout.write(TILE_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new RangeError('Expected one slide (histoflow tile SLIDE --out DIR)');
  if (!values.out) throw new RangeError('Expected --out DIR');
  if (values.masks && values.annotations === undefined) {
    throw new RangeError('Expected --annotations A with --masks: label masks are rasterized from the annotations');
  }
  await checkOutputPath('--out', values.out, 'folder');
  const options: TileSlideOptions = {
    size: values.size,
    stride: values.stride,
    level: values.level,
    mpp: values.mpp,
    minTissue: values['min-tissue'],
    roi: values.roi === undefined ? undefined : parseRoi(values.roi),
    normalize: values.normalize,
    target: values.target === undefined ? undefined : await readTarget(values.target),
    format: values.format,
    quality: values.quality,
    annotations: values.annotations,
    masks: values.masks ? true : undefined,
    reader: values.reader,
    maxMemory: memoryLimit(values['max-memory']),
    resume: !values['no-resume'],
    tissue: {
      ...(values['tissue-channel'] === undefined ? {} : { channel: values['tissue-channel'] }),
      ...(values['exclude-pen'] ? { excludePen: true } : {}),
      ...(values.thumbnail === undefined ? {} : { maxSize: values.thumbnail }),
    },
  };
  for (const k of Object.keys(options) as (keyof TileSlideOptions)[]) if (options[k] === undefined) delete options[k];

  const quiet = values.json;
  let progress: Progress | undefined;
  let shown = 0;
  options.onProgress = (done, total) => {
    progress ??= new Progress('tile', total, { quiet });
    progress.tick(done - shown);
    shown = done;
  };
  // Ctrl-C: let the sink finish the tiles in flight and keep its journal.
  const stop = new AbortController();
  const onSignal = () => stop.abort(new Error('interrupted: rerun the same command to resume'));
  process.once('SIGINT', onSignal);
  try {
    const result = await tileSlide(positionals[0]!, values.out, { ...options, signal: stop.signal });
    progress?.end();
    if (quiet) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      status(false, `${result.written} tiles written (${result.skipped} from an earlier run) of ${result.kept} kept / ${result.total} grid positions, ` +
        `level ${result.level}, ${result.size} px, ${result.tilesPerSecond.toFixed(0)} tiles/s, reader ${result.reader}`);
      status(false, `outputs: ${[...result.outputs.sink, result.outputs.mask, result.outputs.overview].join(', ')}`);
      if (result.masks) {
        status(false, `label masks: ${result.masks.count}, labels ${result.masks.labels.map((l, i) => `${i}=${l}`).join(' ')}, ` +
          `${result.masks.ignore}=exclusion, in ${result.masks.files}`);
      }
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
  }
}
