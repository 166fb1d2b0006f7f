/**
 * What the tfjs tests share: the nn engines and their status, running one
 * computation on a named TF.js backend from plain arrays, and a spy that
 * proves a kernel ran in the addon (not in a cpu fallback).
 */
import test, { type ExecutionContext } from 'ava';
import * as tf from '@tensorflow/tfjs';

import { loadAddon } from '../../bindings/loader.js';
import type { NnAddon } from '../../bindings/nn_binding.js';
import { nativeBackendStatus, registerNativeBackend, setNnEngine } from '../../src/tfjs/native_backend.js';
import { IN_CI } from './helpers.js';

tf.env().set('IS_TEST', true); // quiets the "install tfjs-node" banner

export const nativeStatus = nativeBackendStatus();
export const nativeAvailable = nativeStatus.available;
if (nativeAvailable) registerNativeBackend();

/** The engines this build can run the native kernels on. */
export function engines(): ('onednn' | 'builtin')[] {
  if (!nativeAvailable) return [];
  const s = loadAddon();
  return s.ok && s.addon.nn.info().onednn ? ['onednn', 'builtin'] : ['builtin'];
}

/** Each nn engine as a backend of the `native` TF.js backend: whether it runs here and, when not, why. */
export function engineStatus(): { name: 'onednn' | 'builtin'; available: boolean; detail: string }[] {
  const native = nativeStatus;
  const linked = engines();
  return (['onednn', 'builtin'] as const).map((name) => {
    if (!native.available) return { name, available: false, detail: native.detail };
    if (!linked.includes(name)) return { name, available: false, detail: 'histoflow was built without oneDNN (nn.info().onednn is false)' };
    return { name, available: true, detail: native.detail };
  });
}

export { setNnEngine };

/**
 * A serial test that needs the native backend: skipped with the reason where
 * the addon is missing, run (and failing) in CI, which builds it.
 */
export function nativeTest(title: string, fn: (t: ExecutionContext) => Promise<void> | void): void {
  const run = nativeAvailable || IN_CI;
  (run ? test.serial : test.skip)(`${title}${run ? '' : ` (skipped: ${nativeStatus.detail})`}`, fn);
}

/** Runs fn with a switch (lean backward pass, fused kernels…) set to `on`, then back on. */
export async function withSwitch<T>(set: (on: boolean) => void, on: boolean, fn: () => Promise<T> | T): Promise<T> {
  set(on);
  try {
    return await fn();
  } finally {
    set(true);
  }
}

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
