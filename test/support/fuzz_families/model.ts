/**
 * Fuzz family 'model': a small saved model (src/models/io.ts: model.json +
 * weights.bin) with a mutated model.json (weight shapes and dtypes, manifest
 * paths, layer configs, the histoflow card, missing fields) or mutated
 * weights, loaded by loadModel and run on one input.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { loadModel, saveModel } from '../../../src/models/io.js';
import { chain, cloneJson, mutateBytes, mutateJsonText, mutateJsonTree, replaceAt, toJsonText, type FuzzRng } from '../fuzz.js';
import { apiVerdict, WrongResult, type CaseContext, type FuzzCase, type FuzzFamily } from '../fuzz_verdict.js';

const INPUT = 8;

async function prepare(seeds: string): Promise<void> {
  await tf.setBackend('cpu');
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [INPUT, INPUT, 3], filters: 4, kernelSize: 3, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
  });
  await saveModel(model, join(seeds, 'model'), { card: { inputSize: INPUT, architecture: 'custom', preprocess: { normalize: 'imagenet' } } });
  model.dispose();
}

/** Targeted model.json mutations: the fields a loader trusts. */
function mutateModelJson(rng: FuzzRng, doc: Record<string, unknown>): { value: unknown; what: string } {
  const root = cloneJson(doc) as Record<string, unknown>;
  const manifest = root.weightsManifest as Array<{ paths: unknown[]; weights: Array<Record<string, unknown>> }>;
  const layers = ((root.modelTopology as { config: { layers: Array<{ class_name: unknown; config: Record<string, unknown> }> } }).config.layers);
  const kind = rng.int(6);
  if (kind === 0) {
    const p = rng.pick<unknown>(['../sentinel.txt', '/etc/hostname', './', '.', 'model.json', 'missing.bin', '', 'weights.bin/../../sentinel.txt',
      'x'.repeat(5000), 'weights.bin\0.txt', '..\\sentinel.txt', 'C:/windows/win.ini', 7, null, ['./weights.bin']]);
    const all = rng.chance(0.3);
    manifest[0]!.paths = all ? [p, p] : [p];
    return { value: root, what: `weightsManifest[0].paths := ${toJsonText(manifest[0]!.paths).slice(0, 80)}` };
  }
  if (kind === 1) {
    const k = rng.int(manifest[0]!.weights.length);
    const field = rng.pick(['shape', 'dtype', 'name', 'quantization']);
    const v = field === 'shape'
      ? rng.pick<unknown>([[1e9, 1e9], [-1], [], [0], ['a'], [3, 3, 3, 4, 1], [2 ** 31], [65536, 65536], null, 12])
      : field === 'dtype' ? rng.pick<unknown>(['int32', 'string', 'complex64', 'bool', 'float16', 'float64', '', 5])
        : field === 'name' ? rng.pick<unknown>(['', 'dense/kernel', '__proto__', 17])
          : rng.pick<unknown>([{ dtype: 'uint8', scale: 1, min: 0 }, { dtype: 'float16' }, { dtype: 'uint8', scale: 0, min: 1e308 }, 'q']);
    manifest[0]!.weights[k]![field] = v;
    return { value: root, what: `weightsManifest[0].weights[${k}].${field} := ${toJsonText(v).slice(0, 60)}` };
  }
  if (kind === 2) {
    const k = rng.int(layers.length);
    const config = layers[k]!.config;
    const field = rng.pick(['units', 'filters', 'kernel_size', 'strides', 'pool_size', 'batch_input_shape', 'activation', 'padding', 'use_bias']);
    const v = rng.pick<unknown>([1e9, 0, -1, [1e5, 1e5], [0, 0], [null, 1e6, 1e6, 3], [null, 8, 8, 4], 'softmax', 'nonsense', 2.5, null, 'same', [1]]);
    config[field] = v;
    return { value: root, what: `layers[${k}].config.${field} := ${toJsonText(v).slice(0, 60)}` };
  }
  if (kind === 3) {
    const k = rng.int(layers.length);
    const v = rng.pick<unknown>(['Lambda', 'Dense', 'Conv2D', 'Input', 'NoSuchLayer', '', null]);
    layers[k]!.class_name = v;
    return { value: root, what: `layers[${k}].class_name := ${toJsonText(v)}` };
  }
  if (kind === 4) {
    const field = rng.pick(['inputSize', 'imageSize', 'architecture', 'preprocess']);
    const v = rng.pick<unknown>([0, -8, 1e9, 7, '8', null, { crop: 1e9 }, { normalize: { mean: [0], std: [0] } }, { resize: 65536 }, [], 'custom']);
    replaceAt(root, ['userDefinedMetadata', 'histoflow', field], () => v);
    return { value: root, what: `card.${field} := ${toJsonText(v).slice(0, 60)}` };
  }
  const key = rng.pick(['modelTopology', 'weightsManifest', 'format', 'userDefinedMetadata', 'trainingConfig']);
  delete root[key];
  return { value: root, what: `${key} deleted` };
}

async function make({ rng, dir, seeds }: CaseContext): Promise<FuzzCase> {
  const modelDir = join(dir, 'model');
  await mkdir(modelDir);
  const json = JSON.parse(await readFile(join(seeds, 'model', 'model.json'), 'utf8')) as Record<string, unknown>;
  let weights: Buffer = await readFile(join(seeds, 'model', 'weights.bin'));
  let text = JSON.stringify(json), what: string;
  const r = rng.float();
  if (r < 0.5) {
    const m = mutateModelJson(rng, json);
    [text, what] = [toJsonText(m.value), m.what];
  } else if (r < 0.75) {
    const m = mutateJsonTree(rng, json);
    [text, what] = [toJsonText(m.value), m.what];
  } else if (r < 0.85) {
    ({ text, what } = mutateJsonText(rng, text));
  } else {
    const m = chain(rng, weights, 2, mutateBytes);
    weights = m.bytes;
    what = `weights.bin: ${m.what}`;
  }
  await writeFile(join(modelDir, 'model.json'), text);
  await writeFile(join(modelDir, 'weights.bin'), weights);
  return {
    what,
    run: () => apiVerdict(async () => {
      await tf.setBackend('cpu');
      const { model, card } = await loadModel(modelDir);
      try {
        const side = card.inputSize;
        if (!(Number.isInteger(side) && side > 0)) throw new WrongResult(`loaded with inputSize ${side}`);
        if (side * side > 1 << 20) return;
        const y = tf.tidy(() => model.predict(tf.zeros([1, side, side, 3])) as tf.Tensor);
        const shape = y.shape;
        y.dispose();
        if (shape.length !== 2 || shape[0] !== 1 || shape[1] !== 1) throw new WrongResult(`predict gave shape ${JSON.stringify(shape)}`);
      } finally {
        model.dispose();
      }
    }),
  };
}

export const modelFamily: FuzzFamily = { prepare, make };
