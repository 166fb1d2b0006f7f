/**
 * The packed dataset: what PackedWriter writes, PackedDataset reads back
 * exactly, through a memory mapping whose batches are views; corrupt,
 * truncated and lying files are refused with a clear Error; an interrupted
 * writer (killed, or aborted) resumes to a file byte-identical to an
 * uninterrupted run's; bad input is refused at the door.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { loadAddon } from '../../bindings/loader.js';
import { BatchLoader, InMemorySource, epochOrder } from '../../src/augment/loader.js';
import { PackedDataset } from '../../src/dataset/packed.js';
import { PACKED_HEADER_BYTES, encodeHeader, packedLayout } from '../../src/dataset/packed_format.js';
import { PackedWriter } from '../../src/dataset/packed_writer.js';
import type { TileMeta } from '../../src/dataset/tile_sink.js';
import type { RgbBatch } from '../../src/kernels/types.js';
import { syntheticHE } from '../support/helpers.js';

const addon = loadAddon();
const H = 7, W = 13, RB = H * W * 3; // odd sizes: no accidental alignment

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'histoflow-packed-'));
}

/** n records, labels i % 3 (every 5th unlabelled), metadata of a tile grid. */
function records(n: number, seed = 3): { batch: RgbBatch; labels: (number | null)[]; meta: TileMeta[] } {
  const batch = syntheticHE(n, H, W, seed);
  const labels = Array.from({ length: n }, (_, i) => (i % 5 === 4 ? null : i % 3));
  const meta = Array.from({ length: n }, (_, i): TileMeta => ({ slide: i < n / 2 ? 'A' : 'B', level: 0, x: (i % 6) * W, y: Math.floor(i / 6) * H, tissueFraction: (i % 10) / 10 }));
  return { batch, labels, meta };
}

async function writePacked(path: string, n: number, chunkRecords = 5): Promise<ReturnType<typeof records>> {
  const r = records(n);
  const w = await PackedWriter.create(path, { height: H, width: W, info: { source: 'test', n }, chunkRecords });
  // Three appends of uneven sizes.
  const cuts = [0, Math.floor(n / 7) + 1, Math.floor((2 * n) / 3), n];
  for (let c = 0; c < 3; c++) {
    const a = cuts[c]!, b = cuts[c + 1]!;
    if (b <= a) continue;
    await w.append({ data: r.batch.data.subarray(a * RB, b * RB), n: b - a, height: H, width: W }, {
      labels: r.labels.slice(a, b),
      meta: r.meta.slice(a, b).map(({ slide, level, x, y, tissueFraction }, k) => ({ slide, level, x, y, tissueFraction, id: `t${a + k}` })),
    });
  }
  await w.finish();
  return r;
}

test('the writer and the mapped reader round-trip pixels, labels and metadata exactly', async (t) => {
  const dir = tmp();
  const file = join(dir, 'a.hfpack');
  const r = await writePacked(file, 37);
  t.deepEqual(readdirSync(dir), ['a.hfpack'], 'no .partial or journal left');
  const ds = await PackedDataset.open(file);
  t.is(ds.mapped, addon.ok, ds.storage);
  t.is(ds.count, 37);
  t.is(ds.height, H);
  t.is(ds.width, W);
  t.deepEqual(ds.pixels, r.batch.data);
  t.deepEqual(Array.from(ds.labels!), r.labels.map((l) => l ?? -1));
  t.deepEqual(ds.metadata.info, { source: 'test', n: 37 });
  t.deepEqual(ds.record(30), { ...r.meta[30], id: 't30', index: 30, label: r.labels[30] });
  t.is(ds.record(4).label, null);
  t.is(ds.header.pixelOffset % 64, 0);
  t.is(ds.header.labelsOffset % 64, 0);
  ds.close();
});

test('reading into memory (mmap: false) gives the same dataset and says so', async (t) => {
  const file = join(tmp(), 'a.hfpack');
  await writePacked(file, 12);
  const mapped = await PackedDataset.open(file);
  const read = await PackedDataset.open(file, { mmap: false });
  t.false(read.mapped);
  t.regex(read.storage, /read into memory/);
  t.deepEqual(read.pixels, mapped.pixels);
  t.deepEqual(read.labels, mapped.labels);
  t.deepEqual(read.metadata, mapped.metadata);
});

test('batch() is a view of the file memory: the same buffer at the record offset, no copy', async (t) => {
  const file = join(tmp(), 'a.hfpack');
  await writePacked(file, 20);
  const ds = await PackedDataset.open(file);
  const b = ds.batch(5, 4);
  t.is(b.n, 4);
  t.is(b.data.buffer, ds.pixels.buffer);
  t.is(ds.pixels.buffer.byteLength, 20 * RB, 'the buffer is the pixel block itself');
  t.is(b.data.byteOffset, 5 * RB);
  t.is(b.data.length, 4 * RB);
  t.is(ds.batch(5, 1).data.buffer, b.data.buffer);
});

