/**
 * `--model M` → a SlidePredictorSpec. The one place that knows what a model
 * argument may be: a trained model (a run folder `runs/NAME`, its `best/`, or
 * any TF.js layers model.json folder; src/models/io.ts), run with the model's
 * own preprocessing and TTA (src/models/predict.ts), an ONNX model (X.onnx
 * or a folder with model.onnx, and its card; src/models/onnx.ts) run the same
 * way by onnxruntime-node, or `builtin:redness` (a test/debug stand-in: each
 * tile's mean redness) and `builtin:redness-pixels` (its per-pixel twin).
 *
 * A TF.js model whose output is a map, [null, S, S, 1] (a segmentation model
 * such as the zoo's UNet), becomes a pixel predictor (`output: 'pixels'`,
 * pixel_model.ts): predictSlide then stitches a pixel-level map. ONNX models
 * are patch classifiers only (their card's `output` says one score per image).
 */
import { basename, dirname } from 'node:path';

import { invalidRange, invalidType } from '../errors.js';
import { expandEnsembles, loadModelForInference, ModelNotFoundError } from '../models/io.js';
import { createOnnxPredictor, loadOnnxModel, onnxModelName, resolveOnnxModel, type OnnxProvider } from '../models/onnx.js';
import { createPredictor } from '../models/predict.js';
import { useTrainingBackend, type TrainingBackend } from '../tfjs/backend.js';
import { hasPixelOutput, pixelModelPredictor } from './pixel_model.js';
import { rednessPixelsPredictor, rednessPredictor, withDihedralPixelTta, withDihedralTta, type SlidePredictorSpec } from './predictor.js';

export const BUILTIN_MODELS = ['builtin:redness', 'builtin:redness-pixels'] as const;

export interface LoadSlidePredictorOptions {
  /** TF.js backend for a trained model (default 'auto'). */
  backend?: 'auto' | TrainingBackend;
  /** Tiles per forward pass (default 64). */
  batchSize?: number;
  /** onnxruntime's execution provider for an ONNX model (default 'cpu'). */
  provider?: OnnxProvider;
}

export async function loadSlidePredictor(modelArg: string, options: LoadSlidePredictorOptions = {}): Promise<SlidePredictorSpec> {
  if (typeof modelArg !== 'string' || modelArg.length === 0) throw invalidType('--model', `a model folder, an .onnx file or one of ${BUILTIN_MODELS.join(', ')}`, modelArg);
  if (modelArg === 'builtin:redness') return rednessPredictor();
  if (modelArg === 'builtin:redness-pixels') return rednessPixelsPredictor();
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
    loaded = await loadModelForInference(modelArg);
  } catch (e) {
    if (e instanceof ModelNotFoundError) throw new Error(`model not found: ${modelArg} (expected a trained model folder, or ${BUILTIN_MODELS.join(', ')})`, { cause: e });
    throw e;
  }
  const folder = dirname(loaded.path);
  const name = basename(folder) === 'best' ? basename(dirname(folder)) : basename(folder);
  if (hasPixelOutput(loaded.model)) return pixelModelPredictor(loaded, `${name} (${loaded.card.architecture}, pixel map)`, options.batchSize ?? 64);
  const predictor = createPredictor(loaded.model, loaded.card, { batchSize: options.batchSize ?? 64 });
  return {
    predict: (batch, { tta }) => predictor.predict(batch, { tta }),
    inputSize: predictor.imageSize,
    name: `${name} (${loaded.card.architecture})`,
    handlesTta: true,
  };
}

/**
 * Several models as one: every tile through each member (each with its own
 * preprocessing and, when asked, its own TTA), the tile's probability the
 * mean of theirs. (A slide map needs probabilities against a threshold, so
 * the rank average that `evaluate` offers does not apply here.) The members
 * must take tiles of one size and be of one kind: patch classifiers, or
 * pixel predictors (then the mean is per pixel).
 */
export function ensembleSlidePredictor(members: readonly SlidePredictorSpec[]): SlidePredictorSpec {
  if (!Array.isArray(members) || members.length === 0) throw invalidType('--model', 'one or more models', members);
  if (members.length === 1) return members[0]!;
  const size = members[0]!.inputSize;
  const odd = members.find((m) => m.inputSize !== size);
  if (odd) {
    throw new RangeError(`Expected models that take tiles of one size for --model but ${members[0]!.name} takes ${size}x${size} and ${odd.name} ${odd.inputSize}x${odd.inputSize}`);
  }
  const output = members[0]!.output ?? 'tiles';
  const other = members.find((m) => (m.output ?? 'tiles') !== output);
  if (other) {
    const kind = (m: SlidePredictorSpec) => ((m.output ?? 'tiles') === 'pixels' ? 'a pixel map (segmentation)' : 'one probability per tile (classifier)');
    throw new RangeError(`Expected models of one kind for --model but ${members[0]!.name} gives ${kind(members[0]!)} and ${other.name} ${kind(other)}`);
  }
  const pixels = output === 'pixels';
  const predicts = members.map((m) => (m.handlesTta ? m.predict : pixels ? withDihedralPixelTta(m.predict, size) : withDihedralTta(m.predict)));
  return {
    name: `ensemble of ${members.length}: ${members.map((m) => m.name).join(', ')}`,
    inputSize: size,
    handlesTta: true,
    ...(pixels ? { output } : {}),
    predict: async (batch, options) => {
      const length = pixels ? batch.n * size * size : batch.n;
      const out = new Float32Array(length);
      for (const predict of predicts) {
        const p = await predict(batch, options);
        if (p.length !== length) throw new RangeError(`Expected ${length} probabilities from each model of the ensemble but one gave ${p.length}`);
        for (let i = 0; i < length; i++) out[i]! += p[i]! / predicts.length;
      }
      // Rounding can put a mean of probabilities a hair outside [0, 1].
      for (let i = 0; i < length; i++) out[i] = Math.min(1, Math.max(0, out[i]!));
      return out;
    },
  };
}

/** loadSlidePredictor for each `--model`, combined by ensembleSlidePredictor. */
export async function loadSlideEnsemble(modelArgs: readonly string[], options: LoadSlidePredictorOptions = {}): Promise<SlidePredictorSpec> {
  if (!Array.isArray(modelArgs) || modelArgs.length === 0) throw invalidType('--model', 'one or more models', modelArgs);
  const members: SlidePredictorSpec[] = [];
  // An ensemble folder (train --members) is its members.
  for (const m of await expandEnsembles(modelArgs)) members.push(await loadSlidePredictor(m, options));
  return ensembleSlidePredictor(members);
}
