/**
 * What every native kernel needs: the addon's nn object, the backend's typed
 * arrays, and the wrapper that falls back to TF.js cpu's own kernel for the
 * cases the addon does not cover (other dtypes, NCHW, empty tensors…).
 */
import { getKernel, util, type DataType, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import { loadAddon } from '../../../bindings/loader.js';
import type { NnAddon } from '../../../bindings/nn_binding.js';

export const NATIVE_BACKEND = 'native';

export interface KernelArgs {
  inputs: Record<string, TensorInfo | undefined>;
  backend: MathBackendCPU;
  attrs: Record<string, unknown>;
}

let cached: NnAddon | undefined;

export function nn(): NnAddon {
  if (cached) return cached;
  const s = loadAddon();
  if (!s.ok) throw new Error(`The native TF.js backend needs histoflow's addon: ${s.reason}`);
  return (cached = s.addon.nn);
}

/**
 * The backend's own storage of a float32 tensor (no copy). TF.js cpu's Cast
 * from int32 or bool to float32 keeps the Int32Array / Uint8Array storage
 * (no precision is lost); those few tensors are converted here.
 */
export function f32(backend: MathBackendCPU, t: TensorInfo): Float32Array {
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
}

/** Whether every given tensor is non-empty float32 (what the addon's kernels take). */
export function allFloat32(...ts: (TensorInfo | undefined)[]): boolean {
  return ts.every((t) => t === undefined || (t.dtype === 'float32' && util.sizeFromShape(t.shape) > 0));
}

/** An output array for an addon kernel: pooled on the native backend (contents undefined, overwrite it all). */
export function allocate(backend: MathBackendCPU, length: number): Float32Array {
  const pooled = backend as MathBackendCPU & { allocate?: (n: number) => Float32Array };
  return pooled.allocate ? pooled.allocate(length) : new Float32Array(length);
}

export function output(backend: MathBackendCPU, shape: readonly number[], values: Float32Array, dtype: DataType = 'float32'): TensorInfo {
  return backend.makeTensorInfo([...shape], dtype, values);
}

/**
 * A kernel for `native` that runs `run` (the addon) and, where `run` returns
 * null, TF.js cpu's kernel of the same name with the same arguments. Kernels
 * with several outputs (SplitV) return them as an array.
 */
export function nativeKernel(kernelName: string, run: (args: KernelArgs) => TensorInfo | TensorInfo[] | null): KernelConfig {
  const cpu = getKernel(kernelName, 'cpu');
  const fallback: KernelFunc | undefined = cpu?.kernelFunc;
  const kernelFunc = ((args: KernelArgs) => {
    const out = run(args);
    if (out) return out;
    if (!fallback) throw new Error(`${kernelName}: no cpu kernel to fall back to`);
    return fallback(args as unknown as Parameters<KernelFunc>[0]);
  }) as unknown as KernelFunc;
  return { kernelName, backendName: NATIVE_BACKEND, kernelFunc };
}
