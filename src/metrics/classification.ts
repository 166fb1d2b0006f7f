/**
 * Threshold metrics: a score ≥ threshold predicts the positive class (1).
 * confusionMatrix counts the four outcomes; accuracy is (tp + tn) / n.
 */
import { checkNumber } from '../errors.js';
import { checkBinaryScores } from './check.js';

export interface ConfusionMatrix {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export function confusionMatrix(labels: ArrayLike<number>, scores: ArrayLike<number>, threshold = 0.5): ConfusionMatrix {
  const { y, s } = checkBinaryScores(labels, scores);
  checkNumber('threshold', threshold);
  const m: ConfusionMatrix = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < y.length; i++) {
    const predicted = s[i]! >= threshold;
    if (y[i]) predicted ? m.tp++ : m.fn++;
    else predicted ? m.fp++ : m.tn++;
  }
  return m;
}

export function accuracy(labels: ArrayLike<number>, scores: ArrayLike<number>, threshold = 0.5): number {
  const m = confusionMatrix(labels, scores, threshold);
  return (m.tp + m.tn) / (m.tp + m.tn + m.fp + m.fn);
}
