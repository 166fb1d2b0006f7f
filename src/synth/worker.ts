/**
 * Worker thread body for synthPatches: renders the patches it is asked for
 * and hands their pixels back (transferred, not copied). Rendering is pure
 * (patches.ts), so a patch is the same whichever worker draws it.
 */
import { parentPort } from 'node:worker_threads';

import { synthPatch } from './patches.js';

export interface SynthJob {
  seed: number;
  size: number;
  positive: number;
  indices: number[];
}

export interface SynthDone {
  indices: number[];
  labels: number[];
  pixels: Uint8Array[];
}

parentPort?.on('message', (job: SynthJob) => {
  const out: SynthDone = { indices: job.indices, labels: [], pixels: [] };
  for (const i of job.indices) {
    const p = synthPatch(job.seed, i, { size: job.size, positive: job.positive });
    out.labels.push(p.label);
    out.pixels.push(p.image.data);
  }
  parentPort!.postMessage(out, out.pixels.map((p) => p.buffer as ArrayBuffer));
});
