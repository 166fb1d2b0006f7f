/**
 * The train suite: images/s of the baseline CNN (96x96x3, batch 64) on every
 * available TF.js training backend — a training step (`trainOnBatch`: forward,
 * gradients, Adam) and inference (`predict` + dataSync) — against a PyTorch
 * peer (benchmarks/peers/train_torch.py: same architecture, batch, optimizer,
 * loss; channels-last; 2 threads) on a fixed random batch.
 *
 * `native` runs once per engine this build has (oneDNN when linked, and the
 * built-in GEMM as `native:builtin`). Plain `cpu` is not timed at this size:
 * one step would take many minutes (its Conv2DBackpropFilter alone takes ~2
 * min at 32x32, batch 8); the report says so.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { packageRoot } from '../../bindings/loader.js';
import { baselineCnn } from '../models/baseline_cnn.js';
import { trainingBackendStatus, useTrainingBackend, type TrainingBackend } from '../tfjs/backend.js';
import { setNnEngine } from '../tfjs/native_backend.js';
import { measure, type MeasureOptions, type Suite, type SuiteContext } from './harness.js';
import { PYTHON, runProcess } from './suite_support.js';

const TRAIN = 'baseline-cnn-train-b64';
const INFER = 'baseline-cnn-infer-b64';
const BATCH = 64;
const SIZE = 96;
/** The peer's threads: the measurement (≈28 img/s train, ≈117 infer) used 2. */
const PEER_THREADS = 2;

interface Row {
  name: string;
  backend: TrainingBackend;
  engine?: 'onednn' | 'builtin';
}

function budget(ctx: SuiteContext): MeasureOptions {
  const { quick, repeats } = ctx.options;
  if (quick) return { warmup: 0, repeats: repeats ?? 1, maxTimeMs: 0 };
  return { warmup: 1, repeats: repeats ?? 3, maxTimeMs: 60_000 };
}

/**
 * The baseline CNN (96², seed 1) and a fixed random batch on TF.js's current
 * backend: what this suite times, and what `bench data` compares the loader with.
 */
