/**
 * TileFolderWriter: tiles come back from their files exactly (PNG) or close
 * (JPEG), the manifests list them sorted whatever order encodes finished in,
 * a run killed or aborted part-way resumes to the same files and manifests
 * as an uninterrupted run, nothing temporary is left, bad input is refused.
 * The packed sink behind the same TileSink interface gives the same tiles.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { readImage } from '../../src/image.js';
import { PackedDataset } from '../../src/dataset/packed.js';
import { PackedWriter } from '../../src/dataset/packed_writer.js';
import { MANIFEST_COLUMNS, TileFolderWriter, manifestCsv, safeName, type ManifestRow } from '../../src/dataset/tile_folder.js';
import type { TileMeta, TileSink } from '../../src/dataset/tile_sink.js';
import type { RgbBatch } from '../../src/kernels/types.js';
import { OWNED_MARKER } from '../../src/output.js';
import { diff, rgbFixture, syntheticHE } from '../support/helpers.js';

const S = 24, RB = S * S * 3;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'histoflow-tiles-'));
}

/** n tiles over two slides (one with a comma in its name), labels and tissue fractions, some absent. */
function tiles(n: number): { batch: RgbBatch; meta: TileMeta[] } {
  const batch = syntheticHE(n, S, S, 5);
  const meta = Array.from({ length: n }, (_, i): TileMeta => {
    const m: TileMeta = { slide: i % 2 ? 'CMU-1' : 'slide,2', level: i % 3 === 0 ? 1 : 0, x: (i % 4) * S, y: Math.floor(i / 4) * S };
    if (i % 4 !== 3) m.tissueFraction = Math.round((0.5 + (i % 5) / 10) * 1000) / 1000;
    if (i % 3 !== 2) m.label = i % 2;
    return m;
  });
  return { batch, meta };
}

function one(batch: RgbBatch, i: number): RgbBatch {
  return { data: batch.data.subarray(i * RB, (i + 1) * RB), n: 1, height: S, width: S };
}

async function addAll(sink: TileSink, t: ReturnType<typeof tiles>, from = 0, to = t.batch.n): Promise<void> {
  for (let i = from; i < to; i++) if (!sink.has(t.meta[i]!)) await sink.add(one(t.batch, i), t.meta[i]!);
}

/** The manifest a correct writer produces: one row per tile, sorted by slide, level, y, x. */
function expectedRows(t: ReturnType<typeof tiles>, ext: string): ManifestRow[] {
  return t.meta
    .map((m) => ({
      slide: m.slide, level: m.level, x: m.x, y: m.y, size: S, tissue_fraction: m.tissueFraction ?? null, label: m.label ?? null,
      label_coverage: m.labelCoverage ?? null,
      file: `tiles/${safeName(m.slide)}/${safeName(m.slide)}_L${m.level}_x${m.x}_y${m.y}.${ext}`,
    }))
    .sort((a, b) => (a.slide < b.slide ? -1 : a.slide > b.slide ? 1 : a.level - b.level || a.y - b.y || a.x - b.x));
}

function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
      else if (e.name !== OWNED_MARKER) out.push(`${rel}${e.name}`);
    }
  };
  walk(dir, '');
  return out.sort();
}

