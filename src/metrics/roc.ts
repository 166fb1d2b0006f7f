/**
 * ROC analysis for a binary classifier's scores.
 *
 * rocAuc: the Mann–Whitney form, AUC = (R₊ − n₊(n₊+1)/2) / (n₊·n₋), R₊ the
 * sum of the positives' ranks among all scores with tied scores given their
 * average rank; equal to the probability that a random positive scores above
 * a random negative, ties counting one half. O(n log n).
 * rocCurve: the points (FPR, TPR) of every distinct threshold, from
 * (0, 0) at +∞ down to (1, 1); a tie block moves diagonally (its trapezoid
 * area is the ½-weight of the ties, so the trapezoid area equals rocAuc).
 */
import { checkBinaryScores, requireBothClasses } from './check.js';

export interface RocPoint {
  /** Predict positive when score ≥ threshold (+∞ for the first point). */
  threshold: number;
  fpr: number;
  tpr: number;
}

/** Indices sorted by score, descending (stable). */
function byScoreDesc(s: Float64Array): Uint32Array {
  const order = new Uint32Array(s.length).map((_, i) => i);
  return order.sort((a, b) => s[b]! - s[a]! || a - b);
}

export function rocAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const { y, s } = checkBinaryScores(labels, scores);
  const { pos, neg } = requireBothClasses(y);
  const order = new Uint32Array(s.length).map((_, i) => i).sort((a, b) => s[a]! - s[b]!);
  let rankSum = 0;
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && s[order[j + 1]!] === s[order[i]!]) j++;
    const avgRank = (i + j) / 2 + 1; // ranks are 1-based
    for (let k = i; k <= j; k++) if (y[order[k]!]) rankSum += avgRank;
    i = j + 1;
  }
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

export function rocCurve(labels: ArrayLike<number>, scores: ArrayLike<number>): RocPoint[] {
  const { y, s } = checkBinaryScores(labels, scores);
  const { pos, neg } = requireBothClasses(y);
  const order = byScoreDesc(s);
  const points: RocPoint[] = [{ threshold: Infinity, fpr: 0, tpr: 0 }];
  let tp = 0, fp = 0;
  for (let i = 0; i < order.length;) {
    const t = s[order[i]!]!;
    while (i < order.length && s[order[i]!] === t) {
      if (y[order[i]!]) tp++;
      else fp++;
      i++;
    }
    points.push({ threshold: t, fpr: fp / neg, tpr: tp / pos });
  }
  return points;
}

/** Trapezoid area under ROC points (equals rocAuc for rocCurve's points). */
export function curveArea(points: readonly RocPoint[]): number {
  let area = 0;
  for (let i = 1; i < points.length; i++) {
    area += ((points[i]!.fpr - points[i - 1]!.fpr) * (points[i]!.tpr + points[i - 1]!.tpr)) / 2;
  }
  return area;
}
