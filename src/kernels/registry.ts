/**
 * Kernel backend choice. `auto` takes the first that works, in order
 * cuda → cpu → gpujs (when gpu.js has a GL context) → js, and says which it
 * chose and why the others were passed over. Every backend gives the CPU reference's result within the
 * tolerance its tests state.
 */
import { loadAddon } from '../../bindings/loader.js';
import { checkOneOf } from '../errors.js';
import { createGpujsBackend } from './gpujs_backend.js';
import { jsBackend } from './js_backend.js';
import { createNativeBackend } from './native_backend.js';
import type { KernelBackend, KernelBackendName } from './types.js';

export const KERNEL_BACKENDS = ['auto', 'cuda', 'cpu', 'gpujs', 'js'] as const;
export type KernelBackendChoice = (typeof KERNEL_BACKENDS)[number];

export interface BackendStatus {
  name: KernelBackendName;
  available: boolean;
  /** Why it is unavailable, or what it runs on (e.g. gpu.js mode). */
  detail: string;
}

const cache = new Map<KernelBackendName, Promise<KernelBackend>>();

async function create(name: KernelBackendName): Promise<KernelBackend> {
  switch (name) {
    case 'cuda': {
      const s = loadAddon();
      if (!s.ok) throw unavailable('cuda', s.reason);
      if (!s.addon.buildInfo().cuda) throw unavailable('cuda', 'histoflow was built without CUDA (no nvcc at build time, or -DHISTOFLOW_CUDA=OFF)');
      const { devices, reason } = s.addon.cudaDevices();
      if (devices.length === 0) throw unavailable('cuda', `no CUDA device: ${reason}`);
      return createNativeBackend(s.addon, 'cuda');
    }
    case 'cpu': {
      const s = loadAddon();
      if (!s.ok) throw unavailable('cpu', s.reason);
      return createNativeBackend(s.addon, 'cpu');
    }
    case 'gpujs':
      return createGpujsBackend();
    case 'js':
      return jsBackend;
  }
}

function unavailable(name: string, reason: string): Error {
  const e = new Error(`the ${name} backend is unavailable: ${reason}`) as Error & { code: string };
  e.code = 'HISTOFLOW_UNAVAILABLE';
  return e;
}

function get(name: KernelBackendName): Promise<KernelBackend> {
  let p = cache.get(name);
  if (!p) {
    p = create(name);
    cache.set(name, p);
    p.catch(() => cache.delete(name));
  }
  return p;
}

export interface ChosenBackend {
  backend: KernelBackend;
  /** One line: which backend runs and why the ones before it did not. */
  reason: string;
}

/** The backend for a `backend` option; 'auto' falls through in order. */
export async function chooseKernelBackend(choice: unknown = 'auto'): Promise<ChosenBackend> {
  const name = checkOneOf('backend', choice, KERNEL_BACKENDS);
  if (name !== 'auto') {
    const backend = await get(name);
    return { backend, reason: `${name} (requested)` };
  }
  const skipped: string[] = [];
  for (const candidate of ['cuda', 'cpu', 'gpujs', 'js'] as const) {
    try {
      const backend = await get(candidate);
      if (candidate === 'gpujs' && (backend as { mode?: string }).mode === 'cpu') {
        // gpu.js's CPU mode (no GL context, e.g. no display) is slower than plain TypeScript.
        skipped.push('gpujs: gpu.js has no GL context here (CPU mode, slower than js; run under xvfb-run for WebGL)');
        continue;
      }
      const why = skipped.length ? `; passed over: ${skipped.join('; ')}` : '';
      return { backend, reason: `${candidate} (auto${why})` };
    } catch (e) {
      skipped.push(`${candidate}: ${e instanceof Error ? e.message.replace(/^the \w+ backend is unavailable: /, '') : String(e)}`);
    }
  }
  throw new Error(`no kernel backend is available: ${skipped.join('; ')}`);
}

/** Every backend with whether it works here. */
export async function kernelBackendStatus(): Promise<BackendStatus[]> {
  const out: BackendStatus[] = [];
  for (const name of ['cuda', 'cpu', 'gpujs', 'js'] as const) {
    try {
      const b = await get(name);
      const mode = (b as { mode?: string }).mode;
      out.push({ name, available: true, detail: mode ? `mode ${mode}` : name === 'js' ? 'plain TypeScript' : 'native' });
    } catch (e) {
      out.push({ name, available: false, detail: e instanceof Error ? e.message : String(e) });
    }
  }
  return out;
}

/** The available backends themselves, for benchmarks and parity tests. */
export async function availableKernelBackends(): Promise<KernelBackend[]> {
  const out: KernelBackend[] = [];
  for (const name of ['cuda', 'cpu', 'gpujs', 'js'] as const) {
    try {
      out.push(await get(name));
    } catch {
      // unavailable here; kernelBackendStatus() says why
    }
  }
  return out;
}

export async function kernelBackend(name: KernelBackendName): Promise<KernelBackend> {
  return get(name);
}
