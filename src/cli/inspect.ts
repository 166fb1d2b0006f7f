/**
 * `histoflow inspect DATA [--split S] [--grid-dir DIR] [--grid N] [--blur-threshold T] [--pen-fraction F] [--json]`
 * Class balance, per-channel statistics, blank / background / blurry / pen-marked
 * patches, duplicates and a PNG grid per class (src/dataset/inspect.ts).
 */
import { parseArgs } from 'node:util';

import { checkInteger, checkNumber, checkOneOf } from '../errors.js';
import { inspectDataset } from '../dataset/inspect.js';
import { Progress, status } from './progress.js';

export const INSPECT_HELP = `Usage: histoflow inspect DATA [options]

Know your data: class balance, per-channel mean and std, blank, background,
blurry (variance of the Laplacian) and pen-marked patches, duplicates (same
pixels), and a PNG grid per class. DATA is a packed file, a Kaggle layout
folder, a PatchCamelyon ..._x.h5 file or folder, or a tile folder.

Options:
  --split S             train | test | valid (default train)
  --grid-dir DIR        write grid_label<L>.png per class there
  --grid N              patches per grid side (default 8)
  --blur-threshold T    Laplacian variance below which a patch is blurry (default 30)
  --pen-fraction F      fraction of pen-ink pixels that flags a patch (default 0.25)
  --json                print the report as JSON
  -h, --help            this help
`;

export async function inspectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      split: { type: 'string', default: 'train' },
      'grid-dir': { type: 'string' },
      grid: { type: 'string', default: '8' },
      'blur-threshold': { type: 'string', default: '30' },
      'pen-fraction': { type: 'string', default: '0.25' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(INSPECT_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new RangeError(`Expected one dataset (histoflow inspect DATA) but received ${positionals.length}`);
  const num = (flag: string, v: string, min: number, max = Infinity): number => {
    if (v.trim() === '') throw new RangeError(`Expected a number for ${flag} but received ''`);
    return checkNumber(flag, Number(v), min, max);
  };
  const quiet = values.json;
  let progress: Progress | undefined;
  let shown = 0;
  const r = await inspectDataset(positionals[0]!, {
    split: checkOneOf('--split', values.split, ['train', 'test', 'valid'] as const),
    gridSize: checkInteger('--grid', Number(values.grid), 1, 64),
    blurThreshold: num('--blur-threshold', values['blur-threshold'], 0),
    penFraction: num('--pen-fraction', values['pen-fraction'], 0, 1),
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