for (const mmap of [true, false]) {
  test(`a pixel block held in segments reads the same, views within a segment and copies across (${mmap ? 'mapped' : 'read'})`, async (t) => {
    const file = join(tmp(), 'a.hfpack');
    const r = await writePacked(file, 23);
    const ds = await PackedDataset.open(file, { mmap, maxSegmentBytes: 5 * RB + 7 });
    t.is(ds.segmentRecords, 5);
    if (mmap) t.regex(ds.storage, /5 segments/);
    t.throws(() => ds.pixels, { message: /5 segments/ });
    const all = ds.gather(Array.from({ length: 23 }, (_, i) => i));
    t.deepEqual(all.data, r.batch.data);
    const inside = ds.batch(10, 5);
    const across = ds.batch(8, 4);
    t.is(inside.data.byteOffset, 0);
    t.is(inside.data.buffer.byteLength, 5 * RB, 'a view of segment 2');
    t.is(across.data.buffer.byteLength, 4 * RB, 'a copy');
    t.deepEqual(across.data, r.batch.data.subarray(8 * RB, 12 * RB));
    t.deepEqual(ds.batch(20, 3).data, r.batch.data.subarray(20 * RB));
    t.deepEqual(Array.from(ds.labels!), r.labels.map((l) => l ?? -1));
    const seen: number[] = [];
    for await (const b of ds.batches({ batchSize: 5 })) {
      t.is(b.batch.data.byteOffset, 0);
      seen.push(...b.indices);
    }
    t.is(seen.length, 23);
    ds.close();
  });
}

test('gather() copies the records in the order asked for', async (t) => {
  const file = join(tmp(), 'a.hfpack');
  const r = await writePacked(file, 20);
  const ds = await PackedDataset.open(file);
  const g = ds.gather([7, 0, 7, 19]);
  t.not(g.data.buffer, ds.pixels.buffer);
  const expected = [7, 0, 7, 19].flatMap((i) => Array.from(r.batch.data.subarray(i * RB, (i + 1) * RB)));
  t.deepEqual(Array.from(g.data), expected);
});

const withAddon = addon.ok ? test : test.skip;
const noAddon = addon.ok ? '' : ` (skipped: ${addon.reason})`;

withAddon(`a file over 4 GiB opens in segments by default, and one mapping over 4 GiB is refused, not a crash${noAddon}`, async (t) => {
  if (!addon.ok) return;
  // A sparse file: the header, labels and metadata of 160 000 96x96 records, the pixels a hole but for the last.
  const T = 96, rb = T * T * 3, n = 160_000;
  const meta = Buffer.from(`{"format":"histoflow-packed","version":1,"info":{},"records":[${new Array(n).fill('{}').join(',')}]}`);
  const layout = packedLayout(n, T, T, 'int32', meta.length);
  t.true(layout.pixelBytes > 2 ** 32);
  const file = join(tmp(), 'big.hfpack');
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, encodeHeader(layout), 0, PACKED_HEADER_BYTES, 0);
    const last = Buffer.alloc(rb, 0);
    for (let i = 0; i < rb; i++) last[i] = (i * 7) & 255;
    writeSync(fd, last, 0, rb, layout.pixelOffset + (n - 1) * rb);
    const labels = Buffer.alloc(layout.labelsBytes);
    labels.writeInt32LE(1, (n - 1) * 4);
    writeSync(fd, labels, 0, labels.length, layout.labelsOffset);
    writeSync(fd, meta, 0, meta.length, layout.metaOffset);
  } finally {
    closeSync(fd);
  }
  t.throws(() => addon.addon.mapFile(file), { instanceOf: RangeError, message: /segments/ });
  t.throws(() => addon.addon.mapFile(file, 0, 2 ** 32 + 1), { instanceOf: RangeError, message: /4294967296/ });
  const ds = await PackedDataset.open(file);
  t.true(ds.mapped);
  t.is(ds.segmentRecords, Math.floor(2 ** 32 / rb));
  const tail = ds.batch(n - 1, 1);
  t.is(tail.data[rb - 1], ((rb - 1) * 7) & 255);
  t.is(tail.data[12345], (12345 * 7) & 255);
  t.is(ds.labels![n - 1], 1);
  const across = ds.batch(ds.segmentRecords - 1, 2);
  t.is(across.data.length, 2 * rb);
  ds.close();
  rmSync(file);
});

