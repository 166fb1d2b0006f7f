/**
 * Train/validation splits.
 *
 * stratifiedSplit(labels, { validation, seed }) puts round(fraction · n_c) of
 * each class c in validation, chosen by a seeded shuffle (counter-based:
 * the order depends on (seed, class) only), so every class's share is within
 * one record of the fraction.
 *
 * With `groups` (e.g. the slide of every patch), whole groups go to one side:
 * groups are shuffled by seed, then taken greedily into validation when that
 * brings the per-class validation counts closer to their targets (sum of
 * absolute deviations). No group straddles the split; the class shares are as
 * close as whole groups allow (reported in `counts`).
 */
import { checkInteger, checkKnownKeys, checkNumber, checkObject, invalidRange, invalidType } from '../errors.js';
import { Rng, hash3, patchKey } from '../synth/rng.js';

export interface SplitOptions {
  /** Fraction of records for validation, in (0, 1) (default 0.2). */
  validation?: number;
  seed?: number;
  /** One group key per record; records of one group stay on one side. */
  groups?: ArrayLike<string | number>;
}

export interface Split {
  /** Record indices, ascending. */
  train: number[];
  validation: number[];
  /** Per label: records in train and in validation. */
  counts: Record<string, { train: number; validation: number }>;
}

function shuffle<T>(items: T[], rng: Rng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** A stable 32-bit stream id for a label value. */
function labelStream(label: number): number {
  return hash3(label | 0, 0x2545f491, 0);
}

export function stratifiedSplit(labels: ArrayLike<number>, options: SplitOptions = {}): Split {
  if (!Array.isArray(labels) && !(ArrayBuffer.isView(labels) && !(labels instanceof DataView))) {
    throw invalidType('labels', 'an array of integer labels', labels);
  }
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['validation', 'seed', 'groups']);
  const fraction = o.validation === undefined ? 0.2 : checkNumber('options.validation', o.validation, 0, 1);
  if (fraction <= 0 || fraction >= 1) throw invalidRange('options.validation', 'a fraction strictly between 0 and 1', fraction);
  const seed = o.seed === undefined ? 0 : checkInteger('options.seed', o.seed, 0, Number.MAX_SAFE_INTEGER);
  const n = labels.length;
  if (n < 2) throw invalidRange('labels', 'at least 2 records to split', labels);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    if (typeof l !== 'number' || !Number.isInteger(l)) throw invalidRange(`labels[${i}]`, 'an integer', l);
    (byClass.get(l) ?? byClass.set(l, []).get(l)!).push(i);
  }
  const target = new Map([...byClass].map(([c, idx]) => [c, Math.round(fraction * idx.length)]));
  const inVal = new Uint8Array(n);
  const key = patchKey(seed, 0x5911);

  if (o.groups === undefined) {
    for (const [c, idx] of byClass) {
      const order = shuffle([...idx], new Rng(key, labelStream(c)));
      for (const i of order.slice(0, target.get(c)!)) inVal[i] = 1;
    }
  } else {
    const g = o.groups as ArrayLike<unknown>;
    if (!Array.isArray(g) && !ArrayBuffer.isView(g)) throw invalidType('options.groups', 'an array of group keys', g);
    if (g.length !== n) throw invalidRange('options.groups', `${n} group keys (one per label)`, g);
    const members = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      const k = g[i];
      if (typeof k !== 'string' && typeof k !== 'number') throw invalidType(`options.groups[${i}]`, 'a string or number', k);
      const name = `${typeof k}:${k}`;
      (members.get(name) ?? members.set(name, []).get(name)!).push(i);
    }
    // Sorted before the shuffle: the result must not depend on the records' order of appearance.
    const names = shuffle([...members.keys()].sort(), new Rng(key, 1));
    const have = new Map([...byClass.keys()].map((c) => [c, 0]));
    const deviation = (extra: Map<number, number>): number => {
      let d = 0;
      for (const [c, t] of target) d += Math.abs(have.get(c)! + (extra.get(c) ?? 0) - t);
      return d;
    };
    for (const name of names) {
      const counts = new Map<number, number>();
      for (const i of members.get(name)!) counts.set(labels[i]!, (counts.get(labels[i]!) ?? 0) + 1);
      if (deviation(counts) < deviation(new Map())) {
        for (const i of members.get(name)!) inVal[i] = 1;
        for (const [c, k] of counts) have.set(c, have.get(c)! + k);
      }
    }
  }
  const train: number[] = [], validation: number[] = [];
  const counts: Split['counts'] = {};
  for (const c of byClass.keys()) counts[String(c)] = { train: 0, validation: 0 };
  for (let i = 0; i < n; i++) {
    (inVal[i] ? validation : train).push(i);
    counts[String(labels[i])]![inVal[i] ? 'validation' : 'train']++;
  }
  return { train, validation, counts };
}
