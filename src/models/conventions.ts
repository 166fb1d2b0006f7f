/**
 * What every zoo network shares (zoo.ts, unet.ts): batch norm's momentum,
 * filter counts scaled by `width`, and glorot-uniform kernel initializers
 * seeded in layer order, so two builds with one seed hold identical weights.
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Batch norm's moving-average momentum in the zoo: 0.9 (PyTorch's 0.1). With
 * Keras's 0.99 the moving statistics need hundreds of steps to forget their
 * initial 0/1, more than a few epochs of a 2,000-patch set (32 steps each),
 * and validation then scores a network that training never saw.
 */
export const BN_MOMENTUM = 0.9;

/** `filters`·`width`, rounded, at least 1. */
export function scaled(filters: number, width: number): number {
  return Math.max(1, Math.round(filters * width));
}

/** Glorot-uniform initializers with consecutive seeds from `seed`, one per call. */
export function initializers(seed: number): () => ReturnType<typeof tf.initializers.glorotUniform> {
  let s = seed;
  return () => tf.initializers.glorotUniform({ seed: s++ });
}
