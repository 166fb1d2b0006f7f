/**
 * `histoflow inspect DATA [--split S] [--grid-dir DIR] [--grid N] [--blur-threshold T] [--pen-fraction F] [--near-bits B] [--report DIR] [--json]`
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
  'near-bits': { type: 'int', value: 'B', min: 0, max: 16, help: 'near-duplicates: pHash within B of 64 bits under a rotation/flip (default 4)' },
  report: { type: 'string', value: 'DIR', help: 'write DIR/report.html with a contact sheet per finding' },
  json: { type: 'boolean', help: 'print the report as JSON' },
});

export const INSPECT_HELP = `Usage: histoflow inspect DATA [options]

Know your data: class balance, per-channel mean and std, blank, background,
blurry (variance of the Laplacian) and pen-marked patches, duplicates (same
pixels; every group), near-duplicates (perceptual hash, any rotation/flip),
over-saturated patches, colour outliers (mean optical density), per-class
stain vectors (Macenko), a PNG grid per class, and an HTML report. DATA is a packed file, a Kaggle layout
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
    ...(values['near-bits'] === undefined ? {} : { nearBits: values['near-bits'] }),
    ...(values.report ? { reportDir: values.report } : {}),
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
    `duplicates ${r.duplicates.count} (${r.duplicates.groups.length} groups), near-duplicates ${r.nearDuplicates.count} (≤ ${r.nearDuplicates.bits} bits), ` +
    `over-saturated ${pct(r.overSaturated.count)}, colour outliers ${pct(r.colourOutliers.count)}, unreadable ${r.unreadable.count}`);
  for (const [cls, st] of Object.entries(r.stains)) {
    status(false, `stains of class ${cls} (Macenko, ${st.patches} patches): ` +
      ('error' in st ? st.error : `H ${st.he.slice(0, 3).map((v) => v.toFixed(3)).join(' ')}, E ${st.he.slice(3).map((v) => v.toFixed(3)).join(' ')}, maxC ${st.maxC.map((v) => v.toFixed(2)).join(' ')}`));
  }
  if (r.report) status(false, `report: ${r.report}`);
  if (r.grids.length) status(false, `grids: ${r.grids.join(', ')}`);
  return 0;
}
