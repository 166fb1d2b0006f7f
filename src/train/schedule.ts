/**
 * Learning-rate schedules, one value per epoch (epochs counted from 0):
 *
 *   constant  lr
 *   step      lr · 0.1^floor(e / stepEvery)           (stepEvery default max(1, round(E/3)))
 *   cosine    lr · (0.01 + 0.99 · (1 + cos(π · e / E)) / 2)   (Loshchilov & Hutter 2017,
 *             without restarts; floored at 1% of lr so the last epochs still learn)
 *
 * The trainer sets the optimizer's rate at the start of every epoch
 * (setLearningRate); the value depends only on (schedule, lr, e, E), so a
 * resumed run continues the same curve.
 */
import type * as tf from '@tensorflow/tfjs';

import { checkInteger, checkNumber, checkOneOf } from '../errors.js';

export const LR_SCHEDULES = ['cosine', 'step', 'constant'] as const;
export type LrSchedule = (typeof LR_SCHEDULES)[number];

/** The cosine schedule's floor, as a fraction of the base rate. */
export const COSINE_FLOOR = 0.01;
/** The step schedule's factor per step. */
export const STEP_GAMMA = 0.1;

export function defaultStepEvery(epochs: number): number {
  return Math.max(1, Math.round(epochs / 3));
}

/** The learning rate of epoch `epoch` (0-based) of `epochs`. */
export function learningRateAt(schedule: LrSchedule, lr: number, epoch: number, epochs: number, stepEvery = defaultStepEvery(epochs)): number {
  checkOneOf('schedule', schedule, LR_SCHEDULES);
  checkNumber('lr', lr, 0);
  checkInteger('epochs', epochs, 1);
  checkInteger('epoch', epoch, 0);
  checkInteger('stepEvery', stepEvery, 1);
  if (schedule === 'constant') return lr;
  if (schedule === 'step') return lr * STEP_GAMMA ** Math.floor(epoch / stepEvery);
  return lr * (COSINE_FLOOR + (1 - COSINE_FLOOR) * (1 + Math.cos((Math.PI * Math.min(epoch, epochs)) / epochs)) / 2);
}

/** The optimizer's current learning rate (Adam, SGD, RMSProp, … all keep it in `learningRate`). */
export function getLearningRate(optimizer: tf.Optimizer): number {
  const lr = (optimizer as unknown as { learningRate?: unknown }).learningRate;
  if (typeof lr !== 'number') throw new TypeError(`The model's optimizer (${optimizer.getClassName()}) has no numeric learningRate to schedule`);
  return lr;
}

/** Sets the rate the next applyGradients uses (TF.js optimizers read `learningRate` on every step). */
export function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  getLearningRate(optimizer);
  (optimizer as unknown as { learningRate: number }).learningRate = lr;
}
