/**
 * `histoflow inspect DATA [--split S] [--grid-dir DIR] [--grid N] [--blur-threshold T] [--pen-fraction F] [--json]`
 * Class balance, per-channel statistics, blank / background / blurry / pen-marked
 * patches, duplicates and a PNG grid per class (src/dataset/inspect.ts).
 */
import { inspectDataset } from '../dataset/inspect.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';
import { Progress, status } from './progress.js';

export const INSPECT_FLAGS = defineFlags({
  split: { type: 'choice', value: 'S', choices: ['train', 'test', 'valid'], default: 'train', help: '{choices} (default {default})' },
  'grid-dir': { type: 'string', value: 'DIR', help: 'write grid_label<L>.png per class there' },
  grid: { type: 'int', value: 'N', min: 1, max: 64, default: 8, help: 'patches per grid side (default {default})' },
  'blur-threshold': { type: 'number', value: 'T', min: 0, default: 30, help: 'Laplacian variance below which a patch is blurry (default {default})' },
  'pen-fraction': { type: 'number', value: 'F', min: 0, max: 1, default: 0.25, help: 'fraction of pen-ink pixels that flags a patch (default {default})' },
  json: { type: 'boolean', help: 'print the report as JSON' },
});

export const INSPECT_HELP = `Usage: histoflow inspect DATA [options]

Know your data: class balance, per-channel mean and std, blank, background,
blurry (variance of the Laplacian) and pen-marked patches, duplicates (same
pixels), and a PNG grid per class. DATA is a packed file, a Kaggle layout
folder, a PatchCamelyon ..._x.h5 file or folder, or a tile folder.

${optionsHelp(INSPECT_FLAGS)}`;

export async function inspectCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseFlags('inspect', INSPECT_FLAGS, argv, { positionals: true });
  if (help) {
    process.stdout.write(INSPECT_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new RangeError(`Expected one dataset (histoflow inspect DATA) but received ${positionals.length}`);
  const quiet = values.json;
  let progress: Progress | undefined;
  let shown = 0;
  const r = await inspectDataset(positionals[0]!, {
    split: values.split,
    gridSize: values.grid,
    blurThreshold: values['blur-threshold'],
    penFraction: values['pen-fraction'],
    ...(values['grid-dir'] ? { gridDir: values['grid-dir'] } : {}),
    onProgress: (done, total) => {
      progress ??= new Progress('inspect', total, { quiet });
      progress.tick(done - shown);
      shown = done;
    },
  });
  progress?.end();
  if (quiet) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return 0;
  }
  const pct = (k: number) => `${k} (${((100 * k) / r.count).toFixed(1)}%)`;
  status(false, `${r.source}: ${r.count} patches ${r.width}x${r.height}`);
  status(false, `classes: ${Object.entries(r.classes).map(([c, k]) => `${c}: ${pct(k)}`).join(', ')}`);
  status(false, `mean RGB ${r.mean.map((v) => v.toFixed(1)).join(', ')}; std ${r.std.map((v) => v.toFixed(1)).join(', ')}`);
  status(false, `blank ${pct(r.blank.count)}, background ${pct(r.background.count)}, blurry ${pct(r.blurry.count)}, pen ${pct(r.pen.count)}, ` +
    `duplicates ${r.duplicates.count}, unreadable ${r.unreadable.count}`);
  if (r.grids.length) status(false, `grids: ${r.grids.join(', ')}`);
  return 0;
}
