/**
 * `histoflow demo` on a fresh checkout: the embedded sample slide goes through
 * tiling, stain normalization and augmentation, and every output it names exists.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { fixture } from './helpers.js';

const CLI = join(fixture('..'), '..', 'dist', 'src', 'cli', 'main.js');

test('histoflow demo --json tiles, normalizes and augments the sample slide and names real files', async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), 'histoflow-demo-')), 'demo');
  const r = spawnSync(process.execPath, [CLI, 'demo', '--out', out, '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, '', 'quiet with --json');
  const summary = JSON.parse(r.stdout);
  t.deepEqual(summary, JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')));
  t.true(summary.tiling.tiles > 100 && summary.tiling.tiles < summary.tiling.grid, `${summary.tiling.tiles} of ${summary.tiling.grid}`);
  const manifest = JSON.parse(readFileSync(join(summary.tiling.dir, 'manifest.json'), 'utf8'));
  t.is(manifest.count, summary.tiling.tiles);
  for (const m of ['macenko', 'vahadane', 'reinhard']) t.true(existsSync(summary.normalization[m].image), m);
  for (const f of [summary.tiling.mask, summary.tiling.overview, summary.original, summary.augmentation.grid]) t.true(existsSync(f), f);
  const grid = await sharp(summary.augmentation.grid).metadata();
  t.deepEqual([grid.width, grid.height], [4 * 192 + 3 * 2, 4 * 192 + 3 * 2]);
});
