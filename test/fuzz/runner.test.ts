/**
 * The fuzz suite checks what it claims: the runner counts a signal as a
 * crash, a silent case as a hang, a write beside out/ as a destroyed file and
 * an internal TypeError as unclear (the 'selftest' family ends each case one
 * of those ways); and the mutators are a function of the seed alone.
 */
import { readFile } from 'node:fs/promises';

import test from 'ava';

import { caseRng, mutateBytes, mutateTiff, tiffLayout } from '../support/fuzz.js';
import { runFamily } from '../support/fuzz_runner.js';
import { isInternalMessage } from '../support/fuzz_verdict.js';
import { DIST, dataFile } from '../support/helpers.js';

test('the runner counts each forbidden ending: a signal, a hang, a write outside out/, an internal error', async (t) => {
  const report = await runFamily('selftest', { seed: 1, cases: 12, dist: DIST, caseTimeoutMs: 1500, batchSize: 12 });
  t.log(report.failures.map((f) => `${f.index} ${f.outcome} ${f.destroyed?.join(', ') ?? ''}`).join('\n'));
  t.is(report.tried, 12, 'the cases after a crash or a hang still run');
  t.is(report.ok, 4, 'two correct results, and the two that also wrote outside out/');
  t.is(report.errors, 2);
  t.is(report.unclear, 2);
  t.is(report.crashes, 2);
  t.is(report.hangs, 2);
  t.is(report.destroyed, 2);
  const destroyed = report.failures.find((f) => f.destroyed)!;
  t.deepEqual(destroyed.destroyed!.sort(), ['changed sentinel.txt', 'created beside-out.txt']);
  t.regex(report.failures.find((f) => f.outcome === 'crash')!.message!, /SIGSEGV/);
  t.regex(report.failures[0]!.reproduce, /^node scripts\/fuzz\.mjs --family selftest --seed 1 --case \d+$/);
});

test('a case is a function of (seed, family, index): the same bytes every time, others for another index', async (t) => {
  const seedFile = await readFile(dataFile('derived__cmu-1-small-region__tiled-pyramid-jpeg.tif'));
  const again = (seed: number, index: number) => mutateTiff(caseRng(seed, 'slide', index), seedFile);
  t.deepEqual(again(5, 3), again(5, 3));
  t.notDeepEqual(again(5, 3).bytes, again(5, 4).bytes);
  t.notDeepEqual(mutateBytes(caseRng(5, 'slide', 3), seedFile).bytes, mutateBytes(caseRng(5, 'image', 3), seedFile).bytes);
});

test('the TIFF mutator sees the whole directory chain of a real pyramid', async (t) => {
  const layout = tiffLayout(await readFile(dataFile('derived__cmu-1-small-region__tiled-pyramid-jpeg.tif')));
  t.is(layout?.ifds.length, 5);
  t.true(layout!.ifds.every((d) => d.entries.some((e) => e.tag === 322)), 'every level is tiled');
});

test('an internal error is unclear as thrown, and clear once wrapped in what failed', (t) => {
  t.true(isInternalMessage("Cannot read properties of undefined (reading 'x')"));
  t.true(isInternalMessage('histoflow: slide.levels is not iterable'));
  t.true(isInternalMessage('RangeError: Invalid typed array length: -1'));
  t.false(isInternalMessage('model.json: its modelTopology does not build a model: Maximum call stack size exceeded'));
  t.false(isInternalMessage("Expected a number for pipeline.blur.sigma but received 'NaN' of type string"));
});
