/**
 * ONNX models, run by onnxruntime-node (optional), behind the same Predictor
 * as TF.js models (src/models/predict.ts): the card's deterministic
 * preprocessing by `augment`, batches, test-time augmentation.
 *
 *   DIR/model.onnx        the model (or any X.onnx)
 *   DIR/model.card.json   its card (X.card.json beside X.onnx): ModelCard's fields
 *                         (inputSize, imageSize?, architecture?, preprocess) and
 *     channelOrder  'NCHW' | 'NHWC'   the layout of the model's float32 input
 *     output        'sigmoid'  one probability per image ([batch, 1] or [batch])
 *                   'logit'    one logit per image; histoflow applies the sigmoid
 *                   'softmax'  two class probabilities ([batch, 2]); class 1 is tumour
 *                   'logits'   two class logits; histoflow applies the softmax
 *     inputName?, outputName?  which of the model's tensors, when it has several outputs
 *
 * An ONNX file says its tensors' shapes but not how its pixels were scaled
 * or which output is a probability, so the card is required; both are
 * checked against each other when the model is loaded, and every error
 * names the file (and the card) and what disagrees.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';

import { augment, ttaViews } from '../augment/augment.js';
import { checkTta, type Tta } from '../augment/params.js';
import { checkPipeline, outputShape, type AugmentPipeline } from '../augment/pipeline.js';
import { UnavailableError, checkInteger, checkKnownKeys, checkObject, checkOneOf, invalidRange, invalidType } from '../errors.js';
import { checkBatch, type RgbBatch } from '../image.js';
import { MODEL_JSON, type ModelCard } from './io.js';
import { ONNX_PROVIDERS, loadOnnxRuntime, type OnnxProvider, type OnnxRuntime, type OrtSession, type OrtValueMetadata } from './onnxruntime.js';
import type { PredictOptions, Predictor } from './predict.js';

export { ONNX_PROVIDERS, type OnnxProvider } from './onnxruntime.js';

export const ONNX_MODEL = 'model.onnx';
export const CHANNEL_ORDERS = ['NCHW', 'NHWC'] as const;
export type ChannelOrder = (typeof CHANNEL_ORDERS)[number];
export const ONNX_OUTPUTS = ['sigmoid', 'logit', 'softmax', 'logits'] as const;
export type OnnxOutput = (typeof ONNX_OUTPUTS)[number];
/** What inference results report as their backend for an ONNX model. */
export type OnnxBackend = `onnxruntime-${OnnxProvider}`;

/** The preprocessing ops an inference card may hold (random ones belong to training). */
const DETERMINISTIC_OPS = ['stain', 'crop', 'resize', 'normalize'] as const;

export interface OnnxCard extends ModelCard {
  channelOrder: ChannelOrder;
  output: OnnxOutput;
  inputName?: string;
  outputName?: string;
}

/** The card of X.onnx: X.card.json beside it. */
export function onnxCardPath(file: string): string {
  return `${file.replace(/\.onnx$/i, '')}.card.json`;
}

const isFile = (p: string) => stat(p).then((s) => s.isFile(), () => false);

/**
 * The .onnx file a model argument names: the file itself (X.onnx), or a
 * folder's model.onnx; undefined when the argument is no ONNX model (a TF.js
 * model folder or model.json, or nothing). A folder with both model.json and
 * model.onnx is ambiguous, and refused.
 */
export async function resolveOnnxModel(path: string): Promise<string | undefined> {
  if (typeof path !== 'string' || path === '') throw invalidType('model', 'a model path string', path);
  const abs = resolve(path);
  const s = await stat(abs).catch(() => undefined);
  if (!s) return undefined;
  if (s.isFile()) return /\.onnx$/i.test(abs) ? abs : undefined;
  if (!s.isDirectory() || !(await isFile(join(abs, ONNX_MODEL)))) return undefined;
  if (await isFile(join(abs, MODEL_JSON))) {
    throw new RangeError(`Expected one model in the folder ${path} but it holds both ${MODEL_JSON} (TF.js) and ${ONNX_MODEL}; pass the file you mean as --model`);
  }
  return join(abs, ONNX_MODEL);
}

/** Runs a check, its TypeError / RangeError prefixed with the card's path. */
function inCard<T>(cardPath: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof TypeError) throw new TypeError(`${cardPath}: ${e.message}`);
    if (e instanceof RangeError) throw new RangeError(`${cardPath}: ${e.message}`);
    throw e;
  }
}

