/**
 * Augmented batches as TF.js tensors, with as few copies as the backend allows.
 *
 * Which path copies (checked against @tensorflow/tfjs 4.22):
 *   - 'cpu' (tfjs-backend-cpu), and any backend whose `write(values, shape,
 *     dtype)` keeps the TypedArray it is given (histoflow's 'native' backend
 *     is built that way): no copy. `tf.tensor4d(f32, shape, 'float32')` goes
 *     tfjs-core makeTensor → toTypedArray, which returns a Float32Array as is
 *     when the dtype is float32 → engine.makeTensor → backend.write, which
 *     stores `values` in its DataStorage. The tensor's storage IS the batch:
 *     writing into the Float32Array changes the tensor, so a buffer that is
 *     reused must outlive no tensor over it (BatchLoader's `release()` disposes
 *     the tensor before the buffer goes back to its ring).
 *   - 'tensorflow' (@tensorflow/tfjs-node-gpu or tfjs-node): the backend's
 *     write keeps the array too, until the tensor's first use, when tfjs-node's
 *     binding (getInputTensorIds → createTensor) wraps the array's memory in a
 *     TF_Tensor (TF_NewTensor over the V8 buffer, kept alive by a reference).
 *     TensorFlow itself copies it once when the address is not aligned as Eigen
 *     wants (32 or 64 bytes), and tfjs-node-gpu then copies the handle to the
 *     GPU: one upload per batch, and the array is free again. On the CPU device
 *     the TF_Tensor may still share the array until the tensor is disposed, so
 *     the rule is the same as on 'cpu': dispose before writing into it again.
 *   - any other backend (webgl, wasm, …): its own upload or copy in write.
 * `tensorCopy(backendName)` says which of these applies; `sharesStorage` checks
 * it on a live tensor instead of trusting the table.
 */
import type * as tfjs from '@tensorflow/tfjs';

import { chooseBackend, type BackendFamily } from '../backend_choice.js';
import { UnavailableError, checkInteger, checkObject, invalidRange, invalidType } from '../errors.js';

/** The part of a TF.js namespace (tfjs, tfjs-node, tfjs-node-gpu) used here. */
export type TfLike = Pick<typeof tfjs, 'tensor4d' | 'tensor2d' | 'getBackend' | 'backend'>;

export type BatchShape = [n: number, height: number, width: number, channels: 3];

/** What making a batch tensor costs on a backend. */
export type TensorCopy =
  /** The tensor's storage is the Float32Array itself. */
  | 'none'
  /** Taken by TensorFlow at first use: shared or copied once on the host, one upload to a GPU. */
  | 'at first use'
  /** Whatever the backend's write does (webgl texture upload, wasm heap copy, …). */
  | 'backend copy';

/** TF.js backends whose `write` keeps the TypedArray it is given. */
export const SHARED_STORAGE_BACKENDS: readonly string[] = ['cpu', 'native'];

export function tensorCopy(backendName: string): TensorCopy {
  if (SHARED_STORAGE_BACKENDS.includes(backendName)) return 'none';
  if (backendName === 'tensorflow') return 'at first use';
  return 'backend copy';
}

function checkTf(value: unknown): TfLike {
  const tf = checkObject('tf', value);
  for (const fn of ['tensor4d', 'tensor2d', 'getBackend', 'backend']) {
    if (typeof tf[fn] !== 'function') throw invalidType(`tf.${fn}`, 'a function (pass the TF.js namespace)', tf[fn]);
  }
  return tf as unknown as TfLike;
}

/**
 * A batch of n x height x width x 3 float32 (NHWC) as a tf.Tensor4D, without a
 * copy on the CPU backends (see the header for which path copies).
 */
