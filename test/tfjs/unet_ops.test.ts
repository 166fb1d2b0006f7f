/**
 * The ops a UNet adds to the `native` backend's parity table: concat (its skip
 * connections) with its gradient SplitV, slice, and the transposed convolution
 * of its decoder (Conv2DBackpropInput forward, Conv2D and Conv2DBackpropFilter
 * backward). Each runs on both nn engines against TF.js cpu within 1e-4 of the
 * reference's largest magnitude, and a spy on the addon proves it ran there.
 * Then the whole UNet: its weight gradients on native against cpu, and which
 * kernels of a training step still run on TF.js cpu's fallbacks.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { unet } from '../../src/models/unet.js';
import { trainingFamily } from '../../src/tfjs/backend.js';
import { nativeKernelNames } from '../../src/tfjs/native_backend.js';
import { diceBceLoss } from '../../src/train/segment_loss.js';
import { IN_CI } from '../support/helpers.js';
import { parityTable, relativeDifference } from '../support/parity.js';
import { KERNEL_TOLERANCE, dims, kernel, kernelCase, withGrads, type Engine, type Kernel } from '../support/tfjs_kernel_cases.js';
import { countNativeCalls, engineStatus, input, nativeAvailable, nativeStatus, random, setNnEngine } from '../support/tfjs_support.js';

const TOLERANCE = KERNEL_TOLERANCE;

/** `outermost`: concatenated along the outermost non-unit axis, where its gradient's parts are views (no slice in the addon). */
const concat = (shapes: number[][], axis: number, outermost = false) =>
  kernel(`${shapes.map(dims).join(' ‖ ')} on axis ${axis}`, {
    inputs: shapes.map((s, i) => input(s, 100 + i)),
    fn: withGrads((...xs) => tf.concat(xs, axis), 99),
    // The gradient is SplitV, a slice per input.
    native: outermost ? ['concat'] : ['concat', 'slice'],
  });

/** `view`: the slice is one contiguous run of x, which TF.js cpu's kernel returns as a view (no addon call). */
const slice = (shape: number[], begin: number[], size: number[], view = false) =>
  kernel(`${dims(shape)} from [${begin.join(',')}] size [${size.join(',')}]${view ? ' (contiguous: a view)' : ''}`, {
    inputs: [input(shape, 120)],
    // Slice's gradient is a Pad (TF.js cpu's kernel): checked, but not claimed for the addon.
    fn: withGrads((x) => tf.slice(x, begin, size), 121),
    native: view ? [] : ['slice'],
    notNative: view ? ['slice'] : [],
  });

const split = (shape: number[], sizes: number[], axis: number, view = false) =>
  kernel(`${dims(shape)} into [${sizes.join(',')}] on axis ${axis}${view ? ' (contiguous parts: views)' : ''}`, {
    inputs: [input(shape, 130)],
    fn: (x) => tf.split(x, sizes, axis),
    native: view ? [] : ['slice'],
    notNative: view ? ['slice'] : [],
  });

/** conv2dTranspose of x [n, h, w, inC] by a filter [k, k, outC, inC] to outShape. */
const transposed = (xShape: number[], k: number, outC: number, stride: number, outShape: number[], pad: 'same' | 'valid') =>
  kernel(`x${dims(xShape)} k${k} → ${dims(outShape)} s${stride} ${pad}`, {
    inputs: [input(xShape, 140), input([k, k, outC, xShape[3]!], 141)],
    fn: withGrads((x, f) => tf.conv2dTranspose(x as tf.Tensor4D, f as tf.Tensor4D, outShape as [number, number, number, number], stride, pad), 142),
    native: ['conv2dBackpropInput', 'conv2d', 'conv2dBackpropFilter'],
  });

const engines = engineStatus();
const cpu = { name: 'tfjs-cpu', available: true, detail: await trainingFamily.create('tfjs-cpu'), inCi: true };

