/**
 * Synthetic PCam patches: deterministic per (seed, index) however they are
 * rendered; the label is the presence of tumour-nucleus pixels in the centre
 * 32x32 (checked on the rendered mask, not on the generator's bookkeeping);
 * classes balanced as asked; hard negatives present; files readable in the
 * Kaggle layout; bad arguments refused.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { readImage } from '../../src/image.js';
import { synthId, synthPatches } from '../../src/synth/dataset.js';
import { CENTRE_SIZE, HARD_NEGATIVE_SCENES, inCentre, synthPatch } from '../../src/synth/patches.js';
import { CLI } from '../support/helpers.js';


function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'histoflow-synth-'));
}

test('a patch depends only on (seed, index)', (t) => {
  const a = synthPatch(7, 123), b = synthPatch(7, 123), c = synthPatch(8, 123), d = synthPatch(7, 124);
  t.deepEqual(a.image.data, b.image.data);
  t.deepEqual(a.truth, b.truth);
  t.notDeepEqual(a.image.data, c.image.data);
  t.notDeepEqual(a.image.data, d.image.data);
  t.is(a.image.height, 96);
  t.is(a.image.width, 96);
});

test('label 1 exactly when tumour-nucleus pixels lie in the centre 32x32', (t) => {
  const lo = (96 - CENTRE_SIZE) / 2;
  const scenes = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const p = synthPatch(11, i, { tumourMask: true });
    scenes.add(p.truth.scene);
    let centre = 0, outside = 0;
    p.tumourMask!.forEach((v, k) => {
      if (!v) return;
      const y = Math.floor(k / 96), x = k % 96;
      if (x >= lo && x < lo + CENTRE_SIZE && y >= lo && y < lo + CENTRE_SIZE) centre++;
      else outside++;
    });
    const truthCount = p.truth.nuclei.filter((n) => n.kind === 'tumour' && inCentre(n.cx, n.cy, 96)).length;
    t.is(p.truth.tumourInCentre, truthCount);
    if (p.label === 1) t.true(centre > 0, `patch ${i} (${p.truth.scene}) is positive but has no tumour pixel in the centre`);
    else t.is(centre, 0, `patch ${i} (${p.truth.scene}) is negative but has ${centre} tumour pixels in the centre`);
    if (p.truth.scene === 'margin') t.true(outside > 0, 'a margin hard negative shows tumour outside the centre');
  }
  for (const s of HARD_NEGATIVE_SCENES) t.true(scenes.has(s), `hard negative scene ${s} drawn`);
});

test('tumour nuclei are darker in hematoxylin and larger than normal ones', (t) => {
  // A statistical check of the picture: the centre of positives is darker (more nuclei, denser) than of plain stroma.
  let pos = 0, np = 0, stroma = 0, ns = 0;
  for (let i = 0; i < 120; i++) {
    const p = synthPatch(5, i);
    let sum = 0;
    for (let y = 32; y < 64; y++) for (let x = 32; x < 64; x++) sum += p.image.data[(y * 96 + x) * 3]!; // red: low where hematoxylin is
    if (p.label === 1) { pos += sum; np++; } else if (p.truth.scene === 'stroma') { stroma += sum; ns++; }
    for (const n of p.truth.nuclei) if (n.kind === 'tumour') t.true(n.a >= 4);
  }
  t.true(np > 0 && ns > 0);
  t.true(pos / np < 0.85 * (stroma / ns), `centre red of positives ${pos / np / 1024} vs stroma ${stroma / ns / 1024}`);
});

test('class balance follows options.positive', (t) => {
  for (const positive of [0.5, 0.2]) {
    const n = 1000;
    let ones = 0;
    for (let i = 0; i < n; i++) ones += synthPatch(1, i, { positive, size: 48 }).label;
    // Binomial: 4 standard deviations.
    const sd = Math.sqrt(n * positive * (1 - positive));
    t.true(Math.abs(ones - n * positive) < 4 * sd, `${ones} positives of ${n} for ${positive}`);
  }
  t.is([...Array(50).keys()].reduce((s, i) => s + synthPatch(1, i, { positive: 0, size: 48 }).label, 0), 0);
  t.is([...Array(50).keys()].reduce((s, i) => s + synthPatch(1, i, { positive: 1, size: 48 }).label, 0), 50);
});

test('synthPatches writes the Kaggle layout, the same with workers or without', async (t) => {
  const a = tmp(), b = tmp();
  const ra = await synthPatches(a, { n: 40, test: 8, seed: 4, workers: 2 });
  await synthPatches(b, { n: 40, test: 8, seed: 4, workers: 0 });
  t.is(ra.train, 40);
  const rows = readFileSync(join(a, 'train_labels.csv'), 'utf8').trim().split('\n');
  t.is(rows[0], 'id,label');
  t.is(rows.length, 41);
  t.deepEqual(readFileSync(join(b, 'train_labels.csv'), 'utf8'), readFileSync(join(a, 'train_labels.csv'), 'utf8'));
  for (const [k, row] of rows.slice(1).entries()) {
    const [id, label] = row.split(',');
    t.is(id, synthId(4, k));
    t.regex(id!, /^[0-9a-f]{40}$/);
    const img = await readImage(join(a, 'train', `${id}.tif`));
    const direct = synthPatch(4, k);
    t.deepEqual(img.data, direct.image.data, 'TIFF is lossless');
    t.is(Number(label), direct.label);
  }
  t.is(readdirSync(join(a, 'test')).length, 8);
  const sub = readFileSync(join(a, 'sample_submission.csv'), 'utf8').trim().split('\n');
  t.is(sub.length, 9);
  t.true(sub.slice(1).every((r) => r.endsWith(',0')));
  t.true(existsSync(join(a, 'test_labels.csv')));
  t.deepEqual(readdirSync(join(a, 'train')).filter((f) => f.endsWith('.tmp')), []);
});

test('bad arguments are refused with the parameter named', async (t) => {
  t.throws(() => synthPatch(-1, 0), { instanceOf: RangeError, message: /seed/ });
  t.throws(() => synthPatch(0, 1.5), { instanceOf: RangeError, message: /index/ });
  t.throws(() => synthPatch(0, 0, { size: 20 }), { instanceOf: RangeError, message: /options.size/ });
  t.throws(() => synthPatch(0, 0, { positive: 2 }), { instanceOf: RangeError, message: /options.positive/ });
  t.throws(() => synthPatch(0, 0, { sise: 96 } as never), { instanceOf: RangeError, message: /sise/ });
  await t.throwsAsync(synthPatches(tmp(), { n: 0 }), { instanceOf: RangeError, message: /options.n/ });
  await t.throwsAsync(synthPatches(tmp(), { n: 2, workers: -1 }), { instanceOf: RangeError, message: /options.workers/ });
  await t.throwsAsync(synthPatches('', { n: 2 }), { instanceOf: TypeError, message: /dir/ });
});

test('CLI: synth patches --json, and bad options exit 1 with one line', (t) => {
  const out = tmp();
  const r = spawnSync(process.execPath, [CLI, 'synth', 'patches', '--n', '12', '--seed', '2', '--out', out, '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as { train: number; positives: { train: number } };
  t.is(summary.train, 12);
  t.is(readdirSync(join(out, 'train')).length, 12);
  for (const args of [['--n', '0'], ['--n', 'x'], ['--n', '3', '--positive', '1.5'], ['--n', '3', '--size', '10'], ['--n', '3']]) {
    const bad = spawnSync(process.execPath, [CLI, 'synth', 'patches', ...args, ...(args.length > 2 || args[1] !== '3' ? ['--out', tmp()] : [])], { encoding: 'utf8' });
    t.is(bad.status, 1, args.join(' '));
    t.regex(bad.stderr, /^histoflow: .*(--n|--positive|--size|--out)/);
  }
});
