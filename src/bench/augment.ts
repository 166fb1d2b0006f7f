/**
 * The augment suite: patches per second of the training-time augmentation
 * pipeline {D4, HED jitter σ 0.05, HSV jitter, blur p 0.5, ImageNet
 * normalize} on 96x96 patches (PCam-sized), for every kernel backend that
 * has an augment kernel (cuda, cpu, gpujs, js), against an
 * OpenCV + numpy implementation of the same ops (`peer:opencv`, single
 * thread, what a PyTorch Dataset would do per patch) on identical patches
 * with identical drawn parameters (histoflow's own draw, passed to the peer).
 *
 * Inputs are real H&E: 512 overlapping 96x96 patches cut from
 * HEnorm_python's example1 (1024²) on a 16 x 32 grid. The timed operation is
 * `augment(batch, pipeline, { seed, backend, out })`, the whole batch,
 * output in host memory. js, far slower, runs on the first 64 patches
 * outside --quick and --repeats (a prefix of the same batch: patches/s is a
 * rate, and patches are independent); every row says which input it ran on.
 *
 * Case `elastic-96`: {D4, elastic deformation α 6 σ 16 on every patch,
 * normalize} on the same patches; its OpenCV peer warps with what
 * albumentations / Simard et al. 2003 do (a per-pixel uniform field smoothed
 * by cv2.GaussianBlur(σ), cv2.remap bilinear with BORDER_REFLECT), scaled to
 * the same RMS displacement: the same work per patch, not the same field, so
 * no output agreement is asserted for it. pipeline-96's outputs are asserted
 * within PIPELINE_VS_OPENCV_TOLERANCE of the peer's, every backend: a miss
 * fails the case. The peer is single-threaded, so native `cpu` also runs
 * pinned to one thread (`cpu:1t`), the same-threads comparison.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { packageRoot } from '../../bindings/loader.js';
import { augment } from '../augment/augment.js';
import { batchParams, drawBatchParams } from '../augment/params.js';
import { checkPipeline, outputShape, type AugmentPipelineInput } from '../augment/pipeline.js';
import { readImage } from '../image.js';
import { availableKernelBackends } from '../kernels/registry.js';
import type { KernelBackend, RgbBatch } from '../kernels/types.js';
import { measure, type MeasureOptions, type Suite, type SuiteContext } from './harness.js';
import { PYTHON, dataFile, isNative, peerLabel, peerWorkerCounts, runProcess, runnersFor, withAddonThreads } from './suite_support.js';

const CASE = 'pipeline-96';
const ELASTIC_CASE = 'elastic-96';
const PATCH = 96;

/** The benchmarked pipeline. */
export const BENCH_PIPELINE: AugmentPipelineInput = {
  d4: true,
  hed: { sigma: 0.05 },
  hsv: { brightness: 0.1, contrast: 0.1, saturation: 0.1, hue: 0.02 },
  blur: { sigma: [0.1, 2], p: 0.5 },
  normalize: 'imagenet',
};

/** The elastic case's pipeline. */
export const ELASTIC_BENCH_PIPELINE: AugmentPipelineInput = {
  d4: true,
  elastic: { alpha: 6, sigma: 16, p: 1 },
  normalize: 'imagenet',
};

/**
 * How close pipeline-96's output must be to the OpenCV peer's (same ops, same
 * drawn parameters, same patches), asserted per backend, in 8-bit display
 * levels (normalized value × std × 255): under half a level anywhere (so no
 * pixel would round to another 8-bit value) and 0.01 level on average.
 * Measured here: max 0.00016, mean 0.00002 (float32 rounding).
 */
export const PIPELINE_VS_OPENCV_TOLERANCE = { maxLevels: 0.5, meanLevels: 0.01 } as const;

/** The issue's measurement of peer:opencv on this machine, and the promise for native cpu. */
const PEER_PATCHES_PER_S = 1150;
const CPU_TARGET_PATCHES_PER_S = 20000;
/** The same promise as a ratio to the peer, for the report's targets section. */
const CPU_VS_OPENCV_TARGET = Math.round((CPU_TARGET_PATCHES_PER_S / PEER_PATCHES_PER_S) * 10) / 10;

