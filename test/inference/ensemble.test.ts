/**
 * Ensembles (issue 15): `predict` and `evaluate` take several models; the mean
 * rule equals the mean of each member's own scores, the rank rule the mean of
 * their ranks (ties sharing their mean rank, scaled by n); evaluate reports
 * every member's AUC on the same images beside the ensemble's.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';
import test from 'ava';

import { evaluateModel } from '../../src/inference/evaluate.js';
import { combineScores, rankScores } from '../../src/inference/score.js';
import { predictSubmission } from '../../src/inference/submission.js';
import { saveModel } from '../../src/models/io.js';
import { baselineCnn } from '../../src/models/baseline_cnn.js';
import { histoflow, lastJson, pairwiseAuc, readCsv, SIZE, workspace, type Workspace } from '../support/inference_support.js';

let ws: Workspace;
let second = '';

test.before(async () => {
  ws = await workspace(24, 13);
  second = join(ws.root, 'runs', 'other', 'best');
  await tf.setBackend('cpu');
  const model = baselineCnn({ inputSize: SIZE, filters: [4, 4, 4], seed: 99 });
  await saveModel(model, second, { card: { inputSize: SIZE, architecture: 'baseline', preprocess: {} } });
  model.dispose();
});

test.after.always(async () => {
  if (ws) await rm(ws.root, { recursive: true, force: true });
});

test('rankScores: mean ranks of ties, scaled to (0, 1]; NaN stays NaN; combineScores by rule', (t) => {
  t.deepEqual(Array.from(rankScores([0.3, 0.1, 0.3, 0.9])), [2.5 / 4, 1 / 4, 2.5 / 4, 1]);
  const r = rankScores([0.5, Number.NaN, 0.2]);
  t.deepEqual([r[0], r[2]], [1, 0.5]);
  t.true(Number.isNaN(r[1]!));
  t.deepEqual(Array.from(combineScores([[0.2, 0.8], [0.4, 0.6]], 'mean')), [Math.fround(0.3), Math.fround(0.7)]);
  t.deepEqual(Array.from(combineScores([[0.2, 0.8], [0.9, 0.1]], 'rank')), [0.75, 0.75]);
});

test('predict with two models writes the mean (or the rank mean) of each member\'s own submission', async (t) => {
  const out = (name: string) => join(ws.root, name);
  const a = await predictSubmission({ model: ws.run, data: ws.data, out: out('a.csv') });
  const b = await predictSubmission({ model: second, data: ws.data, out: out('b.csv') });
  const mean = await predictSubmission({ model: [ws.run, second], data: ws.data, out: out('mean.csv') });
  const rank = await predictSubmission({ model: [ws.run, second], data: ws.data, out: out('rank.csv'), combine: 'rank' });
  t.is(mean.members.length, 2);
  t.is(rank.combine, 'rank');
  const [ra, rb, rm_, rr] = await Promise.all(['a.csv', 'b.csv', 'mean.csv', 'rank.csv'].map((f) => readCsv(out(f))));
  t.deepEqual(rm_!.map((r) => r.id), ra!.map((r) => r.id));
  const pa = ra!.map((r) => Number(r.label)), pb = rb!.map((r) => Number(r.label));
  rm_!.forEach((r, i) => t.true(Math.abs(Number(r.label) - (pa[i]! + pb[i]!) / 2) < 1e-6, `${r.id}`));
  const want = combineScores([Float32Array.from(pa), Float32Array.from(pb)], 'rank');
  rr!.forEach((r, i) => t.true(Math.abs(Number(r.label) - want[i]!) < 1e-6, `${r.id}`));
  t.is(a.images, mean.images);
  t.is(b.images, rank.images);
});

test('evaluate with two models: the ensemble\'s AUC from its scores, each member\'s AUC beside it (CLI: --model twice)', async (t) => {
  const r = await evaluateModel({ model: [ws.run, second], data: ws.data, split: 'test', out: join(ws.root, 'eval') });
  t.is(r.members.length, 2);
  const rows = await readCsv(r.files.scores);
  t.true(Math.abs(r.auc - pairwiseAuc(rows.map((x) => Number(x.label)), rows.map((x) => Number(x.score)))) < 1e-12);
  for (const [k, model] of [ws.run, second].entries()) {
    const alone = await evaluateModel({ model, data: ws.data, split: 'test', out: join(ws.root, `eval${k}`) });
    t.true(Math.abs(alone.auc - r.members[k]!.auc) < 1e-12, `member ${k}: ${r.members[k]!.auc} vs alone ${alone.auc}`);
  }
  const cli = await histoflow('evaluate', '--model', ws.run, '--model', second, '--combine', 'rank', '--data', ws.data, '--split', 'test', '--out', join(ws.root, 'evalcli'), '--json');
  t.is(cli.code, 0, cli.stderr);
  const j = lastJson(cli.stdout) as { members: unknown[]; combine: string };
  t.is(j.members.length, 2);
  t.is(j.combine, 'rank');
  const bad = await histoflow('evaluate', '--model', ws.run, '--combine', 'median', '--data', ws.data);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /--combine/);
});
