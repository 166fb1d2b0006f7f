/**
 * Batched, seeded augmentation: N x H x W x 3 uint8 images in, the
 * normalized Float32Array training batch (N x h x w x 3, NHWC) out.
 *
 * Every random choice is drawn on the host from (seed, epoch, image index)
 * (params.ts), so the same seed gives bit-identical cpu output for any thread
 * count and any batch split (pass `startIndex` for a batch's place in the
 * dataset), and the same drawn parameters on every backend.
 *
 * Backends: 'cpu' and 'cuda' run native/augment through the addon; 'js' runs
 * plain TypeScript (js_augment.ts); 'gpujs' runs gpu.js kernels
 * (gpujs_augment.ts: WebGL through headless-gl, or gpu.js's CPU mode).
 * Everything is validated before any work starts, so a bad option leaves
 * `out` untouched. `out`, when given, is written in place (no copy).
 */
import { loadAddon } from '../../bindings/loader.js';
import type { NativeAddon } from '../../bindings/binding.js';
import { chooseBackend, type BackendFamily } from '../backend_choice.js';
import { UnavailableError, checkInteger, checkKnownKeys, checkObject, invalidRange, invalidType, withCallerStack } from '../errors.js';
import { checkBatch } from '../image.js';
import { GPUJS_CPU_MODE, KERNEL_BACKENDS, kernelBackend } from '../kernels/registry.js';
import type { RgbBatch } from '../kernels/types.js';
import { batchParams, checkTta, drawBatchParams, drawIndexedParams, ttaParams, ttaWindows, type AugmentBatchParams, type AugmentImageParams, type Tta } from './params.js';
import { checkPipeline, outputShape, type AugmentPipeline, type AugmentPipelineInput } from './pipeline.js';
import { createGpujsAugment, type GpujsAugmentRunner } from './gpujs_augment.js';
import { augmentJs } from './js_augment.js';
import { normalizeStain } from '../stain/normalize.js';

export type AugmentBackendName = 'cuda' | 'cpu' | 'gpujs' | 'js';

export interface AugmentOptions {
  /** Generator seed, an integer in [0, 2⁵³). Default 0. */
  seed?: number;
  /** Training epoch: a new draw per epoch for the same seed. Default 0. */
  epoch?: number;
  /** Dataset index of the batch's first image (image i is startIndex + i). Default 0. */
  startIndex?: number;
  /**
   * Dataset index of each image, instead of startIndex, for batches whose
   * images are not consecutive (a shuffled batch): image i gets the draw of
   * indices[i]. Integers in [0, 2⁵³), one per image.
   */
  indices?: ArrayLike<number>;
  backend?: (typeof KERNEL_BACKENDS)[number];
  /** Where to write the result (n·height·width·3 floats); a new array when absent. */
  out?: Float32Array;
  /**
   * Test-time augmentation (params.ts ttaParams): true, each image's 8
   * dihedral views (d4 = 0..7, image after image), crop centred; 'crops',
   * those 8 views at each crop window of ttaWindows (centre, then the four
   * corners); random ops at identity, resize and normalize still apply. n
   * becomes ttaViews(…) x the batch's n.
   */
  tta?: Tta;
}

export interface AugmentResult {
  /** n x height x width x 3 float32, NHWC. */
  data: Float32Array;
  n: number;
  height: number;
  width: number;
  /** What was drawn, one entry per output image. */
  params: AugmentImageParams[];
  batchParams: AugmentBatchParams;
  /** The canonical pipeline that ran (JSON-serializable). */
  pipeline: AugmentPipeline;
  /** The backend that ran, and why it was chosen. */
  backend: string;
}

const OPTION_KEYS = ['seed', 'epoch', 'startIndex', 'indices', 'backend', 'out', 'tta'];

interface Runner {
  name: AugmentBackendName;
  run(batch: RgbBatch, params: AugmentImageParams[], b: AugmentBatchParams, out: Float32Array): Promise<void>;
}

async function nativeRunner(name: 'cpu' | 'cuda'): Promise<Runner> {
  // The kernel family decides whether the device exists (and says why not).
  await kernelBackend(name);
  const s = loadAddon();
  if (!s.ok) throw new UnavailableError(name, s.reason, 'augment');
  const addon: NativeAddon = s.addon;
  if (typeof addon.augment !== 'function') {
    throw new UnavailableError(name, `histoflow.node at ${s.path} predates augment; rebuild it with \`npm run build\``, 'augment');
  }
  return {
    name,
    run: (batch, params, b, out) => withCallerStack(() => addon.augment(name, batch, params, b, out)),
  };
}

const jsRunner: Runner = {
  name: 'js',
  async run(batch, params, b, out) {
    augmentJs(batch, params, b, out);
  },
};

let gpujsAugment: Promise<GpujsAugmentRunner> | undefined;

/** The gpu.js runner, created once (headless-gl when a GL context works, else gpu.js's CPU mode). */
async function gpujsRunner(): Promise<Runner & { mode: string }> {
  if (!gpujsAugment) {
    gpujsAugment = createGpujsAugment();
    gpujsAugment.catch(() => (gpujsAugment = undefined));
  }
  let g: GpujsAugmentRunner;
  try {
    g = await gpujsAugment;
  } catch (e) {
    throw new UnavailableError('gpujs', e instanceof Error ? e.message : String(e), 'augment');
  }
  return { name: 'gpujs', mode: g.mode, run: (batch, params, b, out) => g.run(batch, params, b, out) };
}

const modeOf = (r: Runner): string | undefined => (r as { mode?: string }).mode;

