/**
 * Models on the file system as TF.js's own layers format, on every backend:
 *
 *   DIR/model.json     { format: 'layers-model', modelTopology, weightsManifest,
 *                        trainingConfig, userDefinedMetadata: { histoflow: … } }
 *   DIR/weights.bin    every weight (and, with includeOptimizer, the
 *                      optimizer's slots), float32 little-endian, in manifest order
 *
 * This is what `tf.loadLayersModel('file://DIR/model.json')` reads under
 * tfjs-node and what tensorflowjs_converter writes, but TF.js registers
 * 'file://' only in tfjs-node, which is optional here. So saving and loading go
 * through the IOHandler below instead of a URL scheme, and work the same on
 * 'tensorflow', 'native' and 'tfjs-cpu'. The weights are written first and
 * model.json last, each atomically, so a folder with a model.json always
 * holds a complete model (a crash mid-save leaves the previous one).
 *
 * histoflow's metadata (ModelCard) travels in `userDefinedMetadata.histoflow`:
 * the input size, the architecture and the deterministic preprocessing the
 * model was trained with, so predict and predict-slide feed it what it saw.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';

import * as tf from '@tensorflow/tfjs';

import type { AugmentPipelineInput } from '../augment/pipeline.js';
import { describeValue } from '../errors.js';
import { writeFileAtomic } from '../image.js';
import { compileForSegmentation } from '../train/segment_loss.js';
import { foldBatchNorm } from './fold.js';

/**
 * A value of a model.json for an error message: short lists of numbers and
 * strings as JSON, anything else bounded (describeValue); never a
 * JSON.stringify of whatever the file holds (100,000 nested arrays overflow it).
 */
function brief(value: unknown): string {
  const plain = (v: unknown) => v === null || typeof v === 'number' || typeof v === 'boolean' || (typeof v === 'string' && v.length <= 200);
  if (plain(value)) return JSON.stringify(value);
  if (Array.isArray(value) && value.length <= 16 && value.every(plain)) return JSON.stringify(value);
  return describeValue(value);
}

/**
 * A weightsManifest path of `file`, resolved against its folder; a path that
 * is absolute or leads out of the folder (by '..' or a link) is refused, so a
 * model.json cannot make histoflow read an arbitrary file.
 */
async function weightsPath(file: string, base: string, p: unknown): Promise<string> {
  const refuse = (why: string) => new Error(`Refusing the weights path ${brief(p)} in ${file}: ${why}; weights must be files inside the model's folder`);
  if (typeof p !== 'string' || p === '') throw refuse('not a file name');
  if (isAbsolute(p) || /^[a-zA-Z]:[\\/]/.test(p) || p.startsWith('\\')) throw refuse('it is an absolute path');
  const inside = (root: string, path: string) => {
    const r = relative(root, path);
    return r !== '' && !r.startsWith('..') && !isAbsolute(r);
  };
  const path = resolve(base, p);
  if (!inside(resolve(base), path)) throw refuse('it leads outside the model\'s folder');
  const real = await realpath(path).catch(() => undefined);
  if (real !== undefined && !inside(await realpath(base), real)) throw refuse(`it is a link to ${real}, outside the model's folder`);
  return path;
}

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** What histoflow needs to know to feed a saved model (userDefinedMetadata.histoflow). */
export interface ModelCard {
  /** Square input side in pixels. */
  inputSize: number;
  /** Side of the training images before preprocessing (default inputSize; larger with a crop). */
  imageSize?: number;
  /** Zoo name ('baseline', 'resnet', 'vgg', 'unet') or 'custom'. */
  architecture: string;
  /**
   * The deterministic part of the training pipeline (stain normalization,
   * centre crop / resize, normalize), applied by `augment` before inference.
   */
  preprocess: AugmentPipelineInput;
  /** Anything else the writer wants to keep (epoch, val AUC, seed, …). */
  [key: string]: unknown;
}

export class ModelNotFoundError extends Error {
  constructor(path: string, why: string) {
    super(`Model not found: ${path} (${why}; expected a folder with ${MODEL_JSON} and its weights, as written by 'histoflow train', ` +
      'or an ONNX model: X.onnx with its card X.card.json, or a folder with model.onnx and model.card.json)');
    this.name = 'ModelNotFoundError';
  }
}

/** The checkpoint of a training run folder (runs/NAME) that predict and evaluate use: the best validation AUC. */
export const RUN_BEST = 'best';

