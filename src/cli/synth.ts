/**
 * `histoflow synth patches --n N [--test M] [--seed S] [--size 96] [--positive 0.5] [--workers W] --out DIR [--json]`
 * A synthetic PatchCamelyon-like dataset in the Kaggle layout (src/synth/dataset.ts).
 */
import { parseArgs } from 'node:util';

import { checkInteger, checkNumber } from '../errors.js';
import { synthPatches } from '../synth/dataset.js';
import { CENTRE_SIZE } from '../synth/patches.js';
import { Progress, status } from './progress.js';

export const SYNTH_HELP = `Usage: histoflow synth patches --n N --out DIR [options]

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
  if (kind !== 'patches') throw new RangeError(`Expected 'patches' after 'histoflow synth' but received '${kind}'`);
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
