/**
 * OpenCV's 8-bit sRGB ↔ LAB as the cpu backend computes it, shared by
 * the TypeScript backends (js, gpujs):
 *
 * - sRGB → LAB8: cv2.cvtColor's fixed-point path for uint8 images
 *   (native/color/lab_opencv8.h, OpenCV's RGB2Lab_b): gamma table
 *   round(2040·linear(v/255)); X, Y, Z = descale(Σ coeff·RGB, 12) with the D65
 *   matrix (white point folded in) scaled by 4096; f = round(32768·cbrt(t))
 *   (linear toe below 0.008856) over 3072 entries; L8 = descale(296·fY −
 *   1336934, 15), a8 = descale(500·(fX − fY) + 128·2¹⁵, 15), b8 likewise with
 *   200·(fY − fZ). Integer arithmetic, so bit-exact here (every intermediate
 *   fits in int32).
 * - LAB8 → sRGB: OpenCV's float formula in fp32 (native/stain/reinhard_cpu.cc,
 *   lab8_to_srgb), each float operation rounded with Math.fround, and the
 *   final gamma and rounding read from the linear values where each 8-bit
 *   level begins (native/color/lab8_to_srgb.h's Srgb8Levels).
 */

function rintHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** round(2040·linear(v/255)) for every uint8 level (OpenCvLab8::gamma_). */
export const LAB8_GAMMA: Int32Array = (() => {
  const t = new Int32Array(256);
  for (let v = 0; v < 256; v++) {
    const x = v / 255;
    t[v] = rintHalfEven(2040 * (x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4)));
  }
  return t;
})();

/** Entries of the cube-root table (indices 0..3071). */
export const LAB8_CBRT_SIZE = 3072;

/** round(32768·f(i/2040)), f = cbrt with OpenCV's linear toe (OpenCvLab8::cbrt_). */
export const LAB8_CBRT: Int32Array = (() => {
  const t = new Int32Array(LAB8_CBRT_SIZE);
  for (let i = 0; i < LAB8_CBRT_SIZE; i++) {
    const x = i / 2040;
    t[i] = rintHalfEven(32768 * (x < 0.008856 ? x * 7.787 + 16 / 116 : Math.cbrt(x)));
  }
  return t;
})();

/** The Y row of the fixed-point D65 matrix (OpenCvLab8::kY), as the luminosity tissue rule needs it. */
export const LAB8_Y_WEIGHTS: readonly [number, number, number] = [871, 2929, 296];

function descale(v: number, n: number): number {
  return (v + (1 << (n - 1))) >> n;
}

function cbrtAt(i: number): number {
  return LAB8_CBRT[i < 0 ? 0 : i > LAB8_CBRT_SIZE - 1 ? LAB8_CBRT_SIZE - 1 : i]!;
}