test('gather(indices, out) copies into out and refuses an out of the wrong size', async (t) => {
  const file = join(tmp(), 'a.hfpack');
  await writePacked(file, 9);
  const ds = await PackedDataset.open(file);
  const out = new Uint8Array(2 * RB);
  const g = ds.gather([8, 1], out);
  t.is(g.data, out);
  t.deepEqual(g.data, ds.gather([8, 1]).data);
  t.throws(() => ds.gather([8], out), { instanceOf: RangeError, message: /out/ });
  t.throws(() => ds.gather([8, 1], new Float32Array(2 * RB) as never), { instanceOf: TypeError, message: /out/ });
});

test('batches() covers every record once: views in order, epochOrder when shuffled, dropLast drops the tail', async (t) => {
  const file = join(tmp(), 'a.hfpack');
  const r = await writePacked(file, 23);
  const ds = await PackedDataset.open(file);
  const seen: number[] = [];
  for await (const b of ds.batches({ batchSize: 5 })) {
    t.is(b.batch.data.buffer, ds.pixels.buffer);
    t.deepEqual(Array.from(b.labels!), b.indices.map((i) => r.labels[i] ?? -1));
    seen.push(...b.indices);
  }
  t.deepEqual(seen, Array.from({ length: 23 }, (_, i) => i));
  const shuffled: number[] = [];
  for await (const b of ds.batches({ batchSize: 5, shuffle: true, seed: 9, epoch: 2, dropLast: true })) {
    t.is(b.batch.n, 5);
    t.deepEqual(b.batch.data, ds.gather(b.indices).data);
    shuffled.push(...b.indices);
  }
  t.deepEqual(shuffled, Array.from(epochOrder(23, 9, 2).subarray(0, 20)));
});

test('a PackedDataset is a BatchSource: BatchLoader gives the same batches as over the same images in memory', async (t) => {
  const file = join(tmp(), 'a.hfpack');
  const r = await writePacked(file, 21);
  const ds = await PackedDataset.open(file);
  const pipeline = { hed: 'light' as const, normalize: 'imagenet' as const };
  const opts = { batchSize: 8, shuffle: true, seed: 4, backend: 'js' as const };
  const labels = Float32Array.from(r.labels, (l) => l ?? -1);
  const a = [], b = [];
  for await (const x of new BatchLoader(ds, pipeline, opts)) a.push([Array.from(x.data), Array.from(x.labels!)]);
  for await (const x of new BatchLoader(new InMemorySource(r.batch, labels), pipeline, opts)) b.push([Array.from(x.data), Array.from(x.labels!)]);
  t.deepEqual(a, b);
});

test('close() unmaps at once: views handed out become empty and the dataset refuses further reads', async (t) => {
  const file = join(tmp(), 'a.hfpack');
  await writePacked(file, 10);
  const ds = await PackedDataset.open(file);
  const view = ds.batch(0, 10).data;
  t.is(view.length, 10 * RB);
  ds.close();
  t.true(ds.closed);
  if (ds.mapped) t.is(view.length, 0, 'the mapping was detached');
  t.throws(() => ds.batch(0, 1), { message: /closed/ });
  ds.close(); // idempotent
  rmSync(file);
  t.false(existsSync(file));
});

test('a labels: none dataset has no labels block and labelSize 0', async (t) => {
  const file = join(tmp(), 'n.hfpack');
  const w = await PackedWriter.create(file, { height: H, width: W, labels: 'none' });
  await w.append(syntheticHE(3, H, W));
  await w.finish();
  const ds = await PackedDataset.open(file);
  t.is(ds.labels, undefined);
  t.is(ds.labelSize, 0);
  t.is(ds.header.labelsBytes, 0);
  t.is(ds.record(1).label, null);
});

// ---- corrupt files ---------------------------------------------------------------

async function reference(): Promise<{ dir: string; bytes: Buffer }> {
  const dir = tmp();
  await writePacked(join(dir, 'ok.hfpack'), 11);
  return { dir, bytes: readFileSync(join(dir, 'ok.hfpack')) };
}