test('PNG tiles round-trip exactly and both manifests list every tile, sorted', async (t) => {
  const dir = tmp();
  const input = tiles(13);
  const w = await TileFolderWriter.open(dir, { concurrency: 3 });
  await addAll(w, input);
  const result = await w.finish();
  t.is(result.count, 13);
  t.is(result.written, 13);
  const rows = expectedRows(input, 'png');
  const json = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { format: string; count: number; columns: string[]; tiles: ManifestRow[] };
  t.deepEqual(json.tiles, rows);
  t.is(json.format, 'png');
  t.deepEqual(json.columns, [...MANIFEST_COLUMNS]);
  const csv = readFileSync(join(dir, 'manifest.csv'), 'utf8').trimEnd().split('\n');
  t.is(csv[0], 'slide,level,x,y,size,tissue_fraction,label,label_coverage,file');
  t.is(csv.length, 14);
  // A slide name with a comma is quoted; absent values are empty fields.
  const quoted = rows.findIndex((r) => r.slide === 'slide,2' && r.label === null);
  const empty = rows.findIndex((r) => r.tissue_fraction === null);
  t.true(quoted >= 0 && empty >= 0);
  t.regex(csv[quoted + 1]!, /^"slide,2",\d+,\d+,\d+,24,0\.\d+,,,tiles\/slide_2\//);
  t.regex(csv[empty + 1]!, /^CMU-1,\d+,\d+,\d+,24,,[01]?,,tiles\/CMU-1\//);
  for (const [i, m] of input.meta.entries()) {
    const file = rows.find((r) => r.slide === m.slide && r.level === m.level && r.x === m.x && r.y === m.y)!.file;
    const img = await readImage(join(dir, file));
    t.deepEqual(img.data, input.batch.data.subarray(i * RB, (i + 1) * RB), file);
  }
  t.deepEqual(listTree(dir).filter((f) => !f.startsWith('tiles/')), ['manifest.csv', 'manifest.json']);
});

test("JPEG tiles are sharp's encoding at the quality asked for, close to real H&E input, named .jpg", async (t) => {
  const dir = tmp();
  // Real tissue (a JPEG of per-pixel noise says little): 24x24 crops of an H&E fixture.
  const he = await rgbFixture('tiatoolbox__source_image.png');
  const input = tiles(4);
  for (let i = 0; i < 4; i++) {
    for (let r = 0; r < S; r++) {
      const src = ((40 + 30 * i + r) * he.width + 50 + 20 * i) * 3;
      input.batch.data.set(he.data.subarray(src, src + S * 3), i * RB + r * S * 3);
    }
  }
  const w = await TileFolderWriter.open(dir, { format: 'jpeg', quality: 95 });
  await addAll(w, input);
  await w.finish();
  const rows = expectedRows(input, 'jpg');
  for (const [i, m] of input.meta.entries()) {
    const file = rows.find((r) => r.slide === m.slide && r.level === m.level && r.x === m.x && r.y === m.y)!.file;
    const pixels = input.batch.data.subarray(i * RB, (i + 1) * RB);
    const direct = await sharp(Buffer.from(pixels), { raw: { width: S, height: S, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
    t.deepEqual(readFileSync(join(dir, file)), direct, `${file}: the encoding of quality 95`);
    const d = diff((await readImage(join(dir, file))).data, pixels);
    // sharp's default 4:2:0 chroma subsampling costs ~3 grey levels on 24 px H&E crops at quality 95.
    t.true(d.mean < 5, `${file}: mean |diff| ${d.mean}`);
  }
  t.like(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')), { format: 'jpeg', quality: 95, count: 4 });
});

test('manifestCsv quotes fields with commas, quotes and newlines', (t) => {
  const row: ManifestRow = { slide: 'a"b\nc,d', level: 0, x: 1, y: 2, size: 3, tissue_fraction: 0.25, label: 1, label_coverage: 0.75, file: 'f' };
  t.is(manifestCsv([row]), 'slide,level,x,y,size,tissue_fraction,label,label_coverage,file\n"a""b\nc,d",0,1,2,3,0.25,1,0.75,f\n');
});

function killedRun(script: string): void {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.signal !== 'SIGKILL') throw new Error(`the child was expected to be killed: status ${r.status}, ${r.stderr}`);
}

test('a run killed mid-way resumes, skipping finished tiles, to the same files and manifests as an uninterrupted run', async (t) => {
  const input = tiles(16);
  const whole = tmp();
  const w0 = await TileFolderWriter.open(whole, { concurrency: 4 });
  await addAll(w0, input);
  await w0.finish();

  const dir = tmp();
  const index = new URL('../../src/index.js', import.meta.url).href;
  const helpers = new URL('../support/helpers.js', import.meta.url).href;
  // The child adds 9 tiles with 4 encodes in flight and is killed without waiting for them.
  killedRun(`
    import { TileFolderWriter } from '${index}';
    import { syntheticHE } from '${helpers}';
    const batch = syntheticHE(16, ${S}, ${S}, 5);
    const w = await TileFolderWriter.open(${JSON.stringify(dir)}, { concurrency: 4 });
    for (let i = 0; i < 9; i++) {
      const m = { slide: i % 2 ? 'CMU-1' : 'slide,2', level: i % 3 === 0 ? 1 : 0, x: (i % 4) * ${S}, y: Math.floor(i / 4) * ${S} };
      if (i % 4 !== 3) m.tissueFraction = Math.round((0.5 + (i % 5) / 10) * 1000) / 1000;
      if (i % 3 !== 2) m.label = i % 2;
      await w.add({ data: batch.data.subarray(i * ${RB}, (i + 1) * ${RB}), n: 1, height: ${S}, width: ${S} }, m);
    }
    process.kill(process.pid, 'SIGKILL');
  `);
  t.false(existsSync(join(dir, 'manifest.csv')), 'no manifest before the run finished');
  // What else a crash can leave: a torn journal line, a stray temporary, a journalled tile lost.
  writeFileSync(join(dir, '.tiles-journal'), '{"slide":"CMU-1","lev', { flag: 'a' });
  writeFileSync(join(dir, 'tiles', 'CMU-1', '.CMU-1_L0_x0_y0.png.dead.tmp'), 'half');
  const journal = readFileSync(join(dir, '.tiles-journal'), 'utf8').split('\n').slice(1, -1);
  const lost = (JSON.parse(journal[0]!) as ManifestRow).file;
  writeFileSync(join(dir, lost), Buffer.alloc(10)); // truncated by a power cut: size no longer matches

  const w = await TileFolderWriter.open(dir, { concurrency: 4 });
  t.is(w.resumed, journal.length - 1, 'every journalled tile but the damaged one');
  t.true(w.resumed >= 1 && w.resumed <= 8);
  await addAll(w, input);
  const result = await w.finish();
  t.is(result.written, 16 - w.resumed);
  t.is(result.count, 16);
  t.deepEqual(listTree(dir), listTree(whole), 'the same files, no temporaries, no journal');
  for (const f of listTree(whole)) t.deepEqual(readFileSync(join(dir, f)), readFileSync(join(whole, f)), f);
});

test('abort() waits for encodes in flight and leaves no temporary; a rerun resumes; discard removes everything', async (t) => {
  const dir = tmp();
  const input = tiles(10);
  const w = await TileFolderWriter.open(dir, { concurrency: 4 });
  await addAll(w, input, 0, 6);
  await w.abort();
  const left = listTree(dir);
  t.is(left.filter((f) => f.endsWith('.png')).length, 6);
  t.false(left.some((f) => f.endsWith('.tmp')));
  t.deepEqual(left.filter((f) => !f.startsWith('tiles/')), ['.tiles-journal']);
  await t.throwsAsync(w.add(one(input.batch, 7), input.meta[7]!), { message: /aborted/ });

  const again = await TileFolderWriter.open(dir, { concurrency: 4 });
  t.is(again.resumed, 6);
  t.true(again.has(input.meta[5]!));
  t.false(again.has(input.meta[6]!));
  await addAll(again, input, 0, 8);
  await again.abort({ discard: true });
  t.deepEqual(listTree(dir), []);
});

test('rerunning a finished folder with the same options resumes from its manifest and rewrites it unchanged', async (t) => {
  const dir = tmp();
  const input = tiles(6);
  const w = await TileFolderWriter.open(dir);
  await addAll(w, input);
  await w.finish();
  const before = readFileSync(join(dir, 'manifest.json'));
  const w2 = await TileFolderWriter.open(dir);
  t.is(w2.resumed, 6);
  await addAll(w2, input);
  const r = await w2.finish();
  t.is(r.written, 0);
  t.is(r.skipped, 0, 'has() let the caller skip them all');
  t.deepEqual(readFileSync(join(dir, 'manifest.json')), before);
});

test('resuming with another format is refused; resume: false starts over', async (t) => {
  const dir = tmp();
  const input = tiles(3);
  const w = await TileFolderWriter.open(dir, { format: 'jpeg', quality: 80 });
  await addAll(w, input);
  await w.abort();
  await t.throwsAsync(TileFolderWriter.open(dir), { message: /unfinished run with format jpeg, quality 80/ });
  await t.throwsAsync(TileFolderWriter.open(dir, { format: 'jpeg', quality: 81 }), { message: /quality 80/ });
  const fresh = await TileFolderWriter.open(dir, { resume: false });
  t.is(fresh.resumed, 0);
  t.deepEqual(listTree(dir), ['.tiles-journal']);
  await fresh.abort({ discard: true });
});

test('resume: false deletes a tiles/ folder histoflow created (it holds the marker)', async (t) => {
  const dir = tmp();
  const w = await TileFolderWriter.open(dir);
  await addAll(w, tiles(3));
  await w.finish();
  t.true(existsSync(join(dir, 'tiles', OWNED_MARKER)));
  const fresh = await TileFolderWriter.open(dir, { resume: false });
  t.is(fresh.resumed, 0);
  t.deepEqual(listTree(dir), ['.tiles-journal']);
  await fresh.abort({ discard: true });
});

test('resume: false refuses to delete a tiles/ folder histoflow did not create, and keeps the user\'s files', async (t) => {
  const dir = tmp();
  mkdirSync(join(dir, 'tiles'));
  writeFileSync(join(dir, 'tiles', 'thesis.docx'), 'years of work');
  await t.throwsAsync(TileFolderWriter.open(dir, { resume: false }), { message: /Refusing to delete .*tiles .*histoflow did not create it/ });
  t.is(readFileSync(join(dir, 'tiles', 'thesis.docx'), 'utf8'), 'years of work');
});

test('the packed writer is the same TileSink: the tiler can target either and gets the same tiles', async (t) => {
  const dir = tmp();
  const input = tiles(9);
  const file = join(dir, 'tiles.hfpack');
  const sinks: TileSink[] = [await TileFolderWriter.open(join(dir, 'folder')), await PackedWriter.create(file, { height: S, width: S })];
  for (const sink of sinks) {
    await addAll(sink, input);
    await sink.add(one(input.batch, 0), input.meta[0]!); // already there: skipped
    const r = await sink.finish();
    t.like(r, { count: 9, written: 9, skipped: 1 });
  }
  const ds = await PackedDataset.open(file);
  t.deepEqual(ds.pixels, input.batch.data);
  t.deepEqual(Array.from(ds.labels!), input.meta.map((m) => m.label ?? -1));
  t.deepEqual(ds.metadata.records, input.meta.map(({ slide, level, x, y, tissueFraction }) => (tissueFraction === undefined ? { slide, level, x, y } : { slide, level, x, y, tissueFraction })));
  rmSync(dir, { recursive: true });
});

test('bad input is a TypeError or RangeError naming the parameter', async (t) => {
  const dir = tmp();
  await t.throwsAsync(TileFolderWriter.open(dir, { format: 'gif' as never }), { instanceOf: RangeError, message: /options\.format/ });
  await t.throwsAsync(TileFolderWriter.open(dir, { quality: 0 }), { instanceOf: RangeError, message: /options\.quality/ });
  await t.throwsAsync(TileFolderWriter.open(dir, { concurrency: 1.5 }), { instanceOf: RangeError, message: /options\.concurrency/ });
  await t.throwsAsync(TileFolderWriter.open(dir, { threads: 2 } as never), { instanceOf: RangeError, message: /Unknown option 'threads'/ });
  await t.throwsAsync(TileFolderWriter.open(42 as never), { instanceOf: TypeError, message: /dir/ });
  const w = await TileFolderWriter.open(dir);
  const tile = syntheticHE(1, S, S);
  await t.throwsAsync(w.add(syntheticHE(1, S, S + 1), { slide: 'a', level: 0, x: 0, y: 0 }), { instanceOf: RangeError, message: /square tiles/ });
  await t.throwsAsync(w.add(tile, { slide: '', level: 0, x: 0, y: 0 }), { instanceOf: TypeError, message: /meta\.slide/ });
  await t.throwsAsync(w.add(tile, { slide: 'a', level: -1, x: 0, y: 0 }), { instanceOf: RangeError, message: /meta\.level/ });
  await t.throwsAsync(w.add(tile, { slide: 'a', level: 0, x: 0, y: 0, tissueFraction: 2 }), { instanceOf: RangeError, message: /meta\.tissueFraction/ });
  await t.throwsAsync(w.add(tile, { slide: 'a', level: 0, x: 0, y: 0, label: 0.5 }), { instanceOf: RangeError, message: /meta\.label/ });
  await t.throwsAsync(w.add(tile, [] as never), { instanceOf: RangeError, message: /1 tile metadata/ });
  await t.throwsAsync(w.add({ data: new Uint8Array(5), n: 1, height: S, width: S }, { slide: 'a', level: 0, x: 0, y: 0 }), { instanceOf: RangeError, message: /tiles\.data/ });
  // Two slide names that map to one file name are refused rather than overwritten.
  await w.add(tile, { slide: 'a/b', level: 0, x: 0, y: 0 });
  await t.throwsAsync(w.add(tile, { slide: 'a:b', level: 0, x: 0, y: 0 }), { instanceOf: RangeError, message: /distinct as file names/ });
  await w.abort({ discard: true });
});

// ---- label masks -----------------------------------------------------------------------

const LABELS = ['background', 'a', 'b'];

/** n masks of S·S values in 0, 1, 2 and 255. */
function masksFor(n: number): Uint8Array {
  return Uint8Array.from({ length: n * S * S }, (_, i) => [0, 1, 2, 255][(i * 5 + Math.floor(i / (S * S))) % 4]!);
}

async function readMask(path: string): Promise<{ data: Uint8Array; channels: number }> {
  const { channels } = await sharp(path).metadata();
  const data = await sharp(path).extractChannel(0).raw().toBuffer();
  return { data: new Uint8Array(data), channels: channels! };
}

for (const encoder of ['native', 'sharp'] as const) {
  test(`with masks, each tile has STEM.mask.png beside it (8-bit grey, exact), a mask column and masks.json (${encoder} PNG tiles)`, async (t) => {
    const dir = tmp();
    const tl = tiles(9);
    const masks = masksFor(9);
    const w = await TileFolderWriter.open(dir, { png: { encoder: encoder === 'native' ? 'auto' : 'sharp' }, masks: { labels: LABELS, info: { level: 0, mpp: 0.5 } } });
    await w.add(tl.batch, tl.meta, masks);
    const { rows, files } = await w.finish();
    t.deepEqual(files.map((f) => f.slice(dir.length + 1)), ['manifest.csv', 'manifest.json', 'masks.json']);
    const json = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { columns: string[]; masks: string[]; tiles: ManifestRow[] };
    t.deepEqual(json.columns, [...MANIFEST_COLUMNS, 'mask']);
    t.deepEqual(json.masks, LABELS);
    t.deepEqual(JSON.parse(readFileSync(join(dir, 'masks.json'), 'utf8')), { level: 0, mpp: 0.5, labels: LABELS, ignore: 255 });
    t.true(readFileSync(join(dir, 'manifest.csv'), 'utf8').split('\n')[0]!.endsWith(',file,mask'));
    for (const row of rows) {
      const i = tl.meta.findIndex((m) => m.slide === row.slide && m.level === row.level && m.x === row.x && m.y === row.y);
      t.is(row.mask, row.file.replace(/\.png$/, '.mask.png'));
      const m = await readMask(join(dir, row.mask!));
      t.is(m.channels, 1, 'grey');
      t.deepEqual(m.data, masks.subarray(i * S * S, (i + 1) * S * S), row.mask);
    }
    t.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.')), [], 'no journal or temporaries left');
  });
}

test('a masked run whose mask file was lost resumes: that tile is redone, the outputs equal an uninterrupted run', async (t) => {
  const tl = tiles(8);
  const masks = masksFor(8);
  const whole = tmp(), part = tmp();
  const w0 = await TileFolderWriter.open(whole, { masks: { labels: LABELS } });
  await w0.add(tl.batch, tl.meta, masks);
  await w0.finish();
  const w1 = await TileFolderWriter.open(part, { masks: { labels: LABELS } });
  for (let i = 0; i < 5; i++) await w1.add(one(tl.batch, i), tl.meta[i]!, masks.subarray(i * S * S, (i + 1) * S * S));
  await w1.abort();
  const lost = w1.maskFile(tl.meta[2]!);
  rmSync(join(part, lost));
  await t.throwsAsync(TileFolderWriter.open(part), { message: /unfinished run with masks \["background","a","b"\], not off/ });
  const w2 = await TileFolderWriter.open(part, { masks: { labels: LABELS } });
  t.is(w2.resumed, 4);
  t.false(w2.has(tl.meta[2]!));
  for (let i = 0; i < 8; i++) if (!w2.has(tl.meta[i]!)) await w2.add(one(tl.batch, i), tl.meta[i]!, masks.subarray(i * S * S, (i + 1) * S * S));
  await w2.finish();
  for (const f of ['manifest.csv', 'manifest.json', 'masks.json']) t.deepEqual(readFileSync(join(part, f)), readFileSync(join(whole, f)), f);
  t.deepEqual(readFileSync(join(part, lost)), readFileSync(join(whole, lost)));
  // A finished masked folder resumes only with masks.
  await t.throwsAsync(TileFolderWriter.open(part), { message: /finished run with masks/ });
});

test('masks missing, of the wrong size or value, or not asked for are refused naming them', async (t) => {
  const dir = tmp();
  const tl = tiles(2);
  const w = await TileFolderWriter.open(dir, { masks: { labels: LABELS } });
  await t.throwsAsync(w.add(tl.batch, tl.meta), { instanceOf: TypeError, message: /masks/ });
  await t.throwsAsync(w.add(tl.batch, tl.meta, new Uint8Array(S * S)), { instanceOf: RangeError, message: /masks/ });
  const bad = new Uint8Array(2 * S * S);
  bad[S * S + 3] = 7;
  await t.throwsAsync(w.add(tl.batch, tl.meta, bad), { instanceOf: RangeError, message: /for masks\[579\]/ });
  await w.abort({ discard: true });
  const plain = await TileFolderWriter.open(tmp());
  await t.throwsAsync(plain.add(tl.batch, tl.meta, new Uint8Array(2 * S * S)), { instanceOf: RangeError, message: /no masks/ });
  await plain.abort({ discard: true });
  await t.throwsAsync(TileFolderWriter.open(tmp(), { masks: { labels: ['background', 'exclusion'] } }), { instanceOf: RangeError, message: /options\.masks\.labels\[1\]/ });
});
