/**
 * The segmentation loss (Dice + BCE with ignored pixels) against the same
 * formula in float64 JS, value and gradient, and the global Dice / IoU scores
 * against counts made by hand.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { DICE_SMOOTHING, IGNORE_MASK_U8, IGNORE_TARGET, LOSS_EPSILON, diceBceLoss, segmentationScores } from '../../src/train/segment_loss.js';
import { random } from '../support/tfjs_support.js';

const TOLERANCE = 1e-5;

interface Batch { p: Float32Array; t: Float32Array; shape: [number, number, number, number] }

/** Probabilities in [0.02, 0.98] and targets 0, 1 or ignored (−1), about a third each. */
function batch(n: number, h: number, w: number, seed: number): Batch {
  const size = n * h * w;
  const p = random(size, seed, 0.02, 0.98);
  const t = random(size, seed + 1, 0, 3).map((v) => (v < 1 ? 0 : v < 2 ? 1 : IGNORE_TARGET));
  return { p, t, shape: [n, h, w, 1] };
}

/** The file comment's formula in float64, and its derivative by each p (clipping inactive inside [ε, 1 − ε]). */
function reference({ p, t, shape }: Batch): { loss: number; grad: Float64Array } {
  const n = shape[0], pixels = p.length / n;
  let ce = 0, weight = 0;
  const inter = new Float64Array(n), ps = new Float64Array(n), ts = new Float64Array(n);
  for (let i = 0; i < p.length; i++) {
    if (t[i]! < 0) continue;
    const pi = Math.min(Math.max(p[i]!, LOSS_EPSILON), 1 - LOSS_EPSILON), ti = t[i]!, img = Math.floor(i / pixels);
    ce += -(ti * Math.log(pi) + (1 - ti) * Math.log(1 - pi));
    weight++;
    inter[img] += pi * ti;
    ps[img] += pi;
    ts[img] += ti;
  }
  const W = Math.max(1, weight);
  let dice = 0;
  for (let b = 0; b < n; b++) dice += (2 * inter[b]! + DICE_SMOOTHING) / (ps[b]! + ts[b]! + DICE_SMOOTHING);
  const loss = ce / W + 1 - dice / n;
  const grad = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    if (t[i]! < 0) continue;
    const pi = p[i]!, ti = t[i]!, b = Math.floor(i / pixels);
    const den = ps[b]! + ts[b]! + DICE_SMOOTHING, num = 2 * inter[b]! + DICE_SMOOTHING;
    grad[i] = (-ti / pi + (1 - ti) / (1 - pi)) / W - ((2 * ti * den - num) / (den * den)) / n;
  }
  return { loss, grad };
}

function onTf(b: Batch): { loss: number; grad: Float32Array } {
  return tf.tidy(() => {
    const y = tf.tensor4d(b.t, b.shape), p = tf.tensor4d(b.p, b.shape);
    const { value, grad } = tf.valueAndGrad((q: tf.Tensor) => diceBceLoss(y, q))(p);
    return { loss: value.dataSync()[0]!, grad: Float32Array.from(grad.dataSync()) };
  });
}

const maxRelative = (got: ArrayLike<number>, want: ArrayLike<number>) => {
  let scale = 0, d = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!));
    d = Math.max(d, Math.abs(got[i]! - want[i]!));
  }
  return scale === 0 ? d : d / scale;
};

test.before(async () => {
  await tf.setBackend('cpu');
});

for (const [label, n, h, w] of [['a batch of 3 5x7 masks', 3, 5, 7], ['a batch of 1', 1, 9, 4], ['64x64 masks', 2, 64, 64]] as const) {
  test(`diceBceLoss and its gradient equal the float64 formula within 1e-5 on ${label}`, (t) => {
    const b = batch(n, h, w, 10 + n + h);
    const want = reference(b), got = onTf(b);
    t.true(Math.abs(got.loss - want.loss) <= TOLERANCE * Math.max(1, Math.abs(want.loss)), `loss ${got.loss} vs ${want.loss}`);
    const d = maxRelative(got.grad, want.grad);
    t.true(d <= TOLERANCE, `gradient differs by ${d} of its largest magnitude`);
  });
}

