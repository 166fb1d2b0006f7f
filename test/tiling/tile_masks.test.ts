/**
 * `histoflow tile --annotations A --masks` end to end on a synthetic slide
 * (`synth slide`'s S.tif, annotated by its own S.json): every tile's mask,
 * read back with readMaskedTiles from the folder and from the packed file,
 * agrees with the exact coverage of the tumour regions over the tile
 * (tileCoverage) within 1 % of the tile, at level 0 and at level 1
 * (downsample 2); both outputs hold the same tiles and masks; --masks
 * without --annotations, and reading masks that were never written, are
 * errors naming what is missing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { readMaskedTiles, type MaskedTiles } from '../../src/dataset/masked_tiles.js';
import { AnnotationIndex, parseAnnotations, tileCoverage } from '../../src/tiling/annotations.js';
import { MASK_IGNORE } from '../../src/tiling/masks.js';
import { openSlide } from '../../src/slide/slide.js';
import { slideBatches, tileSlide } from '../../src/tiling/tile.js';
import { synthSlide } from '../../src/synth/slide.js';
import { CLI } from '../support/helpers.js';

const root = mkdtempSync(join(tmpdir(), 'histoflow-tile-masks-'));
const SLIDE = join(root, 'S.tif');
const META = join(root, 'S.json');

test.before(async () => {
  await synthSlide(SLIDE, { width: 2048, height: 2048, seed: 4, compression: 'deflate', workers: 2 });
});

let n = 0;
const outDir = () => join(root, `out${n++}`);

function tile(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [CLI, 'tile', SLIDE, ...args], { encoding: 'utf8' });
}

function regions(): AnnotationIndex {
  return new AnnotationIndex(parseAnnotations((JSON.parse(readFileSync(META, 'utf8')) as { tumourRegions: unknown }).tumourRegions));
}

/** |tumour pixels / tile pixels − exact tumour coverage| for every tile; ids are SLIDE_L<level>_x<x>_y<y> at that level. */
function errors(m: MaskedTiles, downsample: number, index: AnnotationIndex): number[] {
  const px = m.images.height * m.images.width;
  const tumour = m.labels.indexOf('tumour');
  return m.ids.map((id, k) => {
    const [, x, y] = /_x(\d+)_y(\d+)$/.exec(id)!.map(Number);
    const side = m.images.width * downsample;
    const coverage = tileCoverage(index, { x: x! * downsample, y: y! * downsample, width: side, height: side }).get('tumour') ?? 0;
    let count = 0;
    for (let p = k * px; p < (k + 1) * px; p++) if (m.masks[p] === tumour) count++;
    return Math.abs(count / px - coverage);
  });
}

function byId(m: MaskedTiles): Map<string, number> {
  return new Map(m.ids.map((id, k) => [id, k]));
}

test('tile --annotations S.json --masks writes masks that agree with the tumour coverage, in a folder and a packed file alike', async (t) => {
  const folder = outDir(), packed = outDir();
  const r1 = tile('--out', folder, '--size', '128', '--annotations', META, '--masks', '--json');
  t.is(r1.status, 0, r1.stderr);
  const summary = JSON.parse(r1.stdout) as { kept: number; masks: { labels: string[]; ignore: number; count: number; files: string; level: number } };
  t.like(summary.masks, { labels: ['background', 'tumour'], ignore: MASK_IGNORE, count: summary.kept, files: join(folder, 'masks.json'), level: 0 });
  const r2 = tile('--out', packed, '--size', '128', '--annotations', META, '--masks', '--format', 'packed', '--json');
  t.is(r2.status, 0, r2.stderr);

  const a = await readMaskedTiles(folder);
  const b = await readMaskedTiles(join(packed, 'tiles.hfpack'));
  t.is(a.images.n, summary.kept);
  t.deepEqual(a.labels, ['background', 'tumour']);
  t.deepEqual(b.labels, a.labels);
  t.deepEqual([...b.ids].sort(), [...a.ids].sort());
  t.true(a.slides.every((s) => s === 'S'));
  const index = regions();
  const errs = errors(a, 1, index);
  const tumourTiles = errs.filter((_, k) => a.masks.subarray(k * 128 * 128, (k + 1) * 128 * 128).includes(1)).length;
  t.log(`${a.images.n} tiles, ${tumourTiles} with tumour pixels; worst |pixels − coverage| ${(Math.max(...errs) * 100).toFixed(3)} % of the tile`);
  t.true(tumourTiles > 3, 'some tiles hold tumour');
  t.true(errs.every((e) => e <= 0.01));
  // The same tile in both outputs: the same pixels (PNG is lossless) and the same mask.
  const inB = byId(b);
  const px = 128 * 128;
  a.ids.forEach((id, k) => {
    const j = inB.get(id)!;
    t.deepEqual(b.masks.subarray(j * px, (j + 1) * px), a.masks.subarray(k * px, (k + 1) * px), id);
    t.deepEqual(b.images.data.subarray(j * px * 3, (j + 1) * px * 3), a.images.data.subarray(k * px * 3, (k + 1) * px * 3), id);
  });
  const masksJson = JSON.parse(readFileSync(join(folder, 'masks.json'), 'utf8'));
  t.like(masksJson, { labels: ['background', 'tumour'], ignore: 255, level: 0, downsample: 1, mpp: 0.5, size: 128 });
});