/** rows x cols patches of size² spread evenly over one image (overlapping when needed). */
export function cutPatches(image: RgbBatch, size: number, rows: number, cols: number): RgbBatch {
  const { height, width } = image;
  if (size > height || size > width) throw new RangeError(`Expected an image of at least ${size}x${size} to cut patches from but received ${width}x${height}`);
  const data = new Uint8Array(rows * cols * size * size * 3);
  const step = (limit: number, count: number) => (count > 1 ? (limit - size) / (count - 1) : 0);
  let o = 0;
  for (let gy = 0; gy < rows; gy++) {
    const y0 = Math.round(gy * step(height, rows));
    for (let gx = 0; gx < cols; gx++) {
      const x0 = Math.round(gx * step(width, cols));
      for (let y = 0; y < size; y++) {
        const row = ((y0 + y) * width + x0) * 3;
        data.set(image.data.subarray(row, row + size * 3), o);
        o += size * 3;
      }
    }
  }
  return { data, n: rows * cols, height: size, width: size };
}



function budget(backend: string, ctx: SuiteContext): MeasureOptions {
  const { quick, repeats } = ctx.options;
  if (quick) return { warmup: 0, repeats: repeats ?? 1, maxTimeMs: repeats ? Infinity : 0 };
  const base: MeasureOptions = isNative(backend)
    ? { warmup: 2, repeats: 5, minTimeMs: 500, maxTimeMs: 4000 }
    : { warmup: 1, repeats: 3, maxTimeMs: 3000, coldOnlyOverMs: 4000 };
  if (repeats !== undefined) return { warmup: base.warmup ?? 1, repeats, maxRepeats: repeats };
  return base;
}

function inputFor(backend: string, batch: RgbBatch, ctx: SuiteContext): RgbBatch {
  if (isNative(backend) || ctx.options.quick || ctx.options.repeats !== undefined) return batch;
  const n = Math.min(batch.n, 64);
  return n === batch.n ? batch : { ...batch, n, data: batch.data.subarray(0, n * batch.height * batch.width * 3) };
}

function describeInput(b: RgbBatch): string {
  return `${b.n}×${b.width}²`;
}


interface PeerTiming {
  median_s: number;
  first_s: number;
  min_s: number;
  repeats: number;
  python: string;
  numpy: string;
  cv2: string;
}

/** The OpenCV peer, single-threaded, or why it cannot run here. */
async function opencvPeer(): Promise<{ script: string; env: NodeJS.ProcessEnv; version: string } | { reason: string }> {
  const script = join(packageRoot(), 'benchmarks', 'peers', 'augment_opencv.py');
  if (!existsSync(script)) return { reason: `${script} is missing` };
  if (!existsSync(PYTHON)) return { reason: `${PYTHON} not found` };
  // glibc's malloc otherwise gives each ~100 KB per-patch temporary back to the
  // kernel and page-faults it in again: on small VMs that alone slows the peer
  // ~3x. Keeping freed memory (as a long-running data loader would) gives the
  // peer its best showing.
  const env = {
    ...process.env,
    OMP_NUM_THREADS: '1',
    OPENBLAS_NUM_THREADS: '1',
    MKL_NUM_THREADS: '1',
    MALLOC_MMAP_THRESHOLD_: String(4 << 20),
    MALLOC_TRIM_THRESHOLD_: String(64 << 20),
  };
  try {
    const r = await runProcess(PYTHON, ['-c', 'import cv2, numpy; print(cv2.__version__, numpy.__version__)'], env);
    if (r.code !== 0) return { reason: `${PYTHON} has no cv2 or numpy (${r.stderr.trim().split('\n').pop() ?? ''})` };
    const [cv, np] = r.stdout.trim().split(' ');
    return { script, env, version: `cv2 ${cv}, numpy ${np}` };
  } catch (e) {
    return { reason: `${PYTHON} could not run: ${e instanceof Error ? e.message : String(e)}` };
  }
}

