/**
 * What predictSlide needs from a model: a function from a batch of tiles to
 * one tumour probability per tile (a patch classifier) or per pixel (a
 * segmentation model, `output: 'pixels'`), the tile size it takes, and a name
 * for the reports. Trained TF.js models plug in here (loadSlidePredictor); so
 * do the stand-ins the tests and the CLI's `builtin:redness` and
 * `builtin:redness-pixels` use.
 */
import { augment } from '../augment/augment.js';
import { checkBoolean, checkInteger, checkObject, checkOneOf, invalidRange, invalidType } from '../errors.js';
import type { RgbBatch } from '../image.js';

export interface PredictOptions {
  /** Average the 8 dihedral views of each tile (test-time augmentation). */
  tta: boolean;
}

/**
 * Tumour probabilities for a batch of tiles (n x size x size x 3 uint8): n
 * floats in [0, 1] for a patch classifier; n·size·size for a pixel predictor
 * (tile i's map row major at i·size², pixel (y, x) of the tile at y·size + x).
 */
export type TilePredictor = (batch: RgbBatch, options: PredictOptions) => Promise<Float32Array>;

export interface SlidePredictorSpec {
  predict: TilePredictor;
  /** Tile side in pixels the model takes. */
  inputSize: number;
  /** Shown in the outputs (probability.json, summary.json, report.html). */
  name: string;
  /**
   * True when `predict` averages the dihedral views itself when asked `{ tta: true }`
   * (a model predictor doing it on its own input tensors); otherwise predictSlide
   * wraps it with withDihedralTta.
   */
  handlesTta?: boolean;
  /** 'tiles' (the default): one probability per tile; 'pixels': one per pixel of each tile (a segmentation model). */
  output?: PredictorOutput;
}

export const PREDICTOR_OUTPUTS = ['tiles', 'pixels'] as const;
export type PredictorOutput = (typeof PREDICTOR_OUTPUTS)[number];

/** Validates a predictor spec: a TypeError/RangeError naming the field. */
export function checkPredictor(name: string, value: unknown): SlidePredictorSpec {
  const o = checkObject(name, value);
  if (typeof o.predict !== 'function') throw invalidType(`${name}.predict`, 'a function (batch, { tta }) => Promise<Float32Array>', o.predict);
  const inputSize = checkInteger(`${name}.inputSize`, o.inputSize, 1, 1 << 14);
  if (typeof o.name !== 'string' || o.name.length === 0) throw invalidType(`${name}.name`, 'a non-empty string', o.name);
  const handlesTta = o.handlesTta === undefined ? false : checkBoolean(`${name}.handlesTta`, o.handlesTta);
  const output = o.output === undefined ? 'tiles' : checkOneOf(`${name}.output`, o.output, PREDICTOR_OUTPUTS);
  return { predict: o.predict as TilePredictor, inputSize, name: o.name, handlesTta, output };
}

/**
 * The 8 dihedral views of every tile (view d of tile i at index 8i + d; d4 as
 * in native/augment/augment.h), as uint8. The augment kernel's D4 is an exact
 * permutation of pixels, so its [0, 1] floats map back to the same bytes.
 */
export async function dihedralViews(batch: RgbBatch): Promise<RgbBatch> {
  const views = await augment(batch, {}, { tta: true });
  const data = new Uint8Array(views.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.round(views.data[i]! * 255);
  return { data, n: views.n, height: views.height, width: views.width };
}

/** A predictor that, asked for TTA, predicts the 8 dihedral views of each tile and averages them. */
export function withDihedralTta(predict: TilePredictor): TilePredictor {
  return async (batch, options) => {
    if (!options.tta) return predict(batch, options);
    const views = await predict(await dihedralViews(batch), { tta: false });
    const out = new Float32Array(batch.n);
    for (let i = 0; i < batch.n; i++) {
      let s = 0;
      for (let d = 0; d < 8; d++) s += views[8 * i + d]!;
      out[i] = s / 8;
    }
    return out;
  };
}

/**
 * Where the augment kernel's dihedral view d of a size x size tile takes each
 * pixel from: view pixel p = y·size + x is source pixel source[p]. The same
 * geometry as native/augment/augment_pixel.h's make_geometry (k = d & 3
 * quarter turns counter-clockwise, then a horizontal flip when d & 4) for a
 * square tile; test/heatmap/pixel_map.test.ts checks it against the kernel.
 */
export function dihedralSource(d: number, size: number): Int32Array {
  const k = d & 3, flip = (d & 4) !== 0, last = size - 1;
  const source = new Int32Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const j = flip ? last - x : x;
      const [u, v] = k === 0 ? [y, j] : k === 1 ? [j, last - y] : k === 2 ? [last - y, last - j] : [last - j, y];
      source[y * size + x] = u * size + v;
    }
  }
  return source;
}

/**
 * A pixel predictor that, asked for TTA, predicts the 8 dihedral views of
 * each tile, maps each view's output back onto the tile (the inverse of the
 * view's transform: its pixel p belongs to source pixel dihedralSource(d)[p])
 * and averages the 8 maps.
 */
