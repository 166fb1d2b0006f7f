/**
 * The `native` TF.js backend: a MathBackendCPU (same tensor storage, same
 * data sync, every cpu kernel) whose hot kernels run in histoflow's addon.
 * Replaced kernels read `backend.data.get(dataId).values` in place and write
 * an output Float32Array (pooled, native_storage.ts) through synchronous addon
 * calls (TF.js kernel functions are synchronous), then hand it to
 * `backend.makeTensorInfo`.
 * TF.js registers gradients per kernel name, so the backward kernels replaced
 * here are the ones tf.grad and optimizers run.
 */
import * as tf from '@tensorflow/tfjs-core';

import { loadAddon } from '../../bindings/loader.js';
import { checkOneOf } from '../errors.js';
import { NATIVE_BACKEND } from './kernels/common.js';
import { fusedTrainingKernels, installFusedTraining } from './fused_training.js';
import { installLeanGradients } from './lean_gradients.js';
import { nativeKernelConfigs } from './native_kernels.js';
import { NativeStorageBackend } from './native_storage.js';

export { NATIVE_BACKEND };

export function nativeBackendStatus(): { available: boolean; detail: string } {
  const s = loadAddon();
  if (!s.ok) return { available: false, detail: s.reason };
  if (typeof s.addon.nn?.info !== 'function') return { available: false, detail: 'the loaded addon was built without the nn kernels (rebuild it)' };
  const nn = s.addon.nn.info();
  const winograd = nn.winograd === undefined ? '' : `, Winograd 3×3 ${nn.winograd ? 'on' : 'off'}`;
  return { available: true, detail: `histoflow addon, engine ${nn.engine} (oneDNN ${nn.onednn ? 'linked' : 'not linked'})${winograd}, ${nn.threads} thread${nn.threads === 1 ? '' : 's'}` };
}

let registered = false;

/** Blocks up to 1 GiB come from (and return to) the heap once the native backend is registered. */
const RETAIN_BYTES = 2 ** 30;
let retainedFreedMemory = false;

/** Whether registering the native backend switched the C library to keeping freed memory (native/core/allocator.h). */
export function nativeAllocatorTuned(): boolean {
  return retainedFreedMemory;
}

/** Registers the `native` backend and its kernels once; throws when the addon is missing. */
export function registerNativeBackend(): void {
  if (registered) return;
  const status = nativeBackendStatus();
  if (!status.available) throw new Error(`The native TF.js backend needs histoflow's addon: ${status.detail}`);
  // Training allocates and frees tens of MB per op: keep freed blocks for reuse instead of
  // unmapping them (native/core/allocator.h: half of a 96² batch-64 step was page faults).
  const s = loadAddon();
  if (s.ok && process.env.HISTOFLOW_NN_MALLOC !== '0') retainedFreedMemory = s.addon.nn.retainFreedMemory(RETAIN_BYTES);
  // Gradients and saved tensors freed as the backward pass goes (lean_gradients.ts):
  // a third of TF.js's own peak on the baseline CNN. HISTOFLOW_NN_LEAN_BACKWARD=0 opts out.
  if (process.env.HISTOFLOW_NN_LEAN_BACKWARD !== '0') installLeanGradients(NATIVE_BACKEND);
  // 3×3 stride-1 forwards as Winograd F(4×4, 3×3) (native/nn/winograd_cpu.cc). HISTOFLOW_NN_WINOGRAD=0 opts out.
  if (s.ok) s.addon.nn.setWinograd(process.env.HISTOFLOW_NN_WINOGRAD !== '0');
  // Priority below cpu's so that importing histoflow never changes TF.js's default.
  tf.registerBackend(NATIVE_BACKEND, () => new NativeStorageBackend(), 0);
  const replaced = new Map(nativeKernelConfigs().map((k) => [k.kernelName, k]));
  for (const config of tf.getKernelsForBackend('cpu')) {
    tf.registerKernel(replaced.get(config.kernelName) ?? { ...config, backendName: NATIVE_BACKEND });
  }
  for (const [name, k] of replaced) {
    if (!tf.getKernel(name, NATIVE_BACKEND)) tf.registerKernel(k);
  }
  // Batch norm and ReLU in training as single kernels (fused_training.ts).
  for (const k of fusedTrainingKernels()) tf.registerKernel(k);
  installFusedTraining();
  registered = true;
}

/** Runs the native backend's kernels on oneDNN or on the built-in GEMM (both when oneDNN is linked). */
export function setNnEngine(engine: 'onednn' | 'builtin'): void {
  const s = loadAddon();
  if (!s.ok) throw new Error(`The native TF.js backend needs histoflow's addon: ${s.reason}`);
  s.addon.nn.setEngine(checkOneOf('engine', engine, ['onednn', 'builtin'] as const));
}

/**
 * Runs 3×3 stride-1 convolution forwards as Winograd F(4×4, 3×3) (about a
 * quarter of the multiply-adds; outputs within ~1e-6 of Σ|x·w| of the direct
 * sum) or as direct convolutions. On by default; HISTOFLOW_NN_WINOGRAD=0 turns
 * it off when the backend registers.
 */
export function setNnWinograd(on: boolean): void {
  const s = loadAddon();
  if (!s.ok) throw new Error(`The native TF.js backend needs histoflow's addon: ${s.reason}`);
  if (typeof on !== 'boolean') throw new TypeError(`on: expected a boolean, got ${typeof on}`);
  s.addon.nn.setWinograd(on);
}

/** Names of the kernels that run in the addon on the native backend. */
export function nativeKernelNames(): string[] {
  return [...nativeKernelConfigs(), ...fusedTrainingKernels()].map((k) => k.kernelName);
}
