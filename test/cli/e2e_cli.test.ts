/**
 * The user's path through the npm scripts, end to end on a tiny synthetic
 * set, as separate processes (what `npm run train/predict/evaluate` run):
 * synth patches → train (1 epoch) → checkpoint → resume (to 2 epochs) →
 * predict with TTA → submission → evaluate; every output checked against
 * what another output or an independent count says.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { CLI, pairwiseAuc } from '../support/helpers.js';

function run(args: string[]): { json: Record<string, unknown>; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`histoflow ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return { json: JSON.parse(lines[lines.length - 1]!), stderr: r.stderr };
}

function csv(path: string): string[][] {
  return readFileSync(path, 'utf8').trim().split('\n').map((l) => l.split(','));
}


test('synth → train → checkpoint → resume → predict --tta → submission → evaluate', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'histoflow-e2e-'));
  try {
    const data = join(root, 'data'), runDir = join(root, 'runs', 'tiny'), sub = join(root, 'submission.csv');
    run(['synth', 'patches', '--n', '160', '--test', '40', '--size', '48', '--seed', '3', '--out', data, '--json']);

    const common = ['--data', data, '--width', '0.25', '--batch', '16', '--seed', '3', '--out', runDir, '--json'];
    const first = run(['train', ...common, '--epochs', '1']).json;
    t.is(first.epochs, 1);
    t.is(typeof first.best_val_auc, 'number');
    t.true(['tensorflow', 'native', 'cpu'].includes(first.backend as string));
    t.is(first.checkpoint, join(runDir, 'best'));
    for (const f of ['best/model.json', 'best/weights.bin', 'last/model.json', 'last/weights.bin', 'state.json', 'metrics.json', 'metrics.csv', 'curves.png', 'split.json']) {
      t.true(existsSync(join(runDir, f)), f);
    }

    // Resume the checkpointed run to 2 epochs: it continues, it does not restart.
    const resumed = run(['train', '--out', runDir, '--resume', '--epochs', '2', '--json']).json;
    t.is(resumed.epochs, 2);
    t.is(resumed.resumed_from, 1);
    t.is(resumed.backend, first.backend);
    const metrics = JSON.parse(readFileSync(join(runDir, 'metrics.json'), 'utf8')) as { epochs: Array<{ epoch: number; val_auc: number }> };
    t.deepEqual(metrics.epochs.map((e) => e.epoch), [1, 2]);
    t.is(resumed.best_val_auc, Math.max(...metrics.epochs.map((e) => e.val_auc)));
    t.is(csv(join(runDir, 'metrics.csv')).length, 3, 'header + 2 epochs');

    // The Kaggle submission: every id of sample_submission.csv, in its order, probabilities.
    const predicted = run(['predict', '--model', runDir, '--data', data, '--tta', '--out', sub, '--json']).json;
    t.is(predicted.tta, true);
    t.is(predicted.images, 40);
    const expected = csv(join(data, 'sample_submission.csv'));
    const rows = csv(sub);
    t.deepEqual(rows[0], ['id', 'label']);
    t.deepEqual(rows.slice(1).map((r) => r[0]), expected.slice(1).map((r) => r[0]));
    for (const r of rows.slice(1)) {
      const p = Number(r[1]);
      t.true(p >= 0 && p <= 1, `probability ${r[1]}`);
    }

    // Evaluate on the labelled test split: the AUC is the pairwise count on its own scores.
    const evalDir = join(root, 'eval');
    const evaluated = run(['evaluate', '--model', runDir, '--data', data, '--split', 'test', '--tta', '--out', evalDir, '--json']).json as { auc: number; n: number };
    const report = JSON.parse(readFileSync(join(evalDir, 'evaluation.json'), 'utf8')) as { auc: number; n: number; confusion: Record<string, number> };
    t.is(report.auc, evaluated.auc);
    t.is(report.n, 40);
    t.is(Object.values(report.confusion).reduce((a, b) => a + b, 0), 40);
    const scores = csv(join(evalDir, 'scores.csv')).slice(1).map((r) => ({ label: Number(r[1]), score: Number(r[2]) }));
    t.true(Math.abs(pairwiseAuc(scores.map((r) => r.label), scores.map((r) => r.score)) - report.auc) < 1e-12);
    // TTA scores of evaluate and the submission's are the same model on the same images.
    const byId = new Map(rows.slice(1).map((r) => [r[0], Number(r[1])]));
    const evalRows = csv(join(evalDir, 'scores.csv')).slice(1);
    for (const r of evalRows) t.true(Math.abs(byId.get(r[0]!)! - Number(r[2])) < 1e-6, `id ${r[0]}`);
    t.true(existsSync(join(evalDir, 'roc.png')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
