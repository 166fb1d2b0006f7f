/**
 * `histoflow pack SRC --out FILE [--split S] [--concurrency N] [--overwrite] [--no-resume] [--json]`
 * Any labelled patch source → a packed dataset (src/dataset/pack.ts).
 */
import { parseArgs } from 'node:util';

import { checkInteger, checkOneOf } from '../errors.js';
import { packDataset } from '../dataset/pack.js';
import { Progress, status } from './progress.js';

export const PACK_HELP = `Usage: histoflow pack SRC --out FILE [options]

Pack labelled patches into one memory-mappable file (histoflow packed format).
SRC is a Kaggle layout folder (train/, train_labels.csv, test/), a PatchCamelyon
..._x.h5 file (labels from the ..._y.h5 beside it) or a folder of them, or a
tile folder written by 'histoflow tile' (manifest.json). Images decode in
parallel; unreadable and duplicate images (same pixels) are reported and left
out. Rerun the same command to resume an interrupted run.

Options:
  --out FILE         the packed file (written atomically)
  --split S          Kaggle: train | test; PatchCamelyon folder: train | valid | test (default train)
  --concurrency N    images decoded at once (default 2 × cores, at most 16)
  --overwrite        replace FILE if it exists
  --no-resume        start over instead of resuming FILE.partial
  --json             print the summary (with every skipped record and why) as JSON
  -h, --help         this help
`;

export async function packCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      out: { type: 'string' },
      split: { type: 'string', default: 'train' },
      concurrency: { type: 'string' },
      overwrite: { type: 'boolean', default: false },
      'no-resume': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(PACK_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new RangeError(`Expected one source (histoflow pack SRC --out FILE) but received ${positionals.length}`);
  if (!values.out) throw new RangeError('Expected --out FILE');
  const split = checkOneOf('--split', values.split, ['train', 'test', 'valid'] as const);
  let concurrency: number | undefined;
  if (values.concurrency !== undefined) {
    if (!/^\d+$/.test(values.concurrency)) throw new RangeError(`Expected an integer between 1 and 256 for --concurrency but received '${values.concurrency}'`);
    concurrency = checkInteger('--concurrency', Number(values.concurrency), 1, 256);
  }
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
