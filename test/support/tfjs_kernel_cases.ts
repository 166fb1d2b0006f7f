/**
 * Parity cases of the `native` TF.js backend's kernels (test/tfjs/parity.test.ts,
 * test/tfjs/unet_ops.test.ts): a kernel configuration is its seeded inputs, a
 * computation through TF.js's own ops (with gradients by withGrads), and the
 * addon functions that must run (and must not); a case runs it on `native`
 * with each nn engine and on TF.js cpu, within 1e-4 of the reference's largest
 * magnitude, and a spy on the addon turns a silent cpu fallback into a failure.
 */
import * as tf from '@tensorflow/tfjs';

import type { Case, Shape } from './parity.js';
import { countNativeCalls, input, runOn, setNnEngine, type Input } from './tfjs_support.js';

export type Engine = 'onednn' | 'builtin';

/** One configuration of an op: its inputs, the computation, and the addon functions that must run (unary/binary as 'binary:mul')… */
export interface Kernel {
  inputs: Input[];
  fn: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
  native: string[];
  /** …and those that must not (e.g. a contiguous slice stays TF.js cpu's view, no copy). */
  notNative?: string[];
}

/** Largest difference allowed, relative to the reference's largest magnitude. */
export const KERNEL_TOLERANCE = 1e-4;

export const kernel = (label: string, k: Kernel): Shape<Kernel> => ({ label, make: () => k });
export const dims = (shape: number[]) => shape.join('x');

/** Forward value and the gradients of Σ(f(xs)·w) for random w, so dy is not all ones. */
export function withGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, seed: number): (...xs: tf.Tensor[]) => tf.Tensor[] {
  return (...xs) => {
    const y = f(...xs);
    const w = tf.tensor(input(y.shape, seed).data, y.shape);
    const grads = tf.grads((...as: tf.Tensor[]) => tf.sum(tf.mul(f(...as), w)))(xs);
    return [y, ...grads];
  };
}

/** Every output of the kernel on TF.js cpu, or on `native` with the engine, with which addon functions ran. */
export function kernelCase(label: string, shapes: Shape<Kernel>[]): Case<Engine, Kernel> {
  return {
    label,
    tolerance: { within: KERNEL_TOLERANCE, unit: "relative to the reference's largest magnitude", relative: true },
    shapes,
    async run(engine, k) {
      setNnEngine(engine);
      const { result, calls } = await countNativeCalls(() => runOn('native', k.inputs, k.fn));
      return {
        values: Object.fromEntries(result.map((r, i) => [`output ${i}`, r])),
        claims: [
          ...k.native.map((name): [boolean, string] => [(calls.get(name) ?? 0) > 0, `${name} ran in the addon`]),
          ...(k.notNative ?? []).map((name): [boolean, string] => [!calls.has(name), `${name} did not run in the addon`]),
        ],
      };
    },
    async reference(k) {
      const result = await runOn('cpu', k.inputs, k.fn);
      return { values: Object.fromEntries(result.map((r, i) => [`output ${i}`, r])) };
    },
  };
}
