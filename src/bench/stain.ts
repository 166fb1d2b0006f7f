/**
 * The stain suite: megapixels per second of stain normalization, for every
 * method on every available kernel backend, against the plain TypeScript
 * backend ('js') and, for Macenko, against a numpy implementation of the
 * canonical recipe (HEnorm_python's normalizeStaining) on identical inputs.
 *
 * The timed operation per case is what a user runs: `normalizeStain` of a
 * whole batch — fit every image's source stains, then transform the batch to
 * the canonical reference target (preset 'canonical'). Reinhard needs a
 * target: the LAB statistics of HEnorm_python's norm1.png (example1 rendered
 * in the canonical reference stains), fitted once outside the timed region.
 *
 * Inputs are real H&E: HEnorm_python's example1 (1024², the image the
 * canonical recipe is published with), cut into a 16x16 grid of overlapping
 * 96x96 patches (PCam-sized) for the `*-96` cases, and whole for the
 * `*-1024` cases (with its 180° rotation as a second image, so a batch has
 * more than one image). gpujs and js, far slower, run on a prefix of the
 * same batch (see `inputFor`); every row says which input it ran on.
 *
 * The peers run single-threaded, so native `cpu` runs twice: on all cores
 * (`cpu`) and pinned to one thread (`cpu:1t`), the same-threads comparison.
 * Wherever a peer computes the same thing, every backend's output is asserted
 * within the case's stated tolerance of the peer's (MACENKO_VS_NUMPY_TOLERANCE,
 * RGB2HED_VS_SKIMAGE_TOLERANCE): a miss fails the case.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { packageRoot } from '../../bindings/loader.js';
import { rgb2hed } from '../color/deconvolution.js';
import { readImage } from '../image.js';
import { kernelBackendStatus, availableKernelBackends } from '../kernels/registry.js';
import type { KernelBackendName, RgbBatch } from '../kernels/types.js';
import { fitStainTarget, normalizeStain, type StainTarget } from '../stain/normalize.js';
import { BEST_PEER, measure, type MeasureOptions, type Suite, type SuiteContext } from './harness.js';
import { PYTHON, dataFile, isNative, peerLabel, peerWorkerCounts, runProcess, runnersFor, withAddonThreads } from './suite_support.js';

const METHODS = ['macenko', 'vahadane', 'reinhard', 'ruifrok'] as const;

/** The project's promise: native CPU Macenko at least this many times the numpy peer. */
const CPU_VS_NUMPY_TARGET = 100;

/**
 * How close Macenko's output must be to the numpy peer's (the same recipe on
 * the same bytes), asserted per backend: at most 2 levels apart anywhere (the
 * bound test/stain/macenko_canonical.test.ts holds against HEnorm_python's
 * published images) and at most 0.1 % of bytes differing at all (rounding at
 * .5 boundaries; measured here: ≤ 20 of 3.1 M bytes, max 1 level).
 */
export const MACENKO_VS_NUMPY_TOLERANCE = { maxAbsDiff: 2, differingFraction: 1e-3 } as const;

/**
 * How close rgb2hed must be to skimage.color.rgb2hed (float64) on the same
 * bytes, asserted per backend: the bound test/color/deconvolution.test.ts
 * holds on ihc.png (float32 arithmetic).
 */
export const RGB2HED_VS_SKIMAGE_TOLERANCE = 1e-4;

interface Inputs {
  name: string;
  batch: RgbBatch;
}

/** A grid×grid set of size×size patches spread evenly over one image (overlapping when needed). */
export function gridPatches(image: RgbBatch, size: number, grid: number): RgbBatch {
  const { height, width } = image;
  if (size > height || size > width) throw new RangeError(`Expected an image of at least ${size}x${size} to cut patches from but received ${width}x${height}`);
  const n = grid * grid;
  const data = new Uint8Array(n * size * size * 3);
  const step = (limit: number) => (grid > 1 ? (limit - size) / (grid - 1) : 0);
  let o = 0;
  for (let gy = 0; gy < grid; gy++) {
    const y0 = Math.round(gy * step(height));
    for (let gx = 0; gx < grid; gx++) {
      const x0 = Math.round(gx * step(width));
      for (let y = 0; y < size; y++) {
        const row = ((y0 + y) * width + x0) * 3;
        data.set(image.data.subarray(row, row + size * 3), o);
        o += size * 3;
      }
    }
  }
  return { data, n, height: size, width: size };
}

