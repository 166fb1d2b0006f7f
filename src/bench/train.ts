/**
 * The train suite: images/s of the zoo's `baseline` CNN and `resnet`
 * (src/models/zoo.ts: what `histoflow train` builds) at batch 64, 96x96x3 —
 * a training step (`trainOnBatch`: forward, gradients, Adam, binary
 * cross-entropy) and inference (`predict` + dataSync) — on the `native`
 * TF.js backend (and `tensorflow` where installed), against PyTorch
 * (benchmarks/peers/train_torch.py: the same network, asserted by its
 * parameter and FLOP counts) in every configuration a PyTorch user would
 * reach for: eager NCHW, eager channels_last, and torch.jit.trace of each
 * (frozen for inference). The best configuration is the peer; the others are
 * rows beside it.
 *
 * Same threads on both sides: every measurement runs at 1 thread and at all
 * cores, each in a process of its own (train_worker.ts for ours, the peer
 * script for PyTorch), so peak RSS (getrusage ru_maxrss) is that side's own
 * and the thread count is fixed before any runtime starts: OMP_NUM_THREADS
 * for both (oneDNN's OpenMP threads on our side; PyTorch's intra-op pool),
 * plus the addon's `setThreads` on ours and `torch.set_num_threads` on
 * theirs. Both sides take the same steps on the same batch size: the first
 * step timed alone, `warmup` untimed, `repeats` timed (median).
 *
 * Beside the speed: GFLOP/s achieved (network_cost.ts: 2·MACs of convs and
 * dense layers per image; a training step counted as 3x the forward pass)
 * against this machine's measured fp32 peak at the same thread count (a
 * 2048³ SGEMM through the addon's matmul: oneDNN's sgemm when linked), and
 * each side's peak RSS. The issue's targets (native ≥ 1.25x the best peer;
 * peak RSS ≤ 1.5x the peer's) are columns of the summary and lines of the
 * targets section: reported, never part of the exit status. A case that
 * throws, or a peer whose network differs from ours, fails the case.
 *
 * Plain `tfjs-cpu` is not timed at this size: one step takes many minutes.
 */
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';

import { packageRoot } from '../../bindings/loader.js';
import { baselineCnn } from '../models/baseline_cnn.js';
import { trainingBackendStatus, type TrainingBackend } from '../tfjs/backend.js';
import { BEST_PEER, type Suite, type SuiteContext } from './harness.js';
import { TRAIN_FLOPS_PER_FORWARD } from './network_cost.js';
import { PYTHON, runProcess } from './suite_support.js';
import type { GemmWorkerResult, Timing, TrainJob, TrainWorkerResult } from './train_worker.js';

const MODELS = ['baseline', 'resnet'] as const;
const BATCH = 64;
const SIZE = 96;
/** The issue's targets: native ≥ this times the best peer configuration, in images/s … */
export const SPEED_TARGET = 1.25;
/** … and peak RSS ≤ this times the peer's. */
export const RSS_TARGET = 1.5;
/** The side of the square SGEMM whose speed is the machine's fp32 peak. */
const GEMM_N = 2048;
const GEMM_REPEATS = 5;
/** Whether the workers run 3×3 convolutions as Winograd (they inherit the environment; native_backend.ts). */
const WINOGRAD = process.env.HISTOFLOW_NN_WINOGRAD !== '0';

/** The PyTorch configurations, each a row `peer:torch-<name>`. */
export const PEER_CONFIGS = [
  { name: 'eager-nchw', layout: 'nchw', jit: 0 },
  { name: 'eager-cl', layout: 'cl', jit: 0 },
  { name: 'jit-nchw', layout: 'nchw', jit: 1 },
  { name: 'jit-cl', layout: 'cl', jit: 1 },
] as const;

interface Sizes {
  batch: number;
  size: number;
  warmup: number;
  repeats: number;
  gemmN: number;
}

function sizes(ctx: SuiteContext): Sizes {
  const { quick, repeats } = ctx.options;
  // --quick: the whole path (every process, config and check) on a tiny batch; not a measurement
  if (quick) return { batch: 4, size: 32, warmup: 0, repeats: repeats ?? 1, gemmN: 256 };
  return { batch: BATCH, size: SIZE, warmup: 1, repeats: repeats ?? 3, gemmN: GEMM_N };
}

