/**
 * train({ members: N }) (src/train/ensemble.ts): N runs side by side in
 * processes of their own, seeds seed … seed + N − 1 on one split, an
 * ensemble folder that predict / evaluate take as one model, and its
 * validation AUC against the members' own scores averaged here.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { parseTrainArgs } from '../../src/cli/train.js';
import { evaluateModel } from '../../src/inference/evaluate.js';
import { rocAuc } from '../../src/metrics/index.js';
import { ENSEMBLE_JSON, expandEnsembles, resolveModelJson } from '../../src/models/io.js';
import { synthPatches } from '../../src/synth/dataset.js';
import { memberThreads, type EnsembleResult } from '../../src/train/ensemble.js';
import { train, type TrainState } from '../../src/train/train.js';
import { nativeAvailable } from '../support/tfjs_support.js';

const BACKEND = nativeAvailable ? 'native' : 'tfjs-cpu';
let root = '', data = '';

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'hf-ensemble-'));
  data = join(root, 'patches');
  await synthPatches(data, { n: 48, seed: 5, size: 48, workers: 0 });
});
test.after.always(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const SMALL = { width: 0.125, batchSize: 8, backend: BACKEND } as const;
const readState = async (run: string) => JSON.parse(await readFile(join(run, 'state.json'), 'utf8')) as TrainState;
/** scores.csv of an evaluation: id → score. */
const readScores = async (file: string) => new Map((await readFile(file, 'utf8')).trim().split('\n').slice(1).map((l) => {
  const [id, label, score] = l.split(',');
  return [id!, { label: Number(label), score: Number(score) }] as const;
}));

test('each member gets an equal share of the threads, at least one', (t) => {
  t.is(memberThreads(2, { OMP_NUM_THREADS: '8' }), 4);
  t.is(memberThreads(3, { OMP_NUM_THREADS: '8' }), 2);
  t.is(memberThreads(4, { OMP_NUM_THREADS: '2' }), 1);
  t.is(memberThreads(2, { OMP_NUM_THREADS: '6,2' }), 3, 'the first of an OpenMP list');
  t.true(memberThreads(1, {}) >= 1);
  t.is(memberThreads(1, { OMP_NUM_THREADS: 'x' }), memberThreads(1, {}), 'not a count: the CPUs this process may use');
});

test('--members is parsed and bad counts are errors naming it', async (t) => {
  t.like(parseTrainArgs(['--data', 'd', '--members', '3']).options, { members: 3 });
  t.throws(() => parseTrainArgs(['--data', 'd', '--members', '0']), { message: /--members/ });
  await t.throwsAsync(train({ data, members: 0, out: join(root, 'zero') }, { quiet: true }), { instanceOf: RangeError, message: /for members/ });
  await t.throwsAsync(train({ data, members: 2.5, out: join(root, 'half') }, { quiet: true }), { message: /for members/ });
  await t.throwsAsync(train({ data, members: 2, task: 'segment', out: join(root, 'seg') }, { quiet: true }), { message: /for members/ });
  await t.throwsAsync(train({ data: join(root, 'nothing-here'), members: 2, out: join(root, 'nodata') }, { quiet: true }), { message: /for data/ });
  await t.throwsAsync(stat(join(root, 'nodata')), undefined, 'no folder is left behind by a bad option');
});

