/**
 * TileSink: where the tiler's output goes. Two implementations behind one
 * interface: TileFolderWriter (PNG/JPEG files + manifest, tile_folder.ts) and
 * PackedWriter (one packed file, packed_writer.ts).
 *
 *   const sink = await TileFolderWriter.open(dir, { format: 'png' });   // or PackedWriter.create(file, …)
 *   for (const t of grid) {
 *     if (sink.has(t)) continue;             // done by an interrupted run: skip the read too
 *     await sink.add(await readTile(t), t); // backpressure: waits while the sink is busy
 *   }
 *   await sink.finish();                      // or sink.abort() on error
 *
 * Resuming: both sinks are resumable and resume by default. A run
 * interrupted at any point (crash, kill, abort) and restarted with the same
 * arguments skips the tiles already complete (`has`, and `add` skips them
 * too) and ends with the same outputs as an uninterrupted run.
 */
import { checkInteger, checkNumber, checkObject, invalidType } from '../errors.js';

/** Where a tile came from and what it is. */
export interface TileMeta {
  /** Slide name (file names derive from it: keep it short). */
  slide: string;
  /** Pyramid level the tile was read at. */
  level: number;
  /** Top-left corner, in pixels of that level. */
  x: number;
  y: number;
  /** Fraction of the tile covered by tissue, 0..1. */
  tissueFraction?: number;
  /** Fraction of the tile covered by its label's annotations, 0..1. */
  labelCoverage?: number;
  /** Class label (an integer ≥ 0), or null / absent when unlabelled. */
  label?: number | null;
}

export interface TileSinkResult {
  /** Tiles in the output (written now + found complete from an earlier run). */
  count: number;
  /** Tiles written by this run. */
  written: number;
  /** Tiles skipped because an earlier run had completed them. */
  skipped: number;
  /** The output files: the packed file, or the manifests. */
  files: string[];
}

export interface TileSink {
  /** Tiles complete so far (including those from a resumed run). */
  readonly completed: number;
  /** True when this tile is already complete (from this run or a resumed one). */
  has(meta: TileMeta): boolean;
  /**
   * Adds tiles: a batch of n with n metas (or one meta for n = 1), and their
   * label masks (n·height·width class indices, src/tiling/masks.ts) when the
   * sink was opened to store masks. Resolves when the sink can take more; the
   * pixels and masks are copied or written before that, so the caller may
   * reuse its buffers.
   */
  add(tiles: { data: Uint8Array; n: number; height: number; width: number }, meta: TileMeta | readonly TileMeta[], masks?: Uint8Array): Promise<void>;
  /** Completes the output (atomically) and says what it holds. */
  finish(): Promise<TileSinkResult>;
  /**
   * Stops: waits for work in flight, leaves no temporary file, keeps what is
   * needed to resume (or, with discard, removes everything this sink wrote).
   */
  abort(options?: { discard?: boolean }): Promise<void>;
}

/** The identity of a tile: a sink holds at most one tile per key. */
export function tileKey(meta: TileMeta): string {
  return `${meta.slide}\u0000${meta.level}\u0000${meta.x}\u0000${meta.y}`;
}

/** Validates one tile's metadata (TypeError / RangeError naming the field). */
export function checkTileMeta(name: string, value: unknown): TileMeta {
  const m = checkObject(name, value);
  if (typeof m.slide !== 'string' || m.slide.length === 0) throw invalidType(`${name}.slide`, 'a non-empty string', m.slide);
  const meta: TileMeta = {
    slide: m.slide,
    level: checkInteger(`${name}.level`, m.level, 0),
    x: checkInteger(`${name}.x`, m.x, 0),
    y: checkInteger(`${name}.y`, m.y, 0),
  };
  if (m.tissueFraction !== undefined) meta.tissueFraction = checkNumber(`${name}.tissueFraction`, m.tissueFraction, 0, 1);
  if (m.label !== undefined && m.label !== null) meta.label = checkInteger(`${name}.label`, m.label, 0, 2 ** 31 - 1);
  if (m.labelCoverage !== undefined) meta.labelCoverage = checkNumber(`${name}.labelCoverage`, m.labelCoverage, 0, 1);
  return meta;
}

/** add()'s arguments as one meta per tile. */
export function tileMetas(n: number, meta: unknown): TileMeta[] {
  const list = Array.isArray(meta) ? meta : [meta];
  if (list.length !== n) {
    throw new RangeError(`Expected ${n} tile metadata entries (one per tile) for meta but received ${list.length}`);
  }
  return list.map((m, i) => checkTileMeta(list.length === 1 ? 'meta' : `meta[${i}]`, m));
}
