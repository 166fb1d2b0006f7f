/**
 * Memory of training, step by step: a zoo model (default `baseline`, 96²)
 * trains on synthetic patches (src/synth, default 1,000, cycled for as many
 * epochs as `steps` needs) at batch 64 on a TF.js backend (default `native`),
 * and every step records the process's resident set (RSS; VmHWM, the kernel's
 * own peak), what TF.js holds (tf.memory: live tensor bytes), V8's heap and
 * ArrayBuffer bytes, and the native backend's pool of idle output arrays
 * (native_storage.ts), with the peak of live tensor bytes inside the step
 * (native backend) — set beside the network's own need: every layer's output
 * at this batch (what autograd must keep for the backward pass) and weights,
 * gradients and Adam's two slots.
 *
 * Prints a table of samples and one JSON line: peak RSS, and drift — RSS at
 * the last step minus RSS after the first `settle` steps (the first steps fill
 * the pool and the heap), with the largest rise and fall in between.
 *
 *   node dist/src/bench/train_memory.js [steps=100] [batch=64] [size=96] [images=1000]
 *        [backend=native] [model=baseline] [settle=10] [every=10]
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

import * as tf from '@tensorflow/tfjs';

import { loadAddon } from '../../bindings/loader.js';
import type { NnHeapStats } from '../../bindings/nn_binding.js';
import { buildModel, isZooModel } from '../models/zoo.js';
import { synthPatch } from '../synth/patches.js';
import { TRAINING_BACKENDS, useTrainingBackend, type TrainingBackend } from '../tfjs/backend.js';
import { NativeStorageBackend } from '../tfjs/native_storage.js';

const MiB = 2 ** 20;

export interface MemorySample {
  step: number;
  rssBytes: number;
  /** /proc/self/status VmHWM: the kernel's peak resident set so far (null off Linux). */
  hwmBytes: number | null;
  /** Tensors alive after the step (tf.memory). */
  tensors: number;
  /** ArrayBuffers behind live tensors after the step, and their peak during it (native backend only: NativeStorageBackend.memoryStats). */
  liveBytes: number | null;
  stepPeakLiveBytes: number | null;
  heapUsedBytes: number;
  /** Bytes of ArrayBuffers V8 holds, disposed-but-not-collected ones included. */
  arrayBufferBytes: number;
  /** Idle output arrays held by the native backend's pool (0 on other backends). */
  poolBytes: number;
  /** The C library's heaps: bytes in use and bytes free but kept (native/core/allocator.h; null without the addon or off glibc). */
  heapInUseBytes: number | null;
  heapFreeBytes: number | null;
  /** Output arrays allocated fresh by the native backend so far (its pool could not serve them). */
  freshBytes: number;
}

export interface TrainMemoryReport {
  model: string;
  backend: string;
  batch: number;
  size: number;
  images: number;
  steps: number;
  settle: number;
  /** The most bytes of live tensors inside any step (native backend only), and the network's own need. */
  stepPeakLiveBytes: number | null;
  need: NetworkNeed;
  peakRssBytes: number;
  /** getrusage ru_maxrss, bytes (what the train bench reports). */
  maxRssBytes: number;
  /** RSS after the last step minus RSS after step `settle`. */
  driftBytes: number;
  /** Highest and lowest RSS from step `settle` on, relative to RSS after step `settle`. */
  riseBytes: number;
  fallBytes: number;
  secondsPerStep: number;
  samples: MemorySample[];
}

export interface NetworkNeed {
  /** Every layer's output at this batch, the input included: what a backward pass needs kept. */
  activationBytes: number;
  /** The largest layer output: one gradient of that size is alive at a time in a lean backward pass. */
  largestActivationBytes: number;
  /** Weights, their gradients and Adam's two slots. */
  parameterBytes: number;
}

