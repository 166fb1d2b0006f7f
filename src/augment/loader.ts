/**
 * A prefetching batch loader: `augment` runs in native AsyncWorkers, up to
 * `prefetch` (k) batches ahead of the consumer, so training never waits on
 * augmentation that could have run while it computed, and the event loop stays
 * free while a batch is augmented.
 *
 *   const loader = new BatchLoader(new InMemorySource(batch, labels), pipeline,
 *     { batchSize: 64, shuffle: true, seed: 7, prefetch: 2, tf });
 *   for await (const b of loader.epoch(e)) { await model.trainOnBatch(b.images, b.labels); b.release(); }
 *
 * Determinism: an epoch's order is a Fisher–Yates shuffle driven by the same
 * counter-based generator as the augment parameters (keyed by seed and epoch,
 * see `epochOrder`), and each batch runs `augment` with `indices` = the
 * dataset indices of its images, so image j always gets the draw of (seed,
 * epoch, j): what an image becomes does not depend on the shuffle (a shuffled
 * epoch is a permutation of the unshuffled one), nor on batchSize, prefetch,
 * thread count or backend.
 *
 * Memory: by default every batch gets a new Float32Array (the consumer may
 * keep it), which costs a zero-fill on the main thread and first-touch page
 * faults in the worker for every batch (measured on a 2-core VM, 256x224x224
 * with blur: ~370 ms per batch into fresh memory, ~50 ms into a reused array).
 * With `reuse: true` the loader cycles a ring of k + 1 output arrays
 * (k in flight + 1 with the consumer, at least 2); a batch's array goes back to
 * the ring when the consumer calls its `release()`, and the loader cannot run
 * more than k + 1 batches ahead of the releases. With `tf`, batches are
 * tensors over those arrays (no copy on 'cpu'; see tensor.ts), and `release()`
 * also disposes them: call it for every batch (a tensor not released stays
 * allocated, as any TF.js tensor), and keep no view of it (reshape, slice on
 * cpu share its storage) past the release when reusing.
 *
 * Cost on the main thread: the shuffle of an epoch is computed when its
 * iterator is made (~180 ms for 262 144 images on a 2-core VM, BigInt
 * splitmix64); per batch, the parameter draw and, without `reuse`, the output
 * allocation.
 *
 * Stopping: leaving a `for await` early (break, return, throw) calls the
 * iterator's `return()`, which waits for the batches in flight (a native
 * worker cannot be cancelled, and must not write into memory after the loop
 * has moved on) and drops their results, errors included. A batch that fails
 * rejects its own `next()` with an Error naming the batch and the cause
 * (`error.cause`), and ends the iteration after the in-flight rest settles.
 */
import type * as tfjs from '@tensorflow/tfjs';

import { checkBoolean, checkInteger, checkKnownKeys, checkObject, checkOneOf, invalidRange, invalidType } from '../errors.js';
import { checkBatch } from '../image.js';
import { KERNEL_BACKENDS, type KernelBackendChoice } from '../kernels/registry.js';
import type { RgbBatch } from '../kernels/types.js';
import { splitmix64, splitmix64Unit } from '../stain/math.js';
import { augment, chooseAugmentBackend, type AugmentBackendName } from './augment.js';
import { augmentMasks } from './masks.js';
import { augmentKey, type AugmentImageParams } from './params.js';
import { checkPipeline, outputShape, type AugmentPipeline, type AugmentPipelineInput, type AugmentShape } from './pipeline.js';
import { batchToTensor, labelsToTensor, type TfLike } from './tensor.js';

/** What a source hands over for some dataset indices. */
export interface SourceChunk {
  /** The images, in the order of the indices asked for. */
  batch: RgbBatch;
  /** n x labelSize floats, when the source has labels. */
  labels?: Float32Array;
}

/** A dataset of same-size uint8 RGB images with optional labels. */
export interface BatchSource {
  /** Number of images. */
  readonly size: number;
  readonly height: number;
  readonly width: number;
  /** Label floats per image; 0 without labels. */
  readonly labelSize: number;
  /** The images (and labels) at these dataset indices. May be async (files, a packed dataset). */
  read(indices: readonly number[]): SourceChunk | Promise<SourceChunk>;
}

/**
 * A source over one RgbBatch in memory (and its labels: n x labelSize floats).
 * A run of consecutive indices is handed out as a view (no copy); any other
 * selection is gathered into a new array.
 */