/**
 * The baseline CNN (96², seed 1) and a fixed random batch on TF.js's current
 * backend: what `bench data` compares the loader with.
 */
export function baselineCnnBatch(batchSize: number = BATCH): { model: tf.LayersModel; x: tf.Tensor4D; y: tf.Tensor; dispose(): void } {
  const model = baselineCnn({ inputSize: SIZE, seed: 1 });
  const x = tf.randomUniform([batchSize, SIZE, SIZE, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
  const y = tf.cast(tf.greater(tf.randomUniform([batchSize, 1], 0, 1, 'float32', 2), 0.5), 'float32');
  return { model, x, y, dispose: () => { tf.dispose([x, y]); model.dispose(); } };
}

/** Thread counts every case runs at: 1 and all cores. */
export function threadCounts(cores: number = cpus().length): number[] {
  return [...new Set([1, Math.max(1, cores)])];
}

function pinnedEnv(threads: number): NodeJS.ProcessEnv {
  const n = String(threads);
  return { ...process.env, OMP_NUM_THREADS: n, MKL_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n };
}

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'train_worker.js');

async function runWorker<T>(job: object, threads: number): Promise<T> {
  const r = await runProcess(process.execPath, [WORKER, JSON.stringify(job)], pinnedEnv(threads));
  if (r.code !== 0) throw new Error(`train_worker exited with ${r.code}: ${r.stderr.trim().split('\n').pop() ?? ''}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as T;
}

interface PeerOutput {
  model: string;
  layout: string;
  jit: boolean;
  threads: number;
  torch: string;
  mkldnn: boolean;
  trainable_params: number;
  forward_flops_per_image: number;
  layers: string[];
  train: Timing;
  infer: Timing;
  train_cores_busy: number;
  max_rss_bytes: number;
  steps: { train: number; infer: number };
}

async function runPeer(args: string[], threads: number): Promise<PeerOutput | { unsupported: string }> {
  const script = join(packageRoot(), 'benchmarks', 'peers', 'train_torch.py');
  const r = await runProcess(PYTHON, [script, ...args], pinnedEnv(threads));
  if (r.code !== 0) throw new Error(`train_torch.py exited with ${r.code}: ${r.stderr.trim().split('\n').pop() ?? ''}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as PeerOutput | { unsupported: string };
}

/** One measured side of one (model, threads): what the summary needs. */
interface Side {
  backend: string;
  threads: number;
  rate: { train: number; infer: number };
  maxRssBytes: number;
  /** CPU seconds ÷ wall seconds over the timed training steps. */
  coresBusy: number;
}

interface NetworkShape {
  flops: number;
  params: number;
  layers: string[];
}

/**
 * How many layer signatures one network has that the other lacks (as
 * multisets: a functional model may list a shortcut conv elsewhere than
 * PyTorch calls it), and the first of them.
 */
export function layerDifference(ours: readonly string[], theirs: readonly string[]): { count: number; first: string | null } {
  const left = new Map<string, number>();
  for (const l of ours) left.set(l, (left.get(l) ?? 0) + 1);
  const extra: string[] = [];
  for (const l of theirs) {
    const k = left.get(l) ?? 0;
    if (k > 0) left.set(l, k - 1);
    else extra.push(`peer has '${l}'`);
  }
  const missing = [...left.entries()].flatMap(([l, k]) => Array.from({ length: k }, () => `ours has '${l}'`));
  const all = [...missing, ...extra];
  return { count: all.length, first: all[0] ?? null };
}

const MODES = ['train', 'infer'] as const;
type Mode = (typeof MODES)[number];

function caseName(model: string, mode: Mode, batch: number, threads: number): string {
  return `${model}-${mode}-b${batch}-${threads}t`;
}

const MiB = 2 ** 20;

function record(
  ctx: SuiteContext,
  model: string,
  s: Sizes,
  threads: number,
  backend: string,
  t: { train: Timing; infer: Timing; flops: number; maxRssBytes: number; coresBusy: number; steps: { train: number; infer: number } },
  extra: Record<string, unknown>,
): Side {
  const rate = { train: 0, infer: 0 };
  for (const mode of MODES) {
    const timing = t[mode];
    const value = s.batch / timing.median_s;
    rate[mode] = value;
    const flops = t.flops * (mode === 'train' ? TRAIN_FLOPS_PER_FORWARD : 1);
    ctx.record(caseName(model, mode, s.batch, threads), backend, value, 'images/s', {
      ...timing,
      batch: s.batch,
      input: `${s.size}x${s.size}x3`,
      threads,
      steps: t.steps[mode],
      gflops: (flops * value) / 1e9,
      peakRssMiB: Math.round(t.maxRssBytes / MiB),
      ...(mode === 'train' ? { coresBusy: Math.round(t.coresBusy * 100) / 100 } : {}),
      ...extra,
    });
    ctx.log(`train ${caseName(model, mode, s.batch, threads)} ${backend}: ${value.toFixed(1)} images/s (median ${(timing.median_s * 1000).toFixed(0)} ms of ${timing.repeats}, first ${(timing.first_s * 1000).toFixed(0)} ms), peak RSS ${(t.maxRssBytes / MiB).toFixed(0)} MiB`);
  }
  return { backend, threads, rate, maxRssBytes: t.maxRssBytes, coresBusy: t.coresBusy };
}

/** The fp32 peak at each thread count: best of a few large SGEMMs through the addon. */
async function measurePeak(ctx: SuiteContext, s: Sizes, threads: number[]): Promise<Map<number, number>> {
  const peak = new Map<number, number>();
  const found: Record<string, string> = {};
  for (const n of threads) {
    try {
      const g = await runWorker<GemmWorkerResult>({ job: 'gemm', threads: n, n: s.gemmN, repeats: GEMM_REPEATS }, n);
      peak.set(n, g.gflops);
      found[`${n}t`] = `${g.gflops.toFixed(1)} GFLOP/s (${g.engine}, ${g.n}³, best of ${GEMM_REPEATS})`;
      ctx.log(`train fp32 peak ${n}t: ${g.gflops.toFixed(1)} GFLOP/s (${g.engine} ${g.n}³)`);
    } catch (e) {
      found[`${n}t`] = `not measured: ${e instanceof Error ? e.message : String(e)}`;
    }
  }
  ctx.environment('fp32Peak', found);
  return peak;
}

function fmt(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
}

async function run(ctx: SuiteContext): Promise<void> {
  const s = sizes(ctx);
  const threads = threadCounts();
  const status = await trainingBackendStatus();
  ctx.environment('trainingBackends', Object.fromEntries(status.map((b) => [b.name, b.available ? b.detail : `unavailable: ${b.detail}`])));
  const ours: TrainingBackend[] = [];
  for (const b of status) {
    if (!b.available) continue;
    if (b.name === 'tfjs-cpu') {
      ctx.note(`train: tfjs-cpu not timed at ${s.size}x${s.size}, batch ${s.batch}: one training step takes many minutes (its Conv2DBackpropFilter alone ~2 min per step at 32x32, batch 8)`);
    } else {
      ours.push(b.name);
      if (b.name === 'tensorflow') ctx.note('train: the tensorflow backend runs libtensorflow\'s own thread pool, which OMP_NUM_THREADS does not pin: its 1-thread rows are not pinned');
    }
  }
  ctx.environment('trainSetup', {
    batch: s.batch,
    input: `${s.size}x${s.size}x3`,
    steps: `first + ${s.warmup} warm-up + ${s.repeats} timed (median), each side, each process`,
    threads: threads.join(' and '),
    pinning: 'OMP_NUM_THREADS=N for every process; histoflow addon setThreads(N); torch.set_num_threads(N)',
  });

  let peer: { ok: true; version: string } | { ok: false; reason: string };
  if (!existsSync(PYTHON)) peer = { ok: false, reason: `${PYTHON} not found` };
  else {
    const probe = await runProcess(PYTHON, ['-c', 'import torch; print(torch.__version__)'], process.env).catch((e: unknown) => ({ code: 1, stdout: '', stderr: String(e) }));
    peer = probe.code === 0 ? { ok: true, version: probe.stdout.trim() } : { ok: false, reason: `${PYTHON} has no torch (apt install python3-torch)` };
  }
  ctx.environment('peer:torch', peer.ok ? `torch ${peer.version}, ${PYTHON}; configurations ${PEER_CONFIGS.map((c) => c.name).join(', ')}` : `not run: ${peer.reason}`);
  if (!peer.ok) ctx.note(`peer:torch not run: ${peer.reason}`);

  const peak = await measurePeak(ctx, s, threads);
  const summary: string[][] = [];
  const overPeak: string[] = [];

  for (const model of MODELS) {
    const sides: Side[] = [];
    let ourCost: NetworkShape | null = null;
    const peerCosts = new Map<string, NetworkShape>();
    for (const n of threads) {
      for (const backend of ours) {
        const job: TrainJob = { job: 'train', model, backend, threads: n, batch: s.batch, size: s.size, warmup: s.warmup, repeats: s.repeats };
        try {
          const r = await runWorker<TrainWorkerResult>(job, n);
          ourCost = { flops: r.forwardFlopsPerImage, params: r.trainableParams, layers: r.layers };
          sides.push(record(ctx, model, s, n, backend, {
            train: r.train, infer: r.infer, flops: r.forwardFlopsPerImage, maxRssBytes: r.maxRssBytes, coresBusy: r.trainCoresBusy, steps: r.steps,
          }, { engine: r.engine, addonThreads: r.addonThreads, OMP_NUM_THREADS: r.ompNumThreads }));
        } catch (e) {
          for (const mode of MODES) ctx.fail(caseName(model, mode, s.batch, n), backend, e);
          ctx.log(`train ${model} ${backend} ${n}t: failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      if (!peer.ok) continue;
      for (const c of PEER_CONFIGS) {
        const backend = `peer:torch-${c.name}`;
        const args = ['--model', model, '--batch', String(s.batch), '--size', String(s.size), '--threads', String(n),
          '--layout', c.layout, '--jit', String(c.jit), '--repeats', String(s.repeats), '--warmup', String(s.warmup)];
        try {
          const r = await runPeer(args, n);
          if ('unsupported' in r) {
            ctx.note(`train ${model} ${backend} ${n}t not timed: ${r.unsupported}`);
            continue;
          }
          if (r.threads !== n) throw new Error(`torch ran ${r.threads} threads, not the ${n} asked for`);
          peerCosts.set(backend, { flops: r.forward_flops_per_image, params: r.trainable_params, layers: r.layers });
          sides.push(record(ctx, model, s, n, backend, {
            train: r.train, infer: r.infer, flops: r.forward_flops_per_image, maxRssBytes: r.max_rss_bytes, coresBusy: r.train_cores_busy, steps: r.steps,
          }, { torch: r.torch, layout: r.layout, jit: r.jit, mkldnn: r.mkldnn }));
        } catch (e) {
          for (const mode of MODES) ctx.fail(caseName(model, mode, s.batch, n), backend, e);
          ctx.log(`train ${model} ${backend} ${n}t: failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }

    // the peer must have built the same network: layer by layer, parameters and FLOPs exactly equal (asserted)
    if (ourCost) {
      for (const [backend, cost] of peerCosts) {
        const { count, first } = layerDifference(ourCost.layers, cost.layers);
        if (count) ctx.note(`train ${model}: ${backend}'s network differs from ours: ${first}`);
        ctx.check(`${model}-network`, backend, 'native', 'conv/dense layers differing (kernel/stride, channels, output size)', count, 0);
        ctx.check(`${model}-network`, backend, 'native', 'trainable parameters, |peer − ours|', Math.abs(cost.params - ourCost.params), 0);
        ctx.check(`${model}-network`, backend, 'native', 'forward FLOPs per image, |peer − ours| / ours', Math.abs(cost.flops - ourCost.flops) / ourCost.flops, 0);
      }
      ctx.environment(`${model}Network`, `${ourCost.params} trainable parameters, ${(ourCost.flops / 1e9).toFixed(3)} GFLOP forward per ${s.size}² image (x${TRAIN_FLOPS_PER_FORWARD} for a training step)`);
    }

    // the summary: ours against the best peer configuration at the same thread count
    const flops = ourCost?.flops;
    for (const mode of MODES) {
      const peerSides = sides.filter((x) => x.backend.startsWith('peer:'));
      // per core: images/s ÷ threads; the peer's best per-core figure over every configuration and thread count
      const peerBestPerCore = Math.max(0, ...peerSides.map((x) => x.rate[mode] / x.threads));
      for (const n of threads) {
        const best = peerSides.filter((x) => x.threads === n).sort((a, b) => b.rate[mode] - a.rate[mode])[0];
        for (const o of sides.filter((x) => x.threads === n && !x.backend.startsWith('peer:'))) {
          const ratio = best ? o.rate[mode] / best.rate[mode] : undefined;
          const perCore = peerBestPerCore > 0 ? o.rate[mode] / n / peerBestPerCore : undefined;
          const gf = (r: number) => (flops ? (r * flops * (mode === 'train' ? TRAIN_FLOPS_PER_FORWARD : 1)) / 1e9 : undefined);
          const pk = peak.get(n);
          const ourGf = gf(o.rate[mode]);
          const rssRatio = best ? o.maxRssBytes / best.maxRssBytes : undefined;
          if (!WINOGRAD && ourGf !== undefined && pk !== undefined && ourGf > pk) overPeak.push(`${model} ${mode} ${n}t`);
          summary.push([
            model, mode, String(n), o.backend, fmt(o.rate[mode]),
            best ? best.backend.replace('peer:', '') : '—', best ? fmt(best.rate[mode]) : '—',
            ratio === undefined ? '—' : `${ratio.toFixed(2)}x`,
            perCore === undefined ? '—' : `${perCore.toFixed(2)}x`,
            `${fmt(ourGf)}${ourGf !== undefined && pk ? ` (${((100 * ourGf) / pk).toFixed(0)}%)` : ''}`,
            best ? fmt(gf(best.rate[mode])) : '—',
            fmt(pk),
            `${fmt(o.coresBusy, 2)} / ${best ? fmt(best.coresBusy, 2) : '—'}`,
            fmt(o.maxRssBytes / MiB, 0), best ? fmt(best.maxRssBytes / MiB, 0) : '—',
            ratio === undefined ? 'not measured' : ratio >= SPEED_TARGET ? 'met' : 'not met',
            rssRatio === undefined ? 'not measured' : `${rssRatio.toFixed(2)}x ${rssRatio <= RSS_TARGET ? 'met' : 'not met'}`,
          ]);
          if (n === Math.max(...threads) && o.backend === 'native') ctx.target(caseName(model, mode, s.batch, n), 'native', BEST_PEER, SPEED_TARGET);
        }
      }
    }
  }

  if (overPeak.length) {
    ctx.note(`train: ${overPeak.join(', ')} ran above the fp32 peak measured at the same thread count: that SGEMM was slowed (a contended machine: see the load average), so its % of peak is not meaningful here`);
  }
  ctx.table(
    `native vs PyTorch's best configuration (batch ${s.batch}, ${s.size}², same threads, same steps, one process per row)`,
    ['model', 'mode', 'threads', 'ours', 'ours img/s', 'best peer', 'peer img/s', 'ratio', 'per-core ratio', 'ours GFLOP/s (% of peak)', 'peer GFLOP/s', 'fp32 peak GFLOP/s', 'cores busy ours / peer', 'ours peak RSS MiB', 'peer peak RSS MiB', `target ${SPEED_TARGET}x`, `RSS ≤ ${RSS_TARGET}x peer`],
    summary,
  );
  ctx.note(
    `train: ratio = ours ÷ the best PyTorch configuration at the same thread count; per-core ratio = (ours img/s ÷ threads) ÷ the peer's best img/s per thread over every configuration and thread count; ` +
      `GFLOP/s = images/s × FLOPs per image (2·MACs of convs and dense layers, training step = ${TRAIN_FLOPS_PER_FORWARD}x forward); fp32 peak = best ${s.gemmN}³ SGEMM through the addon at that thread count; ` +
      `cores busy = CPU time ÷ wall time over the timed training steps (shows the pinning held); ` +
      (WINOGRAD
        ? `ours runs its 3×3 stride-1 convolutions (forward and input gradient) as Winograd F(4×4, 3×3), a quarter of the multiplies: its GFLOP/s counts the direct convolution's FLOPs, as the peer's do, so it can exceed the fp32 peak (HISTOFLOW_NN_WINOGRAD=0 for the direct kernels); `
        : '') +
      `peak RSS = getrusage ru_maxrss of the process that ran that row (train and inference steps; each side's runtime included: Node + TF.js, Python + torch)${ctx.options.quick ? '; --quick: tiny batch, not a measurement' : ''}`,
  );
}

export const trainSuite: Suite = {
  name: 'train',
  description: 'zoo baseline and resnet (96x96, batch 64) training step and inference in images/s, native vs every PyTorch configuration, 1 thread and all cores, GFLOP/s vs measured fp32 peak, peak RSS',
  run,
};
