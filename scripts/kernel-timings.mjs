#!/usr/bin/env node
// Best-of-N timings of the cpu backend's stain and augment kernels through the
// public API of a built checkout: `node scripts/kernel-timings.mjs [ROOT...]`
// (default: this checkout). Run two checkouts alternately to compare a change
// with its base on the same machine (e.g. a `git worktree` of the base with
// its own build/ and dist/). Reads HEnorm_python__example1.png from the data
// folder (HISTOFLOW_DATA or ../shared/data).
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const roots = process.argv.slice(2).map((r) => resolve(r));
if (roots.length === 0) roots.push(here);
const REPS = 7;

async function timings(root) {
  const api = await import(join(root, 'dist/src/index.js'));
  const { dataPath } = await import(join(root, 'dist/src/data/folder.js'));
  const img = await api.readImage(dataPath('HEnorm_python__example1.png'));
  const P = 96, n = 256;
  const data = new Uint8Array(n * P * P * 3);
  for (let i = 0; i < n; i++) {
    const oy = (i * 37) % (img.height - P), ox = (i * 53) % (img.width - P);
    for (let y = 0; y < P; y++) data.set(img.data.subarray(((oy + y) * img.width + ox) * 3, ((oy + y) * img.width + ox + P) * 3), (i * P * P + y * P) * 3);
  }
  const patches = { data, n, height: P, width: P };
  const best = async (fn) => {
    await fn();
    let b = Infinity;
    for (let r = 0; r < REPS; r++) { const t = performance.now(); await fn(); b = Math.min(b, performance.now() - t); }
    return b;
  };
  const rows = [];
  for (const method of ['vahadane', 'macenko', 'reinhard', 'ruifrok']) {
    const extra = method === 'reinhard' ? { target: img } : {};
    rows.push([`${method} 1024²`, await best(() => api.normalizeStain(img, { method, backend: 'cpu', ...extra }))]);
    rows.push([`${method} 256×96²`, await best(() => api.normalizeStain(patches, { method, backend: 'cpu', ...extra }))]);
  }
  const pipeline = { d4: true, hed: { sigma: 0.05 }, hsv: { brightness: 0.1, contrast: 0.1, saturation: 0.1, hue: 0.02 }, blur: { sigma: [0.1, 2], p: 0.5 }, normalize: 'imagenet' };
  rows.push(['augment pipeline 256×96²', await best(() => api.augment(patches, pipeline, { backend: 'cpu', seed: 1 }))]);
  const elastic = { d4: true, elastic: { alpha: 6, sigma: 16, p: 1 }, normalize: 'imagenet' };
  rows.push(['augment elastic 256×96²', await best(() => api.augment(patches, elastic, { backend: 'cpu', seed: 1 }))]);
  return rows;
}

for (const root of roots) {
  console.log(`== ${root} (best of ${REPS}, ms)`);
  for (const [label, ms] of await timings(root)) console.log(`${label.padEnd(28)} ${ms.toFixed(2)}`);
}
