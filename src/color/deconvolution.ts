/**
 * Optical density and colour deconvolution (Ruifrok & Johnston 2001) in
 * scikit-image's convention. `rgb2hed` equals skimage.color.rgb2hed;
 * `deconvolve` takes any stain matrix (2 or 3 stains; a missing third stain is
 * completed by the cross product, as scikit-image does).
 */
import { checkKnownKeys, checkNumber, checkObject, invalidRange, invalidType } from '../errors.js';
import { checkBatch } from '../image.js';
import { chooseKernelBackend } from '../kernels/registry.js';
import type { OdParams, RgbBatch } from '../kernels/types.js';

/** skimage.color.rgb_from_hed: rows hematoxylin, eosin, DAB (RGB optical density). */
export const RGB_FROM_HED: readonly (readonly number[])[] = [
  [0.65, 0.7, 0.29],
  [0.07, 0.99, 0.11],
  [0.27, 0.57, 0.78],
];

export interface StainMatrix {
  /** Row-major 3x3, row i = stain i's RGB OD vector. */
  rgbFromStain: number[];
  /** Its inverse (pixel · stainFromRgb = concentrations). */
  stainFromRgb: number[];
}

function invert3(m: number[]): number[] {
  const [a, b, c, d, e, f, g, h, i] = m as [number, number, number, number, number, number, number, number, number];
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (!(Math.abs(det) > 1e-12)) throw new RangeError('Expected linearly independent stain vectors for matrix but they are singular');
  return [A, -(b * i - c * h), b * f - c * e, B, a * i - c * g, -(a * f - c * d), C, -(a * h - b * g), a * e - b * d].map((v) => v / det);
}

/** A stain matrix from 2 or 3 RGB OD vectors (rows), completed and inverted. */
export function stainMatrix(vectors: ArrayLike<ArrayLike<number>>): StainMatrix {
  if (!vectors || typeof vectors !== 'object' || typeof vectors.length !== 'number') {
    throw invalidType('matrix', 'an array of 2 or 3 RGB vectors', vectors);
  }
  if (vectors.length !== 2 && vectors.length !== 3) throw invalidRange('matrix', 'an array of 2 or 3 RGB vectors', vectors);
  const rows: number[][] = [];
  for (let r = 0; r < vectors.length; r++) {
    const v = vectors[r];
    if (!v || typeof v !== 'object' || v.length !== 3) throw invalidType(`matrix[${r}]`, 'an array of 3 numbers', v);
    rows.push(Array.from(v, (x, k) => checkNumber(`matrix[${r}][${k}]`, x, 0)));
  }
  if (rows.length === 2) {
    const [p, q] = rows as [number[], number[]];
    const cross = [p[1]! * q[2]! - p[2]! * q[1]!, p[2]! * q[0]! - p[0]! * q[2]!, p[0]! * q[1]! - p[1]! * q[0]!];
    rows.push(cross);
  }
  const rgbFromStain = rows.flat();
  return { rgbFromStain, stainFromRgb: invert3(rgbFromStain) };
}

export interface KernelOptions {
  backend?: 'auto' | 'cuda' | 'cpu' | 'gpujs' | 'js';
}

export interface FloatResult {
  data: Float32Array;
  /** The backend that ran, and why it was chosen. */
  backend: string;
}

/** skimage.color.rgb2hed: N·H·W·3 float32 concentrations (H, E, DAB), clipped ≥ 0. */
export async function rgb2hed(batch: RgbBatch, options: KernelOptions & { out?: Float32Array } = {}): Promise<FloatResult> {
  return deconvolve(batch, { ...options, matrix: RGB_FROM_HED });
}

/** Colour deconvolution with any stain matrix (rows = stain OD vectors). */
export async function deconvolve(
  batch: RgbBatch,
  options: KernelOptions & { matrix: ArrayLike<ArrayLike<number>>; out?: Float32Array },
): Promise<FloatResult> {
  const b = checkBatch('batch', batch);
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['backend', 'matrix', 'out']);
  const m = stainMatrix(options.matrix);
  const { backend, reason } = await chooseKernelBackend(options.backend ?? 'auto');
  const data = await backend.deconvolve(b, m.stainFromRgb, options.out);
  return { data, backend: reason };
}

/** skimage.color.combine_stains: concentrations back to RGB uint8 (rounded). */
export async function reconvolve(
  stains: Float32Array,
  options: KernelOptions & { matrix?: ArrayLike<ArrayLike<number>>; out?: Uint8Array },
): Promise<{ data: Uint8Array; backend: string }> {
  if (!(stains instanceof Float32Array)) throw invalidType('stains', 'a Float32Array', stains);
  if (stains.length === 0 || stains.length % 3 !== 0) throw invalidRange('stains.length', 'a positive multiple of 3', stains.length);
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['backend', 'matrix', 'out']);
  const m = stainMatrix(options.matrix ?? RGB_FROM_HED);
  const { backend, reason } = await chooseKernelBackend(options.backend ?? 'auto');
  const data = await backend.reconvolve(stains, stains.length / 3, m.rgbFromStain, options.out);
  return { data, backend: reason };
}

/** Validated optical-density convention, defaulting to Macenko's canonical one. */
export function checkOd(name: string, value: unknown, defaults: OdParams): OdParams {
  if (value === undefined) return { ...defaults };
  const o = checkObject(name, value);
  checkKnownKeys(name, o, ['io', 'offset', 'minOd']);
  return {
    io: o.io === undefined ? defaults.io : checkNumber(`${name}.io`, o.io, 1, 65535),
    offset: o.offset === undefined ? defaults.offset : checkNumber(`${name}.offset`, o.offset, 0, 255),
    minOd: o.minOd === undefined ? defaults.minOd : o.minOd === -Infinity ? -Infinity : checkNumber(`${name}.minOd`, o.minOd, -10, 10),
  };
}

/** Beer–Lambert optical density, od = max(−ln((I + offset)/io), minOd). */
export async function rgbToOd(
  batch: RgbBatch,
  options: KernelOptions & { od?: Partial<OdParams>; out?: Float32Array } = {},
): Promise<FloatResult> {
  const b = checkBatch('batch', batch);
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['backend', 'od', 'out']);
  const od = checkOd('options.od', options.od, { io: 240, offset: 1, minOd: -Infinity });
  const { backend, reason } = await chooseKernelBackend(options.backend ?? 'auto');
  return { data: await backend.rgbToOd(b, od, options.out), backend: reason };
}

/** The inverse of rgbToOd, rounded and clamped to uint8. */
export async function odToRgb(
  od: Float32Array,
  options: KernelOptions & { od?: Partial<OdParams>; out?: Uint8Array } = {},
): Promise<{ data: Uint8Array; backend: string }> {
  if (!(od instanceof Float32Array)) throw invalidType('od', 'a Float32Array', od);
  if (od.length === 0 || od.length % 3 !== 0) throw invalidRange('od.length', 'a positive multiple of 3', od.length);
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['backend', 'od', 'out']);
  const p = checkOd('options.od', options.od, { io: 240, offset: 1, minOd: -Infinity });
  const { backend, reason } = await chooseKernelBackend(options.backend ?? 'auto');
  return { data: await backend.odToRgb(od, od.length / 3, p, options.out), backend: reason };
}
