/**
 * Bootstrap confidence intervals (Efron's percentile method): `samples`
 * resamples of the n (label, score) pairs drawn with replacement, seeded
 * (counter-based: resample b, draw k is a function of (seed, b, k)); the
 * interval is the (1 − confidence)/2 and (1 + confidence)/2 quantiles
 * (linear interpolation) of the metric over the resamples. A resample the
 * metric rejects (one class only, for AUC) is drawn again with the next
 * counter, so every interval rests on `samples` values.
 */
import { checkInteger, checkNumber, invalidType } from '../errors.js';
import { Rng, patchKey } from '../synth/rng.js';
import { checkBinaryScores } from './check.js';
import { rocAuc } from './roc.js';

export interface BootstrapOptions {
  /** Resamples (default 1000). */
  samples?: number;
  /** Interval coverage in (0, 1) (default 0.95). */
  confidence?: number;
  seed?: number;
}

export interface ConfidenceInterval {
  /** The metric on the data itself. */
  estimate: number;
  lower: number;
  upper: number;
  confidence: number;
  samples: number;
}

/** The q-quantile of sorted values, linear interpolation (numpy's default). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function bootstrapCi(
  labels: ArrayLike<number>,
  scores: ArrayLike<number>,
  metric: (labels: ArrayLike<number>, scores: ArrayLike<number>) => number = rocAuc,
  options: BootstrapOptions = {},
): ConfidenceInterval {
  if (typeof metric !== 'function') throw invalidType('metric', 'a function (labels, scores) => number', metric);
  const { y, s } = checkBinaryScores(labels, scores);
  const samples = options.samples === undefined ? 1000 : checkInteger('options.samples', options.samples, 1, 1e7);
  const confidence = options.confidence === undefined ? 0.95 : checkNumber('options.confidence', options.confidence, 0, 1);
  if (confidence === 0 || confidence === 1) throw new RangeError(`Expected a number strictly between 0 and 1 for options.confidence but received ${confidence}`);
  const seed = options.seed === undefined ? 0 : checkInteger('options.seed', options.seed, 0, Number.MAX_SAFE_INTEGER);
  const estimate = metric(y, s);
  const n = y.length;
  const values = new Float64Array(samples);
  const ry = new Uint8Array(n), rs = new Float64Array(n);
  let attempt = 0;
  for (let b = 0; b < samples; attempt++) {
    if (attempt > samples * 100) throw new RangeError('Expected labels of which resamples can be scored, but nearly every bootstrap resample was rejected by the metric');
    const rng = new Rng(patchKey(seed, attempt));
    for (let k = 0; k < n; k++) {
      const j = Math.floor(rng.next() * n);
      ry[k] = y[j]!;
      rs[k] = s[j]!;
    }
    let v: number;
    try {
      v = metric(ry, rs);
    } catch (e) {
      if (e instanceof RangeError) continue; // e.g. a resample with one class only
      throw e;
    }
    values[b++] = v;
  }
  values.sort();
  const alpha = (1 - confidence) / 2;
  return { estimate, lower: quantile(values, alpha), upper: quantile(values, 1 - alpha), confidence, samples };
}