for (const mmap of [true, false]) {
  const how = mmap ? 'mapped' : 'read';
  test(`truncated files are refused with a clear Error, never read out of bounds (${how})`, async (t) => {
    const { dir, bytes } = await reference();
    for (const size of [0, 10, PACKED_HEADER_BYTES - 1, PACKED_HEADER_BYTES, PACKED_HEADER_BYTES + 5 * RB + 3, bytes.length - 1]) {
      const f = join(dir, `cut${size}.hfpack`);
      writeFileSync(f, bytes.subarray(0, size));
      await t.throwsAsync(PackedDataset.open(f, { mmap }), { message: /not a valid histoflow packed dataset: .*(header|truncated)/ }, `size ${size}`);
    }
  });

  test(`wrong magic, lying counts, odd fields and trailing bytes are refused (${how})`, async (t) => {
    const { dir, bytes } = await reference();
    const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
      ['magic', (b) => (b.write('NOTPACK', 0, 'latin1'), b), /wrong magic/],
      ['count + 1', (b) => (b.writeBigUInt64LE(12n, 24), b), /pixelBytes .* count 12/],
      ['count 2^52', (b) => (b.writeBigUInt64LE(2n ** 52n, 24), b), /pixelBytes/],
      ['count 2^63', (b) => (b.writeBigUInt64LE(2n ** 63n, 24), b), /count .* out of range/],
      ['count and sizes lying together', (b) => {
        b.writeBigUInt64LE(12n, 24);
        b.writeBigUInt64LE(BigInt(12 * RB), 56);
        b.writeBigUInt64LE(48n, 72);
        return b;
      }, /overlaps|truncated|unaligned/],
      ['version', (b) => (b.writeUInt32LE(3, 8), b), /version 3/],
      ['version 2 without masks', (b) => (b.writeUInt32LE(2, 8), b), /maskDtype 0 in a version 2 header/],
      ['label dtype', (b) => (b.writeUInt32LE(7, 40), b), /labelDtype 7/],
      ['channels', (b) => (b.writeUInt32LE(4, 20), b), /channels 4/],
      ['zero height', (b) => (b.writeUInt32LE(0, 32), b), /tile size/],
      ['unfinished', (b) => (b.writeUInt32LE(0, 16), b), /did not finish/],
      ['trailing bytes', (b) => Buffer.concat([b, Buffer.alloc(9)]), /9 unexpected bytes/],
    ];
    for (const [name, corrupt, message] of cases) {
      const f = join(dir, `${name.replace(/\W/g, '_')}.hfpack`);
      writeFileSync(f, corrupt(Buffer.from(bytes)));
      await t.throwsAsync(PackedDataset.open(f, { mmap }), { message }, name);
    }
  });
}

test('a metadata block that is not JSON, or lists the wrong number of records, is an Error when read', async (t) => {
  const { dir, bytes } = await reference();
  const metaOffset = Number(bytes.readBigUInt64LE(80));
  const broken = Buffer.from(bytes);
  broken.write('}', metaOffset, 'latin1');
  writeFileSync(join(dir, 'm1.hfpack'), broken);
  const ds = await PackedDataset.open(join(dir, 'm1.hfpack'));
  t.throws(() => ds.metadata, { message: /metadata block is not JSON/ });
  // One record fewer, padded with JSON whitespace to the same length.
  const meta = JSON.parse(bytes.subarray(metaOffset).toString('utf8')) as { records: unknown[] };
  meta.records.pop();
  const short = Buffer.from(bytes);
  short.write(JSON.stringify(meta).padEnd(bytes.length - metaOffset, ' '), metaOffset, 'utf8');
  writeFileSync(join(dir, 'm2.hfpack'), short);
  const ds2 = await PackedDataset.open(join(dir, 'm2.hfpack'));
  t.throws(() => ds2.metadata, { message: /lists 10 records but the header says 11/ });
});

test('a missing file is an Error naming it', async (t) => {
  await t.throwsAsync(PackedDataset.open('/nonexistent/x.hfpack'), { message: /\/nonexistent\/x\.hfpack/ });
  await t.throwsAsync(PackedDataset.open('/nonexistent/x.hfpack', { mmap: false }), { message: /\/nonexistent\/x\.hfpack/ });
});

// ---- atomicity and resume -------------------------------------------------------------

/** Runs a child that adds tiles 0..k−1 one at a time and is SIGKILLed right after. */
function killedWriter(script: string): void {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.signal !== 'SIGKILL') throw new Error(`the child was expected to be killed: status ${r.status}, ${r.stderr}`);
}

// The children import the compiled package and helpers by URL, from beside this compiled file.
const INDEX = new URL('../../src/index.js', import.meta.url).href;
const HELPERS = new URL('../support/helpers.js', import.meta.url).href;

async function addAll(w: PackedWriter, r: ReturnType<typeof records>): Promise<void> {
  for (let i = 0; i < r.batch.n; i++) {
    if (w.has(r.meta[i]!)) continue;
    await w.add({ data: r.batch.data.subarray(i * RB, (i + 1) * RB), n: 1, height: H, width: W }, { ...r.meta[i]!, label: r.labels[i] });
  }
}

