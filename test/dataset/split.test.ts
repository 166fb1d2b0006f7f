/**
 * Splits: stratified within one record per class, groups never straddle,
 * deterministic per seed and different across seeds, bad input refused.
 */
import test from 'ava';

import { stratifiedSplit } from '../../src/dataset/split.js';
import { Rng } from '../../src/synth/rng.js';

function labelsOf(n: number, seed: number, classes = 2, p = 0.3): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => (rng.chance(p) ? 1 : rng.int(0, classes - 1) === 1 && classes > 2 ? 2 : 0));
}

test('stratified: each class within one record of the fraction; a partition', (t) => {
  for (const [n, fraction, seed] of [[100, 0.2, 1], [1001, 0.15, 2], [37, 0.5, 3], [5000, 0.1, 4]] as const) {
    const labels = labelsOf(n, seed, 3);
    const s = stratifiedSplit(labels, { validation: fraction, seed });
    t.is(s.train.length + s.validation.length, n);
    t.deepEqual([...s.train, ...s.validation].sort((a, b) => a - b), [...Array(n).keys()]);
    for (const c of new Set(labels)) {
      const total = labels.filter((l) => l === c).length;
      const inVal = s.validation.filter((i) => labels[i] === c).length;
      t.true(Math.abs(inVal - fraction * total) <= 1, `class ${c}: ${inVal} of ${total} at ${fraction}`);
      t.is(s.counts[String(c)]!.validation, inVal);
    }
  }
});

test('deterministic for a seed, different for another', (t) => {
  const labels = labelsOf(500, 7);
  t.deepEqual(stratifiedSplit(labels, { seed: 5 }), stratifiedSplit(labels, { seed: 5 }));
  t.notDeepEqual(stratifiedSplit(labels, { seed: 5 }).validation, stratifiedSplit(labels, { seed: 6 }).validation);
});

test('groups never straddle the split; class shares close to the target', (t) => {
  const rng = new Rng(99);
  const n = 3000;
  const groups = Array.from({ length: n }, () => `slide-${rng.int(0, 59)}`);
  // Slides differ in tumour burden, as real ones do.
  const burden = new Map([...new Set(groups)].map((g) => [g, rng.next()]));
  const labels = groups.map((g) => (rng.next() < burden.get(g)! ? 1 : 0));
  for (const seed of [0, 1, 2]) {
    const s = stratifiedSplit(labels, { validation: 0.2, seed, groups });
    const side = new Map<string, boolean>();
    for (const i of s.train) side.set(groups[i]!, false);
    for (const i of s.validation) t.false(side.get(groups[i]!) === false, `group ${groups[i]} on both sides`);
    t.true(s.validation.length > 0 && s.train.length > 0);
    for (const c of [0, 1]) {
      const total = labels.filter((l) => l === c).length;
      const inVal = s.counts[String(c)]!.validation;
      t.true(Math.abs(inVal / total - 0.2) < 0.05, `class ${c}: ${inVal}/${total}`);
    }
    t.deepEqual(s, stratifiedSplit(labels, { validation: 0.2, seed, groups }));
  }
});

test('bad input is refused with the parameter named', (t) => {
  t.throws(() => stratifiedSplit([0, 1, 0], { validation: 1 }), { instanceOf: RangeError, message: /options.validation/ });
  t.throws(() => stratifiedSplit([0, 1, 0], { validation: 0 }), { instanceOf: RangeError, message: /options.validation/ });
  t.throws(() => stratifiedSplit([0, 0.5, 0]), { instanceOf: RangeError, message: /labels\[1\]/ });
  t.throws(() => stratifiedSplit([0]), { instanceOf: RangeError, message: /labels/ });
  t.throws(() => stratifiedSplit('abc' as never), { instanceOf: TypeError, message: /labels/ });
  t.throws(() => stratifiedSplit([0, 1, 0], { groups: ['a'] }), { instanceOf: RangeError, message: /options.groups/ });
  t.throws(() => stratifiedSplit([0, 1], { groups: ['a', {}] as never }), { instanceOf: TypeError, message: /options.groups\[1\]/ });
  t.throws(() => stratifiedSplit([0, 1], { seeed: 1 } as never), { instanceOf: RangeError, message: /seeed/ });
});