test('an ignored pixel changes neither the loss nor gets a gradient, whatever is predicted there', (t) => {
  const b = batch(2, 6, 6, 3);
  const ignored = Array.from(b.t.keys()).filter((i) => b.t[i]! < 0);
  t.true(ignored.length > 0);
  const before = onTf(b);
  const moved = { ...b, p: Float32Array.from(b.p, (v, i) => (b.t[i]! < 0 ? 1 - v : v)) };
  const after = onTf(moved);
  t.is(after.loss, before.loss);
  for (const i of ignored) t.is(after.grad[i], 0);
});

test('a batch that is all ignored has loss 0 and no gradient (not NaN)', (t) => {
  const b: Batch = { p: random(16, 4, 0.1, 0.9), t: new Float32Array(16).fill(IGNORE_TARGET), shape: [1, 4, 4, 1] };
  const got = onTf(b);
  t.is(got.loss, 0);
  t.true(got.grad.every((g) => g === 0));
});

test('a near-perfect prediction of an empty mask has a loss near 0 (Dice ≈ 1, BCE ≈ 0), an inverted one a large loss', (t) => {
  const shape: [number, number, number, number] = [1, 4, 4, 1];
  const empty = new Float32Array(16);
  const good = onTf({ p: new Float32Array(16).fill(1e-6), t: empty, shape });
  const bad = onTf({ p: new Float32Array(16).fill(1 - 1e-6), t: empty, shape });
  t.true(good.loss < 1e-4, `loss ${good.loss}`); // 1 − Dice = Σp / (Σp + 1) ≈ 1.6e-5
  t.true(bad.loss > 10, `loss ${bad.loss}`);
});

test('segmentationScores counts TP, FP and FN over the whole set and leaves ignored pixels out', (t) => {
  // Two images of 4 pixels: truth 1,1,0,ignore | 0,0,1,1; predicted ≥ 0.5 at 0,2,3 | 2.
  const probs = Float32Array.of(0.9, 0.1, 0.7, 0.99, 0.2, 0.4, 0.5, 0.3);
  const masks = Float32Array.of(1, 1, 0, IGNORE_TARGET, 0, 0, 1, 1);
  const s = segmentationScores(probs, masks, 2, 0.5);
  t.deepEqual({ tp: s.tp, fp: s.fp, fn: s.fn, pixels: s.pixels }, { tp: 2, fp: 1, fn: 2, pixels: 7 });
  t.is(s.dice, (2 * 2) / (2 * 2 + 1 + 2));
  t.is(s.iou, 2 / 5);
  const u8 = segmentationScores(probs, Uint8Array.from(masks, (m) => (m < 0 ? IGNORE_MASK_U8 : m)), 2);
  t.deepEqual(u8, s);
});

test('segmentationScores of a set with no positive pixel, predicted or true, is Dice = IoU = 1', (t) => {
  const s = segmentationScores(new Float32Array(8).fill(0.1), new Uint8Array(8), 2);
  t.is(s.dice, 1);
  t.is(s.iou, 1);
});

test('segmentationScores names what is wrong with its arguments', (t) => {
  t.throws(() => segmentationScores([0.5] as unknown as Float32Array, new Uint8Array(1), 1), { instanceOf: TypeError, message: /probs/ });
  t.throws(() => segmentationScores(new Float32Array(4), new Int8Array(4) as unknown as Uint8Array, 1), { instanceOf: TypeError, message: /masks/ });
  t.throws(() => segmentationScores(new Float32Array(4), new Uint8Array(3), 1), { instanceOf: RangeError, message: /masks/ });
  t.throws(() => segmentationScores(new Float32Array(6), new Uint8Array(6), 4), { instanceOf: RangeError, message: /for n/ });
  t.throws(() => segmentationScores(new Float32Array(4), new Uint8Array(4), 1, 2), { instanceOf: RangeError, message: /threshold/ });
});
