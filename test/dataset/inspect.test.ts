/**
 * inspect: flags equal the constructed truth (a blank, a glass, a blurred,
 * a pen-marked and a duplicated patch among ordinary synthetic ones), the
 * channel statistics equal a direct computation, classes are counted, one
 * grid per class is written, and bad options are refused.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { inspectDataset, patchFlags } from '../../src/dataset/inspect.js';
import { PackedWriter } from '../../src/dataset/packed_writer.js';
import type { RgbBatch } from '../../src/kernels/types.js';
import { synthPatch } from '../../src/synth/patches.js';
import { CLI } from '../support/helpers.js';

const S = 96;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'histoflow-inspect-'));
}

function fill(f: (x: number, y: number) => [number, number, number]): RgbBatch {
  const data = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) data.set(f(x, y), (y * S + x) * 3);
  return { data, n: 1, height: S, width: S };
}

/** Box blur 5x5, three passes (≈ a Gaussian of σ 2.4), edges clamped. */
function blurred(img: RgbBatch): RgbBatch {
  let src = img.data;
  for (let pass = 0; pass < 3; pass++) {
    const out = new Uint8Array(src.length);
    for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) {
        const yy = Math.min(S - 1, Math.max(0, y + dy)), xx = Math.min(S - 1, Math.max(0, x + dx));
        s += src[(yy * S + xx) * 3 + c]!;
      }
      out[(y * S + x) * 3 + c] = Math.round(s / 25);
    }
    src = out;
  }
  return { ...img, data: src };
}

async function dataset(): Promise<{ path: string; images: RgbBatch[]; labels: number[]; ids: string[] }> {
  const images: RgbBatch[] = [], labels: number[] = [], ids: string[] = [];
  const add = (id: string, img: RgbBatch, label: number) => { ids.push(id); images.push(img); labels.push(label); };
  for (let i = 0; i < 10; i++) { const p = synthPatch(3, i); add(`ok${i}`, p.image, p.label); }
  add('blank', fill(() => [200, 120, 180]), 0);
  add('glass', fill((x, y) => [232 + ((x * 7 + y * 3) % 17), 232 + ((x + y * 5) % 13), 240]), 0);
  add('blur', blurred(synthPatch(3, 20).image), 1);
  const base = synthPatch(3, 21).image;
  add('pen', fill((x, y) => (x < 45 ? [20, 50, 200] : [base.data[(y * S + x) * 3]!, base.data[(y * S + x) * 3 + 1]!, base.data[(y * S + x) * 3 + 2]!])), 0);
  add('dup', { ...images[4]!, data: images[4]!.data.slice() }, labels[4]!);
  const path = join(tmp(), 'i.hfpack');
  const w = await PackedWriter.create(path, { height: S, width: S });
  for (let i = 0; i < images.length; i++) await w.append(images[i]!, { labels: [labels[i]!], meta: [{ id: ids[i]! }] });
  await w.finish();
  return { path, images, labels, ids };
}

test('flags, statistics, classes and grids equal the constructed truth', async (t) => {
  const { path, images, labels } = await dataset();
  const grids = tmp();
  const r = await inspectDataset(path, { gridDir: grids, gridSize: 4 });
  t.is(r.count, 15);
  t.deepEqual(r.blank.names, ['blank']);
  t.deepEqual(r.background.names, ['glass']);
  t.deepEqual(r.blurry.names, ['blank', 'blur'], 'a uniform patch has no detail either');
  t.deepEqual(r.pen.names, ['pen']);
  t.deepEqual(r.duplicates.pairs, [['ok4', 'dup']]);
  const ones = labels.filter((l) => l === 1).length;
  t.deepEqual(r.classes, { 0: 15 - ones, 1: ones });
  // Channel statistics by direct summation.
  for (let c = 0; c < 3; c++) {
    let s = 0, s2 = 0, n = 0;
    for (const im of images) for (let i = c; i < im.data.length; i += 3) { s += im.data[i]!; s2 += im.data[i]! ** 2; n++; }
    t.true(Math.abs(r.mean[c]! - s / n) < 1e-9);
    t.true(Math.abs(r.std[c]! - Math.sqrt(s2 / n - (s / n) ** 2)) < 1e-6);
  }
  t.is(r.grids.length, 2);
  const meta = await sharp(r.grids[0]!).metadata();
  t.is(meta.width, 4 * S + 3 * 2);
  const rows = Math.ceil(Math.min(16, 15 - ones) / 4);
  t.is(meta.height, rows * S + (rows - 1) * 2, `${15 - ones} negatives in rows of 4`);
});

test('patchFlags: the Laplacian variance of a checkerboard is its formula', (t) => {
  // Alternating 0/255 grey: the 4-neighbour Laplacian is ±4·255 everywhere inside, mean 0.
  const f = patchFlags(fill((x, y) => ((x + y) % 2 ? [255, 255, 255] : [0, 0, 0])));
  t.true(Math.abs(f.laplacianVariance - (4 * 255) ** 2) < 1e-6 * (4 * 255) ** 2);
  t.false(f.blurry);
  t.false(f.blank);
});

test('inspect CLI: --json, and bad options exit 1', async (t) => {
  const { path } = await dataset();
  const r = spawnSync(process.execPath, [CLI, 'inspect', path, '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.is((JSON.parse(r.stdout) as { count: number }).count, 15);
  for (const args of [[], [path, '--pen-fraction', '2'], [path, '--grid', '0'], [join(tmp(), 'missing')]]) {
    const bad = spawnSync(process.execPath, [CLI, 'inspect', ...args], { encoding: 'utf8' });
    t.is(bad.status, 1, args.join(' '));
    t.regex(bad.stderr, /^histoflow: \S/);
  }
  await t.throwsAsync(inspectDataset(path, { penFraction: -1 }), { instanceOf: RangeError, message: /options.penFraction/ });
});