test('at level 1 (downsample 2) the masks cover the tile\'s level-0 rectangle at the tile\'s µm/px', async (t) => {
  const dir = outDir();
  const r = await tileSlide(SLIDE, dir, { size: 64, level: 1, annotations: META, masks: true, format: 'packed' });
  t.is(r.level, 1);
  t.like(r.masks, { level: 1, downsample: 2, mpp: 1 });
  const m = await readMaskedTiles(join(dir, 'tiles.hfpack'));
  t.is(m.images.width, 64);
  const errs = errors(m, 2, regions());
  t.log(`${m.images.n} tiles at level 1: worst |pixels − coverage| ${(Math.max(...errs) * 100).toFixed(3)} % of the tile`);
  t.true(m.masks.includes(1));
  t.true(errs.every((e) => e <= 0.01));
});

test('--masks without --annotations is an error naming both, and writes nothing', (t) => {
  const dir = outDir();
  const r = tile('--out', dir, '--masks');
  t.is(r.status, 1);
  t.regex(r.stderr, /--annotations.*--masks/);
  t.false(existsSync(dir));
  const help = spawnSync(process.execPath, [CLI, 'tile', '--help'], { encoding: 'utf8' });
  t.regex(help.stdout, /--masks/);
});

test('tileSlide refuses masks without annotations before touching the output folder', async (t) => {
  const dir = outDir();
  await t.throwsAsync(tileSlide(SLIDE, dir, { masks: true }), { instanceOf: RangeError, message: /options\.annotations with options\.masks/ });
  await t.throwsAsync(tileSlide(SLIDE, dir, { masks: 'yes' as never, annotations: META }), { instanceOf: TypeError, message: /options\.masks/ });
  t.false(existsSync(dir));
});

test('readMaskedTiles on tiles written without --masks is an Error naming the path and the fix', async (t) => {
  const folder = outDir(), packed = outDir();
  await tileSlide(SLIDE, folder, { size: 128, annotations: META });
  await tileSlide(SLIDE, packed, { size: 128, annotations: META, format: 'packed' });
  await t.throwsAsync(readMaskedTiles(folder), { message: new RegExp(`${folder} holds tiles without label masks.*tile it again with --masks`) });
  await t.throwsAsync(readMaskedTiles(join(packed, 'tiles.hfpack')), { message: /tiles\.hfpack holds tiles without label masks.*tile it again with --masks/ });
  await t.throwsAsync(readMaskedTiles(join(root, 'nothing')), { message: /nothing does not exist/ });
});

test('readMaskedTiles of a folder whose masks.json lists a label twice is an Error naming masks.json and the label', async (t) => {
  const folder = outDir();
  await tileSlide(SLIDE, folder, { size: 96, level: 2, annotations: META, masks: true });
  const path = join(folder, 'masks.json');
  const info = JSON.parse(readFileSync(path, 'utf8')) as { labels: string[] };
  writeFileSync(path, JSON.stringify({ ...info, labels: [...info.labels, info.labels[1]!] }));
  await t.throwsAsync(readMaskedTiles(folder), { message: /masks\.json: Expected distinct labels for labels\[2\] but received 'tumour'/ });
});

