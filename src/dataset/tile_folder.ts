/**
 * TileFolderWriter: the tiler's folder output, a TileSink (tile_sink.ts).
 *
 *   DIR/tiles/SLIDE/SLIDE_L<level>_x<x>_y<y>.png|jpg   one file per tile
 *   DIR/manifest.csv    slide,level,x,y,size,tissue_fraction,label,label_coverage,file
 *   DIR/manifest.json   { format, quality, count, columns, tiles: [ {same columns} ] }
 *
 * `file` is relative to DIR; an absent tissue fraction or label is an empty
 * CSV field and null in JSON. Rows are sorted by slide, level, y, x, so the
 * manifests do not depend on the order encodes finished in.
 *
 * With `masks` (tile --masks), each tile STEM.png|jpg has its label mask
 * beside it, STEM.mask.png (8-bit grey PNG, lossless, the tile's size: class
 * indices, 255 = ignore; src/tiling/masks.ts), the manifests gain a last
 * column `mask` (its file, relative to DIR) and finish() writes
 * DIR/masks.json: { labels: ['background', …], ignore: 255, …options.masks.info }.
 *
 * Atomic: each tile is encoded to a temporary `.NAME.RANDOM.tmp` and renamed
 * (image.ts writeImage); the manifests are written once, at finish(), the
 * same way. Until then the record of finished tiles is DIR/.tiles-journal
 * (newline-delimited JSON: a settings line, then one row per tile appended
 * after its rename (and its mask's), with its size in bytes).
 *
 * Resumable (the default): open() on a DIR with a journal checks the settings
 * match, keeps the rows whose file exists with the journalled size (so a tile
 * lost or truncated by a power cut is redone), drops a torn last line,
 * removes stray .tmp files, and `has()` / `add()` skip those tiles. A DIR
 * already finished (manifest.json, no journal) resumes from its manifest.
 * Either way the final manifests equal an uninterrupted run's.
 *
 * Parallel: PNG tiles of one add() are encoded in one call of the addon's
 * batched encoder (src/codec/png.ts: every tile on the core's threads) when
 * it is built, then written; otherwise, and for JPEG, up to `concurrency`
 * sharp encodes are in flight (on libvips threads). add() waits for a free
 * slot, so memory stays bounded, and is done with the caller's pixels (copied
 * or encoded) when it returns.
 *
 * abort() waits for the encodes in flight (each ends renamed or removed) and
 * leaves complete tiles and the journal, for a later resume; abort({ discard:
 * true }) also removes the journalled tiles and the journal.
 */