/** An ensemble's folder (train --members N) lists its members' run folders in this file. */
export const ENSEMBLE_JSON = 'ensemble.json';

const isFile = async (p: string) => (await stat(p).catch(() => undefined))?.isFile() === true;

/**
 * The member run folders of an ensemble folder (its ensemble.json: `members`,
 * folder names inside it), or undefined when `path` is no ensemble folder.
 */
export async function ensembleMembers(path: string): Promise<string[] | undefined> {
  return (await readEnsembleJson(path))?.folders;
}

/** ensemble.json of the folder `path` (undefined when it has none): the member folders (checked as in ensembleMembers) and the whole parsed file. */
export async function readEnsembleJson(path: string): Promise<{ folders: string[]; json: Record<string, unknown> } | undefined> {
  const dir = resolve(path);
  const file = join(dir, ENSEMBLE_JSON);
  if (!(await isFile(file))) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}): it should list the ensemble's member run folders`);
  }
  const members = (parsed as { members?: unknown } | null)?.members;
  if (!Array.isArray(members) || members.length === 0 ||
    !members.every((m) => typeof m === 'string' && m !== '' && !isAbsolute(m) && !m.split(/[\\/]/).includes('..'))) {
    throw new Error(`${file}: members is ${JSON.stringify(members)?.slice(0, 80)} (expected a non-empty list of folder names inside ${dir})`);
  }
  return { folders: members.map((m: string) => join(dir, m)), json: parsed as Record<string, unknown> };
}

/** The model list with every ensemble folder replaced by its members, in order (an ensemble of ensembles is one flat list). */
export async function expandEnsembles(models: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const m of models) out.push(...((await ensembleMembers(m)) ?? [m]));
  return out;
}

/**
 * The model.json of a folder, or the file itself when given model.json's
 * path. A training run folder (runs/NAME, no model.json of its own) resolves
 * to its best checkpoint, runs/NAME/best/model.json. An ensemble folder is
 * several models: the error says where to pass it (expandEnsembles).
 */
export async function resolveModelJson(path: string): Promise<string> {
  if (typeof path !== 'string' || path === '') throw new TypeError(`Expected a model folder path string for model but received ${String(path)} of type ${typeof path}`);
  const abs = resolve(path);
  const s = await stat(abs).catch(() => undefined);
  if (!s) throw new ModelNotFoundError(path, 'no such file or folder');
  let file = s.isDirectory() ? join(abs, MODEL_JSON) : abs;
  if (s.isDirectory() && !(await isFile(file)) && (await isFile(join(abs, ENSEMBLE_JSON)))) {
    throw new RangeError(`Expected one model for model but received ${path}, an ensemble of several (${ENSEMBLE_JSON}): ` +
      'predict, evaluate and predict-slide take it as --model; elsewhere pass one of its member folders');
  }
  if (s.isDirectory() && !(await isFile(file)) && (await isFile(join(abs, RUN_BEST, MODEL_JSON)))) file = join(abs, RUN_BEST, MODEL_JSON);
  if (!(await isFile(file))) throw new ModelNotFoundError(path, `no ${MODEL_JSON} in it, nor in ${RUN_BEST}/`);
  return file;
}

/** Bytes of one manifest entry (float32 and int32: 4 per value; bool: 1). */
function specBytes(w: tf.io.WeightsManifestEntry): number {
  return w.shape.reduce((a, b) => a * b, 1) * (w.dtype === 'int32' || w.dtype === 'float32' ? 4 : 1);
}

const shapeText = (shape: readonly (number | null)[]) => `[${shape.map((d) => (d === null ? 'null' : d)).join(', ')}]`;

/**
 * The weights files must hold exactly what the manifest lists, in its order:
 * a file that ends early names the first weight it cuts, with its shape and
 * byte range; one that is longer says by how much.
 */