parityTable<Engine, Kernel>({
  family: 'tfjs (unet ops)',
  reference: { ...cpu, why: "@tensorflow/tfjs-backend-cpu: TF.js's own kernels in TypeScript, apart from the addon's nn kernels" },
  backends: engines.map((e) => ({ ...e, inCi: true, make: () => e.name })),
  serial: true,
  cases: [
    kernelCase('concat and its gradient (SplitV)', [
      concat([[2, 5, 7, 3], [2, 5, 7, 4]], 3),
      concat([[1, 9, 11, 5], [1, 9, 11, 1]], -1),
      concat([[1, 1, 1, 3], [1, 1, 1, 2], [1, 1, 1, 7]], 3, true),
      concat([[2, 3, 4], [2, 5, 4], [2, 1, 4]], 1),
      concat([[3, 4, 5], [1, 4, 5]], 0, true),
      concat([[7], [5], [1]], 0, true),
      concat([[2, 3, 4], [2, 3, 0], [2, 3, 5]], 2),
      concat([[257, 2, 3], [257, 2, 1]], 2),
    ]),
    kernelCase('slice and its gradient', [
      slice([2, 5, 6, 4], [1, 2, 0, 1], [1, 3, 4, 2]),
      slice([4, 3, 2], [1, 0, 0], [2, -1, -1], true),
      slice([9], [2], [5], true),
      slice([1, 5, 3], [0, 1, 1], [1, 3, 2]),
      slice([1, 7, 5, 3], [0, 6, 4, 2], [1, 1, 1, 1], true),
      slice([2, 1, 1, 3], [0, 0, 0, 1], [2, 1, 1, 1]),
    ]),
    kernelCase('split (SplitV)', [
      split([2, 6, 5], [2, 3, 1], 1),
      split([3, 4, 7], [1, 0, 6], 2),
      split([5, 4], [4, 1], 0, true),
      split([1, 6, 4], [3, 3], 1, true),
    ]),
    kernelCase('conv2dTranspose (Conv2DBackpropInput) and its gradients', [
      transposed([2, 5, 6, 7], 2, 3, 2, [2, 10, 12, 3], 'same'),
      transposed([1, 4, 4, 5], 2, 1, 2, [1, 8, 8, 1], 'same'),
      transposed([1, 5, 6, 3], 3, 5, 2, [1, 9, 11, 5], 'same'),
      transposed([2, 3, 4, 4], 2, 3, 2, [2, 6, 8, 3], 'valid'),
      transposed([1, 6, 5, 2], 3, 3, 1, [1, 6, 5, 3], 'same'),
    ]),
  ],
});

const run = nativeAvailable || IN_CI ? test.serial : test.skip;
const why = nativeAvailable ? '' : ` (skipped: ${nativeStatus.detail})`;

const SIZE = 16, BATCH = 2;

/** A fixed batch: random images and a half-ignored random 0/1 mask. */
function batch(): { x: tf.Tensor4D; y: tf.Tensor4D } {
  const x = tf.tensor4d(random(BATCH * SIZE * SIZE * 3, 5), [BATCH, SIZE, SIZE, 3]);
  const m = random(BATCH * SIZE * SIZE, 6, 0, 3).map((v) => (v < 1 ? 0 : v < 2 ? 1 : -1));
  return { x, y: tf.tensor4d(m, [BATCH, SIZE, SIZE, 1]) };
}

/** The loss's gradient with respect to every trainable weight of a small UNet, batch norm in training mode. */
async function unetGrads(backend: string): Promise<{ names: string[]; grads: Float32Array[] }> {
  await tf.setBackend(backend);
  const model = unet({ inputSize: SIZE, width: 0.5, depth: 2, seed: 11 });
  const { x, y } = batch();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { grads } = tf.variableGrads(() => diceBceLoss(y, model.apply(x, { training: true }) as tf.Tensor), vars);
  const names = vars.map((v) => v.name);
  const out = names.map((n) => Float32Array.from(grads[n]!.dataSync()));
  tf.dispose([x, y, ...Object.values(grads)]);
  model.dispose();
  return { names, grads: out };
}

