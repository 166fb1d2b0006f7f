/** Shared validation of (labels, scores) pairs for the metrics. */
import { invalidRange, invalidType } from '../errors.js';

function arrayLike(name: string, value: unknown): ArrayLike<unknown> {
  if (!Array.isArray(value) && !(ArrayBuffer.isView(value) && !(value instanceof DataView))) {
    throw invalidType(name, 'an array or typed array', value);
  }
  return value as ArrayLike<unknown>;
}

/** Binary labels (0/1) and finite scores of one length ≥ 1, copied to typed arrays. */
export function checkBinaryScores(labels: unknown, scores: unknown): { y: Uint8Array; s: Float64Array } {
  const l = arrayLike('labels', labels), sc = arrayLike('scores', scores);
  if (l.length === 0) throw invalidRange('labels', 'at least one label', labels);
  if (sc.length !== l.length) throw invalidRange('scores', `${l.length} scores (one per label)`, scores);
  const y = new Uint8Array(l.length), s = new Float64Array(l.length);
  for (let i = 0; i < l.length; i++) {
    const v = l[i];
    if (v !== 0 && v !== 1) throw invalidRange(`labels[${i}]`, '0 or 1', v);
    y[i] = v;
    const x = sc[i];
    if (typeof x !== 'number' || !Number.isFinite(x)) throw invalidRange(`scores[${i}]`, 'a finite number', x);
    s[i] = x;
  }
  return { y, s };
}

/** Both classes must be present for a ranking metric. */
export function requireBothClasses(y: Uint8Array): { pos: number; neg: number } {
  let pos = 0;
  for (const v of y) pos += v;
  const neg = y.length - pos;
  if (pos === 0 || neg === 0) {
    throw invalidRange('labels', 'both classes (at least one 0 and one 1) for ROC', `${pos} positives and ${neg} negatives`);
  }
  return { pos, neg };
}