/** What the network itself needs at `batch`: see NetworkNeed. */
export function networkNeed(model: tf.LayersModel, batch: number): NetworkNeed {
  let activationBytes = 0;
  let largest = 0;
  const input = model.inputs[0]!.shape.slice(1) as number[];
  const add = (shape: number[]) => {
    const bytes = 4 * batch * shape.reduce((a, b) => a * b, 1);
    activationBytes += bytes;
    largest = Math.max(largest, bytes);
  };
  add(input);
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    const out = layer.outputShape;
    const shapes = (Array.isArray(out[0]) ? out : [out]) as (number | null)[][];
    for (const s of shapes) add(s.slice(1) as number[]);
  }
  const params = model.trainableWeights.reduce((a, w) => a + w.shape.reduce((p: number, d) => p * (d ?? 1), 1), 0);
  return { activationBytes, largestActivationBytes: largest, parameterBytes: 4 * 4 * params };
}

function vmHwm(): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function nativeStorage(): NativeStorageBackend | null {
  const b = tf.backend();
  return b instanceof NativeStorageBackend ? b : null;
}

function heapStats(): NnHeapStats | null {
  const s = loadAddon();
  return s.ok ? s.addon.nn.heapStats() : null;
}

function sample(step: number): MemorySample {
  const m = process.memoryUsage();
  const native = nativeStorage()?.memoryStats();
  const heap = heapStats();
  return {
    step, rssBytes: m.rss, hwmBytes: vmHwm(), tensors: tf.memory().numTensors,
    liveBytes: native?.liveBytes ?? null, stepPeakLiveBytes: native?.peakLiveBytes ?? null,
    heapUsedBytes: m.heapUsed, arrayBufferBytes: m.arrayBuffers, poolBytes: native?.poolBytes ?? 0,
    heapInUseBytes: heap ? heap.inUse + heap.mmapped : null, heapFreeBytes: heap?.free ?? null,
    freshBytes: native?.freshBytes ?? 0,
  };
}

/** `n` synthetic patches (seed 7) of side `size`, normalized to [-1, 1], and their labels. */
function synthData(n: number, size: number): { pixels: Float32Array; labels: Float32Array } {
  const per = size * size * 3;
  const pixels = new Float32Array(n * per);
  const labels = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const p = synthPatch(7, i, { size });
    const d = p.image.data;
    for (let j = 0; j < per; j++) pixels[i * per + j] = d[j]! / 127.5 - 1;
    labels[i] = p.label;
  }
  return { pixels, labels };
}

export interface TrainMemoryOptions {
  model: string;
  backend: TrainingBackend;
  steps: number;
  batch: number;
  size: number;
  images: number;
  settle: number;
  /** Called after each step with its sample. */
  onStep?: (s: MemorySample) => void;
}

export async function trainMemory(o: TrainMemoryOptions): Promise<TrainMemoryReport> {
  if (!isZooModel(o.model)) throw new RangeError(`Expected a zoo model for model but received '${o.model}'`);
  await useTrainingBackend(o.backend);
  const { model } = await buildModel(o.model, { inputSize: o.size, seed: 1 });
  const need = networkNeed(model, o.batch);
  const data = synthData(o.images, o.size);
  const per = o.size * o.size * 3;
  const batches = Math.ceil(o.images / o.batch);
  // A batch is a fresh tensor per step, as the trainer's loader makes one.
  const step = async (k: number) => {
    const b = k % batches;
    const start = b * o.batch;
    const n = Math.min(o.batch, o.images - start);
    const x = tf.tensor4d(data.pixels.slice(start * per, (start + n) * per), [n, o.size, o.size, 3]);
    const y = tf.tensor2d(data.labels.slice(start, start + n), [n, 1]);
    try {
      await model.trainOnBatch(x, y);
    } finally {
      tf.dispose([x, y]);
    }
  };
  const samples: MemorySample[] = [sample(0)];
  const t0 = performance.now();
  for (let k = 0; k < o.steps; k++) {
    nativeStorage()?.resetPeak();
    await step(k);
    const s = sample(k + 1);
    samples.push(s);
    o.onStep?.(s);
  }
  const secondsPerStep = (performance.now() - t0) / 1000 / o.steps;
  model.dispose();
  const settled = samples[Math.min(o.settle, samples.length - 1)]!.rssBytes;
  const after = samples.slice(Math.min(o.settle, samples.length - 1)).map((s) => s.rssBytes - settled);
  return {
    model: o.model, backend: o.backend, batch: o.batch, size: o.size, images: o.images, steps: o.steps, settle: o.settle,
    stepPeakLiveBytes: nativeStorage() ? Math.max(...samples.map((s) => s.stepPeakLiveBytes ?? 0)) : null, need,
    peakRssBytes: Math.max(...samples.map((s) => s.rssBytes)),
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    driftBytes: samples[samples.length - 1]!.rssBytes - settled,
    riseBytes: Math.max(...after),
    fallBytes: Math.min(...after),
    secondsPerStep,
    samples,
  };
}