async function runPeer(
  peer: { script: string; env: NodeJS.ProcessEnv },
  batch: RgbBatch,
  spec: { params: unknown[]; mean: number[]; std: number[] },
  repeats: number,
  warmup: number,
  workers: number,
): Promise<{ timing: PeerTiming; output: Float32Array }> {
  const dir = await mkdtemp(join(tmpdir(), 'histoflow-bench-'));
  try {
    const input = join(dir, 'input.rgb');
    const params = join(dir, 'params.json');
    const output = join(dir, 'output.f32');
    await writeFile(input, batch.data);
    await writeFile(params, JSON.stringify(spec));
    const args = [peer.script, input, String(batch.n), String(batch.height), String(batch.width), params, String(repeats), String(warmup), output];
    const r = await runProcess(PYTHON, args, { ...peer.env, HISTOFLOW_PEER_WORKERS: String(workers) });
    if (r.code !== 0) throw new Error(`exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);
    const timing = JSON.parse(r.stdout.trim().split('\n').pop()!) as PeerTiming;
    const bytes = await readFile(output);
    const out = new Float32Array(bytes.length / 4);
    new Uint8Array(out.buffer).set(bytes);
    return { timing, output: out };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** How far apart two outputs are, in 8-bit display levels (normalized values × std × 255). */
function agreement(a: Float32Array, b: Float32Array, std: readonly number[]): { maxLevels: number; meanLevels: number } {
  let max = 0;
  let sum = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = Math.abs(a[i]! - b[i]!) * std[i % 3]! * 255;
    if (d > max) max = d;
    sum += d;
  }
  return { maxLevels: max, meanLevels: n ? sum / n : 0 };
}

type Peer = Awaited<ReturnType<typeof opencvPeer>>;

/**
 * One case: every backend, then the peer on the same patches and drawn
 * parameters; `compare` says whether the peer's output should agree with
 * ours (it computes the same values) and is reported. Returns patches/s by runner.
 */
async function runCase(
  ctx: SuiteContext,
  CASE: string,
  BENCH_PIPELINE: AugmentPipelineInput,
  batch: RgbBatch,
  backends: KernelBackend['name'][],
  peer: Peer,
  compare: boolean,
): Promise<Map<string, number>> {
  const quick = ctx.options.quick;
  const outputs = new Map<string, Float32Array>();
  const pipeline = checkPipeline(BENCH_PIPELINE);
  const shape = outputShape(pipeline, PATCH, PATCH);
  const bp = batchParams(pipeline, shape);
  const rates = new Map<string, number>();
  for (const { label, backend, threads } of runnersFor(backends)) {
    const input = inputFor(backend, batch, ctx);
    const out = new Float32Array(input.n * PATCH * PATCH * 3);
    try {
      let last: Awaited<ReturnType<typeof augment>> | undefined;
      const m = await withAddonThreads(threads, () => measure(async () => {
        last = await augment(input, BENCH_PIPELINE, { seed: 0, backend, out });
      }, budget(backend, ctx)));
      const value = input.n / m.median;
      ctx.record(CASE, label, value, 'patches/s', {
        median_s: m.median,
        first_s: m.first,
        min_s: m.min,
        repeats: m.repeats,
        input: describeInput(input),
        patches: input.n,
        blurred: last ? last.params.filter((p) => p.blurSigma > 0).length : null,
        warped: last ? last.params.filter((p) => p.elasticAlpha > 0).length : null,
        ...(threads !== null ? { threads } : {}),
      });
      outputs.set(label, out);
      rates.set(label, value);
      ctx.log(
        `augment ${CASE} ${label} (${describeInput(input)}): ${value.toFixed(0)} patches/s (${
          m.repeats ? `median ${(m.median * 1000).toFixed(1)} ms of ${m.repeats}, ` : 'cold run only, '
        }first ${(m.first * 1000).toFixed(1)} ms)`,
      );
    } catch (e) {
      ctx.fail(CASE, label, e);
      ctx.log(`augment ${CASE} ${label}: failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  if (!('reason' in peer)) {
    // the peer does exactly what histoflow draws for each patch (seed 0, epoch 0, indices 0..n−1)
    const spec = { params: drawBatchParams(pipeline, shape, PATCH, PATCH, batch.n, 0, 0, 0), mean: bp.mean, std: bp.std };
    let single: Float32Array | null = null;
    for (const workers of peerWorkerCounts()) {
      const name = peerLabel('peer:opencv', workers);
      try {
        const { timing, output } = await runPeer(peer, batch, spec, ctx.options.repeats ?? (quick ? 1 : 3), quick ? 0 : 1, workers);
        const value = batch.n / timing.median_s;
        rates.set(name, value);
        ctx.record(CASE, name, value, 'patches/s', {
          median_s: timing.median_s,
          first_s: timing.first_s,
          min_s: timing.min_s,
          repeats: timing.repeats,
          input: describeInput(batch),
          patches: batch.n,
          cv2: timing.cv2,
          numpy: timing.numpy,
          python: timing.python,
          threads: 1,
          workers,
        });
        ctx.log(`augment ${CASE} ${name} (${describeInput(batch)}): ${value.toFixed(0)} patches/s (median ${(timing.median_s * 1000).toFixed(1)} ms of ${timing.repeats})`);
        if (!compare) continue;
        if (workers === 1) {
          single = output;
          // same ops, same parameters, same patches: the same output within the stated tolerance (asserted)
          for (const [backend, out] of outputs) {
            if (out.length > output.length) {
              ctx.fail(CASE, backend, new Error(`output has ${out.length} values, ${name}'s ${output.length}`));
              continue;
            }
            const a = agreement(out, output.subarray(0, out.length), bp.std);
            ctx.check(CASE, backend, name, 'max |Δ| (8-bit levels)', a.maxLevels, PIPELINE_VS_OPENCV_TOLERANCE.maxLevels);
            ctx.check(CASE, backend, name, 'mean |Δ| (8-bit levels)', a.meanLevels, PIPELINE_VS_OPENCV_TOLERANCE.meanLevels);
          }
        } else if (single) {
          // the pooled configuration did the same work: the single process's output exactly
          const a = single.length === output.length ? agreement(output, single, bp.std).maxLevels : Number.NaN;
          ctx.check(CASE, name, 'peer:opencv', 'max |Δ| (8-bit levels)', a, 0);
        }
      } catch (e) {
        ctx.fail(CASE, name, e);
        ctx.log(`augment ${CASE} ${name}: failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  return rates;
}

async function run(ctx: SuiteContext): Promise<void> {
  const example1 = await readImage(dataFile('HEnorm_python__example1.png'));
  const batch = ctx.options.quick ? cutPatches(example1, PATCH, 4, 4) : cutPatches(example1, PATCH, 16, 32);
  ctx.environment(
    'augmentInputs',
    `${describeInput(batch)} RGB from HEnorm_python__example1.png; ${CASE} pipeline ${JSON.stringify(BENCH_PIPELINE)}; ${ELASTIC_CASE} pipeline ${JSON.stringify(ELASTIC_BENCH_PIPELINE)}`,
  );
  const backends = (await availableKernelBackends()).map((b) => b.name);
  const peer = await opencvPeer();
  ctx.environment('peer:opencv', 'reason' in peer ? `not run: ${peer.reason}` : `${peer.version}, ${PYTHON}, 1 thread (cv2.setNumThreads(1)), per-patch numpy/cv2, malloc trim/mmap thresholds raised${peerWorkerCounts().length > 1 ? `; peer:opencv:${peerWorkerCounts()[1]}p: the same over ${peerWorkerCounts()[1]} forked processes (DataLoader-style)` : ''}`);
  if ('reason' in peer) ctx.note(`peer:opencv not run: ${peer.reason}`);
  const rates = await runCase(ctx, CASE, BENCH_PIPELINE, batch, backends, peer, true);
  await runCase(ctx, ELASTIC_CASE, ELASTIC_BENCH_PIPELINE, batch, backends, peer, false);

  // The issue's target is absolute (patches/s of native cpu), not a ratio to a
  // peer whose speed depends on how it is written: the verdict is on the
  // absolute number, with the ratio to the peer as measured here beside it.
  const cpu = rates.get('cpu');
  const peerRate = rates.get('peer:opencv');
  const met = cpu === undefined ? null : cpu >= CPU_TARGET_PATCHES_PER_S;
  ctx.environment('augmentTarget', {
    backend: 'cpu',
    case: CASE,
    atLeast: `${CPU_TARGET_PATCHES_PER_S} patches/s`,
    value: cpu === undefined ? null : Math.round(cpu),
    ratioToPeer: cpu !== undefined && peerRate ? Math.round((cpu / peerRate) * 10) / 10 : null,
    met,
  });
  ctx.note(
    `augment ${CASE} target (issue): native cpu ≥ ${CPU_TARGET_PATCHES_PER_S} patches/s (the issue measured the OpenCV peer at about ${PEER_PATCHES_PER_S} patches/s here, ≈ ${CPU_VS_OPENCV_TARGET}x): ${
      cpu === undefined
        ? 'NOT MEASURED'
        : `cpu ${cpu.toFixed(0)} patches/s${peerRate ? ` = ${(cpu / peerRate).toFixed(1)}x peer:opencv (${peerRate.toFixed(0)} patches/s in this run)` : ''}: ${met ? 'MET' : 'NOT MET'}${ctx.options.quick ? ' (--quick: not a measurement)' : ''}`
    }`,
  );
}

export const augmentSuite: Suite = {
  name: 'augment',
  description: 'augmentation pipeline (D4, HED, HSV, blur, normalize) and elastic deformation in patches/s on 96x96 patches, every backend with augment, OpenCV peer',
  run,
};