const CARD_EXAMPLE = '{"inputSize": 96, "channelOrder": "NCHW", "output": "sigmoid", "preprocess": {"normalize": "imagenet"}}';

/** Reads and checks the card of `file` (see the file comment). */
export async function readOnnxCard(file: string): Promise<OnnxCard> {
  const cardPath = onnxCardPath(file);
  let text: string;
  try {
    text = await readFile(cardPath, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') {
      throw new Error(`${file} has no card ${cardPath}: an ONNX model needs one beside it, saying how to feed it, e.g. ${CARD_EXAMPLE}`);
    }
    throw new Error(`cannot read the card ${cardPath} of ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${cardPath} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  return inCard(cardPath, () => {
    const o = checkObject('the card', json);
    const inputSize = checkInteger('inputSize', o.inputSize, 1, 16384);
    const channelOrder = checkOneOf('channelOrder', o.channelOrder, CHANNEL_ORDERS);
    const output = checkOneOf('output', o.output, ONNX_OUTPUTS);
    const preprocess = checkObject('preprocess', o.preprocess ?? {});
    checkKnownKeys('preprocess (an ONNX card keeps only deterministic preprocessing)', preprocess, DETERMINISTIC_OPS);
    const pipeline = checkPipeline(preprocess);
    const imageSize = o.imageSize === undefined ? inputSize : checkInteger('imageSize', o.imageSize, 1, 65536);
    const out = outputShape(pipeline, imageSize, imageSize, false);
    if (out.height !== inputSize || out.width !== inputSize) {
      throw new RangeError(`Expected a size that preprocess turns into the inputSize ${inputSize} for imageSize but received ${imageSize} (preprocess makes it ${out.width}x${out.height})`);
    }
    const name = (key: 'inputName' | 'outputName') => {
      const v = o[key];
      if (v !== undefined && (typeof v !== 'string' || v === '')) throw invalidType(key, 'a tensor name', v);
      return v as string | undefined;
    };
    const architecture = o.architecture === undefined ? 'onnx' : o.architecture;
    if (typeof architecture !== 'string' || architecture === '') throw invalidType('architecture', 'a non-empty string', architecture);
    const inputName = name('inputName'), outputName = name('outputName');
    return {
      ...o, inputSize, imageSize, architecture, preprocess, channelOrder, output,
      ...(inputName === undefined ? {} : { inputName }),
      ...(outputName === undefined ? {} : { outputName }),
    };
  });
}

export interface LoadOnnxOptions {
  /** onnxruntime's execution provider (default 'cpu'); 'cuda' needs onnxruntime-node's CUDA provider and a GPU. */
  provider?: OnnxProvider;
}

export interface LoadedOnnxModel {
  session: OrtSession;
  card: OnnxCard;
  /** The .onnx file. */
  path: string;
  cardPath: string;
  provider: OnnxProvider;
  /** 'onnxruntime-cpu' or 'onnxruntime-cuda', as results report it. */
  backend: OnnxBackend;
  input: { name: string; shape: ReadonlyArray<number | string> };
  output: { name: string; shape: ReadonlyArray<number | string> };
  /** The input's batch dimension when the model fixes it (exported without a dynamic batch axis). */
  fixedBatch: number | undefined;
  runtime: OnnxRuntime;
  dispose(): Promise<void>;
}

const shapeText = (shape: ReadonlyArray<number | string>) => `[${shape.join(', ')}]`;
const dimIs = (d: number | string | undefined, want: number) => typeof d !== 'number' || d < 0 || d === want;

function metadata(list: readonly OrtValueMetadata[] | undefined, name: string): { type: string; shape: ReadonlyArray<number | string> } | 'not a tensor' | undefined {
  const m = list?.find((v) => v.name === name);
  if (!m) return undefined;
  return m.isTensor ? { type: m.type, shape: m.shape } : 'not a tensor';
}

/**
 * Checks the session's input and output against the card: one float32
 * input of [batch, 3, S, S] (NCHW) or [batch, S, S, 3] (NHWC), and an output
 * of [batch, 1] / [batch] (sigmoid, logit) or [batch, 2] (softmax, logits).
 */
function matchCard(session: OrtSession, card: OnnxCard, file: string, cardPath: string): Pick<LoadedOnnxModel, 'input' | 'output' | 'fixedBatch'> {
  const S = card.inputSize;
  if (session.inputNames.length !== 1) {
    throw new Error(`${file} has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}); histoflow feeds a model one image tensor`);
  }
  const inputName = session.inputNames[0]!;
  if (card.inputName !== undefined && card.inputName !== inputName) {
    throw new Error(`${cardPath} names the input '${card.inputName}' but ${file}'s input is '${inputName}'`);
  }
  const inMeta = metadata(session.inputMetadata, inputName);
  if (inMeta === 'not a tensor') throw new Error(`${file}'s input '${inputName}' is not a tensor; histoflow feeds a float32 image tensor`);
  const inShape = inMeta?.shape ?? [];
  if (inMeta && inMeta.type !== 'float32') {
    throw new Error(`${file}'s input '${inputName}' is ${inMeta.type} but histoflow feeds float32 (the card's preprocessing output)`);
  }
  const expected = card.channelOrder === 'NCHW' ? [3, S, S] : [S, S, 3];
  if (inShape.length > 0 && (inShape.length !== 4 || !expected.every((d, k) => dimIs(inShape[k + 1], d)))) {
    const other = card.channelOrder === 'NCHW' ? [S, S, 3] : [3, S, S];
    const hint = inShape.length === 4 && other.every((d, k) => dimIs(inShape[k + 1], d))
      ? ` (that is ${card.channelOrder === 'NCHW' ? 'NHWC' : 'NCHW'}: is the card's channelOrder wrong?)`
      : inShape.length === 4 ? ' (is the card\'s inputSize wrong?)' : '';
    throw new Error(`${cardPath} says channelOrder ${card.channelOrder} and inputSize ${S}, an input of shape ${shapeText(['batch', ...expected])}, ` +
      `but ${file}'s input '${inputName}' has shape ${shapeText(inShape)}${hint}`);
  }
  const b = inShape[0];
  const fixedBatch = typeof b === 'number' && b > 0 ? b : undefined;

  let outputName = card.outputName;
  if (outputName === undefined) {
    if (session.outputNames.length !== 1) {
      throw new Error(`${file} has ${session.outputNames.length} outputs (${session.outputNames.join(', ')}); name the one to read with "outputName" in ${cardPath}`);
    }
    outputName = session.outputNames[0]!;
  } else if (!session.outputNames.includes(outputName)) {
    throw new Error(`${cardPath} names the output '${outputName}' but ${file}'s outputs are ${session.outputNames.map((n) => `'${n}'`).join(', ')}`);
  }
  const outMeta = metadata(session.outputMetadata, outputName);
  if (outMeta === 'not a tensor') throw new Error(`${file}'s output '${outputName}' is not a tensor`);
  const outShape = outMeta?.shape ?? [];
  if (outMeta && outMeta.type !== 'float32' && outMeta.type !== 'float64') {
    throw new Error(`${file}'s output '${outputName}' is ${outMeta.type}; histoflow reads float32 or float64 scores`);
  }
  const classes = card.output === 'sigmoid' || card.output === 'logit' ? 1 : 2;
  const fits = outShape.length === 0 || (outShape.length === 2 && dimIs(outShape[1], classes)) || (classes === 1 && outShape.length === 1);
  if (!fits) {
    const what = classes === 1 ? `one ${card.output === 'sigmoid' ? 'probability' : 'logit'} per image (shape [batch, 1] or [batch])` : `two class ${card.output === 'softmax' ? 'probabilities' : 'logits'} per image (shape [batch, 2])`;
    const hint = outShape.length === 2 && outShape[1] === 2 && classes === 1 ? ' (two classes: "softmax" or "logits")'
      : outShape.length === 2 && outShape[1] === 1 && classes === 2 ? ' (one score: "sigmoid" or "logit")' : '';
    throw new Error(`${cardPath} says output '${card.output}', ${what}, but ${file}'s output '${outputName}' has shape ${shapeText(outShape)}${hint}`);
  }
  return { input: { name: inputName, shape: inShape }, output: { name: outputName, shape: outShape }, fixedBatch };
}

