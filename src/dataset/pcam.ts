/**
 * PatchCamelyon's HDF5 files (Veeling et al. 2018), read through h5wasm:
 *
 *   camelyonpatch_level_2_split_{train,valid,test}_x.h5   dataset 'x': N x 96 x 96 x 3 uint8
 *   camelyonpatch_level_2_split_{train,valid,test}_y.h5   dataset 'y': N x 1 x 1 x 1 uint8
 *
 * PcamReader reads records in slices (HDF5 hyperslabs), never the whole
 * file: `read(start, n)` returns an RgbBatch and its labels. A file that is
 * not HDF5, lacks the dataset, has the wrong shape or type, or whose x and y
 * disagree on N is an Error naming the file and what is wrong.
 * h5wasm's node build opens host paths directly, so a slice read touches
 * only its chunks.
 *
 * PatchCamelyon is distributed gzipped (..._x.h5.gz): a gzip file is read
 * without a manual gunzip, by streaming it through zlib into a temporary
 * file (HDF5 needs random access; the copy is never whole in memory), at
 * most `maxGunzipBytes`, removed when the reader closes or the process exits.
 */
import { closeSync, createReadStream, createWriteStream, existsSync, openSync, readSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

import h5wasm from 'h5wasm/node';

import { checkInteger, invalidType } from '../errors.js';
import type { RgbBatch } from '../kernels/types.js';

export const PCAM_SPLITS = ['train', 'valid', 'test'] as const;
export type PcamSplit = (typeof PCAM_SPLITS)[number];

/** An x file's name: ..._x.h5, or ..._x.h5.gz as PatchCamelyon is distributed. */
export const PCAM_X_FILE = /_x\.h5(\.gz)?$/i;

/** `stem.h5`, or `stem.h5.gz` when only that exists. */
const plainOrGz = (stem: string) => (!existsSync(`${stem}.h5`) && existsSync(`${stem}.h5.gz`) ? `${stem}.h5.gz` : `${stem}.h5`);

/** The x and y file names of a split in a folder (each .h5, or .h5.gz when only that is there). */
export function pcamFiles(dir: string, split: PcamSplit): { x: string; y: string } {
  const stem = join(dir, `camelyonpatch_level_2_split_${split}`);
  return { x: plainOrGz(`${stem}_x`), y: plainOrGz(`${stem}_y`) };
}

/** The y file beside an x file (..._y.h5, or ..._y.h5.gz when only that exists). */
export function pcamLabelsBeside(xPath: string): string {
  return plainOrGz(xPath.replace(PCAM_X_FILE, '_y'));
}

type H5Dataset = InstanceType<typeof h5wasm.Dataset>;
type H5File = InstanceType<typeof h5wasm.File>;

/** h5wasm's node build reads the host file system directly (NODERAWFS): slices touch only their bytes. */
async function h5Path(path: string): Promise<string> {
  await h5wasm.ready;
  return resolve(path);
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** The largest decompressed size read from a gzip file by default: PCam's largest, train x, is 7.2 GB. */
export const MAX_GUNZIP_BYTES = 16 * 1024 ** 3;

function isGzip(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(2);
    return readSync(fd, buf, 0, 2, 0) === 2 && buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/** Temporary folders of decompressed files still open, removed at exit if their reader was never closed. */
const gunzipped = new Set<string>();
let exitHook = false;
const removeTemp = (dir: string) => {
  gunzipped.delete(dir);
  rmSync(dir, { recursive: true, force: true });
};

/** `path` decompressed into a temporary file (see the file comment); Errors name `path` and what is wrong. */
async function gunzipToTemp(path: string, maxBytes: number): Promise<{ file: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'histoflow-h5-'));
  if (!exitHook) process.once('exit', () => [...gunzipped].forEach(removeTemp));
  exitHook = true;
  gunzipped.add(dir);
  const file = join(dir, basename(path).replace(/\.gz$/i, '') || 'data.h5');
  let bytes = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      if (bytes > maxBytes) done(new Error(`it decompresses to more than ${maxBytes} bytes (maxGunzipBytes)`));
      else done(null, chunk);
    },
  });
  try {
    await pipeline(createReadStream(path), createGunzip(), limit, createWriteStream(file));
  } catch (e) {
    removeTemp(dir);
    const code = (e as { code?: string }).code ?? '';
    const message = e instanceof Error ? e.message : String(e);
    const why = code === 'ENOSPC' ? `no space left in ${tmpdir()} for its decompressed copy (set TMPDIR to a larger disk, or gunzip it once)`
      : code.startsWith('Z_') ? `${message} (a corrupt or truncated gzip file)` : message;
    throw new Error(`cannot decompress ${path}: ${why}`);
  }
  return { file, dir };
}

/**
 * Whether a file starts with the HDF5 signature (at 0, or after a user block
 * of 512·2^k bytes): libhdf5 refuses other files only with diagnostics on
 * stderr, so they are refused here first.
 */