import { availableParallelism } from 'node:os';
import { open, readdir, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import sharp from 'sharp';

import { checkBoolean, checkInteger, checkKnownKeys, checkObject, checkOneOf, invalidRange, invalidType } from '../errors.js';
import { MASK_IGNORE, checkMaskLabels } from '../tiling/masks.js';
import { checkPngOptions, writePngFiles, type PngOptions, type ResolvedPngOptions } from '../codec/png.js';
import { csvText } from '../csv.js';
import { OWNED_MARKER, isOwnedDirectory, makeDirectory, makeOwnedDirectory } from '../output.js';
import { checkBatch, imageAt, stackImages, writeFileAtomic, writeImage } from '../image.js';
import type { RgbBatch } from '../kernels/types.js';
import { tileKey, tileMetas, type TileMeta, type TileSink, type TileSinkResult } from './tile_sink.js';

export const TILE_FORMATS = ['png', 'jpeg'] as const;
export type TileFormat = (typeof TILE_FORMATS)[number];
export const MANIFEST_COLUMNS = ['slide', 'level', 'x', 'y', 'size', 'tissue_fraction', 'label', 'label_coverage', 'file'] as const;
/** The manifests' columns with masks: the mask file last. */
export const MASK_MANIFEST_COLUMNS = [...MANIFEST_COLUMNS, 'mask'] as const;
/** The folder's mask description (labels, ignore value, level, µm/px), written by finish() with masks. */
export const MASKS_FILE = 'masks.json';

export interface TileFolderOptions {
  /** 'png' (lossless, default) or 'jpeg'. */
  format?: TileFormat;
  /** JPEG quality 1..100 (default 90); ignored for PNG. */
  quality?: number;
  /** Encodes in flight, 1..64. Default: the CPU count, at most 8. */
  concurrency?: number;
  /** Continue an interrupted run in DIR (default true); false removes its tiles, journal and manifests first. */
  resume?: boolean;
  /** PNG compression level, row filter and encoder (src/codec/png.ts); lossless whatever the choice. */
  png?: PngOptions;
  /**
   * Write a label mask beside every tile (add() then takes them): `labels`
   * name the mask values ('background' first); `info` (level, downsample,
   * mpp, …) is copied into masks.json.
   */
  masks?: { labels: readonly string[]; info?: Record<string, unknown> };
}

/** One manifest row (the CSV's columns). */
export interface ManifestRow {
  slide: string;
  level: number;
  x: number;
  y: number;
  size: number;
  tissue_fraction: number | null;
  /** Fraction of the tile its label's annotations cover (null when unlabelled). */
  label_coverage: number | null;
  label: number | null;
  /** Relative to DIR, '/'-separated. */
  file: string;
  /** The label mask's file, relative to DIR (folders written with masks only). */
  mask?: string;
}

interface JournalRow extends ManifestRow {
  bytes: number;
  /** The mask file's size (with masks). */
  mask_bytes?: number;
}

const OPTION_KEYS = ['format', 'quality', 'concurrency', 'resume', 'png', 'masks'];
const JOURNAL = '.tiles-journal';
const JOURNAL_KIND = 'histoflow-tiles-journal';

/** A slide name as a file-name component: [A-Za-z0-9._-] only, never hidden or empty. */
export function safeName(slide: string): string {
  const s = slide.replace(/[^A-Za-z0-9._-]/g, '_');
  return s.length === 0 || s.startsWith('.') ? `_${s}` : s;
}

export function manifestCsv(rows: readonly ManifestRow[], columns: readonly (keyof ManifestRow)[] = MANIFEST_COLUMNS): string {
  return csvText(columns as string[], rows.map((r) => columns.map((c) => r[c] ?? null)));
}

/** Writes a label mask as an 8-bit grey PNG, atomically; resolves to its size in bytes. */
async function writeMaskPng(path: string, mask: Uint8Array, width: number, height: number): Promise<number> {
  // b-w: without it sharp writes one raw channel as an RGB PNG.
  const png = await sharp(Buffer.from(mask.buffer, mask.byteOffset, mask.byteLength), { raw: { width, height, channels: 1 } })
    .toColourspace('b-w')
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toBuffer();
  await writeFileAtomic(path, png);
  return png.length;
}

function compareRows(a: ManifestRow, b: ManifestRow): number {
  if (a.slide !== b.slide) return a.slide < b.slide ? -1 : 1;
  return a.level - b.level || a.y - b.y || a.x - b.x;
}

/** Manifests and the journal: resumed runs trust them, so they reach the disk before the rename. */
function writeAtomic(path: string, text: string): Promise<void> {
  return writeFileAtomic(path, text, { sync: true });
}

function toRow(r: Record<string, unknown>): JournalRow | undefined {
  const ok = typeof r.slide === 'string' && [r.level, r.x, r.y, r.size].every(Number.isInteger) && typeof r.file === 'string'
    && (r.tissue_fraction === null || typeof r.tissue_fraction === 'number') && (r.label === null || Number.isInteger(r.label))
    && (r.label_coverage === undefined || r.label_coverage === null || typeof r.label_coverage === 'number');
  if (!ok) return undefined;
  return {
    slide: r.slide as string, level: r.level as number, x: r.x as number, y: r.y as number, size: r.size as number,
    tissue_fraction: r.tissue_fraction as number | null, label: r.label as number | null,
    label_coverage: (r.label_coverage as number | null | undefined) ?? null, file: r.file as string,
    bytes: typeof r.bytes === 'number' ? r.bytes : -1,
    ...(typeof r.mask === 'string' ? { mask: r.mask, mask_bytes: typeof r.mask_bytes === 'number' ? r.mask_bytes : -1 } : {}),
  };
}

export class TileFolderWriter implements TileSink {
  readonly dir: string;
  readonly format: TileFormat;
  readonly quality: number;
  readonly concurrency: number;
  /** How PNG tiles are encoded (level, filter, native or sharp). */
  readonly png: ResolvedPngOptions;
  /** The mask labels, or null when the folder has no masks. */
  readonly maskLabels: string[] | null;
  readonly #maskInfo: Record<string, unknown>;
  /** Tiles kept from an interrupted (or finished) run when this writer opened. */
  readonly resumed: number;
  /** Finished tiles by key. */
  readonly #rows = new Map<string, JournalRow>();
  /** Keys added (finished or in flight), and the key owning each file. */
  readonly #keys = new Set<string>();
  readonly #files = new Map<string, string>();
  #journal: FileHandle | undefined;
  #journalTail: Promise<unknown> = Promise.resolve();
  #inFlight = new Set<Promise<void>>();
  #error: unknown;
  #written = 0;
  /** Folders known to exist (tiles of one slide share one). */
  #dirs = new Set<string>();
  #skipped = 0;
  #state: 'open' | 'finished' | 'aborted' = 'open';

  private constructor(
    dir: string, format: TileFormat, quality: number, concurrency: number, kept: JournalRow[], png: ResolvedPngOptions,
    masks: { labels: string[]; info: Record<string, unknown> } | null,
  ) {
    this.dir = dir;
    this.png = png;
    this.maskLabels = masks?.labels ?? null;
    this.#maskInfo = masks?.info ?? {};
    this.format = format;
    this.quality = quality;
    this.concurrency = concurrency;
    for (const r of kept) {
      const key = tileKey(r);
      this.#rows.set(key, r);
      this.#keys.add(key);
      this.#files.set(r.file, key);
    }
    this.resumed = kept.length;
  }

  static async open(dir: string, options: TileFolderOptions = {}): Promise<TileFolderWriter> {
    if (typeof dir !== 'string' || dir.length === 0) throw invalidType('dir', 'a directory path', dir);
    const o = checkObject('options', options);
    checkKnownKeys('options', o, OPTION_KEYS);
    const format = o.format === undefined ? 'png' : checkOneOf('options.format', o.format, TILE_FORMATS);
    const quality = o.quality === undefined ? 90 : checkInteger('options.quality', o.quality, 1, 100);
    const concurrency = o.concurrency === undefined
      ? Math.max(1, Math.min(8, availableParallelism()))
      : checkInteger('options.concurrency', o.concurrency, 1, 64);
    const resume = o.resume === undefined ? true : checkBoolean('options.resume', o.resume);
    const png = checkPngOptions(o.png === undefined ? {} : o.png);
    let masks: { labels: string[]; info: Record<string, unknown> } | null = null;
    if (o.masks !== undefined) {
      const m = checkObject('options.masks', o.masks);
      checkKnownKeys('options.masks', m, ['labels', 'info']);
      masks = { labels: checkMaskLabels('options.masks.labels', m.labels).slice(), info: m.info === undefined ? {} : checkObject('options.masks.info', m.info) };
      JSON.stringify(masks.info);
    }
    const settings = {
      kind: JOURNAL_KIND, version: 1, format, quality: format === 'jpeg' ? quality : null, ...(masks ? { masks: masks.labels } : {}),
    };
    await makeDirectory(dir, 'dir');
    const journal = join(dir, JOURNAL);
    const tiles = join(dir, 'tiles');
    let kept: JournalRow[] = [];
    if (!resume) {
      // Only a tiles/ folder histoflow created (it holds the marker) is deleted whole.
      if ((await stat(tiles).catch(() => undefined)) !== undefined && !(await isOwnedDirectory(tiles))) {
        throw new Error(`Refusing to delete ${tiles} for resume: false (--no-resume): histoflow did not create it (no ${OWNED_MARKER} in it); ` +
          'move it away or choose another output folder');
      }
      for (const p of [tiles, journal, join(dir, 'manifest.csv'), join(dir, 'manifest.json'), join(dir, MASKS_FILE)]) {
        await rm(p, { recursive: true, force: true });
      }
    } else {
      kept = await TileFolderWriter.#recover(dir, settings);
    }
    await makeOwnedDirectory(tiles, 'dir');
    const writer = new TileFolderWriter(dir, format, quality, concurrency, kept, png, masks);
    // A fresh journal holding exactly the kept rows: torn lines and lost tiles are gone.
    const lines = [JSON.stringify(settings), ...kept.map((r) => JSON.stringify(r))];
    await writeAtomic(journal, `${lines.join('\n')}\n`);
    writer.#journal = await open(journal, 'a');
    return writer;
  }

  /** The rows of an earlier run whose files are intact; removes its stray temporaries. */
  static async #recover(dir: string, settings: { format: TileFormat; quality: number | null; masks?: string[] }): Promise<JournalRow[]> {
    const masksOf = (labels: unknown) => (labels === undefined || labels === null ? 'off' : JSON.stringify(labels));
    const wantMasks = masksOf(settings.masks);
    const journal = join(dir, JOURNAL);
    let candidates: JournalRow[] = [];
    const text = await readFile(journal, 'utf8').catch(() => undefined);
    if (text !== undefined) {
      const lines = text.split('\n');
      lines.pop(); // empty, or a torn last line
      const first = (() => {
        try {
          return JSON.parse(lines[0] ?? '') as Record<string, unknown>;
        } catch {
          return undefined;
        }
      })();
      if (!first || first.kind !== JOURNAL_KIND) throw new Error(`${journal} is not a histoflow tile journal; remove it or pass resume: false`);
      if (first.format !== settings.format || first.quality !== settings.quality) {
        throw new Error(`${dir} holds an unfinished run with format ${String(first.format)}` +
          `${first.quality === null ? '' : `, quality ${String(first.quality)}`}; pass the same options, or resume: false to start over`);
      }
      if (masksOf(first.masks) !== wantMasks) {
        throw new Error(`${dir} holds an unfinished run with masks ${masksOf(first.masks)}, not ${wantMasks}; pass the same options, or resume: false to start over`);
      }
      for (const line of lines.slice(1)) {
        try {
          const row = toRow(JSON.parse(line) as Record<string, unknown>);
          if (row) candidates.push(row);
        } catch {
          // an unparsable line: a crash mid-append
        }
      }
    } else {
      const manifest = await readFile(join(dir, 'manifest.json'), 'utf8').catch(() => undefined);
      if (manifest !== undefined) {
        const m = JSON.parse(manifest) as { format?: unknown; quality?: unknown; tiles?: unknown; masks?: unknown };
        if (m.format !== settings.format || (m.quality ?? null) !== settings.quality) {
          throw new Error(`${dir} holds a finished run with format ${String(m.format)}; pass the same options, or resume: false to start over`);
        }
        if (masksOf(m.masks) !== wantMasks) {
          throw new Error(`${dir} holds a finished run with masks ${masksOf(m.masks)}, not ${wantMasks}; pass the same options, or resume: false to start over`);
        }
        if (Array.isArray(m.tiles)) candidates = m.tiles.map((t) => toRow(t as Record<string, unknown>)).filter((r): r is JournalRow => !!r);
      }
    }
    const kept: JournalRow[] = [];
    await Promise.all(candidates.map(async (r) => {
      const s = await stat(join(dir, r.file)).catch(() => undefined);
      if (!(s && s.isFile() && s.size > 0 && (r.bytes < 0 || s.size === r.bytes))) return;
      if (settings.masks) {
        if (r.mask === undefined) return;
        const ms = await stat(join(dir, r.mask)).catch(() => undefined);
        if (!(ms && ms.isFile() && ms.size > 0 && (r.mask_bytes === undefined || r.mask_bytes < 0 || ms.size === r.mask_bytes))) return;
        kept.push({ ...r, bytes: s.size, mask_bytes: ms.size });
      } else {
        const { mask: _m, mask_bytes: _mb, ...row } = r;
        kept.push({ ...row, bytes: s.size });
      }
    }));
    // Last entry wins for a tile journalled twice.
    const byKey = new Map(kept.sort(compareRows).map((r) => [tileKey(r), r]));
    await TileFolderWriter.#removeTemporaries(join(dir, 'tiles'));
    return [...byKey.values()];
  }

  static async #removeTemporaries(tiles: string): Promise<void> {
    const slides = await readdir(tiles, { withFileTypes: true }).catch(() => []);
    for (const d of slides) {
      if (!d.isDirectory()) continue;
      const files = await readdir(join(tiles, d.name)).catch(() => [] as string[]);
      await Promise.all(files.filter((f) => f.startsWith('.') && f.endsWith('.tmp')).map((f) => rm(join(tiles, d.name, f), { force: true })));
    }
  }

  get completed(): number {
    return this.#rows.size;
  }

  has(meta: TileMeta): boolean {
    return this.#keys.has(tileKey(meta));
  }

  /** The file a tile goes to, relative to DIR. */
  tileFile(meta: TileMeta): string {
    const slide = safeName(meta.slide);
    return `tiles/${slide}/${slide}_L${meta.level}_x${meta.x}_y${meta.y}.${this.format === 'jpeg' ? 'jpg' : 'png'}`;
  }

  /** The file a tile's label mask goes to, relative to DIR: STEM.mask.png beside the tile. */
  maskFile(meta: TileMeta): string {
    return this.tileFile(meta).replace(/\.(png|jpg)$/, '.mask.png');
  }

  async add(tiles: RgbBatch, meta: TileMeta | readonly TileMeta[], masks?: Uint8Array): Promise<void> {
    this.#checkOpen();
    const b = checkBatch('tiles', tiles);
    if (b.height !== b.width) throw invalidRange('tiles', 'square tiles (the manifest has one size column)', `${b.width}x${b.height}`);
    const metas = tileMetas(b.n, meta);
    const mb = b.height * b.width;
    if (this.maskLabels) {
      if (!(masks instanceof Uint8Array)) throw invalidType('masks', `a Uint8Array of ${b.n * mb} mask bytes (n·height·width)`, masks);
      if (masks.length !== b.n * mb) throw invalidRange('masks', `a Uint8Array of ${b.n * mb} mask bytes (n·height·width)`, masks);
      const k = this.maskLabels.length;
      for (let i = 0; i < masks.length; i++) {
        if (masks[i]! >= k && masks[i] !== MASK_IGNORE) throw invalidRange(`masks[${i}]`, `a label index below ${k} or ${MASK_IGNORE} (ignore)`, masks[i]);
      }
    } else if (masks !== undefined) {
      throw invalidRange('masks', 'no masks (the writer was opened without options.masks)', masks);
    }
    const maskOf = (i: number) => (masks && this.maskLabels ? masks.slice(i * mb, (i + 1) * mb) : undefined);
    const batched = this.format === 'png' && this.png.encoder === 'native';
    const fresh: Array<{ i: number; key: string; file: string; m: TileMeta }> = [];
    for (let i = 0; i < b.n; i++) {
      const m = metas[i]!;
      const key = tileKey(m);
      if (!batched && !this.#keys.has(key)) {
        while (this.#inFlight.size >= this.concurrency) await Promise.race(this.#inFlight);
        this.#checkOpen();
      }
      // Checked after the wait: a concurrent add() may have taken the key meanwhile.
      if (this.#keys.has(key)) {
        this.#skipped++;
        continue;
      }
      const file = this.tileFile(m);
      const owner = this.#files.get(file);
      if (owner !== undefined && owner !== key) {
        throw invalidRange(`meta.slide`, `slide names that stay distinct as file names (${file} is taken)`, m.slide);
      }
      this.#keys.add(key);
      this.#files.set(file, key);
      if (batched) {
        fresh.push({ i, key, file, m });
        continue;
      }
      const tile = imageAt(b, i);
      const pixels: RgbBatch = { ...tile, data: tile.data.slice() };
      this.#track(this.#store(key, file, m, b.width, () => writeImage(join(this.dir, file), pixels, 0, { quality: this.quality }), maskOf(i)));
    }
    if (fresh.length === 0) return;
    // One native call encodes and writes (atomically) every new tile of the batch; then they are journalled.
    while (this.#inFlight.size >= this.concurrency) await Promise.race(this.#inFlight);
    this.#checkOpen();
    const sub = fresh.length === b.n ? b : stackImages(fresh.map((f) => imageAt(b, f.i)));
    const paths = fresh.map((f) => join(this.dir, f.file));
    for (const dir of new Set(paths.map((p) => dirname(p)))) {
      if (!this.#dirs.has(dir)) {
        await makeDirectory(dir);
        this.#dirs.add(dir);
      }
    }
    // The pixels are consumed once the call resolves, so add() waits for it: the caller may then reuse them.
    const sizes = await writePngFiles(sub, paths, this.png).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
    this.#track(this.#storeMany(fresh.map((f) => ({ ...f, mask: maskOf(f.i) })), b.width, async () => {
      if (sizes instanceof Error) throw sizes;
      return sizes;
    }));
  }

  #track(job: Promise<void>): void {
    const tracked = job.finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  /** Writes one tile (`write` resolves to its size in bytes), then journals it. */
  async #store(key: string, file: string, m: TileMeta, size: number, write: () => Promise<number>, mask?: Uint8Array): Promise<void> {
    return this.#storeMany([{ key, file, m, mask }], size, async () => [await write()]);
  }

  /**
   * Writes tiles (`write` resolves to their sizes in bytes), then journals them
   * with one append: a batch costs one journal write, not one per tile.
   */
  async #storeMany(
    tiles: ReadonlyArray<{ key: string; file: string; m: TileMeta; mask?: Uint8Array | undefined }>, size: number, write: () => Promise<number[]>,
  ): Promise<void> {
    try {
      const bytes = await write();
      // The masks after their tiles, before the journal: a journalled row has both files.
      const maskFiles = tiles.map(({ m, mask }) => (mask ? this.maskFile(m) : undefined));
      const maskBytes = await Promise.all(tiles.map(({ mask }, j) => (mask ? writeMaskPng(join(this.dir, maskFiles[j]!), mask, size, size) : -1)));
      const rows = tiles.map(({ file, m }, j): JournalRow => ({
        slide: m.slide, level: m.level, x: m.x, y: m.y, size,
        tissue_fraction: m.tissueFraction ?? null, label: m.label ?? null, label_coverage: m.labelCoverage ?? null, file, bytes: bytes[j]!,
        ...(maskFiles[j] === undefined ? {} : { mask: maskFiles[j], mask_bytes: maskBytes[j]! }),
      }));
      const text = rows.map((row) => `${JSON.stringify(row)}\n`).join('');
      const append = this.#journalTail.then(() => this.#journal!.write(text));
      this.#journalTail = append.catch(() => undefined);
      await append;
      tiles.forEach(({ key }, j) => this.#rows.set(key, rows[j]!));
      this.#written += tiles.length;
    } catch (e) {
      for (const { key, file } of tiles) {
        this.#keys.delete(key);
        this.#files.delete(file);
      }
      this.#error ??= new Error(`cannot write tile ${tiles[0]?.file ?? ''}${tiles.length > 1 ? ` (or one of ${tiles.length - 1} more)` : ''}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }


  async #drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all(this.#inFlight);
    await this.#journalTail;
  }

  /** Waits for the encodes, writes both manifests (atomically) and removes the journal. */
  async finish(): Promise<TileSinkResult & { rows: ManifestRow[] }> {
    this.#checkOpen();
    await this.#drain();
    if (this.#error) throw this.#error;
    const rows: ManifestRow[] = [...this.#rows.values()].sort(compareRows).map(({ bytes: _bytes, mask_bytes: _maskBytes, ...row }) => row);
    const csv = join(this.dir, 'manifest.csv'), json = join(this.dir, 'manifest.json');
    const columns = this.maskLabels ? MASK_MANIFEST_COLUMNS : MANIFEST_COLUMNS;
    const files = [csv, json];
    if (this.maskLabels) {
      const masks = join(this.dir, MASKS_FILE);
      await writeAtomic(masks, `${JSON.stringify({ ...this.#maskInfo, labels: this.maskLabels, ignore: MASK_IGNORE }, null, 2)}\n`);
      files.push(masks);
    }
    await writeAtomic(csv, manifestCsv(rows, columns));
    const quality = this.format === 'jpeg' ? this.quality : null;
    // One row per line: readable, diffable, and a third of an indented dump.
    const head = JSON.stringify({
      format: this.format, quality, count: rows.length, columns, ...(this.maskLabels ? { masks: this.maskLabels } : {}),
    }).slice(0, -1);
    await writeAtomic(json, `${head},"tiles":[\n${rows.map((r) => JSON.stringify(r)).join(',\n')}\n]}\n`);
    this.#state = 'finished';
    await this.#journal?.close();
    this.#journal = undefined;
    await rm(join(this.dir, JOURNAL), { force: true });
    return { count: rows.length, written: this.#written, skipped: this.#skipped, files, rows };
  }

  async abort(options: { discard?: boolean } = {}): Promise<void> {
    const o = checkObject('options', options);
    checkKnownKeys('options', o, ['discard']);
    const discard = o.discard === undefined ? false : checkBoolean('options.discard', o.discard);
    if (this.#state !== 'open') return;
    this.#state = 'aborted';
    await this.#drain();
    await this.#journal?.close();
    this.#journal = undefined;
    if (discard) {
      await Promise.all([...this.#rows.values()].flatMap((r) => [r.file, ...(r.mask ? [r.mask] : [])]).map((f) => rm(join(this.dir, f), { force: true })));
      await rm(join(this.dir, JOURNAL), { force: true });
    }
  }

  #checkOpen(): void {
    if (this.#error) throw this.#error;
    if (this.#state !== 'open') throw new Error(`TileFolderWriter ${this.dir} is ${this.#state}`);
  }
}