/** Whether an onnxruntime error is about the execution provider (its library or device) rather than the model. */
const providerFailure = (message: string) => /ExecutionProvider|providers_(shared|cuda)|\bCUDA\b|cudart|cudnn|cublas/i.test(message);

/**
 * Loads X.onnx (or a folder's model.onnx) and its card, and checks them
 * against each other. Needs onnxruntime-node (UnavailableError otherwise).
 */
export async function loadOnnxModel(path: string, options: LoadOnnxOptions = {}): Promise<LoadedOnnxModel> {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['provider']);
  const provider = o.provider === undefined ? 'cpu' : checkOneOf('provider', o.provider, ONNX_PROVIDERS);
  const file = await resolveOnnxModel(path);
  if (file === undefined) throw invalidRange('model', `an ONNX model (an .onnx file, or a folder with ${ONNX_MODEL})`, path);
  const size = (await stat(file)).size;
  if (size === 0) throw new Error(`${file} is empty: not an ONNX model`);
  const card = await readOnnxCard(file);
  const cardPath = onnxCardPath(file);
  const runtime = await loadOnnxRuntime();
  if (provider === 'cuda' && !runtime.listSupportedBackends().some((b) => b.name === 'cuda')) {
    throw new UnavailableError('onnxruntime-cuda', `this onnxruntime-node ${runtime.version} has no CUDA execution provider (it ships one on Linux x64 only)`, 'ONNX models');
  }
  let session: OrtSession;
  try {
    session = await runtime.InferenceSession.create(file, { executionProviders: [provider] });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (provider === 'cuda' && providerFailure(message)) {
      throw new UnavailableError('onnxruntime-cuda', `onnxruntime-node's CUDA execution provider cannot start here (${message.split('\n')[0]}); ` +
        'it needs an NVIDIA GPU with CUDA 12 and cuDNN 9, and the provider libraries that onnxruntime-node\'s install downloads', 'ONNX models');
    }
    throw new Error(`cannot load the ONNX model ${file} (${size} bytes): ${message.split('\n')[0]} (not an ONNX model, or a truncated one?)`);
  }
  try {
    const io = matchCard(session, card, file, cardPath);
    return {
      session, card, path: file, cardPath, provider, backend: `onnxruntime-${provider}`, runtime, ...io,
      dispose: () => session.release().catch(() => undefined),
    };
  } catch (e) {
    await session.release().catch(() => undefined);
    throw e;
  }
}