test.serial('two members train side by side on one split, and the folder is one model to evaluate', async (t) => {
  const out = join(root, 'pair');
  const r = await train({ ...SMALL, data, members: 2, seed: 3, epochs: 2, out }, { quiet: true }) as EnsembleResult;
  t.is(r.members.length, 2);
  t.is(r.run, out);
  const manifest = JSON.parse(await readFile(join(out, ENSEMBLE_JSON), 'utf8')) as { members: string[]; val_auc: number; threads: number };
  t.deepEqual(manifest.members, ['member-1', 'member-2']);
  t.is(manifest.threads, memberThreads(2));
  t.is(manifest.val_auc, r.ensemble_val_auc);
  const [a, b] = await Promise.all(manifest.members.map((m) => readState(join(out, m))));
  t.deepEqual([a!.args.seed, b!.args.seed], [3, 4], 'seeds seed and seed + 1');
  t.deepEqual([a!.args.splitSeed, b!.args.splitSeed], [3, 3], 'one split seed');
  t.deepEqual([a!.epoch, b!.epoch], [2, 2]);
  t.is(await readFile(join(out, 'member-1', 'split.json'), 'utf8'), await readFile(join(out, 'member-2', 'split.json'), 'utf8'), 'the same split');

  // The reference: each member scored alone on the validation split, the mean of the two probabilities, its AUC.
  const alone = await Promise.all(manifest.members.map((m, k) => evaluateModel({ model: join(out, m), split: 'val', out: join(root, `alone${k}`) })));
  const [s1, s2] = await Promise.all(alone.map((e) => readScores(e.files.scores)));
  const ids = [...s1!.keys()];
  t.deepEqual(ids.sort(), [...s2!.keys()].sort());
  const mean = ids.map((id) => (s1!.get(id)!.score + s2!.get(id)!.score) / 2);
  const expected = rocAuc(ids.map((id) => s1!.get(id)!.label), mean);
  // scores.csv holds float32 probabilities; their mean rounds once more in the ensemble: a tie more or less moves the AUC by ~1/(pos·neg).
  t.true(Math.abs(r.ensemble_val_auc - expected) < 2e-3, `ensemble ${r.ensemble_val_auc} vs members' mean ${expected}`);
  // Each member's best_val_auc was scored in training (batches of 128, batch norm unfolded); evaluate folds it, batches of 64: float rounding only.
  r.members.forEach((m, k) => t.true(Math.abs(m.best_val_auc - alone[k]!.auc) < 1e-3, `member ${k + 1}: ${m.best_val_auc} vs ${alone[k]!.auc}`));

  // The folder is one --model: evaluate expands it (default split: val, output in the folder).
  t.deepEqual(await expandEnsembles([out, join(out, 'member-1')]), [join(out, 'member-1'), join(out, 'member-2'), join(out, 'member-1')]);
  const again = await evaluateModel({ model: [out] });
  t.is(again.split, 'val');
  t.is(again.members.length, 2);
  t.is(again.files.evaluation, join(out, 'evaluation', 'evaluation.json'));
  t.true(Math.abs(again.auc - r.ensemble_val_auc) < 1e-12);
  await t.throwsAsync(resolveModelJson(out), { instanceOf: RangeError, message: /ensemble/ });

  // A second start in the same folder is refused; --resume trains every member on.
  await t.throwsAsync(train({ ...SMALL, data, members: 2, epochs: 2, out }, { quiet: true }), { message: /already holds a run/ });
  await t.throwsAsync(train({ out, resume: true, members: 3 }, { quiet: true }), { message: /for members/ });
  const resumed = await train({ out, resume: true, epochs: 3 }, { quiet: true }) as EnsembleResult;
  t.deepEqual(resumed.members.map((m) => [m.resumed_from, m.epochs]), [[2, 3], [2, 3]]);
  t.is((await readState(join(out, 'member-2'))).args.seed, 4);
});

test.serial('a member that fails fails the ensemble, naming it; interrupting stops every member resumably', async (t) => {
  const bad = join(root, 'badfile');
  await mkdir(bad);
  await writeFile(join(bad, 'train_labels.csv'), 'id,label\n');
  await t.throwsAsync(train({ ...SMALL, data: bad, members: 2, epochs: 1, out: join(root, 'bad-run') }, { quiet: true }),
    { message: /did not finish: member 1: .+; member 2: / });

  // Member 2 cannot make its folder (a file is in the way): member 1, set for 200 epochs, stops at its next batch.
  const blocked = join(root, 'blocked');
  await mkdir(blocked);
  await writeFile(join(blocked, 'member-2'), 'not a folder');
  await t.throwsAsync(train({ ...SMALL, data, members: 2, epochs: 200, out: blocked }, { quiet: true }),
    { message: /member 1: stopped when member 2 failed; member 2: .*member-2/ });
  const m1 = await readState(join(blocked, 'member-1')).catch(() => undefined);
  t.true(m1 === undefined || m1.epoch < 200, `member 1 stopped early (at epoch ${m1?.epoch})`);

  const out = join(root, 'stopped');
  const abort = new AbortController();
  const running = train({ ...SMALL, data, members: 2, epochs: 200, out }, { quiet: true, signal: abort.signal });
  const started = (m: string) => stat(join(out, m, 'last')).then(() => true, () => false);
  for (let i = 0; i < 1200 && !((await started('member-1')) && (await started('member-2'))); i++) await new Promise((r) => setTimeout(r, 100));
  abort.abort(new Error('interrupted'));
  await t.throwsAsync(running, { message: /interrupted/ });
  const states = await Promise.all(['member-1', 'member-2'].map((m) => readState(join(out, m)).catch(() => undefined)));
  t.true(states.every((s) => s !== undefined && s.epoch >= 1 && s.epoch < 200), `members stopped at ${states.map((s) => s?.epoch).join(', ')}`);
  const more = await train({ out, resume: true, epochs: Math.max(...states.map((s) => s!.epoch)) + 1 }, { quiet: true }) as EnsembleResult;
  t.is(more.members.length, 2);
});
