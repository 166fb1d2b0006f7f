/**
 * What the tfjs_* tests share: running one computation on a named TF.js
 * backend from plain arrays, the relative error the issue bounds, and a spy
 * that proves a kernel ran in the addon (not in a cpu fallback).
 */
import * as tf from '@tensorflow/tfjs';

import { loadAddon } from '../bindings/loader.js';
import type { NnAddon } from '../bindings/nn_binding.js';
import { nativeBackendStatus, registerNativeBackend, setNnEngine } from '../src/tfjs/native_backend.js';

tf.env().set('IS_TEST', true); // quiets the "install tfjs-node" banner

export const nativeAvailable = nativeBackendStatus().available;
if (nativeAvailable) registerNativeBackend();

/** The engines this build can run the native kernels on. */
export function engines(): ('onednn' | 'builtin')[] {
  if (!nativeAvailable) return [];
  const s = loadAddon();
  return s.ok && s.addon.nn.info().onednn ? ['onednn', 'builtin'] : ['builtin'];
}

export { setNnEngine };

/** A seeded uniform array in [lo, hi). */
export function random(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = lo + ((s >>> 0) / 2 ** 32) * (hi - lo);
  }
  return out;
}

export interface Input {
  shape: number[];
  data: Float32Array;
}

export function input(shape: number[], seed: number, lo = -1, hi = 1): Input {
  return { shape, data: random(shape.reduce((a, b) => a * b, 1), seed, lo, hi) };
}

/** Runs fn on `backend` with the inputs as fresh tensors; returns every output's values. */
export async function runOn(backend: string, inputs: Input[], fn: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const xs = inputs.map((i) => tf.tensor(i.data, i.shape, 'float32'));
    const out = fn(...xs);
    return (Array.isArray(out) ? out : [out]).map((t) => Float32Array.from(t.dataSync()));
  });
}

/** max |a − b| / max |b|: the error relative to the reference tensor's scale. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) return Number.isNaN(a[i]!) && Number.isNaN(b[i]!) ? num : Infinity;
    num = Math.max(num, d);
    den = Math.max(den, Math.abs(b[i]!));
  }
  return den === 0 ? num : num / den;
}

/** Counts calls of the addon's nn functions while fn runs. */
export async function countNativeCalls<T>(fn: () => Promise<T>): Promise<{ result: T; calls: Map<string, number> }> {
  const s = loadAddon();
  if (!s.ok) throw new Error(s.reason);
  const nn = s.addon.nn as unknown as Record<string, (...a: unknown[]) => unknown>;
  const calls = new Map<string, number>();
  const saved = new Map<string, (...a: unknown[]) => unknown>();
  for (const [name, f] of Object.entries(nn)) {
    if (typeof f !== 'function' || name === 'info' || name === 'setEngine') continue;
    saved.set(name, f);
    nn[name] = (...a: unknown[]) => {
      const key = name === 'unary' || name === 'binary' ? `${name}:${String(a[0])}` : name;
      calls.set(key, (calls.get(key) ?? 0) + 1);
      return f(...a);
    };
  }
  try {
    return { result: await fn(), calls };
  } finally {
    for (const [name, f] of saved) nn[name] = f;
  }
}

export type { NnAddon };
