/**
 * The train suite's honesty: the PyTorch peer builds the same networks as the
 * zoo (asserted by parameter and FLOP counts), FLOPs are counted from layer
 * shapes, each side runs pinned to the thread count asked for, and
 * `bench train --quick` reports every peer configuration at 1 thread and at
 * all cores with peak RSS on both sides.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { buildModel } from '../../src/models/zoo.js';
import type { BenchReport } from '../../src/bench/harness.js';
import { networkCost } from '../../src/bench/network_cost.js';
import { PYTHON } from '../../src/bench/suite_support.js';
import { PEER_CONFIGS, layerDifference, threadCounts } from '../../src/bench/train.js';
import type { TrainWorkerResult } from '../../src/bench/train_worker.js';
import { IN_CI, ROOT, histoflow } from '../support/helpers.js';

const exec = promisify(execFile);
const WORKER = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'bench', 'train_worker.js');
const PEER = join(ROOT, 'benchmarks', 'peers', 'train_torch.py');

/** Whether the peers' Python has torch. .ci/run installs python3-torch: in CI a missing torch fails the tests that need it instead of skipping them. */
const TORCH = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

test('the baseline CNN\'s forward FLOPs are counted from its layer shapes', async (t) => {
  await tf.setBackend('cpu');
  const { model } = await buildModel('baseline', { inputSize: 96 });
  const cost = networkCost(model);
  model.dispose();
  // 3x3 convs: 96²·(3·32 + 32·32) + 48²·(32·64 + 64·64) + 24²·(64·128 + 128·128), ·9; dense 128 → 1
  const macs = 9 * (96 * 96 * (3 * 32 + 32 * 32) + 48 * 48 * (32 * 64 + 64 * 64) + 24 * 24 * (64 * 128 + 128 * 128)) + 128;
  t.is(cost.forwardFlopsPerImage, 2 * macs);
  t.deepEqual(cost.counted, { Conv2D: 6, Dense: 1 });
  // convs (no bias) + batch norm γ, β + dense weights and bias
  t.is(cost.trainableParams, 9 * (3 * 32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128) + 2 * (2 * 32 + 2 * 64 + 2 * 128) + 129);
});

for (const model of ['baseline', 'resnet'] as const) {
  const title = `the PyTorch peer builds the zoo's ${model}: the same layers, trainable parameters and forward FLOPs`;
  (TORCH || IN_CI ? test : test.skip)(TORCH || IN_CI ? title : `${title} (skipped: ${PYTHON} has no torch)`, async (t) => {
    if (!TORCH) t.fail(`${PYTHON} has no torch (CI installs python3-torch)`);
    await tf.setBackend('cpu');
    const size = 40;
    const built = await buildModel(model, { inputSize: size });
    const ours = networkCost(built.model);
    built.model.dispose();
    const { stdout } = await exec(PYTHON, [PEER, '--model', model, '--batch', '2', '--size', String(size), '--threads', '1',
      '--layout', 'nchw', '--jit', '0', '--repeats', '1', '--warmup', '0'], { env: { ...process.env, OMP_NUM_THREADS: '1' } });
    const peer = JSON.parse(stdout.trim().split('\n').pop()!) as { trainable_params: number; forward_flops_per_image: number; layers: string[]; max_rss_bytes: number };
    // layer by layer: kernel/stride, channels in→out, output size of every conv and dense layer
    t.deepEqual([...peer.layers].sort(), [...ours.layers].sort());
    t.is(peer.layers.length, model === 'baseline' ? 7 : 16);
    t.is(peer.trainable_params, ours.trainableParams);
    t.is(peer.forward_flops_per_image, ours.forwardFlopsPerImage);
    t.true(peer.max_rss_bytes > 50 * 2 ** 20, `peer peak RSS ${peer.max_rss_bytes} bytes`);
  });
}

