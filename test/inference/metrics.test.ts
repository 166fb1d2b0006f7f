/**
 * Metrics against direct definitions: the rank AUC equals the pairwise count
 * (pos > neg + ½·ties) on random scores with many ties; the ROC curve's
 * trapezoid area equals it; the confusion matrix and accuracy equal direct
 * counts; the bootstrap interval is seeded, contains the estimate, and
 * narrows with n; bad input is refused.
 */
import test from 'ava';

import { accuracy, bootstrapCi, confusionMatrix, curveArea, quantile, rocAuc, rocCurve } from '../../src/metrics/index.js';
import { Rng } from '../../src/synth/rng.js';
import { pairwiseAuc } from '../support/helpers.js';


function randomData(n: number, levels: number, seed: number): { y: number[]; s: number[] } {
  const rng = new Rng(seed);
  const y = Array.from({ length: n }, () => (rng.chance(0.4) ? 1 : 0));
  // Few score levels: many ties, within and across classes; positives shifted up.
  const s = y.map((l) => Math.min(levels - 1, Math.floor(rng.next() * levels + l * rng.next() * 3)) / levels);
  return { y, s };
}

test('AUC equals the direct pairwise count on random scores with ties', (t) => {
  for (const [n, levels, seed] of [[50, 3, 1], [200, 5, 2], [333, 10, 3], [1000, 7, 4], [17, 1, 5]] as const) {
    const { y, s } = randomData(n, levels, seed);
    if (!y.includes(0) || !y.includes(1)) continue;
    const direct = pairwiseAuc(y, s);
    t.true(Math.abs(rocAuc(y, s) - direct) < 1e-12, `n ${n}, levels ${levels}: ${rocAuc(y, s)} vs ${direct}`);
    t.true(Math.abs(curveArea(rocCurve(y, s)) - direct) < 1e-12, 'trapezoid area of the ROC curve');
  }
  t.is(rocAuc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]), 1);
  t.is(rocAuc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]), 0);
  t.is(rocAuc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]), 0.5);
  t.is(rocAuc(Uint8Array.of(0, 1), Float32Array.of(0.2, 0.9)), 1);
});

test('ROC curve: from (0,0) to (1,1), monotone, one point per distinct score', (t) => {
  const { y, s } = randomData(300, 6, 9);
  const pts = rocCurve(y, s);
  t.deepEqual(pts[0], { threshold: Infinity, fpr: 0, tpr: 0 });
  t.is(pts.at(-1)!.fpr, 1);
  t.is(pts.at(-1)!.tpr, 1);
  t.is(pts.length, new Set(s).size + 1);
  for (let i = 1; i < pts.length; i++) {
    t.true(pts[i]!.fpr >= pts[i - 1]!.fpr && pts[i]!.tpr >= pts[i - 1]!.tpr && pts[i]!.threshold < pts[i - 1]!.threshold);
    // The point at threshold T is the confusion matrix at T.
    const m = confusionMatrix(y, s, pts[i]!.threshold);
    t.is(pts[i]!.tpr, m.tp / (m.tp + m.fn));
    t.is(pts[i]!.fpr, m.fp / (m.fp + m.tn));
  }
});

test('confusion matrix and accuracy equal direct counts (score ≥ threshold is positive)', (t) => {
  const y = [1, 1, 0, 0, 1, 0, 1, 0];
  const s = [0.9, 0.5, 0.5, 0.1, 0.2, 0.7, 0.6, 0.49];
  t.deepEqual(confusionMatrix(y, s), { tp: 3, fn: 1, fp: 2, tn: 2 });
  t.is(accuracy(y, s), 5 / 8);
  t.deepEqual(confusionMatrix(y, s, 0.8), { tp: 1, fn: 3, fp: 0, tn: 4 });
  const { y: ry, s: rs } = randomData(500, 9, 12);
  const m = confusionMatrix(ry, rs, 0.4);
  let correct = 0;
  ry.forEach((l, i) => { if ((rs[i]! >= 0.4 ? 1 : 0) === l) correct++; });
  t.is(accuracy(ry, rs, 0.4), correct / 500);
  t.is(m.tp + m.fp + m.tn + m.fn, 500);
});

test('bootstrap CI: seeded, brackets the estimate, narrows with more data', (t) => {
  const small = randomData(100, 20, 21), big = randomData(2000, 20, 22);
  const a = bootstrapCi(small.y, small.s, rocAuc, { seed: 3, samples: 400 });
  const b = bootstrapCi(small.y, small.s, rocAuc, { seed: 3, samples: 400 });
  const c = bootstrapCi(small.y, small.s, rocAuc, { seed: 4, samples: 400 });
  t.deepEqual(a, b);
  t.notDeepEqual(a, c);
  t.is(a.estimate, rocAuc(small.y, small.s));
  t.true(a.lower < a.estimate && a.estimate < a.upper);
  const wide = bootstrapCi(big.y, big.s, rocAuc, { seed: 3, samples: 400 });
  t.true(wide.upper - wide.lower < (a.upper - a.lower) / 2, 'width shrinks roughly as 1/sqrt(n)');
  // Normal-theory check on accuracy: the 95% interval is about ±1.96·sqrt(p(1−p)/n).
  const acc = bootstrapCi(big.y, big.s, accuracy, { seed: 1, samples: 2000 });
  const se = Math.sqrt((acc.estimate * (1 - acc.estimate)) / 2000);
  t.true(Math.abs((acc.upper - acc.lower) - 2 * 1.96 * se) < 0.25 * 2 * 1.96 * se, `${acc.upper - acc.lower} vs ${2 * 1.96 * se}`);
  t.is(quantile([1, 2, 3, 4], 0.5), 2.5);
});

test('bad input is refused with the parameter named', (t) => {
  t.throws(() => rocAuc([0, 1], [0.1]), { instanceOf: RangeError, message: /scores/ });
  t.throws(() => rocAuc([0, 2], [0.1, 0.2]), { instanceOf: RangeError, message: /labels\[1\]/ });
  t.throws(() => rocAuc([0, 1], [0.1, NaN]), { instanceOf: RangeError, message: /scores\[1\]/ });
  t.throws(() => rocAuc([1, 1], [0.1, 0.2]), { instanceOf: RangeError, message: /both classes/ });
  t.throws(() => rocAuc([], []), { instanceOf: RangeError, message: /labels/ });
  t.throws(() => rocAuc('01' as never, [1, 2]), { instanceOf: TypeError, message: /labels/ });
  t.throws(() => confusionMatrix([0, 1], [0, 1], NaN), { instanceOf: RangeError, message: /threshold/ });
  t.throws(() => bootstrapCi([0, 1], [0, 1], rocAuc, { samples: 0 }), { instanceOf: RangeError, message: /options.samples/ });
  t.throws(() => bootstrapCi([0, 1], [0, 1], rocAuc, { confidence: 1 }), { instanceOf: RangeError, message: /options.confidence/ });
});