/**
 * NHWC → NCHW of n images of side h x w. onnxruntime has no layout option on
 * its inputs and the addon no transpose kernel, so this copy happens here:
 * a pass over memory, small next to the network that reads it.
 */
function toNchw(src: Float32Array, n: number, h: number, w: number): Float32Array {
  const dst = new Float32Array(src.length);
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    const base = i * plane * 3;
    for (let p = 0; p < plane; p++) {
      const s = base + 3 * p;
      dst[base + p] = src[s]!;
      dst[base + plane + p] = src[s + 1]!;
      dst[base + 2 * plane + p] = src[s + 2]!;
    }
  }
  return dst;
}

/** P(tumour) of each row of a model's output, by the card's `output`. */
function probabilities(model: LoadedOnnxModel, values: ArrayLike<number>, n: number, imageOf: (row: number) => number): Float32Array {
  const { output } = model.card;
  const out = new Float32Array(n);
  const classes = output === 'sigmoid' || output === 'logit' ? 1 : 2;
  for (let i = 0; i < n; i++) {
    const a = values[i * classes]!, b = classes === 2 ? values[i * classes + 1]! : 0;
    let p: number;
    if (output === 'sigmoid') p = a;
    else if (output === 'softmax') p = b;
    else if (output === 'logit') p = 1 / (1 + Math.exp(-a));
    else p = 1 / (1 + Math.exp(a - b)); // softmax([a, b])[1]
    if (!(p >= 0 && p <= 1)) {
      throw new Error(`${model.path}'s output '${model.output.name}' gave ${classes === 2 ? `[${a}, ${b}]` : a} for image ${imageOf(i)}, ` +
        `not ${output === 'sigmoid' || output === 'softmax' ? 'a probability' : 'a finite score'}; does the card's output '${output}' (${model.cardPath}) describe it?` +
        `${output === 'sigmoid' ? ' ("logit" for a raw score)' : output === 'softmax' ? ' ("logits" for raw scores)' : ''}`);
    }
    out[i] = p;
  }
  return out;
}

