/**
 * Which TF.js backend trains: `tensorflow` (libtensorflow through
 * @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, when installed and
 * loadable: optional, since their install downloads libtensorflow) →
 * `native` (the plain CPU backend with its hot kernels in histoflow's addon,
 * when the addon loaded) → `tfjs-cpu` (plain TF.js, which TF.js itself calls
 * 'cpu'). `auto` takes the first that
 * works here; every choice says why the others were passed over.
 */
import * as tf from '@tensorflow/tfjs';

import { backendStatus, chooseBackend, type BackendFamily } from '../backend_choice.js';
import { UnavailableError, checkOneOf, invalidRange } from '../errors.js';
import { nativeBackendStatus, registerNativeBackend } from './native_backend.js';

export const TRAINING_BACKENDS = ['tensorflow', 'native', 'tfjs-cpu'] as const;
export type TrainingBackend = (typeof TRAINING_BACKENDS)[number];

/** Training backends that were renamed, and their names now: TF.js's own 'cpu' is 'tfjs-cpu' (histoflow's 'cpu' names its C++ kernels). */
export const RENAMED_TRAINING_BACKENDS: Readonly<Record<string, TrainingBackend>> = { cpu: 'tfjs-cpu' };

/** A `backend` option of training or inference: 'auto' or a training backend, named in the error when not. */
export function checkTrainingBackend(name: string, value: unknown): 'auto' | TrainingBackend {
  if (typeof value === 'string' && Object.hasOwn(RENAMED_TRAINING_BACKENDS, value)) {
    throw invalidRange(name, `one of auto, ${TRAINING_BACKENDS.join(', ')} ('${value}' is now '${RENAMED_TRAINING_BACKENDS[value]}')`, value);
  }
  return checkOneOf(name, value, ['auto', ...TRAINING_BACKENDS] as const);
}

/**
 * The name TF.js registers a training backend under. Ours says `tfjs-cpu`
 * where TF.js says 'cpu', since histoflow's `cpu` is its native C++ kernels.
 */
export function tfjsBackendName(backend: TrainingBackend): string {
  return backend === 'tfjs-cpu' ? 'cpu' : backend;
}

/** A training backend recorded by a run or a model card; runs before 0.1 recorded TF.js's own 'cpu'. */
export function recordedTrainingBackend(value: string): TrainingBackend {
  return value === 'cpu' ? 'tfjs-cpu' : (value as TrainingBackend);
}

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

/**
 * The training family of the backend chooser. A backend here is the line
 * that says what runs it (package or engine); creating one only probes.
 */
export const trainingFamily: BackendFamily<TrainingBackend, string> = {
  family: 'training',
  order: TRAINING_BACKENDS,
  async create(name) {
    if (name === 'tensorflow') {
      tensorflowProbe ??= probeTensorflow();
      const probe = await tensorflowProbe;
      if (!probe.available) throw new UnavailableError('tensorflow', probe.detail, 'training');
      return probe.detail;
    }
    if (name === 'native') {
      const native = nativeBackendStatus();
      if (!native.available) throw new UnavailableError('native', native.detail, 'training');
      return native.detail;
    }
    return `@tensorflow/tfjs-backend-cpu ${tf.version_core}`;
  },
};

/** Every training backend, in `auto`'s order, with whether it works here and why not. */
export async function trainingBackendStatus(): Promise<TrainingBackendStatus[]> {
  return backendStatus(trainingFamily, (_name, detail) => detail);
}

export interface TrainingBackendChoice {
  backend: TrainingBackend;
  /** Why each backend before it was passed over (empty when the first was taken). */
  skipped: { name: TrainingBackend; reason: string }[];
}

/** Resolves `auto` (or checks an explicit choice) without switching TF.js; an unavailable explicit choice throws UnavailableError. */
export async function selectTrainingBackend(choice: 'auto' | TrainingBackend = 'auto'): Promise<TrainingBackendChoice> {
  const { name, skipped } = await chooseBackend(trainingFamily, checkTrainingBackend('backend', choice));
  return { backend: name, skipped };
}

/** Selects the backend and makes it TF.js's current one. */
export async function useTrainingBackend(choice: 'auto' | TrainingBackend = 'auto'): Promise<TrainingBackendChoice> {
  const chosen = await selectTrainingBackend(choice);
  if (chosen.backend === 'native') registerNativeBackend();
  if (!(await tf.setBackend(tfjsBackendName(chosen.backend)))) throw new Error(`TF.js could not initialize the '${chosen.backend}' backend`);
  await tf.ready();
  return chosen;
}