run(`a small UNet's weight gradients on native match TF.js cpu's (1e-4 relative per weight)${why}`, async (t) => {
  const cpuGrads = await unetGrads('cpu');
  for (const e of engines.filter((x) => x.available)) {
    setNnEngine(e.name);
    const { result: native, calls } = await countNativeCalls(() => unetGrads('native'));
    let worst = 0, where = '';
    native.grads.forEach((g, i) => {
      const d = relativeDifference(g, cpuGrads.grads[i]!);
      if (d > worst) [worst, where] = [d, native.names[i]!];
    });
    t.log(`${e.name}: ${native.grads.length} weight gradients, worst relative difference ${worst.toExponential(2)} (${where})`);
    t.true(worst <= TOLERANCE, `${e.name}: ${where} differs by ${worst}`);
    for (const name of ['concat', 'slice', 'conv2dBackpropInput', 'conv2dBackpropFilter', 'conv2d', 'maxPoolGrad']) {
      t.true((calls.get(name) ?? 0) > 0, `${e.name}: ${name} ran in the addon`);
    }
  }
});

run(`a UNet training step runs its convolutions, pooling and concatenations in the addon; the kernels left on cpu take under a tenth of it${why}`, async (t) => {
  await tf.setBackend('native');
  const model = unet({ inputSize: 32, width: 0.5, depth: 3, seed: 2 });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: diceBceLoss });
  const { x, y } = batch32();
  await model.trainOnBatch(x, y); // warm-up
  const native = new Set(nativeKernelNames());
  // Three profiled steps, the one with the smallest fallback share judged: one garbage
  // collection inside a single kernel's timing can take longer than a whole kernel here.
  let best: { total: number; fallbackMs: number; listed: string[]; profile: Awaited<ReturnType<typeof tf.profile>> } | null = null;
  for (let step = 0; step < 3; step++) {
    const profile = await tf.profile(async () => { await model.trainOnBatch(x, y); });
    const fallback = new Map<string, { calls: number; ms: number }>();
    let total = 0;
    for (const k of profile.kernels) {
      // An op with a custom gradient (fused conv2d) shows as 'name__op' around its own kernel: counted there.
      if (k.name.endsWith('__op')) continue;
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      total += ms;
      if (native.has(k.name)) continue;
      const f = fallback.get(k.name) ?? { calls: 0, ms: 0 };
      fallback.set(k.name, { calls: f.calls + 1, ms: f.ms + ms });
    }
    const listed = [...fallback].sort((a, b) => b[1].ms - a[1].ms).map(([n, f]) => `${n} ×${f.calls} ${f.ms.toFixed(2)} ms`);
    const fallbackMs = [...fallback.values()].reduce((s, f) => s + f.ms, 0);
    if (!best || fallbackMs / total < best.fallbackMs / best.total) best = { total, fallbackMs, listed, profile };
  }
  const { total, fallbackMs, listed, profile } = best!;
  t.log(`kernels of one step: ${total.toFixed(1)} ms in all, ${fallbackMs.toFixed(2)} ms not in the addon: ${listed.join(', ')}`);
  t.true(fallbackMs <= 0.1 * total, `the cpu fallbacks take ${fallbackMs.toFixed(2)} of ${total.toFixed(1)} ms`);
  for (const name of ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'Concat', 'SplitV', 'MaxPool', 'MaxPoolGrad',
    'HistoflowBatchNormReluTrain', 'HistoflowBatchNormTrainGrad']) {
    t.true(profile.kernels.some((k) => k.name === name), `${name} ran in the step`);
    t.true(native.has(name), `${name} has an addon kernel`);
  }
  tf.dispose([x, y]);
  model.dispose();
});

function batch32(): { x: tf.Tensor4D; y: tf.Tensor4D } {
  const x = tf.tensor4d(random(BATCH * 32 * 32 * 3, 8), [BATCH, 32, 32, 3]);
  const m = random(BATCH * 32 * 32, 9, 0, 2).map((v) => (v < 1 ? 0 : 1));
  return { x, y: tf.tensor4d(m, [BATCH, 32, 32, 1]) };
}

