/**
 * The kernel backends (stain and colour kernels) as one family of the
 * backend chooser (src/backend_choice.ts): `auto` takes the first that works,
 * in order cuda → cpu → gpujs (when gpu.js has a GL context) → js, and says
 * which it chose and why the others were passed over. Every backend gives the
 * cpu backend's result within the tolerance its tests state.
 */
import { loadAddon } from '../../bindings/loader.js';
import { backendStatus, chooseBackend, memoize, type BackendFamily, type BackendStatus as FamilyStatus, type Chosen } from '../backend_choice.js';
import { UnavailableError } from '../errors.js';
import { createAddonBackend } from './addon_backend.js';
import { createGpujsBackend } from './gpujs_backend.js';
import { jsBackend } from './js_backend.js';
import type { KernelBackend, KernelBackendName } from './types.js';

export const KERNEL_BACKENDS = ['auto', 'cuda', 'cpu', 'gpujs', 'js'] as const;
export type KernelBackendChoice = (typeof KERNEL_BACKENDS)[number];

export type BackendStatus = FamilyStatus<KernelBackendName>;

/** gpu.js's CPU mode (no GL context, e.g. no display) is slower than plain TypeScript: `auto` passes it over. */
export const GPUJS_CPU_MODE = 'gpu.js has no GL context here (CPU mode, slower than js; run under xvfb-run for WebGL)';

const modeOf = (b: unknown): string | undefined => (b as { mode?: string }).mode;

async function create(name: KernelBackendName): Promise<KernelBackend> {
  switch (name) {
    case 'cuda': {
      const s = loadAddon();
      if (!s.ok) throw new UnavailableError('cuda', s.reason);
      if (!s.addon.buildInfo().cuda) throw new UnavailableError('cuda', 'histoflow was built without CUDA (no nvcc at build time, or -DHISTOFLOW_CUDA=OFF)');
      const { devices, reason } = s.addon.cudaDevices();
      if (devices.length === 0) throw new UnavailableError('cuda', `no CUDA device: ${reason}`);
      return createAddonBackend(s.addon, 'cuda');
    }
    case 'cpu': {
      const s = loadAddon();
      if (!s.ok) throw new UnavailableError('cpu', s.reason);
      return createAddonBackend(s.addon, 'cpu');
    }
    case 'gpujs':
      try {
        return await createGpujsBackend();
      } catch (e) {
        throw new UnavailableError('gpujs', e instanceof Error ? e.message : String(e));
      }
    case 'js':
      return jsBackend;
  }
}

export const kernelFamily: BackendFamily<KernelBackendName, KernelBackend> = {
  order: ['cuda', 'cpu', 'gpujs', 'js'],
  create: memoize(create),
  passOver: (_name, b) => (modeOf(b) === 'cpu' ? GPUJS_CPU_MODE : undefined),
  detail: (_name, b) => (modeOf(b) ? `gpu.js ${modeOf(b)} mode` : undefined),
};

export interface ChosenBackend {
  backend: KernelBackend;
  /** One line: which backend runs and why the ones before it did not. */
  reason: string;
}

/** The backend for a `backend` option; 'auto' falls through in order. */
export async function chooseKernelBackend(choice: unknown = 'auto'): Promise<ChosenBackend> {
  const { backend, reason }: Chosen<KernelBackendName, KernelBackend> = await chooseBackend(kernelFamily, choice);
  return { backend, reason };
}

/** Every backend with whether it works here (and what it runs on), or why not. */
export async function kernelBackendStatus(): Promise<BackendStatus[]> {
  return backendStatus(kernelFamily, (name, b) => (modeOf(b) ? `mode ${modeOf(b)}` : name === 'js' ? 'plain TypeScript' : 'native'));
}

/** The available backends themselves, for benchmarks and parity tests. */
export async function availableKernelBackends(): Promise<KernelBackend[]> {
  const out: KernelBackend[] = [];
  for (const s of await kernelBackendStatus()) if (s.available) out.push(await kernelFamily.create(s.name));
  return out;
}

/** One backend by name; throws UnavailableError when it cannot run here. */
export async function kernelBackend(name: KernelBackendName): Promise<KernelBackend> {
  return kernelFamily.create(name);
}