function checkWeightBytes(file: string, paths: readonly string[], specs: readonly tf.io.WeightsManifestEntry[], got: number): void {
  const files = paths.map((p) => brief(p)).join(' + ');
  specs.forEach((w, i) => {
    if (typeof w?.name !== 'string' || w.name === '') {
      throw new Error(`${file}: weight ${i} of the weights manifest has no name (received ${brief(w?.name)})`);
    }
    if (!Array.isArray(w.shape) || !w.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${file}: weight '${w.name}' of the weights manifest has shape ${brief(w.shape)}; expected a list of integers ≥ 0`);
    }
  });
  let offset = 0;
  for (const w of specs) {
    const end = offset + specBytes(w);
    if (end > got) {
      throw new Error(`The weights ${files} of ${file} hold ${got} bytes but weight '${w.name}' (shape ${shapeText(w.shape)}, ${w.dtype}) needs bytes ` +
        `${offset}..${end} of the ${specs.reduce((s, x) => s + specBytes(x), 0)} the manifest lists: truncated or mismatched files`);
    }
    offset = end;
  }
  if (got !== offset) {
    throw new Error(`The weights ${files} of ${file} hold ${got} bytes where the manifest needs ${offset} (${got - offset} bytes more than its last weight '${specs.at(-1)?.name ?? 'none'}'): truncated or mismatched files`);
  }
}

/** Window options of TF.js layers, which TF.js takes unchecked (strides 0 loads, then predict divides by it). */
const WINDOW_OPTIONS = ['strides', 'kernelSize', 'poolSize', 'dilationRate', 'size'];

/** The first layer whose window options are not positive integers, said as an error, or undefined. */
function badWindow(model: tf.LayersModel): string | undefined {
  for (const layer of model.layers) {
    const config = layer.getConfig() as Record<string, unknown>;
    for (const key of WINDOW_OPTIONS) {
      const v = config[key];
      if (v === undefined || v === null) continue;
      const values = Array.isArray(v) ? v : [v];
      if (values.length === 0 || !values.every((x) => Number.isSafeInteger(x) && (x as number) >= 1)) {
        return `layer '${layer.name}' (${layer.getClassName()}) has ${key} ${brief(v)}; expected positive integers`;
      }
    }
  }
  return undefined;
}

/** The model.json each loaded model came from, for errors that happen later (predict). */
const modelFiles = new WeakMap<tf.LayersModel, string>();

/** The model.json a model was loaded from by loadModel, if it was. */
export function modelFile(model: tf.LayersModel): string | undefined {
  return modelFiles.get(model);
}

/**
 * Why TF.js could not put a manifest's weights into the model its topology
 * builds, in terms of the file, layer and weight: a weight whose shape
 * disagrees with its layer (expected vs actual), one that matches no layer
 * weight, or a layer weight the manifest lacks. Undefined when none is found.
 */
async function diagnoseWeights(file: string, artifacts: tf.io.ModelArtifacts): Promise<string | undefined> {
  let model: tf.LayersModel;
  try {
    model = await tf.models.modelFromJSON({ modelTopology: artifacts.modelTopology } as tf.io.ModelJSON);
  } catch (e) {
    return `${file}: its modelTopology does not build a model: ${e instanceof Error ? e.message : String(e)}`;
  }
  try {
    const variables = new Map<string, { layer: tf.layers.Layer; shape: number[] }>();
    for (const layer of model.layers) for (const v of layer.weights) variables.set(v.originalName, { layer, shape: v.shape as number[] });
    const specs = artifacts.weightSpecs ?? [];
    for (const w of specs) {
      const v = variables.get(w.name);
      // Optimizer slots travel in the same manifest (includeOptimizer), under their own group.
      if (!v && (w as { group?: string }).group === 'optimizer') continue;
      if (!v) {
        return `${file}: the weights manifest lists '${w.name}' (shape ${shapeText(w.shape)}), which is no weight of any layer of the model ` +
          `(its weights: ${[...variables.keys()].slice(0, 8).join(', ')}${variables.size > 8 ? ', …' : ''})`;
      }
      if (v.shape.length !== w.shape.length || v.shape.some((d, k) => d !== w.shape[k])) {
        return `${file}: weight '${w.name}' of layer '${v.layer.name}' (${v.layer.getClassName()}) has shape ${shapeText(w.shape)} in the weights manifest ` +
          `but the layer expects ${shapeText(v.shape)} (its input ${shapeText(inputShape(v.layer))})`;
      }
    }
    const listed = new Set(specs.map((w) => w.name));
    for (const [name, v] of variables) {
      if (!listed.has(name)) return `${file}: weight '${name}' (shape ${shapeText(v.shape)}) of layer '${v.layer.name}' (${v.layer.getClassName()}) is not in the weights manifest`;
    }
    return undefined;
  } finally {
    model.dispose();
  }
}

/** The shape of a layer's (first) input, as its graph connects it. */
function inputShape(layer: tf.layers.Layer): (number | null)[] {
  try {
    const input = layer.input;
    return [...(Array.isArray(input) ? input[0]!.shape : input.shape)];
  } catch {
    return [];
  }
}

function concat(parts: Uint8Array[]): ArrayBuffer {
  const total = parts.reduce((s, p) => s + p.byteLength, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out.buffer;
}

/** A TF.js IOHandler over a folder: `model.save(fileSystemHandler(dir))`, `tf.loadLayersModel(fileSystemHandler(dir))`. */
export function fileSystemHandler(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) throw new TypeError('Only layers models (JSON topology) can be saved');
      const weights = artifacts.weightData === undefined ? new Uint8Array(0) : new Uint8Array(concat(
        (Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData]).map((b) => new Uint8Array(b)),
      ));
      const json: tf.io.ModelJSON = {
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology as object,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      await writeFileAtomic(join(dir, WEIGHTS_BIN), weights);
      await writeFileAtomic(join(dir, MODEL_JSON), `${JSON.stringify(json)}\n`);
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(json.modelTopology).length,
          weightSpecsBytes: JSON.stringify(json.weightsManifest).length,
          weightDataBytes: weights.byteLength,
        },
      };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const file = await resolveModelJson(dir);
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(await readFile(file, 'utf8')) as tf.io.ModelJSON;
      } catch (e) {
        throw new Error(`Cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
      }
      if (!json || typeof json !== 'object' || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
        throw new Error(`${file} is not a TF.js layers model.json (no modelTopology or weightsManifest)`);
      }
      const base = join(file, '..');
      const specs: tf.io.WeightsManifestEntry[] = [];
      const parts: Uint8Array[] = [];
      for (const group of json.weightsManifest) {
        if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
          throw new Error(`${file} is not a TF.js layers model.json (a weightsManifest group without paths or weights)`);
        }
        specs.push(...group.weights);
        for (const p of group.paths) {
          const path = await weightsPath(file, base, p);
          parts.push(await readFile(path).catch((e: unknown) => {
            throw new Error(`Cannot read the weights ${path} named by ${file}: ${e instanceof Error ? e.message : String(e)}`);
          }));
        }
      }
      const got = parts.reduce((s, p) => s + p.byteLength, 0);
      if (!specs.some((w) => w?.quantization)) checkWeightBytes(file, json.weightsManifest.flatMap((g) => g.paths), specs, got);
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        weightSpecs: specs,
        weightData: concat(parts),
        ...(json.trainingConfig ? { trainingConfig: json.trainingConfig } : {}),
        ...(json.userDefinedMetadata ? { userDefinedMetadata: json.userDefinedMetadata } : {}),
      };
    },
  };
}

