/**
 * What predictSlide needs from a model: a function from a batch of tiles to
 * one tumour probability per tile, the tile size it takes, and a name for the
 * reports. Trained TF.js models plug in here (loadSlidePredictor); so do the
 * stand-ins the tests and the CLI's `builtin:redness` use.
 */
import { augment } from '../augment/augment.js';
import { checkBoolean, checkInteger, checkObject, invalidRange, invalidType } from '../errors.js';
import type { RgbBatch } from '../image.js';

export interface PredictOptions {
  /** Average the 8 dihedral views of each tile (test-time augmentation). */
  tta: boolean;
}

/** Tumour probability per tile (n floats in [0,1]) for a batch of tiles (n x size x size x 3 uint8). */
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
}

/** Validates a predictor spec: a TypeError/RangeError naming the field. */
export function checkPredictor(name: string, value: unknown): SlidePredictorSpec {
  const o = checkObject(name, value);
  if (typeof o.predict !== 'function') throw invalidType(`${name}.predict`, 'a function (batch, { tta }) => Promise<Float32Array>', o.predict);
  const inputSize = checkInteger(`${name}.inputSize`, o.inputSize, 1, 1 << 14);
  if (typeof o.name !== 'string' || o.name.length === 0) throw invalidType(`${name}.name`, 'a non-empty string', o.name);
  const handlesTta = o.handlesTta === undefined ? false : checkBoolean(`${name}.handlesTta`, o.handlesTta);
  return { predict: o.predict as TilePredictor, inputSize, name: o.name, handlesTta };
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