function intArg(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new RangeError(`Expected an integer ≥ ${min} for ${name} but received '${value}'`);
  return n;
}

function parseArgs(argv: string[]): TrainMemoryOptions & { every: number } {
  const o = { model: 'baseline', backend: 'native' as TrainingBackend, steps: 100, batch: 64, size: 96, images: 1000, settle: 10, every: 10 };
  for (const arg of argv) {
    const [key, value] = arg.split('=', 2) as [string, string | undefined];
    if (value === undefined) throw new TypeError(`Expected key=value for argument '${arg}'`);
    if (key === 'model') o.model = value;
    else if (key === 'backend') {
      if (!(TRAINING_BACKENDS as readonly string[]).includes(value)) throw new RangeError(`Expected one of ${TRAINING_BACKENDS.join(', ')} for backend but received '${value}'`);
      o.backend = value as TrainingBackend;
    } else if (key === 'steps' || key === 'batch' || key === 'images' || key === 'every') o[key] = intArg(key, value, 1);
    else if (key === 'size') o.size = intArg(key, value, 48);
    else if (key === 'settle') o.settle = intArg(key, value, 0);
    else throw new RangeError(`Expected one of model, backend, steps, batch, size, images, settle, every but received '${key}'`);
  }
  if (o.images < o.batch) throw new RangeError(`Expected images ≥ batch (${o.batch}) but received ${o.images}`);
  return o;
}

const mib = (b: number | null) => (b === null ? '-' : (b / MiB).toFixed(0));

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  process.stderr.write('| step | RSS MiB | VmHWM MiB | tensors | live MiB | step peak live MiB | V8 heap MiB | ArrayBuffers MiB | pool idle MiB | C heap in use MiB | C heap free MiB | fresh outputs MiB |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n');
  const row = (s: MemorySample) => process.stderr.write(`| ${s.step} | ${mib(s.rssBytes)} | ${mib(s.hwmBytes)} | ${s.tensors} | ${mib(s.liveBytes)} | ${mib(s.stepPeakLiveBytes)} | ${mib(s.heapUsedBytes)} | ${mib(s.arrayBufferBytes)} | ${mib(s.poolBytes)} | ${mib(s.heapInUseBytes)} | ${mib(s.heapFreeBytes)} | ${mib(s.freshBytes)} |\n`);
  const r = await trainMemory({ ...o, onStep: (s) => { if (s.step <= 3 || s.step % o.every === 0 || s.step === o.steps) row(s); } });
  process.stderr.write(
    `${r.model} on ${r.backend}, batch ${r.batch}, ${r.size}², ${r.images} images, ${r.steps} steps (${r.secondsPerStep.toFixed(2)} s/step): ` +
    `peak RSS ${mib(r.peakRssBytes)} MiB (ru_maxrss ${mib(r.maxRssBytes)}), drift after step ${r.settle} ${mib(r.driftBytes)} MiB ` +
    `(rise ${mib(r.riseBytes)}, fall ${mib(r.fallBytes)}); peak of live tensors in a step ${mib(r.stepPeakLiveBytes)} MiB; ` +
    `the network needs ${mib(r.need.activationBytes)} MiB of layer outputs (largest ${mib(r.need.largestActivationBytes)}) + ${mib(r.need.parameterBytes)} MiB of weights, gradients and Adam slots\n`,
  );
  const { samples, ...summary } = r;
  process.stdout.write(`${JSON.stringify({ ...summary, samples: samples.length })}\n`);
}

// Run as a script (not when imported).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