export interface SaveModelOptions {
  /** Also save the optimizer's state (for resuming training; default false). */
  includeOptimizer?: boolean;
  /** histoflow's card (kept in userDefinedMetadata.histoflow). */
  card?: ModelCard;
}

/** Saves a layers model into `dir` (model.json + weights.bin), atomically per file. */
export async function saveModel(model: tf.LayersModel, dir: string, options: SaveModelOptions = {}): Promise<void> {
  if (options.card) model.setUserDefinedMetadata({ ...(model.getUserDefinedMetadata() ?? {}), histoflow: options.card });
  await model.save(fileSystemHandler(dir), { includeOptimizer: options.includeOptimizer ?? false });
}

export interface LoadedModel {
  model: tf.LayersModel;
  /** histoflow's card, or one inferred from the model's input shape for a foreign model.json. */
  card: ModelCard;
  /** The model.json read. */
  path: string;
}

/**
 * What a model predicts: 'classify' for one output [null, 1] (a probability
 * per image), 'segment' for one output [null, S, S, 1] over an input
 * [null, S, S, 3] (a probability per pixel); undefined for anything else.
 */
export function outputTask(model: tf.LayersModel): 'classify' | 'segment' | undefined {
  const input = model.inputs.length === 1 ? model.inputs[0]!.shape : undefined;
  const out = model.outputs.length === 1 ? model.outputs[0]!.shape : undefined;
  if (!input || !out || out[out.length - 1] !== 1) return undefined;
  if (out.length === 2) return 'classify';
  if (out.length === 4 && input.length === 4 && out[1] === input[1] && out[2] === input[2] && out[1] !== null) return 'segment';
  return undefined;
}

