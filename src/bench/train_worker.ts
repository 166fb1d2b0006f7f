/**
 * One measurement of the train suite, in a process of its own so that its
 * peak RSS is its own and its thread count is fixed from the start (the
 * parent sets OMP_NUM_THREADS, which oneDNN's OpenMP runtime reads once;
 * `setThreads` pins the addon's own kernels to the same count).
 *
 *   node train_worker.js '{"job":"train","model":"baseline","backend":"native","threads":1,"batch":64,"size":96,"warmup":1,"repeats":3}'
 *   node train_worker.js '{"job":"gemm","threads":2,"n":2048,"repeats":3}'
 *
 * train: the zoo model (src/models/zoo.ts, seed 1: what `histoflow train`
 * builds) on a fixed random batch; the same step count as the PyTorch peer:
 * the first step timed alone, `warmup` untimed, `repeats` timed (median), then
 * inference the same way, on the batch-norm-folded copy `histoflow predict`
 * runs (src/models/fold.ts), the whole batch in one pass as the peer does. gemm: fp32 C = A·B of n×n matrices through the
 * addon's matmul (oneDNN's sgemm when linked), best of `repeats`: this
 * machine's measured fp32 peak. Prints one JSON line.
 */
import * as tf from '@tensorflow/tfjs';

import { loadAddon } from '../../bindings/loader.js';
import { foldBatchNorm } from '../models/fold.js';
import { buildModel, isZooModel } from '../models/zoo.js';
import { TRAINING_BACKENDS, useTrainingBackend, type TrainingBackend } from '../tfjs/backend.js';
import { setNnEngine } from '../tfjs/native_backend.js';
import { measure, type Measurement } from './harness.js';
import { networkCost } from './network_cost.js';

export interface TrainJob {
  job: 'train';
  model: string;
  backend: TrainingBackend;
  /** For the native backend: 'onednn' or 'builtin' (default: the addon's default). */
  engine?: 'onednn' | 'builtin';
  threads: number;
  batch: number;
  size: number;
  warmup: number;
  repeats: number;
}

export interface GemmJob {
  job: 'gemm';
  threads: number;
  n: number;
  repeats: number;
}

export interface Timing {
  median_s: number;
  first_s: number;
  min_s: number;
  repeats: number;
  samples_s: number[];
}

export interface TrainWorkerResult {
  job: 'train';
  model: string;
  backend: string;
  engine: string | null;
  threads: number;
  /** What the addon's kernels and OpenMP report inside this process. */
  addonThreads: number | null;
  ompNumThreads: string | null;
  forwardFlopsPerImage: number;
  trainableParams: number;
  /** network_cost.ts's per-layer signatures. */
  layers: string[];
  train: Timing;
  infer: Timing;
  /** CPU seconds / wall seconds over the timed training steps: how many cores were busy. */
  trainCoresBusy: number;
  /** Peak resident set of this process (getrusage ru_maxrss), bytes. */
  maxRssBytes: number;
  steps: { train: number; infer: number };
}

export interface GemmWorkerResult {
  job: 'gemm';
  threads: number;
  n: number;
  engine: string;
  gflops: number;
  best_s: number;
  median_s: number;
}

function positiveInt(name: string, value: unknown, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new RangeError(`Expected an integer ≥ ${min} for ${name} but received ${JSON.stringify(value)}`);
  }
  return value;
}

function timing(m: Measurement): Timing {
  return { median_s: m.median, first_s: m.first, min_s: m.min, repeats: m.repeats, samples_s: m.samples };
}

function pinThreads(threads: number): number | null {
  const s = loadAddon();
  if (!s.ok) return null;
  s.addon.setThreads(threads);
  return s.addon.getThreads();
}

