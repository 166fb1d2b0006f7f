/**
 * Training recipes (src/train/options.ts RECIPES): `quick` is the default of
 * every option it sets, `best` is one flag away, explicit options win, the
 * budget applies only to runs of unstated length, and a run trains on the
 * whole patch unless given a crop.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { parseTrainArgs } from '../../src/cli/train.js';
import { synthPatches } from '../../src/synth/dataset.js';
import { wantsEnsemble } from '../../src/train/ensemble.js';
import { AUGMENT_PRESETS, RECIPES, resolveRunArgs } from '../../src/train/options.js';
import { loadModel } from '../../src/models/io.js';
import { train, type TrainState } from '../../src/train/train.js';
import { nativeAvailable } from '../support/tfjs_support.js';

const BACKEND = nativeAvailable ? 'native' : 'tfjs-cpu';
let root = '';

test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'hf-recipe-'));
});
test.after.always(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

test('no options at all is the quick recipe', async (t) => {
  const args = await resolveRunArgs({ data: 'd' });
  const q = RECIPES.quick;
  t.like(args, { recipe: 'quick', model: q.model, width: q.width, epochs: q.epochs, timeBudget: q.timeBudget, ema: q.ema, patience: q.patience, augmentSource: q.augment });
  t.deepEqual(args.augment, AUGMENT_PRESETS[q.augment]);
  t.deepEqual(await resolveRunArgs({ data: 'd' }), await resolveRunArgs({ data: 'd', recipe: 'quick' }));
});

test('--recipe best takes the best recipe, and every option given wins over the recipe', async (t) => {
  const b = RECIPES.best;
  t.like(await resolveRunArgs({ data: 'd', recipe: 'best' }), { recipe: 'best', width: b.width, epochs: b.epochs, timeBudget: b.timeBudget, ema: b.ema });
  t.like(await resolveRunArgs({ data: 'd', recipe: 'best', width: 2, ema: 0, patience: 3, augment: 'd4', timeBudget: 60 }),
    { width: 2, ema: 0, patience: 3, augmentSource: 'd4', timeBudget: 60 });
  t.like(parseTrainArgs(['--data', 'd', '--recipe', 'best']).options, { recipe: 'best' });
});

test('the best recipe trains an ensemble of two, quick one model, and --members wins over both', async (t) => {
  t.is(RECIPES.best.members, 2);
  t.is(RECIPES.quick.members, 1);
  t.true(await wantsEnsemble({ data: 'd', recipe: 'best' }));
  t.false(await wantsEnsemble({ data: 'd' }));
  t.false(await wantsEnsemble({ data: 'd', recipe: 'best', members: 1 }));
  t.true(await wantsEnsemble({ data: 'd', members: 3 }));
  t.like(parseTrainArgs(['--data', 'd', '--recipe', 'best', '--members', '1']).options, { recipe: 'best', members: 1 });
  // A member's own options (members: 1) resolve as one run whatever its recipe.
  t.like(await resolveRunArgs({ data: 'd', recipe: 'best', members: 1 }), { recipe: 'best', epochs: RECIPES.best.epochs });
  await t.throwsAsync(resolveRunArgs({ data: 'd', members: 2 }), { message: /for members/ });
});

test('the recipes\' depth: quick 3 blocks, best 4; --depth wins; a model of another kind than the recipe\'s gets its own', async (t) => {
  t.is(RECIPES.quick.depth, 3);
  t.is(RECIPES.best.depth, 4);
  t.is((await resolveRunArgs({ data: 'd' })).depth, 3);
  t.is((await resolveRunArgs({ data: 'd', recipe: 'best' })).depth, 4);
  t.is((await resolveRunArgs({ data: 'd', recipe: 'best', depth: 2 })).depth, 2);
  t.is((await resolveRunArgs({ data: 'd', recipe: 'best', model: 'resnet' })).depth, null);
  t.is((await resolveRunArgs({ data: 'd', task: 'segment' })).depth, null);
  t.is((await resolveRunArgs({ data: 'd', task: 'segment', depth: 2 })).depth, 2);
  t.like(parseTrainArgs(['--data', 'd', '--depth', '5']).options, { depth: 5 });
  await t.throwsAsync(resolveRunArgs({ data: 'd', model: 'vgg', depth: 2 }), { instanceOf: RangeError, message: /no depth for model vgg .*for depth/ });
  await t.throwsAsync(resolveRunArgs({ data: 'd', depth: 7 }), { instanceOf: RangeError, message: /for depth/ });
  t.throws(() => parseTrainArgs(['--data', 'd', '--depth', '0']), { message: /--depth/ });
});

test('a run of stated length has no time budget unless it is given one', async (t) => {
  t.is((await resolveRunArgs({ data: 'd', epochs: 40 })).timeBudget, null);
  t.is((await resolveRunArgs({ data: 'd', epochs: 40, timeBudget: 120 })).timeBudget, 120);
});

test('bad recipe and crop values are errors naming the option', async (t) => {
  await t.throwsAsync(resolveRunArgs({ data: 'd', recipe: 'fast' as 'quick' }), { instanceOf: RangeError, message: /for recipe/ });
  await t.throwsAsync(resolveRunArgs({ data: 'd', crop: 5 }), { instanceOf: RangeError, message: /for crop/ });
  await t.throwsAsync(resolveRunArgs({ data: 'd', crop: -1 }), { message: /for crop/ });
  t.throws(() => parseTrainArgs(['--data', 'd', '--recipe', 'slow']), { message: /--recipe/ });
});

test.serial('a run trains on the whole patch by default, and --crop 64 on random 64 px crops', async (t) => {
  const data = join(root, 'p96');
  await synthPatches(data, { n: 24, seed: 2, size: 96, workers: 0 });
  const run = async (out: string, crop?: number) => {
    const r = await train({ data, out: join(root, out), width: 0.125, batchSize: 8, epochs: 1, backend: BACKEND, ...(crop === undefined ? {} : { crop }) }, { quiet: true });
    return JSON.parse(await readFile(join(r.run, 'state.json'), 'utf8')) as TrainState;
  };
  const whole = await run('default');
  t.is(whole.args.crop, null);
  t.is(whole.inputSize, 96);
  t.is(whole.pipeline.crop, undefined, 'no crop in the recorded pipeline');
  const cropped = await run('cropped', 64);
  t.is(cropped.args.crop, 64);
  t.is(cropped.inputSize, 64);
  t.deepEqual(cropped.pipeline.crop, { size: 64, mode: 'random' });
  t.deepEqual(await run('zero', 0).then((s) => [s.args.crop, s.inputSize]), [null, 96]);
});

test.serial('--depth 4 trains a four-block baseline: recorded in state.json and the card, best/ holds it, a resume must keep it', async (t) => {
  const data = join(root, 'p48');
  await synthPatches(data, { n: 16, seed: 3, size: 48, workers: 0 });
  const out = join(root, 'deep');
  const r = await train({ data, out, width: 0.125, depth: 4, batchSize: 8, epochs: 1, backend: BACKEND }, { quiet: true });
  const state = JSON.parse(await readFile(join(r.run, 'state.json'), 'utf8')) as TrainState;
  t.is(state.args.depth, 4);
  const { model, card } = await loadModel(join(r.run, 'best'));
  t.is(card?.depth, 4);
  t.deepEqual(model.layers.filter((l) => l.getClassName() === 'MaxPooling2D').map((l) => (l.outputShape as number[])[1]), [24, 12, 6, 3]);
  model.dispose();
  await t.throwsAsync(train({ out, resume: true, depth: 3, epochs: 2, backend: BACKEND }, { quiet: true }), { instanceOf: RangeError, message: /resumed run's depth \(4\).*for depth/ });
  await t.throwsAsync(train({ data, out: join(root, 'too-deep'), width: 0.125, depth: 6, epochs: 1, backend: BACKEND }, { quiet: true }), { instanceOf: RangeError, message: /at most 5 for a 48 px input .*for depth/ });
});
