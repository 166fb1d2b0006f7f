/**
 * Which TF.js backend trains: `tensorflow` (libtensorflow through
 * @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, when installed and
 * loadable: optional, since their install downloads libtensorflow) →
 * `native` (the plain CPU backend with its hot kernels in histoflow's addon,
 * when the addon loaded) → `cpu` (plain TF.js). `auto` takes the first that
 * works here; every choice says why the others were passed over.
 */
import * as tf from '@tensorflow/tfjs';

import { checkOneOf } from '../errors.js';
import { nativeBackendStatus, registerNativeBackend } from './native_backend.js';

export const TRAINING_BACKENDS = ['tensorflow', 'native', 'cpu'] as const;
export type TrainingBackend = (typeof TRAINING_BACKENDS)[number];

export interface TrainingBackendStatus {
  name: TrainingBackend;
  available: boolean;
  /** The package or engine that runs it, or why it is not available. */
  detail: string;
}

/** tfjs-node registers the TF.js backend named 'tensorflow' on import. */
const TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

let tensorflowProbe: Promise<TrainingBackendStatus> | undefined;

async function probeTensorflow(): Promise<TrainingBackendStatus> {
  const reasons: string[] = [];
  for (const pkg of TENSORFLOW_PACKAGES) {
    try {
      await import(pkg);
      if (tf.findBackendFactory('tensorflow')) return { name: 'tensorflow', available: true, detail: pkg };
      reasons.push(`${pkg} loaded but registered no 'tensorflow' backend (a second copy of @tensorflow/tfjs-core?)`);
    } catch (e) {
      const code = (e as { code?: string }).code;
      reasons.push(
        code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
          ? `${pkg} is not installed`
          : `${pkg} fails to load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
      );
    }
  }
  return { name: 'tensorflow', available: false, detail: `${reasons.join('; ')} (optional: their install downloads libtensorflow)` };
}

/** Every training backend, in `auto`'s order, with whether it works here and why not. */
export async function trainingBackendStatus(): Promise<TrainingBackendStatus[]> {
  tensorflowProbe ??= probeTensorflow();
  const native = nativeBackendStatus();
  return [
    await tensorflowProbe,
    { name: 'native', available: native.available, detail: native.detail },
    { name: 'cpu', available: true, detail: `@tensorflow/tfjs-backend-cpu ${tf.version_core}` },
  ];
}

export interface TrainingBackendChoice {
  backend: TrainingBackend;
  /** Why each backend before it was passed over (empty when the first was taken). */
  skipped: { name: TrainingBackend; reason: string }[];
}

/** Resolves `auto` (or checks an explicit choice) without switching TF.js. */
export async function selectTrainingBackend(choice: 'auto' | TrainingBackend = 'auto'): Promise<TrainingBackendChoice> {
  const wanted = checkOneOf('backend', choice, ['auto', ...TRAINING_BACKENDS] as const);
  const status = await trainingBackendStatus();
  const skipped: TrainingBackendChoice['skipped'] = [];
  for (const s of status) {
    if (wanted !== 'auto' && s.name !== wanted) continue;
    if (s.available) return { backend: s.name, skipped };
    if (wanted !== 'auto') throw new Error(`The '${s.name}' training backend is not available here: ${s.detail}`);
    skipped.push({ name: s.name, reason: s.detail });
  }
  throw new Error('No TF.js training backend is available'); // unreachable: cpu is always there
}

/** Selects the backend and makes it TF.js's current one. */
export async function useTrainingBackend(choice: 'auto' | TrainingBackend = 'auto'): Promise<TrainingBackendChoice> {
  const chosen = await selectTrainingBackend(choice);
  if (chosen.backend === 'native') registerNativeBackend();
  if (!(await tf.setBackend(chosen.backend))) throw new Error(`TF.js could not initialize the '${chosen.backend}' backend`);
  await tf.ready();
  return chosen;
}
