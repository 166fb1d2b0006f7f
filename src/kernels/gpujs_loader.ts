/**
 * Loading gpu.js, an optionalDependency: the types of the part histoflow
 * uses, and one loader that says how to get it when it is missing.
 */

export interface GpuKernel {
  (...args: unknown[]): Float32Array;
  setOutput(output: number[]): GpuKernel;
  setPipeline(flag: boolean): GpuKernel;
}

export interface GpuInstance {
  mode: string;
  createKernel(fn: unknown, settings: Record<string, unknown>): GpuKernel;
  addFunction(fn: unknown, settings?: Record<string, unknown>): GpuInstance;
  destroy(): void;
}

export interface GpuConstructor {
  new (settings?: { mode?: string }): GpuInstance;
  isHeadlessGLSupported: boolean;
}

export const GPUJS_NOT_INSTALLED = 'gpu.js is not installed (npm install gpu.js; WebGL needs a display, e.g. xvfb-run)';

export async function loadGpu(): Promise<GpuConstructor> {
  // A variable specifier: gpu.js need not be there at build time.
  const specifier = 'gpu.js';
  let mod: { GPU?: GpuConstructor; default?: { GPU?: GpuConstructor } };
  try {
    mod = (await import(specifier)) as typeof mod;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') throw new Error(GPUJS_NOT_INSTALLED);
    throw new Error(`gpu.js could not be loaded: ${(e as Error).message}`);
  }
  const GPU = mod.GPU ?? mod.default?.GPU;
  if (!GPU) throw new Error('gpu.js could not be loaded: the module has no GPU export');
  return GPU;
}
