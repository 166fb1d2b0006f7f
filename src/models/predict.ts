/**
 * Inference with a saved model: the model's own deterministic preprocessing
 * (its card's `preprocess`, run by `augment`), then the model, in chunks of
 * `batchSize`, optionally averaged over the 8 dihedral views (test-time
 * augmentation: `augment(…, { tta: true })` emits the 8 views of each image
 * consecutively, so the mean of each run of 8 outputs is the TTA score), and
 * with `tta: 'crops'` over those views at five crop windows of a model
 * trained on random crops (augment/params.ts ttaWindows: 40 views).
 *
 *   const { model, card } = await loadModel('runs/ref');
 *   const predictor = createPredictor(model, card, { tta: true });
 *   const p = await predictor.predict(batch);   // Float32Array, one probability per image
 */
import * as tf from '@tensorflow/tfjs';

import { augment, ttaViews } from '../augment/augment.js';
import { checkTta, type Tta } from '../augment/params.js';
import { checkPipeline, outputShape, type AugmentPipelineInput } from '../augment/pipeline.js';
import { checkInteger, checkKnownKeys, checkObject, invalidRange } from '../errors.js';
import { checkBatch, type RgbBatch } from '../image.js';
import { modelFile, type ModelCard } from './io.js';

/** The random-free part of a training pipeline: what inference must apply too. */
export function inferencePipeline(train: AugmentPipelineInput): AugmentPipelineInput {
  const p = checkPipeline(train);
  return {
    ...(p.stain ? { stain: p.stain } : {}),
    ...(p.crop ? { crop: { size: p.crop.size, mode: 'center' as const } } : {}),
    ...(p.resize ? { resize: p.resize } : {}),
    ...(p.normalize ? { normalize: p.normalize } : {}),
  };
}

export interface PredictOptions {
  /** Images per forward pass (default 64; with TTA, 8 views of each count). */
  batchSize?: number;
  /** Average the 8 dihedral views (true), or those views at the centre and corner crop windows ('crops'); default false. */
  tta?: Tta;
}

export interface Predictor {
  /** Side of the images the model was trained on, before preprocessing (tiles to cut for it). */
  readonly imageSize: number;
  /** The model's input side (after preprocessing). */
  readonly inputSize: number;
  /** One probability per image. */
  predict(batch: RgbBatch, options?: { tta?: Tta }): Promise<Float32Array>;
}

export function createPredictor(model: tf.LayersModel, card: ModelCard, options: PredictOptions = {}): Predictor {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['batchSize', 'tta']);
  const batchSize = o.batchSize === undefined ? 64 : checkInteger('options.batchSize', o.batchSize, 1, 65536);
  const defaultTta = o.tta === undefined ? false : checkTta('options.tta', o.tta);
  const pipeline = checkPipeline(card.preprocess);
  return {
    imageSize: card.imageSize ?? card.inputSize,
    inputSize: card.inputSize,
    async predict(batch: RgbBatch, callOptions: { tta?: Tta } = {}): Promise<Float32Array> {
      const b = checkBatch('batch', batch);
      const tta = callOptions.tta === undefined ? defaultTta : checkTta('tta', callOptions.tta);
      const out = outputShape(pipeline, b.height, b.width, false);
      if (out.height !== card.inputSize || out.width !== card.inputSize) {
        const file = modelFile(model);
        const input = model.inputs[0];
        throw invalidRange(
          'batch',
          `images that preprocess to the ${card.inputSize}x${card.inputSize} input of the model` +
            `${file ? ` ${file}` : ''} (input layer '${input?.sourceLayer.name ?? '?'}', shape [${(input?.shape ?? []).map((d) => d ?? 'null').join(', ')}])`,
          `${b.width}x${b.height} images (→ ${out.width}x${out.height})`,
        );
      }
      const result = new Float32Array(b.n);
      const views = ttaViews(pipeline, b.height, b.width, tta);
      const chunk = Math.max(1, Math.floor(batchSize / views));
      const pixels = b.height * b.width * 3;
      for (let start = 0; start < b.n; start += chunk) {
        const n = Math.min(chunk, b.n - start);
        const part: RgbBatch = { ...b, n, data: b.data.subarray(start * pixels, (start + n) * pixels) };
        const x = await augment(part, pipeline, { tta });
        const scores = tf.tidy(() => {
          const input = tf.tensor4d(x.data, [x.n, x.height, x.width, 3], 'float32');
          return (model.predict(input) as tf.Tensor).reshape([x.n]);
        });
        const s = (await scores.data()) as Float32Array;
        scores.dispose();
        for (let i = 0; i < n; i++) {
          let sum = 0;
          for (let v = 0; v < views; v++) sum += s[i * views + v]!;
          result[start + i] = sum / views;
        }
      }
      return result;
    },
  };
}