/** The image turned by 180° (pixel order reversed): same stains, different layout. */
function rotated180(image: RgbBatch): RgbBatch {
  const p = image.height * image.width;
  const data = new Uint8Array(p * 3);
  for (let i = 0; i < p; i++) {
    const s = (p - 1 - i) * 3;
    data[i * 3] = image.data[s]!;
    data[i * 3 + 1] = image.data[s + 1]!;
    data[i * 3 + 2] = image.data[s + 2]!;
  }
  return { data, n: 1, height: image.height, width: image.width };
}

function concat(images: RgbBatch[]): RgbBatch {
  const data = new Uint8Array(images.reduce((s, im) => s + im.data.length, 0));
  let o = 0;
  for (const im of images) {
    data.set(im.data, o);
    o += im.data.length;
  }
  return { data, n: images.reduce((s, im) => s + im.n, 0), height: images[0]!.height, width: images[0]!.width };
}



/**
 * How long each backend may take per case. Native backends get more repeats
 * and a minimum timed total (their runs are milliseconds); gpujs and js are
 * bounded by time (fewer repeats; a single cold run when even that is slow),
 * since Reinhard on gpujs's CPU mode takes seconds per megapixel.
 */
function budget(backend: string, big: boolean, ctx: SuiteContext): MeasureOptions {
  const { quick, repeats } = ctx.options;
  if (quick) return { warmup: 0, repeats: repeats ?? 1, maxTimeMs: repeats ? Infinity : 0 };
  const base: MeasureOptions = isNative(backend)
    ? { warmup: 2, repeats: 5, minTimeMs: 500, maxTimeMs: 4000 }
    : { warmup: 1, repeats: 3, maxTimeMs: big ? 3000 : 2000, coldOnlyOverMs: 4000 };
  if (repeats !== undefined) return { warmup: base.warmup ?? 1, repeats, maxRepeats: repeats };
  return base;
}

/**
 * The images a backend runs on: the whole batch for native backends and the
 * peer; for gpujs and js, outside --quick and --repeats, its first 64 patches
 * or first 1024² image (a prefix of the same inputs: MP/s is a rate, and
 * images are independent), so the suite stays within a few minutes.
 */
function inputFor(backend: string, batch: RgbBatch, big: boolean, ctx: SuiteContext): RgbBatch {
  if (isNative(backend) || ctx.options.quick || ctx.options.repeats !== undefined) return batch;
  const n = Math.min(batch.n, big ? 1 : 64);
  return n === batch.n ? batch : { ...batch, n, data: batch.data.subarray(0, n * batch.height * batch.width * 3) };
}

function describeInput(b: RgbBatch): string {
  return `${b.n}×${b.width}²`;
}

interface PeerResult {
  median_s: number;
  first_s: number;
  min_s: number;
  repeats: number;
  samples_s: number[];
  python: string;
  numpy: string;
}


