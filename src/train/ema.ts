/**
 * An exponential moving average of a model's weights (Polyak & Juditsky 1992;
 * the "model EMA" of modern training recipes, e.g. timm's ModelEmaV2):
 *
 *   shadow ← d·shadow + (1 − d)·w      after every training step, for every
 *                                      weight, batch-norm statistics included
 *   d = min(decay, (1 + t) / (10 + t)) t = steps averaged so far (TensorFlow's
 *                                      ExponentialMovingAverage warm-up, so the
 *                                      first epochs are not dominated by the
 *                                      random initial weights)
 *
 * The average is what validation scores and what best/ keeps: it is the raw
 * weights with the last steps' noise smoothed out, worth about as much as a
 * lower final learning rate without giving up the higher one's progress.
 * Training itself continues on the raw weights.
 *
 * Its state (the shadow values and t) travels with last/ as `ema.bin`
 * (float32, the model's weights in model.weights order, little-endian), so a
 * resume continues the same average.
 */
import { readFile } from 'node:fs/promises';

import * as tf from '@tensorflow/tfjs';

export const EMA_FILE = 'ema.bin';

export class WeightAverage {
  private readonly shadow: tf.Variable[];
  /** Steps averaged so far. */
  steps = 0;

  constructor(private readonly model: tf.LayersModel, readonly decay: number) {
    this.shadow = model.weights.map((w) => tf.variable(w.read().clone(), false));
  }

  /** Folds the model's current weights into the average (after a training step). */
  update(): void {
    const d = Math.min(this.decay, (1 + this.steps) / (10 + this.steps));
    const weights = this.model.weights;
    tf.tidy(() => {
      for (let i = 0; i < weights.length; i++) {
        this.shadow[i]!.assign(tf.add(tf.mul(this.shadow[i]!, d), tf.mul(weights[i]!.read(), 1 - d)));
      }
    });
    this.steps++;
  }

  /**
   * Runs `fn` with the average in the model's weights and puts the raw
   * weights back afterwards, also when `fn` throws.
   */
  async withAverage<T>(fn: () => Promise<T>): Promise<T> {
    const weights = this.model.weights;
    const raw = weights.map((w) => w.read().clone());
    try {
      // write() shares the tensor's data (reference-counted): the clones can go at once.
      tf.tidy(() => weights.forEach((w, i) => w.write(this.shadow[i]!.clone())));
      return await fn();
    } finally {
      weights.forEach((w, i) => w.write(raw[i]!));
      tf.dispose(raw);
    }
  }

  /** The shadow values as ema.bin's bytes. */
  async bytes(): Promise<Uint8Array> {
    const total = this.shadow.reduce((n, v) => n + v.size, 0);
    const out = new Float32Array(total);
    let at = 0;
    for (const v of this.shadow) {
      out.set(await v.data() as Float32Array, at);
      at += v.size;
    }
    return new Uint8Array(out.buffer);
  }

  /** Restores the shadow from ema.bin (`path`), `steps` from the run state; an error naming the file if it does not fit the model. */
  async restore(path: string, steps: number): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (e) {
      throw new Error(`${path}: cannot read the weight average of the run to resume (${(e as Error).message}); ` +
        'restore last/ from a copy, or start the run again without --resume');
    }
    const total = this.shadow.reduce((n, v) => n + v.size, 0);
    if (bytes.byteLength !== total * 4) {
      throw new Error(`${path} holds ${bytes.byteLength} bytes but the model's ${this.shadow.length} weights need ${total * 4}; ` +
        'restore last/ from a copy, or start the run again without --resume');
    }
    const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    let at = 0;
    tf.tidy(() => {
      for (const v of this.shadow) {
        v.assign(tf.tensor(values.subarray(at, at + v.size), v.shape, 'float32'));
        at += v.size;
      }
    });
    this.steps = steps;
  }

  dispose(): void {
    for (const v of this.shadow) v.dispose();
  }
}