export function withDihedralPixelTta(predict: TilePredictor, size: number): TilePredictor {
  const sources = Array.from({ length: 8 }, (_, d) => dihedralSource(d, size));
  const plane = size * size;
  return async (batch, options) => {
    if (!options.tta) return predict(batch, options);
    const views = await predict(await dihedralViews(batch), { tta: false });
    if (!(views instanceof Float32Array) || views.length !== 8 * batch.n * plane) {
      throw invalidRange('the predictions of the dihedral views', `a Float32Array of ${8 * batch.n * plane} probabilities (8 views x ${batch.n} tiles x ${size}x${size} px)`, views);
    }
    const out = new Float32Array(batch.n * plane);
    for (let i = 0; i < batch.n; i++) {
      const tile = out.subarray(i * plane, (i + 1) * plane);
      for (let d = 0; d < 8; d++) {
        const source = sources[d]!, base = (8 * i + d) * plane;
        for (let p = 0; p < plane; p++) tile[source[p]!] += views[base + p]!;
      }
      for (let p = 0; p < plane; p++) tile[p] = tile[p]! / 8;
    }
    return out;
  };
}

/** A tile's mean redness, mean(R − (G + B)/2)/255 clipped to [0, 1]: pure red is 1, grey and white 0. */
export function tileRedness(data: Uint8Array, offset: number, pixels: number): number {
  let s = 0;
  for (let p = offset, end = offset + 3 * pixels; p < end; p += 3) s += data[p]! - (data[p + 1]! + data[p + 2]!) / 2;
  return Math.min(1, Math.max(0, s / pixels / 255));
}

/**
 * `builtin:redness`, a test and debug model: each tile's mean redness as its
 * "tumour probability". It knows nothing of tumour; it makes the heatmap's
 * geometry checkable (a planted red square must light up where it is).
 */
export function rednessPredictor(inputSize = 96): SlidePredictorSpec {
  return {
    name: 'builtin:redness',
    inputSize,
    predict: async (batch) => {
      const pixels = batch.height * batch.width;
      return Float32Array.from({ length: batch.n }, (_, i) => tileRedness(batch.data, i * pixels * 3, pixels));
    },
  };
}

/** A pixel's redness, (R − (G + B)/2)/255 clipped to [0, 1]: tileRedness of a one-pixel tile. */
export function pixelRedness(r: number, g: number, b: number): number {
  return Math.min(1, Math.max(0, (r - (g + b) / 2) / 255));
}

/**
 * `builtin:redness-pixels`, the pixel twin of builtin:redness: every pixel's
 * redness as its "tumour probability", a stand-in segmentation model whose
 * map is a known function of the slide (its stitching must reproduce that
 * function computed on the level image directly, with no seam).
 */
export function rednessPixelsPredictor(inputSize = 128): SlidePredictorSpec {
  return {
    name: 'builtin:redness-pixels',
    inputSize,
    output: 'pixels',
    predict: async (batch) => {
      const out = new Float32Array(batch.n * batch.height * batch.width);
      const d = batch.data;
      for (let p = 0; p < out.length; p++) out[p] = pixelRedness(d[3 * p]!, d[3 * p + 1]!, d[3 * p + 2]!);
      return out;
    },
  };
}

/** Checks a pixel predictor's answer for a batch of n tiles of size x size: n·size² finite values in [0, 1]. */
export function checkPixelPredictions(model: string, values: unknown, n: number, size: number): Float32Array {
  const count = n * size * size;
  if (!(values instanceof Float32Array)) throw invalidType(`the predictions of model '${model}'`, `a Float32Array of ${count} probabilities`, values);
  if (values.length !== count) {
    throw invalidRange(`the predictions of model '${model}'`, `${count} probabilities (one per pixel of ${n} tiles of ${size}x${size} px)`, values);
  }
  for (let k = 0; k < count; k++) {
    const v = values[k]!;
    if (!(v >= 0 && v <= 1)) {
      const plane = size * size, i = Math.floor(k / plane), y = Math.floor((k % plane) / size), x = k % size;
      throw invalidRange(`the prediction of model '${model}' for pixel (${x}, ${y}) of tile ${i} of a batch`, 'a probability in [0, 1]', v);
    }
  }
  return values;
}

/** Checks a predictor's answer for a batch of n tiles: n finite values in [0, 1]. */
export function checkPredictions(model: string, values: unknown, n: number): Float32Array {
  if (!(values instanceof Float32Array)) throw invalidType(`the predictions of model '${model}'`, `a Float32Array of ${n} probabilities`, values);
  if (values.length !== n) throw invalidRange(`the predictions of model '${model}'`, `${n} probabilities (one per tile of the batch)`, values);
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (!(v >= 0 && v <= 1)) throw invalidRange(`the prediction of model '${model}' for tile ${i} of a batch`, 'a probability in [0, 1]', v);
  }
  return values;
}
