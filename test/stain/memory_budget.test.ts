/**
 * `histoflow stain` reads every input's and target's header before decoding
 * any: an image whose normalization needs more than the memory limit
 * (measured before the check: 2.4 GB of RSS for a 20000² PNG, then a
 * pixel-limit error) exits 1 at once, naming the limit, the size and how to
 * raise it, and writes nothing, not even the other inputs.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { MiB, histoflowMeasured, solidPng } from '../support/peak_rss.js';

const dir = mkdtempSync(join(tmpdir(), 'hf-stain-mem-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let huge = '';
let small = '';
test.before(async () => {
  huge = await solidPng(join(dir, 'huge.png'), 20_000);
  small = await solidPng(join(dir, 'small.png'), 64, { r: 180, g: 90, b: 160 });
});

test.serial('stain refuses a 20000x20000 PNG from its header: exit 1, the limit, the size, how to raise it, nothing written, low RSS', async (t) => {
  const out = join(dir, 'out-macenko');
  const r = await histoflowMeasured(['stain', small, huge, '--out', out], { HISTOFLOW_MAX_MEMORY: '' });
  t.is(r.code, 1, r.stderr);
  t.log(`peak RSS ${(r.maxRssBytes / MiB).toFixed(0)} MiB`);
  // Macenko: in + out (6 bytes) + the fit's float scratch and mask (13) per pixel.
  const bytes = 20_000 * 20_000 * 19;
  t.true(r.stderr.includes(
    `stain --method macenko of ${huge} (20000x20000 px × 19 bytes) needs ${(bytes / 2 ** 30).toFixed(1)} GiB, ` +
      'over the memory limit of 2 GiB (the default); raise it with --max-memory 8G or HISTOFLOW_MAX_MEMORY=8G',
  ), r.stderr);
  t.false(existsSync(out), 'the small input before it is not written either');
  t.true(r.maxRssBytes < 400 * MiB, `peak RSS ${r.maxRssBytes}`);
});

test.serial('stain counts the target images too, and --max-memory raises the limit', async (t) => {
  const out = join(dir, 'out-reinhard');
  const refused = await histoflowMeasured(['stain', small, '--method', 'reinhard', '--target', huge, '--out', out], { HISTOFLOW_MAX_MEMORY: '1G' });
  t.is(refused.code, 1, refused.stderr);
  t.true(refused.stderr.includes(`with 1 target image(s) of ${20_000 * 20_000} pixels (1.1 GiB)`), refused.stderr);
  t.regex(refused.stderr, /needs 1\.1 GiB, over the memory limit of 1 GiB \(HISTOFLOW_MAX_MEMORY\); raise it with --max-memory 2G/);
  t.true(refused.maxRssBytes < 400 * MiB, `peak RSS ${refused.maxRssBytes}`);
  const tight = await histoflowMeasured(['stain', small, '--max-memory', '16K', '--out', out]);
  t.is(tight.code, 1);
  t.regex(tight.stderr, /stain --method macenko of .*small\.png \(64x64 px × 19 bytes\) needs 76 KiB, over the memory limit of 16 KiB \(--max-memory\); raise it with --max-memory 1M/);
  t.false(existsSync(out));
  const ok = await histoflowMeasured(['stain', small, '--max-memory', '1M', '--out', out]);
  t.is(ok.code, 0, ok.stderr);
  t.true(existsSync(join(out, 'small.png')));
});