test('a writer killed mid-run leaves no FILE, and resuming it gives a file identical to an uninterrupted run', async (t) => {
  const dir = tmp();
  const r = records(30);
  const whole = join(dir, 'whole.hfpack');
  const w0 = await PackedWriter.create(whole, { height: H, width: W, info: { run: 1 }, chunkRecords: 4 });
  await addAll(w0, r);
  await w0.finish();

  const file = join(dir, 'killed.hfpack');
  killedWriter(`
    import { PackedWriter } from '${INDEX}';
    import { syntheticHE } from '${HELPERS}';
    const batch = syntheticHE(30, ${H}, ${W}, 3);
    const w = await PackedWriter.create(${JSON.stringify(file)}, { height: ${H}, width: ${W}, info: { run: 1 }, chunkRecords: 4 });
    for (let i = 0; i < 17; i++) {
      await w.add({ data: batch.data.subarray(i * ${RB}, (i + 1) * ${RB}), n: 1, height: ${H}, width: ${W} },
        { slide: i < 15 ? 'A' : 'B', level: 0, x: (i % 6) * ${W}, y: Math.floor(i / 6) * ${H}, tissueFraction: (i % 10) / 10, label: i % 5 === 4 ? null : i % 3 });
    }
    process.kill(process.pid, 'SIGKILL');
  `);
  t.false(existsSync(file), 'no finished-looking file after the crash');
  await t.throwsAsync(PackedDataset.open(`${file}.partial`), { message: /did not finish/ });
  // A torn record and a torn journal line on top, as a crash during a flush leaves.
  writeFileSync(`${file}.partial`, Buffer.alloc(RB - 1, 7), { flag: 'a' });
  writeFileSync(`${file}.partial.journal`, '{"label":1,"me', { flag: 'a' });

  const w = await PackedWriter.create(file, { height: H, width: W, info: { run: 1 }, chunkRecords: 4 });
  t.is(w.resumed, 16, 'the 4 full chunks flushed before the kill');
  t.true(w.has(r.meta[15]!));
  t.false(w.has(r.meta[16]!));
  await addAll(w, r);
  const result = await w.finish();
  t.is(result.written, 14);
  t.deepEqual(readFileSync(file), readFileSync(whole));
  t.deepEqual(readdirSync(dir).sort(), ['killed.hfpack', 'whole.hfpack']);
});

test('abort() keeps a resumable .partial pair; abort({ discard: true }) leaves nothing', async (t) => {
  const dir = tmp();
  const r = records(12);
  const file = join(dir, 'a.hfpack');
  const w = await PackedWriter.create(file, { height: H, width: W, chunkRecords: 5 });
  await w.append({ data: r.batch.data.subarray(0, 7 * RB), n: 7, height: H, width: W }, { meta: r.meta.slice(0, 7) });
  await w.abort();
  t.deepEqual(readdirSync(dir).sort(), ['a.hfpack.partial', 'a.hfpack.partial.journal']);
  t.throws(() => w.append(r.batch), { message: /aborted/ });
  const w2 = await PackedWriter.create(file, { height: H, width: W, chunkRecords: 5 });
  t.is(w2.resumed, 7, 'abort flushed the buffered records');
  await w2.abort({ discard: true });
  t.deepEqual(readdirSync(dir), []);
});

test('a .partial cut short of its header (killed right after creating it) resumes from zero', async (t) => {
  const dir = tmp();
  const file = join(dir, 'a.hfpack');
  const w = await PackedWriter.create(file, { height: H, width: W });
  await w.abort();
  writeFileSync(`${file}.partial`, Buffer.alloc(0));
  const again = await PackedWriter.create(file, { height: H, width: W });
  t.is(again.resumed, 0);
  await again.append(syntheticHE(2, H, W));
  await again.finish();
  t.deepEqual((await PackedDataset.open(file)).pixels, syntheticHE(2, H, W).data);
});

test('resuming with other settings is refused; resume: false starts over', async (t) => {
  const dir = tmp();
  const file = join(dir, 'a.hfpack');
  const w = await PackedWriter.create(file, { height: H, width: W, chunkRecords: 1 });
  await w.append(syntheticHE(2, H, W));
  await w.abort();
  await t.throwsAsync(PackedWriter.create(file, { height: H + 1, width: W }), { message: /started with height 7, not 8/ });
  await t.throwsAsync(PackedWriter.create(file, { height: H, width: W, labels: 'uint8' }), { message: /labels int32, not uint8/ });
  const fresh = await PackedWriter.create(file, { height: H + 1, width: W, resume: false });
  t.is(fresh.resumed, 0);
  await fresh.finish();
  t.is((await PackedDataset.open(file)).count, 0);
  await t.throwsAsync(PackedWriter.create(file, { height: H, width: W }), { message: /already exists; pass overwrite: true/ });
});