/** The numpy peer, single-threaded, or why it cannot run here. */
async function numpyPeer(): Promise<{ script: string; env: NodeJS.ProcessEnv; numpy: string } | { reason: string }> {
  const script = join(packageRoot(), 'benchmarks', 'peers', 'macenko_numpy.py');
  if (!existsSync(script)) return { reason: `${script} is missing` };
  if (!existsSync(PYTHON)) return { reason: `${PYTHON} not found` };
  const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  try {
    const r = await runProcess(PYTHON, ['-c', 'import numpy; print(numpy.__version__)'], env);
    if (r.code !== 0) return { reason: `${PYTHON} has no numpy (${r.stderr.trim().split('\n').pop() ?? ''})` };
    return { script, env, numpy: r.stdout.trim() };
  } catch (e) {
    return { reason: `${PYTHON} could not run: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** Runs the peer on the batch; returns its timing and its output (for the agreement check). */
async function runNumpy(
  peer: { script: string; env: NodeJS.ProcessEnv },
  batch: RgbBatch,
  repeats: number,
  warmup: number,
  workers: number,
): Promise<{ timing: PeerResult; output: Uint8Array }> {
  const dir = await mkdtemp(join(tmpdir(), 'histoflow-bench-'));
  try {
    const input = join(dir, 'input.rgb');
    const output = join(dir, 'output.rgb');
    await writeFile(input, batch.data);
    const args = [peer.script, input, String(batch.n), String(batch.height), String(batch.width), String(repeats), String(warmup), output];
    const r = await runProcess(PYTHON, args, { ...peer.env, HISTOFLOW_PEER_WORKERS: String(workers) });
    if (r.code !== 0) throw new Error(`exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);
    const timing = JSON.parse(r.stdout.trim().split('\n').pop()!) as PeerResult;
    const out = await readFile(output);
    return { timing, output: new Uint8Array(out.buffer, out.byteOffset, out.length) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function agreement(a: Uint8Array, b: Uint8Array): { maxAbsDiff: number; differing: number } {
  let max = 0;
  let differing = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > max) max = d;
    if (d !== 0) differing++;
  }
  return { maxAbsDiff: max, differing };
}

async function reinhardTarget(norm1: RgbBatch, backends: KernelBackendName[]): Promise<StainTarget> {
  let last: unknown;
  for (const backend of backends) {
    try {
      return await fitStainTarget(norm1, { method: 'reinhard', backend });
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`no backend could fit the Reinhard target: ${last instanceof Error ? last.message : String(last)}`);
}

async function run(ctx: SuiteContext): Promise<void> {
  const quick = ctx.options.quick;
  const [example1, norm1] = await Promise.all([
    readImage(dataFile('HEnorm_python__example1.png')),
    readImage(dataFile('HEnorm_python__norm1.png')),
  ]);
  const grid = quick ? 4 : 16;
  const inputs: Inputs[] = [
    { name: '96', batch: gridPatches(example1, 96, grid) },
    { name: String(example1.width), batch: quick ? example1 : concat([example1, rotated180(example1)]) },
  ];

  const status = await kernelBackendStatus();
  ctx.environment(
    'backends',
    Object.fromEntries(status.map((s) => [s.name, s.available ? s.detail : `unavailable: ${s.detail}`])),
  );
  const backends = (await availableKernelBackends()).map((b) => b.name);
  const peer = await numpyPeer();
  ctx.environment(
    'stainInputs',
    inputs.map((i) => `${describeInput(i.batch)} RGB from HEnorm_python__example1.png`).join('; '),
  );
  ctx.environment('peer:numpy', 'reason' in peer ? `not run: ${peer.reason}` : `numpy ${peer.numpy}, ${PYTHON}, 1 thread (HEnorm_python normalizeStaining)${peerWorkerCounts().length > 1 ? `; peer:numpy:${peerWorkerCounts()[1]}p: the same over ${peerWorkerCounts()[1]} forked processes` : ''}`);
  if ('reason' in peer) ctx.note(`peer:numpy not run: ${peer.reason}`);

  let target: StainTarget | undefined;
  let targetError: unknown;
  try {
    target = await reinhardTarget(norm1, backends);
  } catch (e) {
    targetError = e;
  }

  for (const set of inputs) {
    const { batch } = set;
    const big = batch.height > 256;
    for (const method of METHODS) {
      const caseName = `${method}-${set.name}`;
      const outputs = new Map<string, Uint8Array>();
      for (const { label, backend, threads } of runnersFor(backends)) {
        if (method === 'reinhard' && !target) {
          ctx.fail(caseName, label, targetError);
          continue;
        }
        const input = inputFor(backend, batch, big, ctx);
        const megapixels = (input.n * input.height * input.width) / 1e6;
        const out = new Uint8Array(input.data.length);
        const options = {
          method,
          preset: 'canonical' as const,
          backend,
          out,
          ...(method === 'reinhard' ? { target } : {}),
        };
        try {
          let unchanged = 0;
          const m = await withAddonThreads(threads, () => measure(async () => {
            unchanged = (await normalizeStain(input, options)).unchanged.length;
          }, budget(backend, big, ctx)));
          const value = megapixels / m.median;
          ctx.record(caseName, label, value, 'MP/s', {
            median_s: m.median,
            first_s: m.first,
            min_s: m.min,
            repeats: m.repeats,
            input: describeInput(input),
            images: input.n,
            height: input.height,
            width: input.width,
            unchanged,
            ...(threads !== null ? { threads } : {}),
          });
          outputs.set(label, out);
          ctx.log(
            `stain ${caseName} ${label} (${describeInput(input)}): ${value.toFixed(2)} MP/s (${
              m.repeats ? `median ${(m.median * 1000).toFixed(1)} ms of ${m.repeats}, ` : 'cold run only, '
            }first ${(m.first * 1000).toFixed(1)} ms)`,
          );
        } catch (e) {
          ctx.fail(caseName, label, e);
          ctx.log(`stain ${caseName} ${label}: failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }

      if (method === 'macenko' && !('reason' in peer)) {
        let single: Uint8Array | null = null;
        for (const workers of peerWorkerCounts()) {
          const name = peerLabel('peer:numpy', workers);
          try {
            const { timing, output } = await runNumpy(peer, batch, ctx.options.repeats ?? (quick ? 1 : 3), quick ? 0 : 1, workers);
            const value = (batch.n * batch.height * batch.width) / 1e6 / timing.median_s;
            ctx.record(caseName, name, value, 'MP/s', {
              median_s: timing.median_s,
              first_s: timing.first_s,
              min_s: timing.min_s,
              repeats: timing.repeats,
              input: describeInput(batch),
              images: batch.n,
              height: batch.height,
              width: batch.width,
              numpy: timing.numpy,
              python: timing.python,
              threads: 1,
              workers,
            });
            ctx.log(`stain ${caseName} ${name} (${describeInput(batch)}): ${value.toFixed(2)} MP/s (median ${(timing.median_s * 1000).toFixed(1)} ms of ${timing.repeats}, first ${(timing.first_s * 1000).toFixed(1)} ms)`);
            if (workers === 1) {
              single = output;
              // the same recipe on the same bytes gives the same bytes, within the stated tolerance (asserted)
              for (const [backend, out] of outputs) {
                const a = agreement(out, output.subarray(0, out.length));
                ctx.check(caseName, backend, name, 'max |Δ| (8-bit levels)', a.maxAbsDiff, MACENKO_VS_NUMPY_TOLERANCE.maxAbsDiff);
                ctx.check(caseName, backend, name, 'fraction of bytes differing', a.differing / out.length, MACENKO_VS_NUMPY_TOLERANCE.differingFraction);
              }
            } else if (single) {
              // the pooled configuration did the same work: byte for byte the single process's output
              ctx.check(caseName, name, 'peer:numpy', 'bytes differing', single.length === output.length ? agreement(output, single).differing : Number.NaN, 0);
            }
          } catch (e) {
            ctx.fail(caseName, name, e);
            ctx.log(`stain ${caseName} ${name}: failed: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
      }
    }
    await deconvolutionCase(ctx, set, backends);
  }

  for (const set of inputs) {
    for (const backend of ['cpu', 'cuda'] as const) {
      if (backend === 'cpu' || backends.includes(backend)) ctx.target(`macenko-${set.name}`, backend, BEST_PEER, CPU_VS_NUMPY_TARGET);
    }
  }
}

export const stainSuite: Suite = {
  name: 'stain',
  description: 'stain normalization (macenko, vahadane, reinhard, ruifrok) in MP/s on 96x96 patches and 1024² images, every backend, numpy peer',
  run,
};

/**
 * rgb2hed-<size>: colour deconvolution (Ruifrok & Johnston, scikit-image's
 * convention) per backend, with skimage.color.rgb2hed as peer:skimage.
 */
async function deconvolutionCase(ctx: SuiteContext, set: Inputs, backends: KernelBackendName[]): Promise<void> {
  const caseName = `rgb2hed-${set.name}`;
  const big = set.batch.height > 256;
  const outputs = new Map<string, Float32Array>();
  for (const { label, backend, threads } of runnersFor(backends)) {
    const input = inputFor(backend, set.batch, big, ctx);
    const out = new Float32Array(input.data.length);
    try {
      const m = await withAddonThreads(threads, () => measure(async () => {
        await rgb2hed(input, { backend, out });
      }, budget(backend, big, ctx)));
      outputs.set(label, out);
      const value = (input.n * input.height * input.width) / 1e6 / m.median;
      ctx.record(caseName, label, value, 'MP/s', {
        median_s: m.median, first_s: m.first, min_s: m.min, repeats: m.repeats, input: describeInput(input), ...(threads !== null ? { threads } : {}),
      });
      ctx.log(`stain ${caseName} ${label} (${describeInput(input)}): ${value.toFixed(2)} MP/s`);
    } catch (e) {
      ctx.fail(caseName, label, e);
    }
  }
  const script = join(packageRoot(), 'benchmarks', 'peers', 'rgb2hed_skimage.py');
  const env = { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' };
  const probe = existsSync(PYTHON) ? await runProcess(PYTHON, ['-c', 'import skimage'], env).catch(() => ({ code: 1 })) : { code: 1 };
  if (probe.code !== 0) {
    ctx.note(`peer:skimage not run: ${PYTHON} has no scikit-image`);
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'histoflow-bench-'));
  try {
    const raw = join(dir, 'input.rgb');
    const outFile = join(dir, 'output.f32');
    await writeFile(raw, set.batch.data);
    const quick = ctx.options.quick;
    const b = set.batch;
    const args = [script, raw, String(b.n), String(b.height), String(b.width), String(ctx.options.repeats ?? (quick ? 1 : 3)), quick ? '0' : '1', outFile];
    const r = await runProcess(PYTHON, args, env);
    if (r.code !== 0) throw new Error(`exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);
    const t = JSON.parse(r.stdout.trim().split('\n').pop()!) as PeerResult;
    const value = (b.n * b.height * b.width) / 1e6 / t.median_s;
    ctx.record(caseName, 'peer:skimage', value, 'MP/s', { median_s: t.median_s, first_s: t.first_s, repeats: t.repeats, input: describeInput(b), threads: 1 });
    ctx.log(`stain ${caseName} peer:skimage (${describeInput(b)}): ${value.toFixed(2)} MP/s`);
    // the same transform on the same bytes: asserted within the stated tolerance
    const bytes = await readFile(outFile);
    const peerOut = new Float32Array(bytes.length / 4);
    new Uint8Array(peerOut.buffer).set(bytes);
    for (const [backend, out] of outputs) {
      if (out.length > peerOut.length) {
        ctx.fail(caseName, backend, new Error(`output has ${out.length} values, peer:skimage's ${peerOut.length}`));
        continue;
      }
      let max = 0;
      for (let i = 0; i < out.length; i++) max = Math.max(max, Math.abs(out[i]! - peerOut[i]!));
      ctx.check(caseName, backend, 'peer:skimage', 'max |Δ| (HED units)', max, RGB2HED_VS_SKIMAGE_TOLERANCE);
    }
  } catch (e) {
    ctx.fail(caseName, 'peer:skimage', e);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
