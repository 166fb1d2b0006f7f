/**
 * The native backend's 3×3 convolutions, layer by layer: forward (bias +
 * ReLU, as inference runs them), input and filter gradient of each 3×3 stride-1 layer
 * of the zoo's `baseline` and `resnet` at 96², as Winograd F(4×4, 3×3) and as
 * the direct kernel of the engine (oneDNN when linked), best of `repeats`
 * calls each, with GFLOP/s counted as the direct convolution's 2·MACs. (The
 * first layers, 3 input channels, are direct either way: not listed.)
 *
 *   node dist/src/bench/conv_layers.js [batch=64] [repeats=5]
 */
import { pathToFileURL } from 'node:url';

import { loadAddon } from '../../bindings/loader.js';

/** [model, side, input channels, output channels] of each distinct 3×3 stride-1 layer past the first. */
const LAYERS: readonly (readonly [string, number, number, number])[] = [
  ['baseline', 96, 32, 32], ['baseline', 48, 32, 64], ['baseline', 48, 64, 64],
  ['baseline', 24, 64, 128], ['baseline', 24, 128, 128],
  ['resnet', 96, 16, 16], ['resnet', 48, 32, 32], ['resnet', 24, 64, 64],
];

export interface ConvLayerTiming {
  model: string;
  side: number;
  inC: number;
  outC: number;
  pass: 'forward' | 'input gradient' | 'filter gradient';
  directMs: number;
  winogradMs: number;
  gflop: number;
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`Expected an integer ≥ 1 for ${name} but received '${value}'`);
  return n;
}

export function timeConvLayers(batch: number, repeats: number): ConvLayerTiming[] {
  const s = loadAddon();
  if (!s.ok) throw new Error(`conv_layers needs histoflow's addon: ${s.reason}`);
  const nn = s.addon.nn;
  const saved = nn.info().winograd;
  const best = (fn: () => void): number => {
    fn();
    let ms = Infinity;
    for (let r = 0; r < repeats; r++) {
      const t0 = process.hrtime.bigint();
      fn();
      ms = Math.min(ms, Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return ms;
  };
  const fill = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);
  const out: ConvLayerTiming[] = [];
  try {
    for (const [model, side, inC, outC] of LAYERS) {
      const shape = [batch, side, side, inC, side, side, outC, 3, 3, 1, 1, 1, 1, 1, 1];
      const x = fill(batch * side * side * inC, 1), f = fill(9 * inC * outC, 2), bias = fill(outC, 3);
      const y = new Float32Array(batch * side * side * outC);
      const gflop = (2 * batch * side * side * 9 * inC * outC) / 1e9;
      const passes = [
        ['forward', () => nn.conv2d(shape, x, f, bias, 'relu', 0, y)],
        ['input gradient', () => nn.conv2dBackpropInput(shape, y, f, x)],
        ['filter gradient', () => nn.conv2dBackpropFilter(shape, x, y, f)],
      ] as const;
      for (const [pass, fn] of passes) {
        nn.setWinograd(false);
        const directMs = best(fn);
        nn.setWinograd(true);
        const winogradMs = best(fn);
        out.push({ model, side, inC, outC, pass, directMs, winogradMs, gflop });
      }
    }
  } finally {
    nn.setWinograd(saved);
  }
  return out;
}

function main(): void {
  const [batchArg, repeatsArg] = process.argv.slice(2);
  const batch = positiveInt('batch', batchArg, 64);
  const repeats = positiveInt('repeats', repeatsArg, 5);
  const s = loadAddon();
  if (s.ok) process.stdout.write(`engine ${s.addon.nn.info().engine}, ${s.addon.nn.info().threads} threads, batch ${batch}, best of ${repeats}\n`);
  process.stdout.write('| model | layer | pass | direct ms (GFLOP/s) | Winograd ms (GFLOP/s equivalent) | speed-up |\n| --- | --- | --- | ---: | ---: | ---: |\n');
  for (const r of timeConvLayers(batch, repeats)) {
    const rate = (ms: number) => ((r.gflop / ms) * 1e3).toFixed(0);
    process.stdout.write(
      `| ${r.model} | ${r.side}² ${r.inC}→${r.outC} | ${r.pass} | ${r.directMs.toFixed(1)} (${rate(r.directMs)}) | ` +
        `${r.winogradMs.toFixed(1)} (${rate(r.winogradMs)}) | ${(r.directMs / r.winogradMs).toFixed(2)}x |\n`,
    );
  }
}

// Run as a script (not when imported).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
