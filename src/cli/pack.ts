/**
 * `histoflow pack SRC --out FILE [--split S] [--concurrency N] [--overwrite] [--no-resume] [--json]`
 * Any labelled patch source → a packed dataset (src/dataset/pack.ts).
 */
import { checkNotInput, checkOutputPath } from '../output.js';
import { packDataset } from '../dataset/pack.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';
import { Progress, status } from './progress.js';

export const PACK_FLAGS = defineFlags({
  out: { type: 'string', value: 'FILE', help: 'the packed file (written atomically)' },
  split: {
    type: 'choice', value: 'S', choices: ['train', 'test', 'valid'], default: 'train',
    help: 'Kaggle: train | test; PatchCamelyon folder: train | valid | test (default {default})',
  },
  concurrency: { type: 'int', value: 'N', min: 1, max: 256, help: 'images decoded at once (default 2 × cores, at most 16)' },
  overwrite: { type: 'boolean', help: 'replace FILE if it exists' },
  'no-resume': { type: 'boolean', help: 'start over instead of resuming FILE.partial' },
  json: { type: 'boolean', help: 'print the summary (with every skipped record and why) as JSON' },
});

export const PACK_HELP = `Usage: histoflow pack SRC --out FILE [options]

Pack labelled patches into one memory-mappable file (histoflow packed format).
SRC is a Kaggle layout folder (train/, train_labels.csv, test/), a PatchCamelyon
..._x.h5 file (labels from the ..._y.h5 beside it) or a folder of them, or a
tile folder written by 'histoflow tile' (manifest.json). Images decode in
parallel; unreadable and duplicate images (same pixels) are reported and left
out. Rerun the same command to resume an interrupted run.

${optionsHelp(PACK_FLAGS)}`;

export async function packCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseFlags('pack', PACK_FLAGS, argv, { positionals: true });
  if (help) {
    process.stdout.write(PACK_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new RangeError(`Expected one source (histoflow pack SRC --out FILE) but received ${positionals.length}`);
  if (!values.out) throw new RangeError('Expected --out FILE');
  await checkOutputPath('--out', values.out, 'file');
  await checkNotInput('--out', values.out, [positionals[0]!]);
  const { split, concurrency } = values;
  const quiet = values.json;
  let progress: Progress | undefined;
  let shown = 0;
  const stop = new AbortController();
  const onSignal = () => stop.abort(new Error('interrupted: rerun the same command to resume'));
  process.once('SIGINT', onSignal);
  try {
    const r = await packDataset(positionals[0]!, values.out, {
      split, overwrite: values.overwrite, resume: !values['no-resume'], signal: stop.signal,
      ...(concurrency === undefined ? {} : { concurrency }),
      onProgress: (done, total) => {
        progress ??= new Progress('pack', total, { quiet });
        progress.tick(done - shown);
        shown = done;
      },
    });
    progress?.end();
    if (quiet) {
      process.stdout.write(`${JSON.stringify(r)}\n`);
    } else {
      status(false, `${r.out}: ${r.count} records ${r.width}x${r.height} (${r.labels.positive} positive, ${r.labels.negative} negative, ` +
        `${r.labels.unlabelled} unlabelled) from ${r.source} ${r.split}; ${r.resumed} resumed`);
      if (r.skipped.length) {
        status(false, `${r.skipped.length} skipped (${r.unreadable} unreadable, ${r.duplicates} duplicates):`);
        for (const s of r.skipped.slice(0, 20)) status(false, `  ${s.id ?? s.path ?? ''}: ${s.reason}`);
        if (r.skipped.length > 20) status(false, `  … and ${r.skipped.length - 20} more (--json lists all)`);
      }
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
  }
}