export function baselineCnnBatch(batchSize: number = BATCH): { model: tf.LayersModel; x: tf.Tensor4D; y: tf.Tensor; dispose(): void } {
  const model = baselineCnn({ inputSize: SIZE, seed: 1 });
  const x = tf.randomUniform([batchSize, SIZE, SIZE, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
  const y = tf.cast(tf.greater(tf.randomUniform([batchSize, 1], 0, 1, 'float32', 2), 0.5), 'float32');
  return { model, x, y, dispose: () => { tf.dispose([x, y]); model.dispose(); } };
}

async function measureBackend(ctx: SuiteContext, row: Row, batchSize: number): Promise<Map<string, number>> {
  const rates = new Map<string, number>();
  await useTrainingBackend(row.backend);
  if (row.engine) setNnEngine(row.engine);
  const net = baselineCnnBatch(batchSize);
  const { model, x, y } = net;
  try {
    for (const [caseName, step] of [
      [TRAIN, async () => { await model.trainOnBatch(x, y); }],
      [INFER, async () => { const p = model.predict(x) as tf.Tensor; p.dataSync(); p.dispose(); }],
    ] as const) {
      try {
        const m = await measure(step, budget(ctx));
        const value = batchSize / m.median;
        rates.set(caseName, value);
        ctx.record(caseName, row.name, value, 'images/s', {
          median_s: m.median, first_s: m.first, min_s: m.min, repeats: m.repeats, batch: batchSize, input: `${SIZE}x${SIZE}x3`,
          ...(row.engine ? { engine: row.engine } : {}),
        });
        ctx.log(`train ${caseName} ${row.name}: ${value.toFixed(1)} images/s (median ${(m.median * 1000).toFixed(0)} ms of ${m.repeats}, first ${(m.first * 1000).toFixed(0)} ms)`);
      } catch (e) {
        ctx.fail(caseName, row.name, e);
        ctx.log(`train ${caseName} ${row.name}: failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  } finally {
    net.dispose();
  }
  return rates;
}

interface PeerOutput {
  train: { median_s: number; first_s: number; min_s: number; repeats: number };
  infer: { median_s: number; first_s: number; min_s: number; repeats: number };
  torch: string;
  threads: number;
  mkldnn: boolean;
}

async function runPeer(ctx: SuiteContext): Promise<void> {
  const script = join(packageRoot(), 'benchmarks', 'peers', 'train_torch.py');
  if (!existsSync(script) || !existsSync(PYTHON)) {
    ctx.note(`peer:torch not run: ${existsSync(PYTHON) ? script : PYTHON} not found`);
    return;
  }
  const env = { ...process.env, OMP_NUM_THREADS: String(PEER_THREADS), MKL_NUM_THREADS: String(PEER_THREADS) };
  const probe = await runProcess(PYTHON, ['-c', 'import torch'], env);
  if (probe.code !== 0) {
    ctx.note(`peer:torch not run: ${PYTHON} has no torch (apt install python3-torch)`);
    return;
  }
  const quick = ctx.options.quick;
  const repeats = ctx.options.repeats ?? (quick ? 1 : 3);
  const r = await runProcess(PYTHON, [script, String(BATCH), String(SIZE), String(PEER_THREADS), String(repeats), String(repeats), quick ? '0' : '1'], env);
  if (r.code !== 0) throw new Error(`train_torch.py exited with ${r.code}: ${r.stderr.trim().split('\n').pop() ?? ''}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as PeerOutput;
  ctx.environment('peer:torch', `torch ${out.torch}, ${out.threads} threads, mkldnn ${out.mkldnn}, channels-last, ${PYTHON}`);
  for (const [caseName, t] of [[TRAIN, out.train], [INFER, out.infer]] as const) {
    const value = BATCH / t.median_s;
    ctx.record(caseName, 'peer:torch', value, 'images/s', { ...t, batch: BATCH, input: `${SIZE}x${SIZE}x3`, threads: out.threads });
    ctx.log(`train ${caseName} peer:torch: ${value.toFixed(1)} images/s (median ${(t.median_s * 1000).toFixed(0)} ms of ${t.repeats})`);
  }
}

async function run(ctx: SuiteContext): Promise<void> {
  const status = await trainingBackendStatus();
  ctx.environment('trainingBackends', status);
  const rows: Row[] = [];
  for (const s of status) {
    if (!s.available) {
      ctx.note(`train: backend ${s.name} not run: ${s.detail}`);
      continue;
    }
    if (s.name === 'native') {
      const { loadAddon } = await import('../../bindings/loader.js');
      const a = loadAddon();
      const onednn = a.ok && a.addon.nn.info().onednn;
      if (onednn) rows.push({ name: 'native', backend: 'native', engine: 'onednn' });
      rows.push({ name: onednn ? 'native:builtin' : 'native', backend: 'native', engine: 'builtin' });
    } else if (s.name === 'tfjs-cpu') {
      ctx.note('train: backend tfjs-cpu not timed at 96x96, batch 64: one training step takes many minutes (TF.js cpu Conv2DBackpropFilter alone takes ~2 min per step at 32x32, batch 8 here)');
    } else {
      rows.push({ name: s.name, backend: s.name });
    }
  }
  const previous = tf.getBackend();
  try {
    for (const row of rows) await measureBackend(ctx, row, BATCH);
  } finally {
    if (previous) await tf.setBackend(previous);
  }
  try {
    await runPeer(ctx);
  } catch (e) {
    ctx.fail(TRAIN, 'peer:torch', e);
    ctx.log(`train peer:torch: failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  ctx.target(TRAIN, 'native', 'peer:torch', 1.0);
}

export const trainSuite: Suite = {
  name: 'train',
  description: 'baseline CNN (96x96, batch 64) training step and inference in images/s per TF.js backend, PyTorch peer',
  run,
};