async function runTrain(job: TrainJob): Promise<TrainWorkerResult> {
  if (!isZooModel(job.model)) throw new RangeError(`Expected a zoo model for model but received '${job.model}'`);
  if (!(TRAINING_BACKENDS as readonly string[]).includes(job.backend)) {
    throw new RangeError(`Expected one of ${TRAINING_BACKENDS.join(', ')} for backend but received '${job.backend}'`);
  }
  const threads = positiveInt('threads', job.threads);
  const batch = positiveInt('batch', job.batch);
  const size = positiveInt('size', job.size, 8);
  const warmup = positiveInt('warmup', job.warmup, 0);
  const repeats = positiveInt('repeats', job.repeats);
  const addonThreads = pinThreads(threads);
  await useTrainingBackend(job.backend);
  if (job.backend === 'native' && job.engine) setNnEngine(job.engine);
  const addon = loadAddon();
  const engine = job.backend === 'native' && addon.ok ? addon.addon.nn.info().engine : null;

  const { model } = await buildModel(job.model, { inputSize: size, seed: 1 });
  const cost = networkCost(model);
  const x = tf.randomUniform([batch, size, size, 3], -1, 1, 'float32', 1);
  const y = tf.cast(tf.greater(tf.randomUniform([batch, 1], 0, 1, 'float32', 2), 0.5), 'float32');
  // exactly first + warmup + repeats calls, like the peer's time_calls: no time bounds
  const fixed = { warmup, repeats, maxRepeats: repeats };

  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const train = await measure(async () => {
    await model.trainOnBatch(x, y);
  }, fixed);
  const cpu = process.cpuUsage(cpu0);
  const wall = (performance.now() - wall0) / 1000;
  // Inference as `histoflow predict` runs it: batch norms folded into their convolutions
  // (src/models/fold.ts; the peer's torch.jit.freeze does the same), the whole batch in one pass.
  const { model: folded } = await foldBatchNorm(model);
  const infer = await measure(() => {
    const p = folded.predict(x, { batchSize: batch }) as tf.Tensor;
    p.dataSync();
    p.dispose();
  }, fixed);
  tf.dispose([x, y]);
  if (folded !== model) folded.dispose();
  model.dispose();
  return {
    job: 'train',
    model: job.model,
    backend: job.backend,
    engine,
    threads,
    addonThreads,
    ompNumThreads: process.env.OMP_NUM_THREADS ?? null,
    forwardFlopsPerImage: cost.forwardFlopsPerImage,
    trainableParams: cost.trainableParams,
    layers: cost.layers,
    train: timing(train),
    infer: timing(infer),
    trainCoresBusy: (cpu.user + cpu.system) / 1e6 / wall,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    steps: { train: 1 + warmup + repeats, infer: 1 + warmup + repeats },
  };
}

function runGemm(job: GemmJob): GemmWorkerResult {
  const threads = positiveInt('threads', job.threads);
  const n = positiveInt('n', job.n, 16);
  const repeats = positiveInt('repeats', job.repeats);
  pinThreads(threads);
  const s = loadAddon();
  if (!s.ok) throw new Error(`the fp32 peak is measured through histoflow's addon, which did not load: ${s.reason}`);
  const nn = s.addon.nn;
  if (nn.info().onednn) nn.setEngine('onednn');
  const a = new Float32Array(n * n).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const b = new Float32Array(n * n).map((_, i) => ((i * 104729) % 1000) / 1000 - 0.5);
  const c = new Float32Array(n * n);
  const once = () => nn.batchMatMul([1, 1, 1, n, n, n, 0, 0], a, b, null, 'linear', 0, c);
  once(); // first call: page faults, oneDNN's kernel selection
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    once();
    samples.push((performance.now() - t0) / 1000);
  }
  const sorted = [...samples].sort((p, q) => p - q);
  const best = sorted[0]!;
  return {
    job: 'gemm',
    threads,
    n,
    engine: nn.info().engine === 'onednn' ? 'oneDNN dnnl_sgemm' : 'histoflow built-in GEMM (oneDNN not linked)',
    gflops: (2 * n ** 3) / best / 1e9,
    best_s: best,
    median_s: sorted[sorted.length >> 1]!,
  };
}

async function main(): Promise<void> {
  const arg = process.argv[2];
  if (!arg) throw new TypeError('Expected a JSON job for argument 1 but received nothing');
  const job = JSON.parse(arg) as TrainJob | GemmJob;
  const result = job.job === 'train' ? await runTrain(job) : job.job === 'gemm' ? runGemm(job) : null;
  if (!result) throw new RangeError(`Expected 'train' or 'gemm' for job but received ${JSON.stringify((job as { job?: unknown }).job)}`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
