/** Issue 14: a damaged state.json on --resume names the file, the field and the way out. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { checkTrainState, train } from '../../src/train/train.js';
import { histoflow } from '../support/helpers.js';

const ARGS = {
  data: 'd', model: 'baseline', width: 8, epochs: 3, batchSize: 4, learningRate: 0.001, schedule: 'cosine', patience: 0,
  augment: {}, augmentSource: 'none', crop: null, normalize: null, target: null, backend: 'tfjs-cpu', seed: 1, validation: 0.2, groupBy: null,
};
const STATE = {
  version: 1, epoch: 1, best: { epoch: 1, val_auc: 0.5 }, sinceBest: 0, lr: 0.001, seed: 1, backend: 'tfjs-cpu', stoppedEarly: false,
  args: ARGS, pipeline: {}, architecture: 'baseline', inputSize: 32, imageSize: 32, history: [{ epoch: 1 }],
};

function runWithState(text: string): string {
  const run = mkdtempSync(join(tmpdir(), 'hf-state-'));
  mkdirSync(join(run, 'last'));
  writeFileSync(join(run, 'state.json'), text);
  return run;
}

test('checkTrainState accepts a whole state and names the first wrong field of a damaged one', (t) => {
  t.notThrows(() => checkTrainState(structuredClone(STATE), 'state.json'));
  const { args: _args, ...noArgs } = STATE;
  t.throws(() => checkTrainState(noArgs, 'state.json'), { message: /^state\.json is not a valid run state: args is missing \(expected an object\)/ });
  t.throws(() => checkTrainState({ ...STATE, epoch: 'two' }, 'S'), { message: /epoch is "two" \(expected an integer ≥ 0\)/ });
  t.throws(() => checkTrainState({ ...STATE, args: { ...ARGS, epochs: undefined } }, 'S'), { message: /args\.epochs is missing/ });
  t.throws(() => checkTrainState([], 'S'), { message: /the whole file/ });
});

test('resuming from a state.json with a missing field says which and how to recover, never "Cannot read properties"', async (t) => {
  const { history: _h, ...broken } = STATE;
  const run = runWithState(JSON.stringify(broken));
  const e = await t.throwsAsync(train({ out: run, resume: true }, { quiet: true }));
  t.regex(e!.message, /state\.json is not a valid run state: history is missing/);
  t.regex(e!.message, /without --resume/);
  t.regex(e!.message, /last\//);
  t.notRegex(e!.message, /Cannot read properties/);
});

test('histoflow train --resume on a state.json that is not JSON exits 1 naming the file', async (t) => {
  const run = runWithState('{"version": 1, "epo');
  const r = await histoflow('train', '--out', run, '--resume');
  t.is(r.code, 1);
  t.regex(r.stderr, /state\.json is not valid JSON .*without --resume/);
  t.notRegex(r.stderr, /Cannot read properties/);
});