test('bad writer input is a TypeError or RangeError naming the parameter', async (t) => {
  const dir = tmp();
  await t.throwsAsync(PackedWriter.create(join(dir, 'x'), { height: 0, width: 4 }), { instanceOf: RangeError, message: /options\.height/ });
  await t.throwsAsync(PackedWriter.create(join(dir, 'x'), { height: 4, width: 4, labels: 'float' as never }), { instanceOf: RangeError, message: /options\.labels/ });
  await t.throwsAsync(PackedWriter.create(join(dir, 'x'), { height: 4, width: 4, colour: true } as never), { instanceOf: RangeError, message: /Unknown option 'colour'/ });
  await t.throwsAsync(PackedWriter.create('' as string, { height: 4, width: 4 }), { instanceOf: TypeError, message: /path/ });
  const w = await PackedWriter.create(join(dir, 'x'), { height: 4, width: 4, labels: 'uint8' });
  t.throws(() => w.append(syntheticHE(1, 5, 4), { labels: [1] }), { instanceOf: RangeError, message: /tiles of 4x4/ });
  t.throws(() => w.append({ data: new Uint8Array(47), n: 1, height: 4, width: 4 }), { instanceOf: RangeError, message: /batch\.data/ });
  t.throws(() => w.append(syntheticHE(2, 4, 4), { labels: [1, 256] }), { instanceOf: RangeError, message: /records\.labels\[1\]/ });
  t.throws(() => w.append(syntheticHE(2, 4, 4)), { instanceOf: TypeError, message: /records\.labels/ });
  t.throws(() => w.append(syntheticHE(2, 4, 4), { labels: [1] }), { instanceOf: RangeError, message: /records\.labels/ });
  t.throws(() => w.append(syntheticHE(1, 4, 4), { labels: [1], meta: [{ x: -1 }] }), { instanceOf: RangeError, message: /records\.meta\[0\]\.x/ });
  t.throws(() => w.add(syntheticHE(1, 4, 4), { slide: 'a', level: 0, x: 0, y: 0 }), { instanceOf: RangeError, message: /meta\.label/ });
  t.throws(() => w.add(syntheticHE(2, 4, 4), [{ slide: 'a', level: 0, x: 0, y: 0, label: 1 }]), { instanceOf: RangeError, message: /2 tile metadata/ });
  await w.abort({ discard: true });
  const ok = join(dir, 'ok');
  const w2 = await PackedWriter.create(ok, { height: 4, width: 4 });
  await w2.append(syntheticHE(3, 4, 4));
  await w2.finish();
  const ds = await PackedDataset.open(ok);
  t.throws(() => ds.batch(2, 2), { instanceOf: RangeError, message: /count/ });
  t.throws(() => ds.batch(-1, 1), { instanceOf: RangeError, message: /start/ });
  t.throws(() => ds.gather([0, 3]), { instanceOf: RangeError, message: /indices\[1\]/ });
  await t.throwsAsync(PackedDataset.open(join(dir, 'ok'), { map: true } as never), { instanceOf: RangeError, message: /Unknown option 'map'/ });
});

// Issue 14: a mapped file changed on disk must give a clear Error, never
// SIGBUS. Each case runs in a child process, so a regression fails the test
// instead of killing the ava worker.
const packedUrl = new URL('../../src/dataset/packed.js', import.meta.url).href;