run(`the addon refuses concat and slice arguments that would read or write out of bounds, with RangeErrors${why}`, async (t) => {
  const { loadAddon } = await import('../../bindings/loader.js');
  const s = loadAddon();
  if (!s.ok) return t.fail(s.reason);
  const { concat, slice } = s.addon.nn;
  const f = (n: number) => new Float32Array(n);
  t.throws(() => concat([f(6), f(9)], 3, [2, 3], f(14)), { instanceOf: RangeError, message: /out to hold 15/ });
  t.throws(() => concat([f(6), f(8)], 3, [2, 3], f(15)), { instanceOf: RangeError, message: /inputs\[1\] to hold 9/ });
  t.throws(() => concat([f(6)], 3, [2, 3], f(15)), { instanceOf: RangeError, message: /one inner size per input/ });
  t.throws(() => concat([], 3, [], f(0)), { instanceOf: RangeError });
  t.throws(() => concat([f(6), new Int32Array(9) as unknown as Float32Array], 3, [2, 3], f(15)), { instanceOf: TypeError, message: /inputs\[1\]/ });
  t.throws(() => concat([f(6)], -1, [2], f(6)), { instanceOf: RangeError, message: /outer/ });
  t.throws(() => concat([f(6)], 2 ** 62, [2 ** 62], f(6)), { instanceOf: RangeError });
  t.throws(() => slice(f(24), [2, 3, 4], [1, 2, 0], [1, 2, 4], f(8)), { instanceOf: RangeError, message: /begin \+ size ≤ shape in dimension 1/ });
  t.throws(() => slice(f(24), [2, 3, 4], [0, 0, 0], [2, 3, 4], f(23)), { instanceOf: RangeError, message: /out to hold 24/ });
  t.throws(() => slice(f(23), [2, 3, 4], [0, 0, 0], [1, 1, 1], f(1)), { instanceOf: RangeError, message: /x to hold 24/ });
  t.throws(() => slice(f(24), [2, 3, 4], [0, 0], [1, 1, 1], f(1)), { instanceOf: RangeError, message: /one rank/ });
  // And what they accept, they copy right: a 2x3 block of a 3x4 matrix.
  const out = f(6);
  slice(Float32Array.from({ length: 12 }, (_, i) => i), [3, 4], [1, 1], [2, 3], out);
  t.deepEqual(Array.from(out), [5, 6, 7, 9, 10, 11]);
});

run(`concat and slice split over 7 threads, chunk edges inside rows and inputs, copy what plain loops copy${why}`, async (t) => {
  const { loadAddon } = await import('../../bindings/loader.js');
  const s = loadAddon();
  if (!s.ok) return t.fail(s.reason);
  const threads = s.addon.nn.info().threads;
  s.addon.setThreads(7);
  try {
    // [63·17·13, 5 | 0 | 2 | 1] rows: 8 floats each, 111,384 in all (3 chunks of ≥ 32,768 that end mid-row).
    const outer = 63 * 17 * 13, inners = [5, 0, 2, 1];
    const parts = inners.map((k, i) => random(outer * k, 50 + i));
    const out = new Float32Array(outer * 8);
    s.addon.nn.concat(parts, outer, inners, out);
    const want = new Float32Array(outer * 8);
    for (let o = 0, p = 0; o < outer; o++) for (let i = 0; i < parts.length; i++) for (let k = 0; k < inners[i]!; k++) want[p++] = parts[i]![o * inners[i]! + k]!;
    t.deepEqual(out, want);
    // A [5, 61, 47, 9] box of a [6, 64, 50, 11] tensor.
    const shape = [6, 64, 50, 11], begin = [1, 2, 3, 1], size = [5, 61, 47, 9];
    const x = random(6 * 64 * 50 * 11, 60);
    const box = new Float32Array(5 * 61 * 47 * 9);
    s.addon.nn.slice(x, shape, begin, size, box);
    const expected = new Float32Array(box.length);
    let q = 0;
    for (let a = 0; a < 5; a++) for (let b = 0; b < 61; b++) for (let c = 0; c < 47; c++) for (let d = 0; d < 9; d++) {
      expected[q++] = x[(((a + 1) * 64 + b + 2) * 50 + c + 3) * 11 + d + 1]!;
    }
    t.deepEqual(box, expected);
  } finally {
    s.addon.setThreads(threads);
  }
});