/** One onnxruntime run over m preprocessed images (NHWC floats), padded to the model's fixed batch if it has one. */
async function runSession(model: LoadedOnnxModel, nhwc: Float32Array, m: number, imageOf: (row: number) => number): Promise<Float32Array> {
  const S = model.card.inputSize;
  const per = S * S * 3;
  const rows = model.fixedBatch ?? m;
  let data = nhwc;
  if (rows !== m) {
    data = new Float32Array(rows * per);
    data.set(nhwc.subarray(0, m * per));
  }
  if (model.card.channelOrder === 'NCHW') data = toNchw(data, rows, S, S);
  const dims = model.card.channelOrder === 'NCHW' ? [rows, 3, S, S] : [rows, S, S, 3];
  const tensor = new model.runtime.Tensor('float32', data, dims);
  let result;
  try {
    result = await model.session.run({ [model.input.name]: tensor }, [model.output.name]);
  } catch (e) {
    throw new Error(`${model.path}: onnxruntime failed on a batch of ${rows}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
  const y = result[model.output.name];
  const values = y?.data;
  const classes = model.card.output === 'sigmoid' || model.card.output === 'logit' ? 1 : 2;
  if (!y || !(values instanceof Float32Array || values instanceof Float64Array) || values.length !== rows * classes) {
    throw new Error(`${model.path}'s output '${model.output.name}' gave ${y ? `${y.type} of shape ${shapeText(y.dims)}` : 'nothing'} for a batch of ${rows}; ` +
      `expected float32 of shape [${rows}, ${classes}] (the card's output '${model.card.output}', ${model.cardPath})`);
  }
  return probabilities(model, values, m, imageOf);
}

/**
 * The Predictor of an ONNX model: the card's preprocessing (`augment`), the
 * channel order it asks for, onnxruntime, the card's output rule; with TTA
 * the mean of the 8 dihedral views (or of the 40 with 'crops'), as
 * createPredictor does for TF.js.
 */
export function createOnnxPredictor(model: LoadedOnnxModel, options: PredictOptions = {}): Predictor {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['batchSize', 'tta']);
  const batchSize = o.batchSize === undefined ? 64 : checkInteger('options.batchSize', o.batchSize, 1, 65536);
  const defaultTta = o.tta === undefined ? false : checkTta('options.tta', o.tta);
  const pipeline: AugmentPipeline = checkPipeline(model.card.preprocess);
  const S = model.card.inputSize;
  return {
    imageSize: model.card.imageSize ?? S,
    inputSize: S,
    async predict(batch: RgbBatch, callOptions: { tta?: Tta } = {}): Promise<Float32Array> {
      const b = checkBatch('batch', batch);
      const tta = callOptions.tta === undefined ? defaultTta : checkTta('tta', callOptions.tta);
      const fits = b.height >= (pipeline.crop?.size[0] ?? 0) && b.width >= (pipeline.crop?.size[1] ?? 0);
      const out = fits ? outputShape(pipeline, b.height, b.width, false) : undefined;
      if (!out || out.height !== S || out.width !== S) {
        throw invalidRange(
          'batch',
          `images that preprocess to the ${S}x${S} input of the model ${model.path} (input '${model.input.name}', shape ${shapeText(model.input.shape)})`,
          `${b.width}x${b.height} images${out ? ` (→ ${out.width}x${out.height})` : ''}`,
        );
      }
      const result = new Float32Array(b.n);
      const views = ttaViews(pipeline, b.height, b.width, tta);
      const chunk = Math.max(1, Math.floor((model.fixedBatch ?? batchSize) / views));
      const pixels = b.height * b.width * 3;
      const per = S * S * 3;
      for (let start = 0; start < b.n; start += chunk) {
        const n = Math.min(chunk, b.n - start);
        const part: RgbBatch = { ...b, n, data: b.data.subarray(start * pixels, (start + n) * pixels) };
        const x = await augment(part, pipeline, { tta });
        const scores = new Float32Array(x.n);
        const step = model.fixedBatch ?? x.n;
        for (let r = 0; r < x.n; r += step) {
          const m = Math.min(step, x.n - r);
          scores.set(await runSession(model, x.data.subarray(r * per, (r + m) * per), m, (row) => start + Math.floor((r + row) / views)), r);
        }
        for (let i = 0; i < n; i++) {
          let sum = 0;
          for (let v = 0; v < views; v++) sum += scores[i * views + v]!;
          result[start + i] = sum / views;
        }
      }
      return result;
    },
  };
}

/** A short name for reports: the model's folder (or file stem), its architecture and provider. */
export function onnxModelName(model: LoadedOnnxModel): string {
  const stem = basename(model.path).replace(/\.onnx$/i, '');
  const name = stem === 'model' ? basename(resolve(model.path, '..')) : stem;
  return `${name} (onnx ${model.card.architecture}, ${model.provider})`;
}
