/**
 * Fuzz family 'dataset': a Kaggle-layout folder written by `histoflow synth
 * patches` with a mutated train_labels.csv (quotes, BOM, CRLF, duplicate and
 * hostile ids, missing columns, odd labels, NUL bytes) and now and then a
 * mutated patch; listed by readKaggleLayout, packed by `histoflow pack` and
 * inspected by `histoflow inspect`, which may write only into out/.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { readKaggleLayout } from '../../../src/dataset/kaggle.js';
import { mutateBytes, mutateTiff, type FuzzRng } from '../fuzz.js';
import { apiVerdict, cliVerdict, WrongResult, type CaseContext, type FuzzCase, type FuzzFamily } from '../fuzz_verdict.js';
import { CLI } from '../helpers.js';

const exec = promisify(execFile);

async function prepare(seeds: string): Promise<void> {
  await exec(process.execPath, [CLI, 'synth', 'patches', '--n', '6', '--test', '2', '--size', '48', '--workers', '0', '--out', join(seeds, 'kaggle'), '--json']);
}

/** Line-level CSV damage of the kinds real label files show, and hostile ones. */
function mutateCsv(rng: FuzzRng, text: string): { text: string; what: string } {
  const lines = text.split('\n');
  const k = 1 + rng.int(Math.max(1, lines.length - 2));
  const id = (lines[k] ?? '').split(',')[0] ?? '';
  const edits: Array<[string, () => void]> = [
    ['a BOM and CRLF line ends', () => { lines[0] = `\uFEFF${lines[0]}`; for (let i = 0; i < lines.length; i++) lines[i] += '\r'; }],
    ['the header without a label column', () => { lines[0] = 'id,class'; }],
    ['an empty file', () => lines.splice(0, lines.length)],
    ['only the header', () => lines.splice(1)],
    ['a duplicated row', () => lines.splice(k, 0, lines[k] ?? '')],
    ['a quoted id with a comma', () => { lines[k] = `"${id},x",1`; }],
    ['a quoted field over two lines', () => { lines[k] = `"${id}\n",1`; }],
    ['label 2', () => { lines[k] = `${id},2`; }],
    ['label -0', () => { lines[k] = `${id},-0`; }],
    ['label 1.0e0', () => { lines[k] = `${id},1.0e0`; }],
    ['label NaN', () => { lines[k] = `${id},NaN`; }],
    ['an id __proto__', () => { lines[k] = '__proto__,1'; }],
    ['an id constructor', () => { lines[k] = 'constructor,0'; }],
    ['an id leading out of the folder', () => { lines[k] = '../../sentinel,1'; }],
    ['an id with NUL', () => { lines[k] = `${id}\0,1`; }],
    ['a 1 MB id', () => { lines[k] = `${'x'.repeat(1 << 20)},1`; }],
    ['100000 rows', () => { for (let i = 0; i < 100_000; i++) lines.push(`gen${i},${i % 2}`); }],
    ['a row of one cell', () => { lines[k] = id; }],
    ['columns swapped', () => { lines[0] = 'label,id'; }],
    ['extra columns', () => { for (let i = 0; i < lines.length; i++) lines[i] += ',extra,"q"'; }],
  ];
  const [what, edit] = rng.pick(edits);
  edit();
  return { text: lines.join('\n'), what };
}

async function make({ rng, dir, seeds }: CaseContext): Promise<FuzzCase> {
  const data = join(dir, 'kaggle');
  await cp(join(seeds, 'kaggle'), data, { recursive: true });
  const csv = join(data, 'train_labels.csv');
  const whats: string[] = [];
  if (rng.chance(0.85)) {
    const m = mutateCsv(rng, await readFile(csv, 'utf8'));
    await writeFile(csv, m.text);
    whats.push(`train_labels.csv: ${m.what}`);
  }
  if (rng.chance(0.35)) {
    const names = (await readdir(join(data, 'train'))).sort();
    const name = rng.pick(names);
    const m = rng.chance(0.6) ? mutateTiff(rng, await readFile(join(data, 'train', name))) : mutateBytes(rng, await readFile(join(data, 'train', name)));
    await writeFile(join(data, 'train', name), m.bytes);
    whats.push(`train/${name}: ${m.what}`);
  }
  const what = whats.join('; ') || 'unchanged';
  const r = rng.float();
  if (r < 0.35) {
    const out = join(dir, 'out', 'train.hfpack');
    const args = ['pack', data, '--out', out, '--json'];
    return { what: `${what}; CLI pack`, run: () => cliVerdict(args, dir, () => (existsSync(out) ? null : `exit 0 but no ${out}`)) };
  }
  if (r < 0.6) {
    const args = ['inspect', data, '--grid-dir', join(dir, 'out', 'grids'), '--grid', '2', '--json'];
    return { what: `${what}; CLI inspect`, run: () => cliVerdict(args, dir) };
  }
  return {
    what: `${what}; readKaggleLayout`,
    run: () => apiVerdict(async () => {
      const layout = await readKaggleLayout(data);
      for (const e of [...layout.train, ...layout.test]) {
        if (!existsSync(e.path)) throw new WrongResult(`entry ${e.id} names ${e.path}, which does not exist`);
        if (!(e.label === 0 || e.label === 1 || e.label === null)) throw new WrongResult(`entry ${e.id} has label ${String(e.label)}`);
      }
      if (new Set(layout.train.map((e) => e.id)).size !== layout.train.length) throw new WrongResult('duplicate training ids');
    }),
  };
}

export const datasetFamily: FuzzFamily = { prepare, make };