/** The augment family of the backend chooser: the kernels' order, with an augment runner per backend. */
export const augmentFamily: BackendFamily<AugmentBackendName, Runner> = {
  family: 'augment',
  order: ['cuda', 'cpu', 'gpujs', 'js'],
  async create(name) {
    if (name === 'gpujs') return gpujsRunner();
    if (name === 'js') return jsRunner;
    return nativeRunner(name);
  },
  passOver: (_name, r) => (modeOf(r) === 'cpu' ? GPUJS_CPU_MODE : undefined),
  detail: (_name, r) => (modeOf(r) ? `gpu.js ${modeOf(r)} mode` : undefined),
};

/** The backend for a `backend` option; 'auto' takes cuda → cpu → gpujs (with a GL context) → js, saying why others were passed over. */
export async function chooseAugmentBackend(choice: unknown = 'auto'): Promise<{ runner: Runner; reason: string }> {
  const { backend: runner, reason } = await chooseBackend(augmentFamily, choice);
  return { runner, reason };
}

/** Eight copies of each image, image after image: the input of the 8 TTA views. */
function repeatEach(batch: RgbBatch, times: number): RgbBatch {
  const size = batch.height * batch.width * 3;
  const data = new Uint8Array(batch.data.length * times);
  for (let i = 0; i < batch.n; i++) {
    const image = batch.data.subarray(i * size, (i + 1) * size);
    for (let k = 0; k < times; k++) data.set(image, (i * times + k) * size);
  }
  return { data, n: batch.n * times, height: batch.height, width: batch.width };
}

/** The `indices` option: one safe non-negative integer per image, and no startIndex beside it. */
function checkIndices(value: unknown, n: number, withStartIndex: boolean): number[] {
  if (withStartIndex) throw new RangeError('Expected either startIndex or indices in options, not both');
  if (!Array.isArray(value) && !(ArrayBuffer.isView(value) && !(value instanceof DataView))) {
    throw invalidType('indices', `an array of ${n} dataset indices`, value);
  }
  const list = Array.from(value as ArrayLike<unknown>);
  if (list.length !== n) throw invalidRange('indices', `an array of ${n} dataset indices (one per image)`, value);
  return list.map((v, i) => checkInteger(`indices[${i}]`, v, 0, Number.MAX_SAFE_INTEGER));
}

/**
 * Views per image that `augment(…, { tta })` emits for images of height x
 * width: 1 without TTA, 8 dihedral views per crop window of ttaWindows.
 */
export function ttaViews(pipeline: AugmentPipelineInput | AugmentPipeline, height: number, width: number, tta: Tta): number {
  if (!tta) return 1;
  const p = checkPipeline(pipeline);
  return 8 * ttaWindows(p, outputShape(p, height, width, true), height, width, tta).length;
}

/**
 * Augments a batch with a pipeline. Throws TypeError / RangeError naming the
 * field for a bad pipeline or option (unknown op, negative σ, NaN,
 * probability > 1, crop larger than the image, `out` of the wrong kind or
 * length) before anything is written.
 */
export async function augment(batch: RgbBatch, pipeline: AugmentPipelineInput | AugmentPipeline, options: AugmentOptions = {}): Promise<AugmentResult> {
  const b = checkBatch('batch', batch);
  const p = checkPipeline(pipeline);
  const o = checkObject('options', options);
  checkKnownKeys('options', o, OPTION_KEYS);
  const seed = o.seed === undefined ? 0 : checkInteger('seed', o.seed, 0, Number.MAX_SAFE_INTEGER);
  const epoch = o.epoch === undefined ? 0 : checkInteger('epoch', o.epoch, 0, Number.MAX_SAFE_INTEGER);
  const startIndex = o.startIndex === undefined ? 0 : checkInteger('startIndex', o.startIndex, 0, Number.MAX_SAFE_INTEGER - b.n);
  const tta = o.tta === undefined ? false : checkTta('tta', o.tta);
  const indices = o.indices === undefined ? undefined : checkIndices(o.indices, b.n, o.startIndex !== undefined);
  const shape = outputShape(p, b.height, b.width, p.d4 || tta !== false);
  const views = tta ? 8 * ttaWindows(p, shape, b.height, b.width, tta).length : 1;
  const n = b.n * views;
  const length = n * shape.height * shape.width * 3;
  if (o.out !== undefined) {
    if (!(o.out instanceof Float32Array)) throw invalidType('out', 'a Float32Array', o.out);
    if (o.out.length !== length) {
      throw invalidRange('out', `a Float32Array of ${length} floats (n ${n} × ${shape.height} × ${shape.width} × 3)`, o.out);
    }
  }
  const { runner, reason } = await chooseAugmentBackend(o.backend ?? 'auto');
  const bp = batchParams(p, shape);
  const params = tta
    ? ttaParams(p, shape, b.height, b.width, b.n, tta)
    : indices
      ? drawIndexedParams(p, shape, b.height, b.width, indices, seed, epoch)
      : drawBatchParams(p, shape, b.height, b.width, b.n, seed, epoch, startIndex);
  // Stain normalization first, on the same backend, into a new buffer (the
  // caller's batch is never written).
  const source = p.stain
    ? { ...b, data: (await normalizeStain(b, { method: p.stain.method, preset: p.stain.preset, backend: runner.name, ...(p.stain.target ? { target: p.stain.target } : {}) })).data }
    : b;
  const input = tta ? repeatEach(source, views) : source;
  const data = (o.out as Float32Array | undefined) ?? new Float32Array(length);
  await runner.run(input, params, bp, data);
  return { data, n, height: shape.height, width: shape.width, params, batchParams: bp, pipeline: p, backend: reason };
}