function inChild(body: string): { status: number | null; signal: NodeJS.Signals | null; out: string } {
  const code = `
    import { copyFileSync, renameSync, truncateSync } from 'node:fs';
    import { PackedDataset } from ${JSON.stringify(packedUrl)};
    const sum = (a) => a.reduce((s, v) => s + v, 0);
    ${body}
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}

const mappedOnly = addon.ok ? test : test.skip;

mappedOnly('a mapped file truncated while open: the next read is an Error saying so, and earlier views become empty', async (t) => {
  const file = join(tmp(), 'a.hfpack');
  await writePacked(file, 300);
  const r = inChild(`
    const ds = await PackedDataset.open(${JSON.stringify(file)});
    if (!ds.mapped) { console.log('NOT MAPPED'); process.exit(0); }
    const early = ds.batch(0, ds.count).data;
    truncateSync(${JSON.stringify(file)}, 0);
    try { console.log('READ ' + sum(ds.batch(0, ds.count).data)); } catch (e) { console.log('BATCH ' + e.message); }
    console.log('EARLY ' + early.length);
    try { ds.gather([1, 2]); } catch (e) { console.log('GATHER ' + e.message); }
  `);
  t.is(r.status, 0, r.out);
  t.regex(r.out, /BATCH .*a\.hfpack changed on disk while memory-mapped \(its size went from \d+ to 0 bytes\)/);
  t.regex(r.out, /EARLY 0/);
  t.regex(r.out, /GATHER .*changed on disk/);
});

mappedOnly('a mapped file overwritten in place (cp other open.hfpack) is an Error on the next read', async (t) => {
  const dir = tmp();
  const file = join(dir, 'a.hfpack'), other = join(dir, 'b.hfpack');
  await writePacked(file, 300);
  await writePacked(other, 40);
  const r = inChild(`
    const ds = await PackedDataset.open(${JSON.stringify(file)});
    copyFileSync(${JSON.stringify(other)}, ${JSON.stringify(file)});
    try { console.log('READ ' + sum(ds.batch(0, ds.count).data)); } catch (e) { console.log('BATCH ' + e.message); }
  `);
  t.is(r.status, 0, r.out);
  t.regex(r.out, /BATCH .*changed on disk while memory-mapped/);
});

mappedOnly('a mapped file replaced by rename keeps reading the file that was opened', async (t) => {
  const dir = tmp();
  const file = join(dir, 'a.hfpack'), other = join(dir, 'b.hfpack');
  const r0 = await writePacked(file, 30);
  await writePacked(other, 12);
  const expected = r0.batch.data.reduce((s, v) => s + v, 0);
  const r = inChild(`
    const ds = await PackedDataset.open(${JSON.stringify(file)});
    renameSync(${JSON.stringify(other)}, ${JSON.stringify(file)});
    console.log('READ ' + sum(ds.batch(0, ds.count).data));
  `);
  t.is(r.status, 0, r.out);
  t.regex(r.out, new RegExp(`READ ${expected}\\b`));
});

test('a file opened with mmap: false is unaffected by a truncation after open', async (t) => {
  const file = join(tmp(), 'a.hfpack');
  const r0 = await writePacked(file, 30);
  const ds = await PackedDataset.open(file, { mmap: false });
  writeFileSync(file, '');
  t.deepEqual(ds.batch(0, 30).data, r0.batch.data);
});

// ---- label masks (version 2) ---------------------------------------------------------

const MASK_LABELS = ['background', 'a', 'b'];

/** n masks of H·W values in 0, 1, 2 and 255 (ignore). */
function masksOf(n: number, seed = 5): Uint8Array {
  const values = [0, 1, 2, 255];
  return Uint8Array.from({ length: n * H * W }, (_, i) => values[(i * 7 + seed * (1 + Math.floor(i / (H * W)))) % 4]!);
}

async function writeMasked(path: string, n: number, chunkRecords = 4): Promise<{ r: ReturnType<typeof records>; masks: Uint8Array }> {
  const r = records(n);
  const masks = masksOf(n);
  const w = await PackedWriter.create(path, { height: H, width: W, chunkRecords, masks: { labels: MASK_LABELS } });
  for (let i = 0; i < n; i++) {
    await w.add({ data: r.batch.data.subarray(i * RB, (i + 1) * RB), n: 1, height: H, width: W }, { ...r.meta[i]!, label: r.labels[i] },
      masks.subarray(i * H * W, (i + 1) * H * W));
  }
  await w.finish();
  return { r, masks };
}

for (const mmap of [true, false]) {
  test(`a writer with masks writes a version 2 file whose masks read back exactly, alongside the same pixels and labels (${mmap ? 'mapped' : 'read'})`, async (t) => {
    const dir = tmp();
    const file = join(dir, 'm.hfpack');
    const { r, masks } = await writeMasked(file, 23);
    t.deepEqual(readdirSync(dir), ['m.hfpack'], 'no .partial, journal or masks file left');
    // Segments of 5 records' pixels and 13 records' masks: reads cross segment ends.
    const ds = await PackedDataset.open(file, { mmap, maxSegmentBytes: 5 * RB + 2 });
    t.is(ds.header.version, 2);
    t.true(ds.hasMasks);
    t.deepEqual(ds.maskLabels, MASK_LABELS);
    t.deepEqual(ds.metadata.masks, { labels: MASK_LABELS, ignore: 255 });
    t.deepEqual(ds.gather(Array.from({ length: 23 }, (_, i) => i)).data, r.batch.data);
    t.deepEqual(Array.from(ds.labels!), r.labels.map((l) => l ?? -1));
    t.deepEqual(ds.readMasks(Array.from({ length: 23 }, (_, i) => i)), masks);
    const some = ds.readMasks([14, 2, 22]);
    t.deepEqual(some, Uint8Array.from([...masks.subarray(14 * H * W, 15 * H * W), ...masks.subarray(2 * H * W, 3 * H * W), ...masks.subarray(22 * H * W, 23 * H * W)]));
    const out = new Uint8Array(H * W);
    t.is(ds.readMasks([3], out), out);
    t.throws(() => ds.readMasks([23]), { instanceOf: RangeError, message: /indices\[0\]/ });
    t.throws(() => ds.readMasks([0], new Uint8Array(3)), { instanceOf: RangeError, message: /out/ });
    ds.close();
  });
}

test('a file without masks stays version 1 with its reserved bytes zero, and says it has no masks', async (t) => {
  const file = join(tmp(), 'plain.hfpack');
  await writePacked(file, 9);
  const bytes = readFileSync(file);
  t.is(bytes.readUInt32LE(8), 1);
  t.true(bytes.subarray(44, 48).every((b) => b === 0) && bytes.subarray(96, 128).every((b) => b === 0));
  const ds = await PackedDataset.open(file);
  t.false(ds.hasMasks);
  t.is(ds.maskLabels, null);
  t.throws(() => ds.readMasks([0]), { message: /plain\.hfpack holds no label masks \(tile it again with --masks\)/ });
  ds.close();
});

test('version 2 files whose masks block lies are refused with a clear Error', async (t) => {
  const dir = tmp();
  const file = join(dir, 'm.hfpack');
  await writeMasked(file, 11);
  const bytes = readFileSync(file);
  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['maskDtype', (b) => (b.writeUInt32LE(0, 44), b), /maskDtype 0/],
    ['masksBytes', (b) => (b.writeBigUInt64LE(BigInt(10 * H * W), 104), b), /masksBytes/],
    ['masksOffset overlapping labels', (b) => (b.writeBigUInt64LE(b.readBigUInt64LE(64), 96), b), /masksOffset .* overlaps/],
    ['masksOffset unaligned', (b) => (b.writeBigUInt64LE(b.readBigUInt64LE(96) + 1n, 96), b), /masksOffset/],
    ['truncated', (b) => b.subarray(0, b.length - 3), /truncated/],
  ];
  for (const [name, corrupt, message] of cases) {
    const f = join(dir, `${name.replace(/\W/g, '_')}.hfpack`);
    writeFileSync(f, corrupt(Buffer.from(bytes)));
    await t.throwsAsync(PackedDataset.open(f), { message }, name);
  }
});

test('a masked writer cut short (masks behind the pixels) resumes to a file identical to an uninterrupted run', async (t) => {
  const dir = tmp();
  const whole = join(dir, 'whole.hfpack');
  const { r, masks } = await writeMasked(whole, 14);
  const file = join(dir, 'cut.hfpack');
  const w = await PackedWriter.create(file, { height: H, width: W, chunkRecords: 4, masks: { labels: MASK_LABELS } });
  for (let i = 0; i < 10; i++) {
    await w.add({ data: r.batch.data.subarray(i * RB, (i + 1) * RB), n: 1, height: H, width: W }, { ...r.meta[i]!, label: r.labels[i] },
      masks.subarray(i * H * W, (i + 1) * H * W));
  }
  await w.abort();
  t.deepEqual(readdirSync(dir).sort(), ['cut.hfpack.partial', 'cut.hfpack.partial.journal', 'cut.hfpack.partial.masks', 'whole.hfpack']);
  // A crash between the pixels' fsync and the masks': only 6 records' masks (and a torn seventh) reached the disk.
  writeFileSync(`${file}.partial.masks`, readFileSync(`${file}.partial.masks`).subarray(0, 6 * H * W + 5));
  await t.throwsAsync(PackedWriter.create(file, { height: H, width: W, chunkRecords: 4 }), { message: /started with masks \["background","a","b"\], not off/ });
  const again = await PackedWriter.create(file, { height: H, width: W, chunkRecords: 4, masks: { labels: MASK_LABELS } });
  t.is(again.resumed, 6);
  for (let i = 0; i < 14; i++) {
    if (again.has(r.meta[i]!)) continue;
    await again.add({ data: r.batch.data.subarray(i * RB, (i + 1) * RB), n: 1, height: H, width: W }, { ...r.meta[i]!, label: r.labels[i] },
      masks.subarray(i * H * W, (i + 1) * H * W));
  }
  await again.finish();
  t.deepEqual(readFileSync(file), readFileSync(whole));
});

test('masks of the wrong size or value, or masks a writer was not created for, are refused naming them', async (t) => {
  const dir = tmp();
  const r = records(2);
  const tile = { data: r.batch.data.subarray(0, RB), n: 1, height: H, width: W };
  const w = await PackedWriter.create(join(dir, 'm.hfpack'), { height: H, width: W, masks: { labels: MASK_LABELS } });
  t.throws(() => w.add(tile, r.meta[0]!), { instanceOf: TypeError, message: /masks/ });
  t.throws(() => w.add(tile, r.meta[0]!, new Uint8Array(H * W - 1)), { instanceOf: RangeError, message: /masks/ });
  const bad = new Uint8Array(H * W);
  bad[17] = 3;
  t.throws(() => w.add(tile, r.meta[0]!, bad), { instanceOf: RangeError, message: /below 3 or 255 \(ignore\) for masks\[17\]/ });
  t.throws(() => w.append(tile, { masks: bad }), { instanceOf: RangeError, message: /records\.masks\[17\]/ });
  await w.abort({ discard: true });
  const plain = await PackedWriter.create(join(dir, 'p.hfpack'), { height: H, width: W });
  t.throws(() => plain.add(tile, r.meta[0]!, new Uint8Array(H * W)), { instanceOf: RangeError, message: /no masks/ });
  await plain.abort({ discard: true });
  await t.throwsAsync(PackedWriter.create(join(dir, 'x.hfpack'), { height: H, width: W, masks: { labels: ['a'] } }), { instanceOf: RangeError, message: /options\.masks\.labels\[0\]/ });
  t.deepEqual(readdirSync(dir), []);
});
