/**
 * `--model M` → a SlidePredictorSpec. The one place that knows what a model
 * argument may be: a trained model (a run folder `runs/NAME`, its `best/`, or
 * any TF.js layers model.json folder; src/models/io.ts), run with the model's
 * own preprocessing and TTA (src/models/predict.ts), an ONNX model (X.onnx
 * or a folder with model.onnx, and its card; src/models/onnx.ts) run the same
 * way by onnxruntime-node, or `builtin:redness` (a test/debug stand-in: each
 * tile's mean redness).
 */
import { basename, dirname } from 'node:path';

import { invalidRange, invalidType } from '../errors.js';
import { loadModel, ModelNotFoundError } from '../models/io.js';
import { createOnnxPredictor, loadOnnxModel, onnxModelName, resolveOnnxModel, type OnnxProvider } from '../models/onnx.js';
import { createPredictor } from '../models/predict.js';
import { useTrainingBackend, type TrainingBackend } from '../tfjs/backend.js';
import { rednessPredictor, type SlidePredictorSpec } from './predictor.js';

export const BUILTIN_MODELS = ['builtin:redness'] as const;

export interface LoadSlidePredictorOptions {
  /** TF.js backend for a trained model (default 'auto'). */
  backend?: 'auto' | TrainingBackend;
  /** Tiles per forward pass (default 64). */
  batchSize?: number;
  /** onnxruntime's execution provider for an ONNX model (default 'cpu'). */
  provider?: OnnxProvider;
}

export async function loadSlidePredictor(modelArg: string, options: LoadSlidePredictorOptions = {}): Promise<SlidePredictorSpec> {
  if (typeof modelArg !== 'string' || modelArg.length === 0) throw invalidType('--model', 'a model folder, an .onnx file or builtin:redness', modelArg);
  if (modelArg === 'builtin:redness') return rednessPredictor();
  if (modelArg.startsWith('builtin:')) {
    throw new RangeError(`Expected one of ${BUILTIN_MODELS.join(', ')} for --model but received '${modelArg}': no such built-in model`);
  }
  const onnx = await resolveOnnxModel(modelArg);
  if (onnx !== undefined) {
    if (options.backend !== undefined && options.backend !== 'auto') {
      throw invalidRange('--backend', `auto for the ONNX model ${onnx} (it runs on onnxruntime-node: choose its execution provider with --provider)`, options.backend);
    }
    const model = await loadOnnxModel(onnx, options.provider === undefined ? {} : { provider: options.provider });
    const predictor = createOnnxPredictor(model, { batchSize: options.batchSize ?? 64 });
    return {
      predict: (batch, { tta }) => predictor.predict(batch, { tta }),
      inputSize: predictor.imageSize,
      name: onnxModelName(model),
      handlesTta: true,
    };
  }
  if (options.provider !== undefined) {
    throw invalidRange('--provider', `no provider for the TF.js model ${modelArg} (providers are onnxruntime's, for .onnx models)`, options.provider);
  }
  await useTrainingBackend(options.backend ?? 'auto');
  let loaded;
  try {
    loaded = await loadModel(modelArg);
  } catch (e) {
    if (e instanceof ModelNotFoundError) throw new Error(`model not found: ${modelArg} (expected a trained model folder, or ${BUILTIN_MODELS.join(', ')})`, { cause: e });
    throw e;
  }
  const predictor = createPredictor(loaded.model, loaded.card, { batchSize: options.batchSize ?? 64 });
  const folder = dirname(loaded.path);
  const name = basename(folder) === 'best' ? basename(dirname(folder)) : basename(folder);
  return {
    predict: (batch, { tta }) => predictor.predict(batch, { tta }),
    inputSize: predictor.imageSize,
    name: `${name} (${loaded.card.architecture})`,
    handlesTta: true,
  };
}