/**
 * A loss that TF.js cannot name (a function, such as the segmentation loss)
 * is saved in trainingConfig as {}, which TF.js cannot compile at load. It is
 * loaded as binary cross-entropy, so that TF.js rebuilds the optimizer and
 * restores its slots; loadModel then recompiles a segmentation model with its
 * Dice + BCE and the same optimizer (a classifier keeps binary cross-entropy,
 * the zoo's). True when the loss was replaced.
 */
function withNamedLoss(artifacts: tf.io.ModelArtifacts): boolean {
  const config = artifacts.trainingConfig as { loss?: unknown } | undefined;
  const loss = config?.loss;
  if (!config || typeof loss !== 'object' || loss === null || Array.isArray(loss) || Object.keys(loss).length > 0) return false;
  artifacts.trainingConfig = { ...artifacts.trainingConfig!, loss: 'binary_crossentropy' };
  return true;
}

/**
 * Loads a folder written by saveModel (or any TF.js layers model.json with
 * its weights). Foreign models get a card from their input shape, which must
 * be [null, S, S, 3], and no preprocessing beyond scaling to [0, 1]. Their
 * output is a classifier's [null, 1] or a segmentation model's [null, S, S, 1]
 * (outputTask). A model saved with its optimizer comes back compiled with it,
 * a segmentation model with its Dice + BCE loss (src/train/segment_loss.ts).
 */
export async function loadModel(path: string): Promise<LoadedModel> {
  const file = await resolveModelJson(path);
  const artifacts = await fileSystemHandler(file).load!();
  const unnamedLoss = withNamedLoss(artifacts);
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel({ load: async () => artifacts });
  } catch (e) {
    // TF.js says 'Shape mismatch: [3,3,3,4] vs. [3,3,4,3]': say which file, layer and weight.
    const why = await diagnoseWeights(file, artifacts).catch(() => undefined);
    throw new Error(why ?? `${file}: cannot load the model: ${e instanceof Error ? e.message : String(e)}`);
  }
  modelFiles.set(model, file);
  const meta = (model.getUserDefinedMetadata() as { histoflow?: ModelCard } | undefined)?.histoflow;
  const shape = model.inputs[0]?.shape;
  if (model.inputs.length !== 1 || !shape || shape.length !== 4 || shape[3] !== 3 || shape[1] !== shape[2] || !shape[1]) {
    model.dispose();
    throw new RangeError(`Expected a model with one input of shape [null, S, S, 3] for model but ${file} has ${JSON.stringify(model.inputs.map((i) => i.shape))}`);
  }
  const task = outputTask(model);
  if (!task) {
    model.dispose();
    throw new RangeError(`Expected a model with one sigmoid output of shape [null, 1] (a classifier) or [null, ${shape[1]}, ${shape[1]}, 1] ` +
      `(a segmentation model) for model but ${file} has ${JSON.stringify(model.outputs.map((o) => o.shape))}`);
  }
  if (unnamedLoss && task === 'segment' && model.optimizer) {
    compileForSegmentation(model, model.optimizer);
  }
  const badLayer = badWindow(model);
  if (badLayer) {
    model.dispose();
    throw new RangeError(`${file}: ${badLayer}`);
  }
  const card: ModelCard = meta ?? { inputSize: shape[1], architecture: 'custom', preprocess: {} };
  if (card.inputSize !== shape[1]) {
    model.dispose();
    throw new RangeError(`${file}: its card says inputSize ${card.inputSize} but the model's input is ${shape[1]}x${shape[1]}`);
  }
  return { model, card, path: file };
}

/**
 * loadModel for inference only: each batch norm folded into the convolution
 * before it (fold.ts; the same predictions to float rounding, one fused
 * kernel per conv → batch norm → ReLU). What `predict`, `evaluate` and
 * `predict-slide` run. `HISTOFLOW_FOLD_BN=0` loads the model as saved.
 */
export async function loadModelForInference(path: string): Promise<LoadedModel> {
  const loaded = await loadModel(path);
  if (process.env.HISTOFLOW_FOLD_BN === '0') return loaded;
  let folded: tf.LayersModel;
  try {
    folded = (await foldBatchNorm(loaded.model)).model;
  } catch (e) {
    loaded.model.dispose();
    throw new Error(`${loaded.path}: cannot fold its batch norms for inference (HISTOFLOW_FOLD_BN=0 loads it as saved): ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (folded === loaded.model) return loaded;
  modelFiles.set(folded, loaded.path);
  loaded.model.dispose();
  return { ...loaded, model: folded };
}