test('slideBatches with masks yields each batch\'s masks beside its tiles, agreeing with the coverage', async (t) => {
  const slide = await openSlide(SLIDE);
  try {
    const index = regions();
    let tiles = 0, worst = 0;
    for await (const { batch, tiles: planned, masks, maskLabels } of slideBatches(slide, { size: 96, batchSize: 16, annotations: META, masks: true })) {
      t.deepEqual(maskLabels, ['background', 'tumour']);
      t.is(masks!.length, batch.n * 96 * 96);
      planned.forEach((p, k) => {
        let count = 0;
        for (let q = k * 96 * 96; q < (k + 1) * 96 * 96; q++) if (masks![q] === 1) count++;
        const coverage = tileCoverage(index, { x: p.x0, y: p.y0, width: 96, height: 96 }).get('tumour') ?? 0;
        worst = Math.max(worst, Math.abs(count / (96 * 96) - coverage));
      });
      tiles += batch.n;
    }
    t.log(`${tiles} tiles: worst |pixels − coverage| ${(worst * 100).toFixed(3)} % of the tile`);
    t.true(tiles > 0 && worst <= 0.01);
    const it = slideBatches(slide, { size: 96, masks: true });
    await t.throwsAsync(it.next(), { instanceOf: RangeError, message: /options\.annotations with options\.masks/ });
  } finally {
    await slide.close();
  }
});

test('histoflow pack of a tile folder written with --masks carries every mask into the packed file; a mask of the wrong size is skipped as unreadable, naming it', async (t) => {
  const folder = outDir();
  await tileSlide(SLIDE, folder, { size: 96, level: 1, annotations: META, masks: true });
  const out = join(outDir(), 'p.hfpack');
  const r = spawnSync(process.execPath, [CLI, 'pack', folder, '--out', out, '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const a = await readMaskedTiles(folder), b = await readMaskedTiles(out);
  t.deepEqual(b.labels, a.labels);
  t.deepEqual(b.ids, a.ids);
  t.deepEqual(b.masks, a.masks);
  t.deepEqual(b.images.data, a.images.data);
  t.true(a.masks.includes(1), 'some tumour pixels');

  // One mask replaced by a 1x1 PNG: that record is skipped, the others packed with their masks.
  const manifest = JSON.parse(readFileSync(join(folder, 'manifest.json'), 'utf8')) as { tiles: Array<{ mask: string }> };
  const broken = join(folder, manifest.tiles[0]!.mask);
  await sharp(Buffer.alloc(1), { raw: { width: 1, height: 1, channels: 1 } }).png().toFile(broken + '.tmp.png');
  renameSync(broken + '.tmp.png', broken);
  const out2 = join(outDir(), 'p.hfpack');
  const r2 = spawnSync(process.execPath, [CLI, 'pack', folder, '--out', out2, '--json'], { encoding: 'utf8' });
  t.is(r2.status, 0, r2.stderr);
  const s2 = JSON.parse(r2.stdout.trim().split('\n').at(-1)!) as { count: number; unreadable: number; skipped: Array<{ path: string; reason: string }> };
  t.is(s2.count, a.images.n - 1);
  t.is(s2.unreadable, 1);
  t.regex(s2.skipped[0]!.reason, /is 1x1, but its tile is 96x96/);
  const c = await readMaskedTiles(out2);
  const px = 96 * 96;
  t.deepEqual(c.masks, a.masks.subarray(px));

  // One more mask holding a value that names no label: that record is skipped too, naming the file, not the whole pack failed.
  const wrong = join(folder, manifest.tiles[1]!.mask);
  await sharp(Buffer.alloc(96 * 96, 7), { raw: { width: 96, height: 96, channels: 1 } }).png().toFile(wrong + '.tmp.png');
  renameSync(wrong + '.tmp.png', wrong);
  const out3 = join(outDir(), 'p.hfpack');
  const r3 = spawnSync(process.execPath, [CLI, 'pack', folder, '--out', out3, '--json'], { encoding: 'utf8' });
  t.is(r3.status, 0, r3.stderr);
  const s3 = JSON.parse(r3.stdout.trim().split('\n').at(-1)!) as { count: number; unreadable: number; skipped: Array<{ path: string; reason: string }> };
  t.like(s3, { count: a.images.n - 2, unreadable: 2 });
  t.regex(s3.skipped[1]!.reason, /mask\.png holds the value 7, which names no label of .*masks\.json/);
  t.deepEqual((await readMaskedTiles(out3)).masks, a.masks.subarray(2 * px));
});
