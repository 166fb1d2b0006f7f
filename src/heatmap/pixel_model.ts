/**
 * A TF.js segmentation model (one input [null, S, S, 3], one output
 * [null, S, S, 1]: a probability per pixel, e.g. the zoo's UNet) as a pixel
 * predictor for predictSlide: the card's deterministic preprocessing by
 * `augment`, then the model, in chunks of `batchSize` tiles. Test-time
 * augmentation is predictSlide's (withDihedralPixelTta), which maps each
 * view's output back before averaging.
 *
 * The preprocessing must keep the tile's geometry (stain, normalize; no crop
 * or resize), so that output pixel (y, x) is input pixel (y, x).
 */
import * as tf from '@tensorflow/tfjs';

import { augment } from '../augment/augment.js';
import { checkPipeline, outputShape } from '../augment/pipeline.js';
import type { LoadedModel } from '../models/io.js';
import type { SlidePredictorSpec } from './predictor.js';

const shapeText = (shape: readonly (number | null)[] | undefined) => `[${(shape ?? []).map((d) => (d === null ? 'null' : d)).join(', ')}]`;

/** Whether a model's one output is a map [null, H, W, 1] (rank 4) rather than a score per image. */
export function hasPixelOutput(model: tf.LayersModel): boolean {
  return model.outputs.length === 1 && model.outputs[0]!.shape.length === 4;
}

/** The pixel predictor of a loaded segmentation model; a RangeError naming the file when its shapes or card do not allow one. */
export function pixelModelPredictor(loaded: LoadedModel, name: string, batchSize: number): SlidePredictorSpec {
  const { model, card, path } = loaded;
  const input = model.inputs[0]?.shape, output = model.outputs[0]?.shape;
  const S = input?.[1];
  if (!S || input?.[2] !== S || output?.[1] !== S || output?.[2] !== S || output?.[3] !== 1) {
    throw new RangeError(`Expected a segmentation model with input [null, S, S, 3] and output [null, S, S, 1] (one probability per input pixel) for model ` +
      `but ${path} has input ${shapeText(input)} and output ${shapeText(output)}`);
  }
  if (card.inputSize !== S) throw new RangeError(`${path}: its card says inputSize ${card.inputSize} but the model's input is ${S}x${S}`);
  const pipeline = checkPipeline(card.preprocess);
  const after = outputShape(pipeline, S, S, false);
  if ((card.imageSize ?? S) !== S || after.height !== S || after.width !== S || pipeline.crop || pipeline.resize) {
    throw new RangeError(`${path}: a segmentation model's preprocessing must keep the tile's geometry (output pixel = input pixel), ` +
      `but its card has imageSize ${card.imageSize ?? S}${pipeline.crop ? ', a crop' : ''}${pipeline.resize ? ', a resize' : ''} for an input of ${S}x${S}`);
  }
  return {
    name,
    inputSize: S,
    output: 'pixels',
    predict: async (batch) => {
      const plane = S * S, pixels = plane * 3;
      const out = new Float32Array(batch.n * plane);
      for (let start = 0; start < batch.n; start += batchSize) {
        const n = Math.min(batchSize, batch.n - start);
        const x = await augment({ ...batch, n, data: batch.data.subarray(start * pixels, (start + n) * pixels) }, pipeline, { tta: false });
        const y = tf.tidy(() => (model.predict(tf.tensor4d(x.data, [x.n, S, S, 3], 'float32')) as tf.Tensor).reshape([x.n * plane]));
        out.set((await y.data()) as Float32Array, start * plane);
        y.dispose();
      }
      return out;
    },
  };
}
