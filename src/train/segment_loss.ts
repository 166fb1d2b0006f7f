/**
 * The segmentation loss and scores of the UNet (src/models/unet.ts).
 *
 * Targets are masks of the output's shape [n, S, S, 1]: 1 tumour, 0 not, and
 * any negative value (IGNORE_TARGET) a pixel that neither term counts
 * (unlabelled or outside the annotated region). With w = [t ≥ 0], p the
 * predicted probability clipped to [ε, 1 − ε] (ε = 1e-7, Keras's):
 *
 *   BCE  = Σ w·−(t ln p + (1 − t) ln(1 − p)) / max(1, Σ w)    over the batch
 *   Dice = (2 Σ w·p·t + 1) / (Σ w·p + Σ w·t + 1)              per image
 *   loss = BCE + 1 − mean over images of Dice
 *
 * Soft Dice with smoothing 1 (Milletari et al. 2016, "V-Net"), per image so
 * that small lesions weigh as much as large ones; the BCE term keeps the
 * gradient informative where Dice saturates (an empty mask predicted empty).
 */
import * as tf from '@tensorflow/tfjs';

import { checkInteger, checkNumber, invalidRange, invalidType } from '../errors.js';

/** A target pixel the loss and the scores leave out (any negative target is). */
export const IGNORE_TARGET = -1;
/** The same in a Uint8Array mask (0 background, 1 tumour). */
export const IGNORE_MASK_U8 = 255;

/** Probabilities are clipped to [ε, 1 − ε] before the logarithms (Keras's epsilon). */
export const LOSS_EPSILON = 1e-7;
/** Added to the numerator and denominator of the soft Dice. */
export const DICE_SMOOTHING = 1;

/** BCE + (1 − soft Dice); a scalar. See the file comment. */
export function diceBceLoss(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const w = tf.cast(tf.greaterEqual(yTrue, 0), 'float32');
    const t = tf.mul(yTrue, w);
    const p = tf.clipByValue(yPred, LOSS_EPSILON, 1 - LOSS_EPSILON);
    const ce = tf.neg(tf.add(tf.mul(t, tf.log(p)), tf.mul(tf.sub(1, t), tf.log(tf.sub(1, p)))));
    const bce = tf.div(tf.sum(tf.mul(w, ce)), tf.maximum(tf.sum(w), 1));
    const axes = yPred.shape.map((_, i) => i).slice(1);
    const wp = tf.mul(w, p);
    const intersection = tf.sum(tf.mul(wp, t), axes);
    const dice = tf.div(tf.add(tf.mul(intersection, 2), DICE_SMOOTHING), tf.add(tf.add(tf.sum(wp, axes), tf.sum(t, axes)), DICE_SMOOTHING));
    return tf.add(bce, tf.sub(1, tf.mean(dice))) as tf.Scalar;
  });
}

/**
 * Compiles a segmentation model for the trainer with diceBceLoss and no
 * metrics (scores come from segmentationScores): Adam(learningRate), or the
 * optimizer given instead (a loaded checkpoint's, with its state).
 */
export function compileForSegmentation(model: tf.LayersModel, learningRate: number | tf.Optimizer): void {
  const optimizer = learningRate instanceof tf.Optimizer ? learningRate : tf.train.adam(checkNumber('learningRate', learningRate, 0, 10));
  model.compile({ optimizer, loss: diceBceLoss });
}

export interface SegmentationScores {
  /** 2·TP / (2·TP + FP + FN); 1 when neither prediction nor truth has a positive pixel. */
  dice: number;
  /** TP / (TP + FP + FN); 1 likewise. */
  iou: number;
  tp: number;
  fp: number;
  fn: number;
  /** Pixels scored (ignored ones left out). */
  pixels: number;
}

/**
 * Dice and IoU over a whole set of `n` images (global TP / FP / FN, not a
 * mean of per-image scores, which empty images would dominate): `probs` and
 * `masks` hold n equal images of pixels each, in the same order. A pixel is
 * predicted positive when its probability is ≥ `threshold`, and is tumour in
 * the truth when its mask value is ≥ 0.5 (1 in a 0/1 mask). A mask leaves a
 * pixel out where it is negative (Float32Array, IGNORE_TARGET) or
 * IGNORE_MASK_U8 (Uint8Array, as `tile --masks` writes).
 * (metrics/segmentation.ts's dice and iou score one grid with no pixel left
 * out; these are their global, ignore-aware counterpart.)
 */
export function segmentationScores(probs: Float32Array, masks: Float32Array | Uint8Array, n: number, threshold = 0.5): SegmentationScores {
  if (!(probs instanceof Float32Array)) throw invalidType('probs', 'a Float32Array', probs);
  if (!(masks instanceof Float32Array) && !(masks instanceof Uint8Array)) throw invalidType('masks', 'a Float32Array or Uint8Array', masks);
  checkInteger('n', n, 0);
  if (masks.length !== probs.length) throw invalidRange('masks', `${probs.length} values (one per value of probs)`, masks);
  if (n === 0 ? probs.length !== 0 : probs.length % n !== 0) {
    throw invalidRange('n', `the number of images in probs (its length ${probs.length} is not a multiple of n)`, n);
  }
  checkNumber('threshold', threshold, 0, 1);
  let tp = 0, fp = 0, fn = 0, pixels = 0;
  const u8 = masks instanceof Uint8Array;
  for (let i = 0; i < probs.length; i++) {
    const m = masks[i]!;
    if (u8 ? m === IGNORE_MASK_U8 : m < 0) continue;
    pixels++;
    const truth = m >= 0.5, predicted = probs[i]! >= threshold;
    if (predicted && truth) tp++;
    else if (predicted) fp++;
    else if (truth) fn++;
  }
  const union = tp + fp + fn;
  return { dice: union === 0 ? 1 : (2 * tp) / (2 * tp + fp + fn), iou: union === 0 ? 1 : tp / union, tp, fp, fn, pixels };
}