test('the native side runs pinned to the thread count asked for and reports its own peak RSS', async (t) => {
  const job = { job: 'train', model: 'resnet', backend: 'native', threads: 1, batch: 2, size: 16, warmup: 0, repeats: 1 };
  const { stdout } = await exec(process.execPath, [WORKER, JSON.stringify(job)], { env: { ...process.env, OMP_NUM_THREADS: '1' } });
  const r = JSON.parse(stdout.trim()) as TrainWorkerResult;
  t.is(r.threads, 1);
  t.is(r.addonThreads, 1);
  t.is(r.ompNumThreads, '1');
  t.deepEqual(r.steps, { train: 2, infer: 2 });
  t.true(r.maxRssBytes > 50 * 2 ** 20, `peak RSS ${r.maxRssBytes} bytes`);
  t.true(r.train.median_s > 0 && r.infer.median_s > 0);
});

test('a worker asked for an unknown model names the parameter and exits non-zero', async (t) => {
  const job = { job: 'train', model: 'alexnet', backend: 'native', threads: 1, batch: 2, size: 16, warmup: 0, repeats: 1 };
  const err = await t.throwsAsync(exec(process.execPath, [WORKER, JSON.stringify(job)]));
  t.regex((err as unknown as { stderr: string }).stderr, /for model but received 'alexnet'/);
});

test('a network that differs in one layer is told apart, naming the layer', (t) => {
  const ours = ['conv 3x3/1 3→16 @32x32', 'conv 1x1/2 16→32 @16x16', 'dense 64→1'];
  t.deepEqual(layerDifference(ours, [ours[2]!, ours[0]!, ours[1]!]), { count: 0, first: null }, 'order does not matter');
  const r = layerDifference(ours, ['conv 3x3/1 3→16 @32x32', 'conv 3x3/2 16→32 @16x16', 'dense 64→1']);
  t.is(r.count, 2);
  t.is(r.first, "ours has 'conv 1x1/2 16→32 @16x16'");
  t.is(layerDifference(ours, [...ours, 'dense 64→1']).count, 1, 'an extra layer counts');
});

test('every case runs at 1 thread and at all cores', (t) => {
  t.deepEqual(threadCounts(1), [1]);
  t.deepEqual(threadCounts(2), [1, 2]);
  t.deepEqual(threadCounts(16), [1, 16]);
});

test('bench train --quick reports both models, every peer configuration at 1 thread and all cores, peak RSS of both sides, and the fp32 peak', async (t) => {
  const r = await histoflow('bench', 'train', '--quick', '--json');
  const report = JSON.parse(r.stdout) as BenchReport;
  t.is(r.code, report.failures.length ? 1 : 0);
  t.deepEqual(report.failures, [], r.stderr);
  t.truthy(report.env.isa.level);
  t.truthy((report.env.fp32Peak as Record<string, string>)['1t']);
  const threads = threadCounts(cpus().length);
  const torch = TORCH || IN_CI;
  for (const model of ['baseline', 'resnet']) {
    for (const mode of ['train', 'infer']) {
      for (const n of threads) {
        const rows = report.results.filter((x) => x.case === `${model}-${mode}-b4-${n}t`);
        const backends = rows.map((x) => x.backend);
        t.true(backends.includes('native'), `${model} ${mode} ${n}t native`);
        if (torch) for (const c of PEER_CONFIGS) t.true(backends.includes(`peer:torch-${c.name}`), `${model} ${mode} ${n}t ${c.name}`);
        for (const x of rows) {
          t.is(x.extra?.threads, n);
          t.true(typeof x.extra?.peakRssMiB === 'number' && (x.extra.peakRssMiB as number) > 0, `${x.case} ${x.backend} peak RSS`);
          t.true(typeof x.extra?.gflops === 'number' && (x.extra.gflops as number) > 0, `${x.case} ${x.backend} GFLOP/s`);
        }
      }
    }
  }
  const summary = report.tables.find((x) => x.suite === 'train');
  t.truthy(summary);
  t.true(summary!.header.includes('per-core ratio') && summary!.header.includes('target 1.25x'));
  t.is(summary!.rows.length, 2 * 2 * threads.length);
  if (torch) {
    // the network identity is asserted for every configuration, and holds
    t.is(report.checks.filter((c) => c.suite === 'train').length, 3 * PEER_CONFIGS.length * 2);
    t.true(report.checks.every((c) => c.pass));
    t.true(summary!.rows.every((row) => ['met', 'not met'].includes(row[summary!.header.indexOf('target 1.25x')]!)), 'every row has a verdict on the 1.25x target');
  }
});