export class InMemorySource implements BatchSource {
  readonly size: number;
  readonly height: number;
  readonly width: number;
  readonly labelSize: number;
  readonly #batch: RgbBatch;
  readonly #labels: Float32Array | undefined;

  constructor(batch: RgbBatch, labels?: Float32Array) {
    this.#batch = checkBatch('batch', batch);
    if (labels !== undefined) {
      if (!(labels instanceof Float32Array)) throw invalidType('labels', 'a Float32Array', labels);
      if (labels.length === 0 || labels.length % this.#batch.n !== 0) {
        throw invalidRange('labels', `a Float32Array of batch.n (${this.#batch.n}) × labels per image floats`, labels);
      }
    }
    this.#labels = labels;
    this.size = this.#batch.n;
    this.height = this.#batch.height;
    this.width = this.#batch.width;
    this.labelSize = labels ? labels.length / this.#batch.n : 0;
  }

  read(indices: readonly number[]): SourceChunk {
    const n = indices.length;
    const image = this.height * this.width * 3;
    const ls = this.labelSize;
    for (const i of indices) checkInteger('index', i, 0, this.size - 1);
    const first = indices[0]!;
    const consecutive = indices.every((v, k) => v === first + k);
    let data: Uint8Array;
    let labels: Float32Array | undefined;
    if (consecutive) {
      data = this.#batch.data.subarray(first * image, (first + n) * image);
      labels = this.#labels?.subarray(first * ls, (first + n) * ls);
    } else {
      data = new Uint8Array(n * image);
      indices.forEach((v, k) => data.set(this.#batch.data.subarray(v * image, (v + 1) * image), k * image));
      if (this.#labels) {
        const all = this.#labels;
        const out = new Float32Array(n * ls);
        indices.forEach((v, k) => out.set(all.subarray(v * ls, (v + 1) * ls), k * ls));
        labels = out;
      }
    }
    return labels ? { batch: { data, n, height: this.height, width: this.width }, labels } : { batch: { data, n, height: this.height, width: this.width } };
  }
}

/** splitmix64 slot of the shuffle, apart from every image stream (they are key XOR index·φ). */
const SHUFFLE_SLOT = 0x5348554646n; // "SHUFF"

/**
 * The order of an epoch: dataset index at each position. Fisher–Yates with
 * u_i = splitmix64Unit(splitmix64(augmentKey(seed, epoch), SHUFFLE_SLOT), i):
 * counter-based, so the same (size, seed, epoch) always gives the same order.
 */
export function epochOrder(size: number, seed: number, epoch: number): Uint32Array {
  checkInteger('size', size, 0, 2 ** 32 - 1);
  const key = splitmix64(augmentKey(seed, epoch), SHUFFLE_SLOT);
  const order = new Uint32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  for (let i = size - 1; i > 0; i--) {
    const j = Math.min(Math.floor(splitmix64Unit(key, i) * (i + 1)), i);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

export interface BatchLoaderOptions<T extends TfLike | undefined = TfLike | undefined> {
  /** Images per batch, ≥ 1. Default 32. */
  batchSize?: number;
  /** A new order every epoch (see `epochOrder`). Default false. */
  shuffle?: boolean;
  /** Leave out the last batch when it is smaller than batchSize. Default false. */
  dropLast?: boolean;
  /** Batches augmented ahead of the consumer (native calls in flight), 0..64. 0: each batch starts when asked for. Default 2. */
  prefetch?: number;
  /** Generator seed, as augment's. Default 0. */
  seed?: number;
  /** The epoch `[Symbol.asyncIterator]` runs. Default 0. */
  epoch?: number;
  /** augment's kernel backend, chosen once per loader. Default 'auto'. */
  backend?: KernelBackendChoice;
  /** Cycle a ring of prefetch + 1 output arrays, returned by `release()`, instead of a new array per batch. Default false. */
  reuse?: boolean;
  /** A TF.js namespace: batches come as tensors (see tensor.ts for which backends copy). */
  tf?: T;
  /**
   * The labels are per-pixel targets of each image (labelSize = height ·
   * width; 0/1, or −1 for ignored pixels): they go through the image's
   * geometry (masks.ts), so a batch's labels are n × outHeight × outWidth. Default false.
   */
  masks?: boolean;
}

/** One augmented batch. */
export interface LoadedBatch<Images, Labels> {
  /** n x height x width x 3, NHWC, normalized as the pipeline says. */
  images: Images;
  /** n x labelSize, when the source has labels. */
  labels?: Labels;
  /** The Float32Array under `images` (the same object when no `tf` was given). */
  data: Float32Array;
  n: number;
  height: number;
  width: number;
  /** What augment drew, one entry per image. */
  params: AugmentImageParams[];
  /** Dataset index of each image. */
  indices: number[];
  epoch: number;
  /** Batch number within the epoch. */
  batch: number;
  /** Position of the first image in the epoch's order (its images' draws are keyed by `indices`, not by this). */
  startIndex: number;
  /** Done with the batch: disposes its tensors and, with `reuse`, hands its array back. Idempotent. */
  release(): void;
}

export type ArrayBatch = LoadedBatch<Float32Array, Float32Array>;
export type TensorBatch = LoadedBatch<tfjs.Tensor4D, tfjs.Tensor2D>;
export type BatchOf<T> = T extends TfLike ? TensorBatch : ArrayBatch;

/** One epoch's batches; `return()` (what leaving a for-await calls) settles the work in flight. */
export interface EpochBatches<B> extends AsyncIterableIterator<B> {
  next(): Promise<IteratorResult<B, undefined>>;
  return(): Promise<IteratorResult<B, undefined>>;
}

/** Counters over a loader's life, for tests and progress displays. */
export interface BatchLoaderStats {
  /** Batch jobs (source read + augment) started. */
  started: number;
  /** Jobs settled, failed ones included. */
  settled: number;
  /** Jobs running now. */
  inFlight: number;
  /** The most jobs that ever ran at once. */
  maxInFlight: number;
  /** Batches handed to the consumer. */
  yielded: number;
}

const OPTION_KEYS = ['batchSize', 'shuffle', 'dropLast', 'prefetch', 'seed', 'epoch', 'backend', 'reuse', 'tf', 'masks'];
/** More than this many batches ahead only costs memory. */
export const MAX_PREFETCH = 64;

type Settled =
  | { ok: true; data: Float32Array; params: AugmentImageParams[]; labels: Float32Array | undefined }
  | { ok: false; error: unknown };

interface Job {
  batch: number;
  startIndex: number;
  indices: number[];
  buffer: Float32Array | undefined;
  settled: Promise<Settled>;
}

function checkSource(value: unknown): BatchSource {
  const s = checkObject('source', value);
  checkInteger('source.size', s.size, 1);
  checkInteger('source.height', s.height, 1);
  checkInteger('source.width', s.width, 1);
  checkInteger('source.labelSize', s.labelSize, 0);
  if (typeof s.read !== 'function') throw invalidType('source.read', 'a function', s.read);
  return value as BatchSource;
}

export class BatchLoader<T extends TfLike | undefined = undefined> implements AsyncIterable<BatchOf<T>> {
  readonly source: BatchSource;
  readonly pipeline: AugmentPipeline;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly prefetch: number;
  readonly seed: number;
  readonly reuse: boolean;
  /** Labels are per-pixel targets moved with their images (BatchLoaderOptions.masks). */
  readonly masks: boolean;
  /** Output size of every image. */
  readonly shape: AugmentShape;
  readonly stats: BatchLoaderStats = { started: 0, settled: 0, inFlight: 0, maxInFlight: 0, yielded: 0 };
  readonly #epoch: number;
  readonly #backendChoice: KernelBackendChoice;
  readonly #tf: TfLike | undefined;
  #backend: Promise<{ name: AugmentBackendName; reason: string }> | undefined;

  /** Validates everything (TypeError / RangeError naming the option) before any work. */
  constructor(source: BatchSource, pipeline: AugmentPipelineInput | AugmentPipeline, options: BatchLoaderOptions<T> = {}) {
    this.source = checkSource(source);
    this.pipeline = checkPipeline(pipeline);
    const o = checkObject('options', options);
    checkKnownKeys('options', o, OPTION_KEYS);
    this.batchSize = o.batchSize === undefined ? 32 : checkInteger('batchSize', o.batchSize, 1, 2 ** 31 - 1);
    this.shuffle = o.shuffle === undefined ? false : checkBoolean('shuffle', o.shuffle);
    this.dropLast = o.dropLast === undefined ? false : checkBoolean('dropLast', o.dropLast);
    this.prefetch = o.prefetch === undefined ? 2 : checkInteger('prefetch', o.prefetch, 0, MAX_PREFETCH);
    this.seed = o.seed === undefined ? 0 : checkInteger('seed', o.seed, 0, Number.MAX_SAFE_INTEGER);
    this.#epoch = o.epoch === undefined ? 0 : checkInteger('epoch', o.epoch, 0, Number.MAX_SAFE_INTEGER);
    this.#backendChoice = o.backend === undefined ? 'auto' : checkOneOf('backend', o.backend, KERNEL_BACKENDS);
    this.reuse = o.reuse === undefined ? false : checkBoolean('reuse', o.reuse);
    if (o.tf !== undefined) {
      const tf = checkObject('tf', o.tf);
      for (const fn of ['tensor4d', 'tensor2d', 'getBackend', 'backend']) {
        if (typeof tf[fn] !== 'function') throw invalidType(`tf.${fn}`, 'a function (pass the TF.js namespace)', tf[fn]);
      }
    }
    this.#tf = o.tf as TfLike | undefined;
    this.masks = o.masks === undefined ? false : checkBoolean('masks', o.masks);
    if (this.masks && this.source.labelSize !== this.source.height * this.source.width) {
      throw invalidRange('source.labelSize', `height × width (${this.source.height * this.source.width}) per-pixel targets with options.masks`, this.source.labelSize);
    }
    this.shape = outputShape(this.pipeline, this.source.height, this.source.width);
  }

  /** Batches per epoch. */
  get length(): number {
    const full = Math.floor(this.source.size / this.batchSize);
    return this.dropLast || this.source.size % this.batchSize === 0 ? full : full + 1;
  }

  /**
   * The augment backend every batch runs on, chosen once (the first batch
   * waits for it), and why.
   */
  backend(): Promise<{ name: AugmentBackendName; reason: string }> {
    this.#backend ??= chooseAugmentBackend(this.#backendChoice).then(({ runner, reason }) => ({ name: runner.name, reason }));
    return this.#backend;
  }

  /** The batches of one epoch (a new order when shuffling). */
  epoch(epoch: number): EpochBatches<BatchOf<T>> {
    checkInteger('epoch', epoch, 0, Number.MAX_SAFE_INTEGER);
    return new EpochIterator(this, epoch, this.#tf) as unknown as EpochBatches<BatchOf<T>>;
  }

  [Symbol.asyncIterator](): EpochBatches<BatchOf<T>> {
    return this.epoch(this.#epoch);
  }
}

class EpochIterator implements EpochBatches<ArrayBatch | TensorBatch> {
  readonly #loader: BatchLoader<TfLike | undefined>;
  readonly #epoch: number;
  readonly #tf: TfLike | undefined;
  readonly #order: Uint32Array | undefined;
  readonly #batches: number;
  readonly #imageFloats: number;
  readonly #ringSize: number;
  #free: Float32Array[] = [];
  #allocated = 0;
  #queue: Job[] = [];
  #nextStart = 0;
  #done = false;
  /** next() calls run one after another. */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(loader: BatchLoader<TfLike | undefined>, epoch: number, tf: TfLike | undefined) {
    this.#loader = loader;
    this.#epoch = epoch;
    this.#tf = tf;
    this.#order = loader.shuffle ? epochOrder(loader.source.size, loader.seed, epoch) : undefined;
    this.#batches = loader.length;
    this.#imageFloats = loader.shape.height * loader.shape.width * 3;
    this.#ringSize = Math.max(loader.prefetch, 1) + 1;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ArrayBatch | TensorBatch, undefined>> {
    const step = this.#tail.then(() => this.#step());
    this.#tail = step.catch(() => undefined);
    return step;
  }

  async return(): Promise<IteratorResult<ArrayBatch | TensorBatch, undefined>> {
    await this.#close();
    return { done: true, value: undefined };
  }

  async #step(): Promise<IteratorResult<ArrayBatch | TensorBatch, undefined>> {
    if (this.#done) return { done: true, value: undefined };
    const b = this.#queue[0]?.batch ?? this.#nextStart;
    if (b >= this.#batches) {
      await this.#close();
      return { done: true, value: undefined };
    }
    let backend: AugmentBackendName;
    try {
      backend = (await this.#loader.backend()).name;
    } catch (e) {
      await this.#close();
      throw e;
    }
    this.#topUp(Math.max(this.#loader.prefetch, 1), backend);
    const head = this.#queue[0];
    if (!head) {
      throw new Error(
        `BatchLoader (reuse): all ${this.#ringSize} output arrays are held by batches not yet released; ` +
          'call release() on the batches you are done with before asking for the next',
      );
    }
    const settled = await head.settled;
    if (this.#done) return { done: true, value: undefined };
    this.#queue.shift();
    if (!settled.ok) {
      if (head.buffer) this.#free.push(head.buffer);
      await this.#close();
      const cause = settled.error;
      const why = cause instanceof Error ? cause.message : String(cause);
      const last = head.startIndex + head.indices.length - 1;
      throw new Error(
        `BatchLoader: batch ${head.batch} of epoch ${this.#epoch} (order positions ${head.startIndex}..${last}) failed: ${why}`,
        { cause },
      );
    }
    this.#loader.stats.yielded++;
    const value = this.#wrap(head, settled);
    this.#topUp(this.#loader.prefetch, backend);
    return { done: false, value };
  }

  /** Starts jobs until `ahead` are queued, the epoch ends, or (reuse) the ring is empty. */
  #topUp(ahead: number, backend: AugmentBackendName): void {
    while (!this.#done && this.#queue.length < ahead && this.#nextStart < this.#batches) {
      let buffer: Float32Array | undefined;
      if (this.#loader.reuse) {
        buffer = this.#free.pop();
        if (!buffer && this.#allocated < this.#ringSize) {
          buffer = new Float32Array(this.#loader.batchSize * this.#imageFloats);
          this.#allocated++;
        }
        if (!buffer) return;
      }
      this.#queue.push(this.#start(this.#nextStart++, buffer, backend));
    }
  }

  #start(batch: number, buffer: Float32Array | undefined, backend: AugmentBackendName): Job {
    const { source, batchSize, pipeline, seed, stats, masks } = this.#loader;
    const startIndex = batch * batchSize;
    const count = Math.min(batchSize, source.size - startIndex);
    const order = this.#order;
    const indices = Array.from({ length: count }, (_, k) => (order ? order[startIndex + k]! : startIndex + k));
    stats.started++;
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    const run = async (): Promise<Settled> => {
      try {
        const chunk = await source.read(indices);
        const c = checkObject('source.read() result', chunk);
        const images = checkBatch('source.read() result.batch', c.batch);
        if (images.n !== count || images.height !== source.height || images.width !== source.width) {
          throw invalidRange(
            'source.read() result.batch',
            `${count} images of ${source.height}x${source.width}`,
            `${images.n} images of ${images.height}x${images.width}`,
          );
        }
        let labels: Float32Array | undefined;
        if (source.labelSize > 0) {
          if (!(c.labels instanceof Float32Array) || c.labels.length !== count * source.labelSize) {
            throw invalidRange('source.read() result.labels', `a Float32Array of ${count * source.labelSize} floats`, c.labels);
          }
          labels = c.labels;
        }
        const out = buffer?.subarray(0, count * this.#imageFloats);
        const r = await augment(images, pipeline, { seed, epoch: this.#epoch, indices, backend, ...(out ? { out } : {}) });
        if (masks && labels) {
          labels = await augmentMasks(labels, count, source.height, source.width, pipeline, { seed, epoch: this.#epoch, indices, backend, imageParams: r.params });
        }
        return { ok: true, data: r.data, params: r.params, labels };
      } catch (error) {
        return { ok: false, error };
      } finally {
        stats.inFlight--;
        stats.settled++;
      }
    };
    return { batch, startIndex, indices, buffer, settled: run() };
  }

  #wrap(job: Job, r: Extract<Settled, { ok: true }>): ArrayBatch | TensorBatch {
    const { height, width } = this.#loader.shape;
    const n = job.indices.length;
    const tf = this.#tf;
    const images = tf ? batchToTensor(tf, r.data, [n, height, width, 3]) : r.data;
    const labels = r.labels && tf ? labelsToTensor(tf, r.labels, n) : r.labels;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (tf) {
        (images as tfjs.Tensor4D).dispose();
        (labels as tfjs.Tensor2D | undefined)?.dispose();
      }
      if (job.buffer && !this.#done) {
        this.#free.push(job.buffer);
        void this.#loader.backend().then(({ name }) => this.#topUp(this.#loader.prefetch, name), () => undefined);
      }
    };
    const batch = {
      images,
      data: r.data,
      n,
      height,
      width,
      params: r.params,
      indices: job.indices,
      epoch: this.#epoch,
      batch: job.batch,
      startIndex: job.startIndex,
      release,
      ...(labels ? { labels } : {}),
    };
    return batch as ArrayBatch | TensorBatch;
  }

  /** Ends the epoch: nothing new starts, and the jobs in flight settle (their results and errors dropped). */
  async #close(): Promise<void> {
    this.#done = true;
    const pending = this.#queue.map((j) => j.settled);
    this.#queue = [];
    this.#free = [];
    await Promise.all(pending);
  }
}