function isHdf5(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(8);
    for (const at of [0, 512, 1024, 2048, 4096]) {
      if (readSync(fd, buf, 0, 8, at) === 8 && HDF5_SIGNATURE.every((b, i) => buf[i] === b)) return true;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

/** An open dataset; `temp`: the folder of its decompressed copy when the file was gzipped. */
type Opened = { file: H5File; ds: H5Dataset; temp?: string };

/** Opens dataset `name` of `path`; a gzipped file is read from a decompressed copy. */
async function openDataset(path: string, name: string, maxGunzipBytes: number): Promise<Opened> {
  let local = await h5Path(path);
  let temp: string | undefined;
  if (isGzip(local)) ({ file: local, dir: temp } = await gunzipToTemp(local, maxGunzipBytes));
  const fail = (why: string): never => {
    if (temp) removeTemp(temp);
    throw new Error(why);
  };
  if (!isHdf5(local)) fail(`cannot open ${path} as HDF5: no HDF5 signature (not an HDF5 file, or truncated)${temp ? ' once decompressed' : ''}`);
  let file!: H5File;
  try {
    file = new h5wasm.File(local, 'r');
  } catch (e) {
    fail(`cannot open ${path} as HDF5: ${e instanceof Error ? e.message : String(e)}`);
  }
  const ds = file.get(name);
  if (!(ds instanceof h5wasm.Dataset)) {
    file.close();
    fail(`${path} has no dataset '${name}' (PatchCamelyon files hold 'x' or 'y')`);
  }
  return { file, ds: ds as H5Dataset, ...(temp ? { temp } : {}) };
}

/** Closes an opened file and removes its decompressed copy, if any. */
function closeOpened(o: Opened): void {
  o.file.close();
  if (o.temp) removeTemp(o.temp);
}

export class PcamReader {
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly hasLabels: boolean;
  readonly #x: Opened;
  readonly #y: (Opened & { path: string }) | undefined;
  #closed = false;

  private constructor(x: Opened, y: (Opened & { path: string }) | undefined, shape: number[]) {
    this.#x = x;
    this.#y = y;
    this.count = shape[0]!;
    this.height = shape[1]!;
    this.width = shape[2]!;
    this.hasLabels = y !== undefined;
  }

  /**
   * Opens an x file and, when given, its y file (either may be gzipped);
   * checks shapes and types.
   */
  static async open(xPath: string, yPath?: string, options: { maxGunzipBytes?: number } = {}): Promise<PcamReader> {
    if (typeof xPath !== 'string' || xPath.length === 0) throw invalidType('xPath', 'an HDF5 file path', xPath);
    if (yPath !== undefined && (typeof yPath !== 'string' || yPath.length === 0)) throw invalidType('yPath', 'an HDF5 file path', yPath);
    const maxGunzipBytes = options.maxGunzipBytes === undefined ? MAX_GUNZIP_BYTES : checkInteger('options.maxGunzipBytes', options.maxGunzipBytes, 1);
    for (const p of [xPath, yPath]) if (p !== undefined && !existsSync(p)) throw new Error(`${p} does not exist`);
    const x = await openDataset(xPath, 'x', maxGunzipBytes);
    const bad = (file: Opened, why: string): never => {
      closeOpened(file);
      throw new Error(why);
    };
    const shape = x.ds.shape ?? [];
    if (shape.length !== 4 || shape[3] !== 3) bad(x, `${xPath}: dataset 'x' has shape [${shape.join(', ')}], expected N x H x W x 3`);
    if (x.ds.dtype !== '<B' && x.ds.dtype !== '>B' && x.ds.dtype !== '|B') bad(x, `${xPath}: dataset 'x' is ${x.ds.dtype}, expected uint8`);
    let y: Opened | undefined;
    if (yPath !== undefined) {
      try {
        y = await openDataset(yPath, 'y', maxGunzipBytes);
      } catch (e) {
        closeOpened(x);
        throw e;
      }
      const ys = y.ds.shape ?? [];
      const n = ys.reduce((a, b) => a * b, 1);
      if (ys.length < 1 || ys[0] !== shape[0] || n !== shape[0]) {
        closeOpened(y);
        bad(x, `${yPath}: dataset 'y' has shape [${ys.join(', ')}], expected ${shape[0]} x 1 x 1 x 1 (one label per image of ${xPath})`);
      }
    }
    return new PcamReader(x, y && yPath !== undefined ? { ...y, path: yPath } : undefined, shape);
  }

  /** Records [start, start + n) as a batch, and their labels (when there is a y file). */
  read(start: number, n: number): { batch: RgbBatch; labels: Uint8Array | undefined } {
    if (this.#closed) throw new Error('PcamReader is closed');
    checkInteger('start', start, 0, Math.max(0, this.count - 1));
    checkInteger('n', n, 1, this.count - start);
    const px = this.#x.ds.slice([[start, start + n]]) as Uint8Array;
    const data = new Uint8Array(px.buffer, px.byteOffset, px.length);
    let labels: Uint8Array | undefined;
    if (this.#y) {
      const raw = this.#y.ds.slice([[start, start + n]]) as ArrayLike<number>;
      // One rule for every source (the Kaggle reader's): a label is 0 or 1, nothing is cast.
      for (let i = 0; i < raw.length; i++) {
        const v = raw[i]!;
        if (v !== 0 && v !== 1) throw new Error(`${this.#y.path}: the label of image ${start + i} is ${String(v)}, expected 0 or 1`);
      }
      labels = Uint8Array.from(raw);
    }
    return { batch: { data, n, height: this.height, width: this.width }, labels };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeOpened(this.#x);
    if (this.#y) closeOpened(this.#y);
  }
}
