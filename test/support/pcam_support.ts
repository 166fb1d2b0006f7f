/** PatchCamelyon-shaped HDF5 files for tests, written with h5wasm from the synthetic patch generator. */
import h5wasm from 'h5wasm/node';

import { pcamFiles } from '../../src/dataset/pcam.js';
import { synthPatch } from '../../src/synth/patches.js';

/** PCam-shaped x / y files of synthPatch(seed, 0..n−1); `opts` bends their shapes (or replaces the labels) for error tests. */
export async function writePcam(dir: string, split: 'train' | 'valid' | 'test', n: number, seed: number, opts: { yShape?: number[]; xShape?: number[]; labels?: { data: Uint8Array | Float32Array; dtype: '<B' | '<f4' } } = {}): Promise<{ x: string; y: string }> {
  await h5wasm.ready;
  const f = pcamFiles(dir, split);
  const x = new Uint8Array(n * 96 * 96 * 3), y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const p = synthPatch(seed, i);
    x.set(p.image.data, i * 96 * 96 * 3);
    y[i] = p.label;
  }
  let h = new h5wasm.File(f.x, 'w');
  h.create_dataset(opts.xShape ? { name: 'x', data: x, shape: opts.xShape, dtype: '<B' } : { name: 'x', data: x, shape: [n, 96, 96, 3], dtype: '<B', chunks: [1, 96, 96, 3], compression: 'gzip' });
  h.close();
  h = new h5wasm.File(f.y, 'w');
  h.create_dataset({ name: 'y', data: opts.labels?.data ?? y, shape: opts.yShape ?? [n, 1, 1, 1], dtype: opts.labels?.dtype ?? '<B' });
  h.close();
  return f;
}
