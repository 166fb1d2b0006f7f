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
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { join, resolve } from 'node:path';

import h5wasm from 'h5wasm/node';

import { checkInteger, invalidType } from '../errors.js';
import type { RgbBatch } from '../kernels/types.js';

export const PCAM_SPLITS = ['train', 'valid', 'test'] as const;
export type PcamSplit = (typeof PCAM_SPLITS)[number];

/** The x and y file names of a split in a folder. */
export function pcamFiles(dir: string, split: PcamSplit): { x: string; y: string } {
  const stem = join(dir, `camelyonpatch_level_2_split_${split}`);
  return { x: `${stem}_x.h5`, y: `${stem}_y.h5` };
}

type H5Dataset = InstanceType<typeof h5wasm.Dataset>;
type H5File = InstanceType<typeof h5wasm.File>;

/** h5wasm's node build reads the host file system directly (NODERAWFS): slices touch only their bytes. */
async function h5Path(path: string): Promise<string> {
  await h5wasm.ready;
  return resolve(path);
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

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

function openDataset(path: string, name: string): { file: H5File; ds: H5Dataset } {
  if (!isHdf5(path)) throw new Error(`cannot open ${path} as HDF5: no HDF5 signature (not an HDF5 file, or truncated)`);
  let file: H5File;
  try {
    file = new h5wasm.File(path, 'r');
  } catch (e) {
    throw new Error(`cannot open ${path} as HDF5: ${e instanceof Error ? e.message : String(e)}`);
  }
  const ds = file.get(name);
  if (!(ds instanceof h5wasm.Dataset)) {
    file.close();
    throw new Error(`${path} has no dataset '${name}' (PatchCamelyon files hold 'x' or 'y')`);
  }
  return { file, ds };
}

export class PcamReader {
  readonly count: number;
  readonly height: number;
  readonly width: number;
  readonly hasLabels: boolean;
  readonly #x: { file: H5File; ds: H5Dataset };
  readonly #y: { file: H5File; ds: H5Dataset; path: string } | undefined;
  #closed = false;

  private constructor(x: { file: H5File; ds: H5Dataset }, y: { file: H5File; ds: H5Dataset; path: string } | undefined, shape: number[]) {
    this.#x = x;
    this.#y = y;
    this.count = shape[0]!;
    this.height = shape[1]!;
    this.width = shape[2]!;
    this.hasLabels = y !== undefined;
  }

  /** Opens an x file and, when given, its y file; checks shapes and types. */
  static async open(xPath: string, yPath?: string): Promise<PcamReader> {
    if (typeof xPath !== 'string' || xPath.length === 0) throw invalidType('xPath', 'an HDF5 file path', xPath);
    if (yPath !== undefined && (typeof yPath !== 'string' || yPath.length === 0)) throw invalidType('yPath', 'an HDF5 file path', yPath);
    for (const p of [xPath, yPath]) if (p !== undefined && !existsSync(p)) throw new Error(`${p} does not exist`);
    const x = openDataset(await h5Path(xPath), 'x');
    const bad = (file: { file: H5File }, why: string): never => {
      file.file.close();
      throw new Error(why);
    };
    const shape = x.ds.shape ?? [];
    if (shape.length !== 4 || shape[3] !== 3) bad(x, `${xPath}: dataset 'x' has shape [${shape.join(', ')}], expected N x H x W x 3`);
    if (x.ds.dtype !== '<B' && x.ds.dtype !== '>B' && x.ds.dtype !== '|B') bad(x, `${xPath}: dataset 'x' is ${x.ds.dtype}, expected uint8`);
    let y: { file: H5File; ds: H5Dataset } | undefined;
    if (yPath !== undefined) {
      try {
        y = openDataset(await h5Path(yPath), 'y');
      } catch (e) {
        x.file.close();
        throw e;
      }
      const ys = y.ds.shape ?? [];
      const n = ys.reduce((a, b) => a * b, 1);
      if (ys.length < 1 || ys[0] !== shape[0] || n !== shape[0]) {
        y.file.close();
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
    this.#x.file.close();
    this.#y?.file.close();
  }
}
