/**
 * inspect's findings (issue 15; rules in src/dataset/findings.ts): the exact
 * duplicate groups of the real PCam valid split equal the shipped list; the
 * perceptual hash is a DCT (checked on cosine patterns) invariant to the 8
 * rotations/flips; over-saturated patches and colour outliers are the
 * constructed ones; per-class stain fits; the HTML report and its sheets.
 */
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { PackedWriter } from '../../src/dataset/packed_writer.js';
import { d4Hashes, hamming, lowDct, nearDuplicatePairs } from '../../src/dataset/findings.js';
import { inspectDataset } from '../../src/dataset/inspect.js';
import type { RgbBatch } from '../../src/kernels/types.js';
import { synthPatch } from '../../src/synth/patches.js';
import { dataFile } from '../support/helpers.js';

const S = 96;
const tmp = () => mkdtempSync(join(tmpdir(), 'histoflow-findings-'));

function fill(f: (x: number, y: number) => [number, number, number]): RgbBatch {
  const data = new Uint8Array(S * S * 3);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) data.set(f(x, y), (y * S + x) * 3);
  return { data, n: 1, height: S, width: S };
}

/** The patch rotated by 90° (k times) and optionally mirrored. */
function d4(img: RgbBatch, k: number, mirror: boolean): RgbBatch {
  let cur = img;
  for (let r = 0; r < k; r++) cur = fill((x, y) => { const i = ((S - 1 - x) * S + y) * 3; return [cur.data[i]!, cur.data[i + 1]!, cur.data[i + 2]!]; });
  if (mirror) { const m = cur; cur = fill((x, y) => { const i = (y * S + (S - 1 - x)) * 3; return [m.data[i]!, m.data[i + 1]!, m.data[i + 2]!]; }); }
  return cur;
}

test('the exact duplicate groups of the real PCam valid split are the shipped list', async (t) => {
  const r = await inspectDataset(dataFile('pcam'), { split: 'valid' });
  const shipped = readFileSync(dataFile('pcam/valid_duplicates.txt'), 'utf8').split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => l.trim().split(/\s+/).sort());
  t.deepEqual(r.duplicates.groups.map((g) => [...g].sort()).sort(), shipped.sort());
  t.deepEqual(r.classes, { 0: 1500, 1: 1500 });
  t.log(`near-duplicates ${r.nearDuplicates.count}, over-saturated ${r.overSaturated.count}, colour outliers ${r.colourOutliers.count}, blank ${r.blank.count}, background ${r.background.count}`);
  for (const cls of ['0', '1']) {
    const s = r.stains[cls]!;
    t.false('error' in s, JSON.stringify(s));
    if ('error' in s) continue;
    // Unit OD vectors, hematoxylin bluer than eosin (its red OD share is lower than its blue share).
    t.true(Math.abs(Math.hypot(...s.he.slice(0, 3)) - 1) < 1e-3 && Math.abs(Math.hypot(...s.he.slice(3)) - 1) < 1e-3);
    t.true(s.he[2]! > s.he[5]!, `H blue ${s.he[2]} vs E blue ${s.he[5]}`);
  }
});

test('the hash is the DCT of the 32x32 grey thumbnail: a cosine pattern puts its energy in its own coefficient', (t) => {
  for (const [u, v] of [[1, 0], [0, 3], [2, 5], [7, 7]] as const) {
    // grey = 128 + 100·cos((2y+1)uπ/192)·cos((2x+1)vπ/192) over 96 px: 3x3 area averaging keeps it the (u, v) cosine of the thumbnail (to sampling)
    const img = fill((x, y) => {
      const g = Math.round(128 + 100 * Math.cos(((2 * y + 1) * u * Math.PI) / (2 * S)) * Math.cos(((2 * x + 1) * v * Math.PI) / (2 * S)));
      return [g, g, g];
    });
    const c = lowDct(img.data, S, S);
    const energy = c.map((x) => x * x);
    const total = energy.reduce((s, e, k) => (k === 0 ? s : s + e), 0);
    t.true(energy[u * 8 + v]! / total > 0.98, `(${u}, ${v}): ${(energy[u * 8 + v]! / total).toFixed(4)} of the AC energy`);
  }
});

test('the 8 rotations/flips of a patch hash within 0 bits of one of its variants, and are found as near-duplicates; other patches are not', (t) => {
  const base = synthPatch(5, 1).image;
  const hashes = [d4Hashes(base.data, S, S)];
  for (let k = 0; k < 4; k++) {
    for (const mirror of [false, true]) {
      if (k === 0 && !mirror) continue;
      const v = d4(base, k, mirror);
      const h = d4Hashes(v.data, S, S);
      t.is(Math.min(...hashes[0]!.map((b) => hamming(b, h[0]!))), 0, `rotation ${k}, mirror ${mirror}`);
      hashes.push(h);
    }
  }
  for (let i = 2; i < 6; i++) hashes.push(d4Hashes(synthPatch(5, 10 + i).image.data, S, S));
  const pairs = nearDuplicatePairs(hashes, 4);
  const variants = pairs.filter(([i, j]) => i < 8 && j < 8);
  t.is(variants.length, 28, 'every pair among the 8 variants');
  t.deepEqual(pairs.filter(([, j]) => j >= 8), [], 'no other patch');
});

test('over-saturated patches and colour outliers are the constructed ones; the report has a sheet per finding', async (t) => {
  const images: RgbBatch[] = [];
  for (let i = 0; i < 40; i++) images.push(synthPatch(7, i).image);
  images.push(fill((x, y) => ((x + y) % 7 ? [250, 0, 220] : [200, 60, 180]))); // ink: vivid magenta
  images.push(fill((x, y) => [150 + ((x * y) % 9), 140 + (x % 5), 50])); // olive: not vivid, far from H&E in OD
  const path = join(tmp(), 'f.hfpack');
  const w = await PackedWriter.create(path, { height: S, width: S });
  for (let i = 0; i < images.length; i++) await w.append(images[i]!, { labels: [i % 2], meta: [{ id: `p${i}` }] });
  await w.finish();
  const dir = join(tmp(), 'report');
  const r = await inspectDataset(path, { reportDir: dir });
  t.deepEqual(r.overSaturated.names, ['p40']);
  t.true(r.colourOutliers.names.includes('p41'), JSON.stringify(r.colourOutliers));
  t.true(r.colourOutliers.names.includes('p40'));
  t.true(r.colourOutliers.count <= 4, `${r.colourOutliers.count} outliers among 42`);
  const html = readFileSync(r.report!, 'utf8');
  t.notRegex(html, /(src|href)="(https?:)?\/\//, 'no network references');
  for (const key of ['over_saturated', 'colour_outliers']) {
    t.regex(html, new RegExp(`src="${key}.png"`));
    const meta = await sharp(join(dir, `${key}.png`)).metadata();
    t.is(meta.height, S);
  }
  t.true(readdirSync(dir).includes('report.html'));
  await t.throwsAsync(inspectDataset(path, { nearBits: 17 }), { instanceOf: RangeError, message: /options.nearBits/ });
  await t.throwsAsync(inspectDataset(path, { reportDir: '/proc/histoflow/x' }), { message: /options.reportDir/ });
});