function saturate(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** cv2.cvtColor(RGB2LAB) of one uint8 pixel: [L8, a8, b8]. */
export function srgbToLab8(r: number, g: number, b: number, out: number[] | Uint8Array = [0, 0, 0]): typeof out {
  const R = LAB8_GAMMA[r]!;
  const G = LAB8_GAMMA[g]!;
  const B = LAB8_GAMMA[b]!;
  const fx = cbrtAt(descale(1777 * R + 1541 * G + 778 * B, 12));
  const fy = cbrtAt(descale(871 * R + 2929 * G + 296 * B, 12));
  const fz = cbrtAt(descale(73 * R + 448 * G + 3575 * B, 12));
  out[0] = saturate(descale(296 * fy - 1336934, 15));
  out[1] = saturate(descale(500 * (fx - fy) + (128 << 15), 15));
  out[2] = saturate(descale(200 * (fy - fz) + (128 << 15), 15));
  return out;
}

/** L8 of a weighted gamma sum Σ LAB8_Y_WEIGHTS[c]·LAB8_GAMMA[v_c] (monotone in the sum; not saturated). */
export function lab8LightnessOfWeightedSum(sum: number): number {
  return descale(296 * cbrtAt(descale(sum, 12)) - 1336934, 15);
}

/** The largest weighted gamma sum (all channels at 255, plus a descale step). */
const MAX_WEIGHTED_SUM = 4096 * 2040 + 4096;
const firstFailingSum = new Map<number, number>();

/**
 * The luminosity tissue rule's bound (native/stain/stain_tables_cpu.cc,
 * luminosity_table): the smallest weighted gamma sum whose L8 fails
 * L8/255 < threshold (compared in float), or Infinity when none does. Tissue
 * is then Σ weight·gamma < bound.
 */
export function lab8LuminosityBound(threshold: number): number {
  const t = Math.fround(threshold);
  const known = firstFailingSum.get(t);
  if (known !== undefined) return known;
  let l8Fail = 0;
  while (l8Fail < 256 && Math.fround(l8Fail / 255) < t) l8Fail++;
  let sumFail = 0;
  while (sumFail <= MAX_WEIGHTED_SUM && lab8LightnessOfWeightedSum(sumFail) < l8Fail) sumFail += 4096;
  // Refine within the last step of 4096 (descale rounds at 2048).
  let lo = Math.max(0, sumFail - 4096);
  while (lo < sumFail && lab8LightnessOfWeightedSum(lo) < l8Fail) lo++;
  const bound = sumFail > MAX_WEIGHTED_SUM ? Infinity : lo;
  firstFailingSum.set(t, bound);
  return bound;
}

// ---- LAB8 → sRGB ----------------------------------------------------------------

const f = Math.fround;

/** Linear value (float) where 8-bit sRGB level k begins; level 0 starts at −1. */
export const SRGB8_LEVEL_START: Float32Array = (() => {
  const t = new Float32Array(256);
  t[0] = -1;
  for (let k = 1; k < 256; k++) {
    const v = (k - 0.5) / 255;
    t[k] = v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  }
  return t;
})();

const COARSE = 8192;
const COARSE_LEVEL: Uint8Array = (() => {
  const t = new Uint8Array(COARSE + 1);
  let level = 0;
  for (let i = 0; i <= COARSE; i++) {
    const lin = f(i / COARSE);
    while (level < 255 && lin >= SRGB8_LEVEL_START[level + 1]!) level++;
    t[i] = level;
  }
  return t;
})();

/** round(255·srgb_gamma(linear)) as the cpu backend reads it from the level starts; `lin` is a float32 value. */
export function linearToSrgb8(lin: number): number {
  lin = lin < 0 ? 0 : lin > 1 ? 1 : lin;
  let level = COARSE_LEVEL[Math.trunc(f(lin * COARSE))]!;
  while (level < 255 && lin >= SRGB8_LEVEL_START[level + 1]!) level++;
  return level;
}

const L_SCALE = f(100 / 255);
const L_KNEE = f(f(0.008856) * f(903.3));
const F903 = f(903.3);
const F7787 = f(7.787);
const F_BIAS = f(16 / 116);
const F_INV_KNEE = f(0.20689303442);
const F116 = 116;
const XN = f(0.950456);
const ZN = f(1.088754);
/** The fp32 XYZ → linear sRGB matrix, row-major, signs included (a − b·y equals a + (−b)·y in fp32). */
const XYZ_TO_RGB = Float32Array.from([3.240479, -1.53715, -0.498535, -0.969256, 1.875991, 0.041556, 0.055648, -0.204043, 1.057311]);

function fInverse(v: number): number {
  return v <= F_INV_KNEE ? f(f(v - F_BIAS) / F7787) : f(f(v * v) * v);
}

/** OpenCV's float LAB → linear sRGB of an 8-bit LAB value, in fp32 (unclamped). */
export function lab8ToLinear(l8: number, a8: number, b8: number, out: number[] | Float32Array = [0, 0, 0]): typeof out {
  const l = f(l8 * L_SCALE);
  const a = a8 - 128;
  const b = b8 - 128;
  let y: number;
  let fy: number;
  if (l <= L_KNEE) {
    y = f(l / F903);
    fy = f(f(F7787 * y) + F_BIAS);
  } else {
    fy = f(f(l + 16) / F116);
    y = f(f(fy * fy) * fy);
  }
  const x = f(fInverse(f(f(a / 500) + fy)) * XN);
  const z = f(fInverse(f(fy - f(b / 200))) * ZN);
  const m = XYZ_TO_RGB;
  for (let c = 0; c < 3; c++) out[c] = f(f(f(m[c * 3]! * x) + f(m[c * 3 + 1]! * y)) + f(m[c * 3 + 2]! * z));
  return out;
}

const scratch = new Float32Array(3);

/** 8-bit LAB → uint8 sRGB as the native Reinhard transform writes it. */
export function lab8ToSrgb(l8: number, a8: number, b8: number, out: number[] | Uint8Array = [0, 0, 0]): typeof out {
  const lin = lab8ToLinear(l8, a8, b8, scratch);
  out[0] = linearToSrgb8(lin[0]!);
  out[1] = linearToSrgb8(lin[1]!);
  out[2] = linearToSrgb8(lin[2]!);
  return out;
}