export function batchToTensor(tf: TfLike, data: Float32Array, shape: readonly number[]): tfjs.Tensor4D {
  checkTf(tf);
  if (!(data instanceof Float32Array)) throw invalidType('data', 'a Float32Array (NHWC)', data);
  if (!Array.isArray(shape) || shape.length !== 4) throw invalidType('shape', 'an array [n, height, width, 3]', shape);
  const n = checkInteger('shape[0]', shape[0], 1);
  const h = checkInteger('shape[1]', shape[1], 1);
  const w = checkInteger('shape[2]', shape[2], 1);
  if (shape[3] !== 3) throw invalidRange('shape[3]', '3 (RGB channels)', shape[3]);
  const expected = n * h * w * 3;
  if (data.length !== expected) {
    throw invalidRange('data', `a Float32Array of ${expected} floats (n ${n} × ${h} × ${w} × 3)`, data);
  }
  // No dtype conversion is needed for a Float32Array as float32, so
  // makeTensor hands `data` itself to backend.write.
  return tf.tensor4d(data, [n, h, w, 3], 'float32');
}

/**
 * Labels (n x size float32) as a tf.Tensor2D: the same no-copy path as
 * `batchToTensor`.
 */
export function labelsToTensor(tf: TfLike, labels: Float32Array, n: number): tfjs.Tensor2D {
  checkTf(tf);
  if (!(labels instanceof Float32Array)) throw invalidType('labels', 'a Float32Array', labels);
  checkInteger('n', n, 1);
  if (labels.length === 0 || labels.length % n !== 0) {
    throw invalidRange('labels', `a Float32Array of n (${n}) × labels per image floats`, labels);
  }
  return tf.tensor2d(labels, [n, labels.length / n], 'float32');
}

/**
 * Whether a live tensor's backend storage is `data` itself: reads the
 * backend's DataStorage (`backend.data.get(dataId).values` on cpu and the
 * backends built like it). False where the backend keeps its storage
 * elsewhere or does not expose it (tfjs-node's backend keeps its map private:
 * false there, whatever TensorFlow does with the memory).
 */
export function sharesStorage(tf: TfLike, tensor: tfjs.Tensor, data: ArrayBufferView): boolean {
  const backend = tf.backend() as unknown as { data?: { get?(id: object): { values?: unknown } | undefined } };
  const get = backend.data?.get;
  if (typeof get !== 'function') return false;
  try {
    return get.call(backend.data, tensor.dataId)?.values === data;
  } catch {
    return false;
  }
}

/** The TF.js packages tried, fastest first. */
export const TFJS_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs'] as const;

export interface LoadedTfjs {
  tf: typeof tfjs;
  /** The package that was imported. */
  package: (typeof TFJS_PACKAGES)[number];
  /** The active backend after `ready()`: 'tensorflow' for tfjs-node[-gpu], 'cpu' for plain tfjs. */
  backend: string;
  /** What making a batch tensor costs there. */
  copy: TensorCopy;
  /** Why this one, and why the ones before it were passed over. */
  reason: string;
}

/**
 * The TF.js packages as a family of the backend chooser: tfjs-node-gpu,
 * tfjs-node (both optional: their install downloads libtensorflow), then the
 * pure-JS tfjs on its 'cpu' backend. Creating one imports it.
 */
export const tfjsFamily: BackendFamily<(typeof TFJS_PACKAGES)[number], typeof tfjs> = {
  family: 'tensors',
  order: TFJS_PACKAGES,
  async create(pkg) {
    try {
      // A specifier in a variable: the optional packages need not exist at compile time.
      const specifier: string = pkg;
      const mod = (await import(specifier)) as typeof tfjs & { default?: typeof tfjs };
      const tf = typeof mod.tensor4d === 'function' ? mod : mod.default!;
      if (pkg === '@tensorflow/tfjs') await tf.setBackend('cpu');
      await tf.ready();
      return tf;
    } catch (e) {
      throw new UnavailableError(pkg, e instanceof Error ? e.message.split('\n')[0]! : String(e), 'tensors');
    }
  },
  detail: (_pkg, tf) => `on '${tf.getBackend()}'`,
};

/** Imports the fastest TF.js that is installed (tfjsFamily's order); `only` restricts the search to one package. */
export async function importTfjs(only?: (typeof TFJS_PACKAGES)[number]): Promise<LoadedTfjs> {
  if (only !== undefined && !TFJS_PACKAGES.includes(only)) throw invalidRange('only', `one of ${TFJS_PACKAGES.join(', ')}`, only);
  const { name, backend: tf, reason } = await chooseBackend(tfjsFamily, only ?? 'auto', 'only');
  const backend = tf.getBackend();
  return { tf, package: name, backend, copy: tensorCopy(backend), reason };
}
