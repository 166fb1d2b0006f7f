/**
 * `histoflow augment` computes what a grid run will hold from the image's
 * header before decoding it (src/memory_budget.ts): over the limit, it exits 1
 * naming the limit, the size and how to raise it, writes nothing, and its
 * peak RSS stays far below what the run would have taken (measured before
 * the check: > 2.5 GB for --grid 8x8 with a large crop, > 3 GB for a
 * 20000² PNG).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { checkAugmentMemory } from '../../src/cli/augment.js';
import { checkPipeline } from '../../src/augment/pipeline.js';
import { MemoryLimitError } from '../../src/memory_budget.js';
import { MiB, histoflowMeasured, solidPng } from '../support/peak_rss.js';

const dir = mkdtempSync(join(tmpdir(), 'hf-augment-mem-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const pipelineFile = (pipeline: unknown, name: string) => {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(pipeline));
  return path;
};
/** A refused run may load the CLI, sharp and TF.js, nothing in proportion to the image. */
const REFUSED_RSS = 400 * MiB;
/** The default limit, whatever the environment running the tests sets. */
const DEFAULT_LIMIT = { HISTOFLOW_MAX_MEMORY: '' };

let huge = '';
let large = '';
let small = '';
test.before(async () => {
  huge = await solidPng(join(dir, 'huge.png'), 20_000);
  large = await solidPng(join(dir, 'large.png'), 4096);
  small = await solidPng(join(dir, 'small.png'), 64);
});

test.serial('augment refuses a 20000x20000 PNG from its header: exit 1, the limit, the size, how to raise it, no output, low RSS', async (t) => {
  const out = join(dir, 'huge-grid.png');
  const r = await histoflowMeasured(['augment', huge, '--pipeline', pipelineFile({ crop: 96 }, 'crop96.json'), '--out', out], DEFAULT_LIMIT);
  t.is(r.code, 1, r.stderr);
  // 20000²·3 (decoded) + 16 copies + 16 float32 96² tiles + the 4x4 grid: 20.4 GB (19 GiB).
  const bytes = 20000 * 20000 * 3 * 17 + 16 * 96 * 96 * 12 + (4 * 96 + 6) ** 2 * 3;
  t.log(`needs ${bytes} bytes; peak RSS ${(r.maxRssBytes / MiB).toFixed(0)} MiB`);
  t.true(r.stderr.includes(
    'augment --grid 4x4 on a 20000x20000 image (16 input copies 17.9 GiB, 16 float32 tiles of 96x96 1.7 MiB, grid 445.6 KiB) ' +
      `needs ${(bytes / 2 ** 30).toFixed(0)} GiB, over the memory limit of 2 GiB (the default); raise it with --max-memory 20G or HISTOFLOW_MAX_MEMORY=20G`,
  ), r.stderr);
  t.false(existsSync(out));
  t.true(r.maxRssBytes < REFUSED_RSS, `peak RSS ${r.maxRssBytes}`);
});

test.serial('augment refuses --grid 8x8 with a large crop before allocating the copies: exit 1, no output, low RSS', async (t) => {
  const out = join(dir, 'large-grid.png');
  const r = await histoflowMeasured(['augment', large, '--pipeline', pipelineFile({ crop: 4000, d4: true }, 'crop4000.json'), '--grid', '8x8', '--out', out], DEFAULT_LIMIT);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /augment --grid 8x8 on a 4096x4096 image \(64 input copies 3 GiB, 64 float32 tiles of 4000x4000 11\.4 GiB, grid 2\.9 GiB\) needs 17\.4 GiB, over the memory limit of 2 GiB \(the default\); raise it with --max-memory 18G or HISTOFLOW_MAX_MEMORY=18G/);
  t.false(existsSync(out));
  t.true(r.maxRssBytes < REFUSED_RSS, `peak RSS ${r.maxRssBytes}`);
});

test('the grid budget counts the decoded image, its copies, the float32 tiles and the grid, byte for byte', (t) => {
  const header = { width: 300, height: 200, channels: 3, hasAlpha: false };
  const pipeline = checkPipeline({ crop: [100, 120], resize: 64 });
  const limit = { bytes: 1, source: 'test' };
  const e = t.throws(() => checkAugmentMemory(header, pipeline, 3, 5, limit), { instanceOf: MemoryLimitError });
  const grid = (5 * 64 + 4 * 2) * (3 * 64 + 2 * 2) * 3;
  t.is(e!.bytes, 300 * 200 * 3 * 16 + 15 * 64 * 64 * 3 * 4 + grid);
  t.notThrows(() => checkAugmentMemory(header, pipeline, 3, 5, { bytes: e!.bytes, source: 'test' }));
  // A stain op keeps a normalized copy of the inputs as well.
  const stained = t.throws(() => checkAugmentMemory(header, checkPipeline({ crop: [100, 120], resize: 64, stain: { method: 'macenko' } }), 3, 5, limit), { instanceOf: MemoryLimitError });
  t.is(stained!.bytes - e!.bytes, 15 * 300 * 200 * 3);
});

test.serial('--max-memory and HISTOFLOW_MAX_MEMORY set the limit, and the error names which one was hit', async (t) => {
  const pipeline = pipelineFile({ crop: 32 }, 'crop32.json');
  const out = join(dir, 'small-grid.png');
  const flag = await histoflowMeasured(['augment', small, '--pipeline', pipeline, '--grid', '2x2', '--max-memory', '4K', '--out', out]);
  t.is(flag.code, 1);
  t.regex(flag.stderr, /over the memory limit of 4 KiB \(--max-memory\); raise it with --max-memory 1M or HISTOFLOW_MAX_MEMORY=1M/);
  const env = await histoflowMeasured(['augment', small, '--pipeline', pipeline, '--grid', '2x2', '--out', out], { HISTOFLOW_MAX_MEMORY: '4096' });
  t.is(env.code, 1);
  t.regex(env.stderr, /over the memory limit of 4 KiB \(HISTOFLOW_MAX_MEMORY\)/);
  t.false(existsSync(out));
  // The flag wins over the environment, and a limit that covers the run lets it through.
  const ok = await histoflowMeasured(['augment', small, '--pipeline', pipeline, '--grid', '2x2', '--max-memory', '1M', '--backend', 'js', '--out', out], { HISTOFLOW_MAX_MEMORY: '4096' });
  t.is(ok.code, 0, ok.stderr);
  t.true(existsSync(out));
});

test.serial('a bad --max-memory or HISTOFLOW_MAX_MEMORY is an error naming it', async (t) => {
  const pipeline = pipelineFile({ crop: 32 }, 'crop32.json');
  const out = join(dir, 'bad.png');
  for (const value of ['abc', '0', '-1G', '1.5X']) {
    const r = await histoflowMeasured(['augment', small, '--pipeline', pipeline, `--max-memory=${value}`, '--out', out]);
    t.is(r.code, 1);
    t.true(r.stderr.includes(`Expected a size in bytes, or with K, M, G or T (e.g. 512M, 4G) for --max-memory but received '${value}' of type string`), r.stderr);
  }
  const env = await histoflowMeasured(['augment', small, '--pipeline', pipeline, '--out', out], { HISTOFLOW_MAX_MEMORY: 'lots' });
  t.is(env.code, 1);
  t.regex(env.stderr, /for HISTOFLOW_MAX_MEMORY but received 'lots'/);
  t.false(existsSync(out));
});
