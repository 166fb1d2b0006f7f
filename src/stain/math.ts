/**
 * Host math shared by the TypeScript backends (js, gpujs) and the augment
 * parameter draw: the twin of native/stain/stain_math.h, native/core/random.h
 * (splitmix64), native/stain/macenko_plane.h (pseudo-angles) and
 * native/color/lab.h. Everything here runs in
 * double precision, as the cpu backend (native/stain) does for its 3x3 / 2x3 problems.
 */

/** Symmetric 3x3 eigen-decomposition: values ascending (numpy.linalg.eigh), vector k in column k of `vectors` (row-major). */
export interface Eigh3 {
  values: Float64Array;
  vectors: Float64Array;
}

/**
 * Cyclic Jacobi rotations on a symmetric 3x3 matrix (row-major). Each
 * eigenvector's sign is fixed so that its largest-magnitude component is
 * positive: LAPACK's sign is arbitrary and backends must agree.
 */
export function eigh3(a: ArrayLike<number>): Eigh3 {
  const m = Float64Array.from([a[0]!, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!, a[7]!, a[8]!]);
  const v = Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]);
  for (let sweep = 0; sweep < 64; sweep++) {
    const off = m[1]! * m[1]! + m[2]! * m[2]! + m[5]! * m[5]!;
    const diag = m[0]! * m[0]! + m[4]! * m[4]! + m[8]! * m[8]!;
    if (off <= 1e-30 * diag || off === 0) break;
    for (const [p, q] of [
      [0, 1],
      [0, 2],
      [1, 2],
    ] as const) {
      const apq = m[p * 3 + q]!;
      if (apq === 0) continue;
      const app = m[p * 3 + p]!;
      const aqq = m[q * 3 + q]!;
      // Rotation angle that zeroes a[p][q] (Golub & Van Loan, sym.schur2).
      const tau = (aqq - app) / (2 * apq);
      const t = Math.sign(tau || 1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
      const c = 1 / Math.sqrt(1 + t * t);
      const s = t * c;
      for (let k = 0; k < 3; k++) {
        const akp = m[k * 3 + p]!;
        const akq = m[k * 3 + q]!;
        m[k * 3 + p] = c * akp - s * akq;
        m[k * 3 + q] = s * akp + c * akq;
      }
      for (let k = 0; k < 3; k++) {
        const apk = m[p * 3 + k]!;
        const aqk = m[q * 3 + k]!;
        m[p * 3 + k] = c * apk - s * aqk;
        m[q * 3 + k] = s * apk + c * aqk;
      }
      for (let k = 0; k < 3; k++) {
        const vkp = v[k * 3 + p]!;
        const vkq = v[k * 3 + q]!;
        v[k * 3 + p] = c * vkp - s * vkq;
        v[k * 3 + q] = s * vkp + c * vkq;
      }
    }
  }
  const order = [0, 1, 2].sort((i, j) => m[i * 3 + i]! - m[j * 3 + j]!);
  const values = new Float64Array(3);
  const vectors = new Float64Array(9);
  order.forEach((src, dst) => {
    values[dst] = m[src * 3 + src]!;
    let big = 0;
    for (let k = 1; k < 3; k++) if (Math.abs(v[k * 3 + src]!) > Math.abs(v[big * 3 + src]!)) big = k;
    const sign = v[big * 3 + src]! < 0 ? -1 : 1;
    for (let k = 0; k < 3; k++) vectors[k * 3 + dst] = sign * v[k * 3 + src]!;
  });
  return { values, vectors };
}

type NumericArray = Float64Array | Float32Array;

/** Hoare partition / quickselect: after it, values[k] is the k-th smallest of values[lo..hi]. */
function selectInPlace(values: NumericArray, k: number, lo: number, hi: number): void {
  while (hi > lo) {
    // Median of three keeps sorted and reverse-sorted input linear.
    const mid = (lo + hi) >>> 1;
    const a = values[lo]!;
    const b = values[mid]!;
    const c = values[hi]!;
    const pivot = a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        const t = values[i]!;
        values[i] = values[j]!;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return;
  }
}

/** The order statistics either side of a percentile and numpy's weight between them. */
export interface OrderPair {
  lo: number;
  hi: number;
  frac: number;
}

/** numpy's _lerp: a + (b−a)·t, or b − (b−a)·(1−t) when t ≥ 0.5. */
export function lerpNumpy(a: number, b: number, t: number): number {
  const diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

/**
 * The k-th and (k+1)-th smallest of values[0..n) for numpy's linear
 * percentile, pos = p/100·(n−1), k = ⌊pos⌋. Reorders `values` in place; O(n)
 * on average. NaN is not expected (it would not order).
 */
export function percentileOrderPair(values: NumericArray, p: number, n: number = values.length): OrderPair {
  if (n < 1) throw new RangeError(`Expected at least 1 value for a percentile but received ${n}`);
  const pos = (p / 100) * (n - 1);
  const k = Math.min(Math.max(Math.floor(pos), 0), n - 1);
  const frac = Math.min(Math.max(pos - k, 0), 1);
  selectInPlace(values, k, 0, n - 1);
  const lo = values[k]!;
  let hi = lo;
  if (k + 1 < n) {
    // The next order statistic is the minimum of the part above k.
    hi = values[k + 1]!;
    for (let i = k + 2; i < n; i++) if (values[i]! < hi) hi = values[i]!;
  }
  return { lo, hi, frac };
}

/** numpy.percentile(values, p) with the default linear method. Reorders `values` in place. */
export function percentileLinear(values: NumericArray, p: number, n: number = values.length): number {
  const { lo, hi, frac } = percentileOrderPair(values, p, n);
  return lerpNumpy(lo, hi, frac);
}

/**
 * Least-squares solver for od ≈ c0·he[0..2] + c1·he[3..5]: P (2x3, row-major)
 * = (HᵀH)⁻¹Hᵀ for H = heᵀ, so that c = P·od; null when HᵀH is singular.
 */
export function stainPinv(he: ArrayLike<number>): Float64Array | null {
  const h0 = [he[0]!, he[1]!, he[2]!];
  const h1 = [he[3]!, he[4]!, he[5]!];
  const g00 = h0[0]! * h0[0]! + h0[1]! * h0[1]! + h0[2]! * h0[2]!;
  const g11 = h1[0]! * h1[0]! + h1[1]! * h1[1]! + h1[2]! * h1[2]!;
  const g01 = h0[0]! * h1[0]! + h0[1]! * h1[1]! + h0[2]! * h1[2]!;
  const det = g00 * g11 - g01 * g01;
  const scale = g00 * g11;
  if (!(det > 1e-12 * scale) || !Number.isFinite(det)) return null;
  const i00 = g11 / det;
  const i01 = -g01 / det;
  const i11 = g00 / det;
  const pinv = new Float64Array(6);
  for (let k = 0; k < 3; k++) {
    pinv[k] = i00 * h0[k]! + i01 * h1[k]!;
    pinv[3 + k] = i01 * h0[k]! + i11 * h1[k]!;
  }
  return pinv;
}

const MASK64 = (1n << 64n) - 1n;

/** splitmix64 (Steele, Lea & Flood 2014; native/core/random.h): the k-th output (k from 0) of the generator seeded with `seed`. */
export function splitmix64(seed: bigint | number, k: bigint | number): bigint {
  let z = (BigInt(seed) + (BigInt(k) + 1n) * 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** A uniform double in [0, 1) from the k-th splitmix64 output: (x >> 11)·2⁻⁵³. */
export function splitmix64Unit(seed: bigint | number, k: bigint | number): number {
  return Number(splitmix64(seed, k) >> 11n) * 2 ** -53;
}

// sRGB (D65) ↔ CIE L*a*b*, OpenCV's float formulas (cv2.COLOR_RGB2LAB docs):
// linear RGB → XYZ (sRGB primaries), X/Xn, Z/Zn, cube root with the linear toe.
const XN = 0.950456;
const ZN = 1.088754;
const LAB_EPS = 0.008856;

function srgbToLinear(v: number): number {
  return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
}

function linearToSrgb(v: number): number {
  return v <= 0.0031308 ? 12.92 * v : 1.055 * Math.pow(v, 1 / 2.4) - 0.055;
}

function labF(t: number): number {
  return t > LAB_EPS ? Math.cbrt(t) : 7.787 * t + 16 / 116;
}

/** One uint8 sRGB pixel → [L 0..100, a, b], computed in double and rounded to float32 as native/color/lab.cc. */
export function srgbToLab(r: number, g: number, b: number, out: number[] | Float64Array = [0, 0, 0]): typeof out {
  const R = srgbToLinear(r / 255);
  const G = srgbToLinear(g / 255);
  const B = srgbToLinear(b / 255);
  const x = (0.412453 * R + 0.35758 * G + 0.180423 * B) / XN;
  const y = 0.212671 * R + 0.71516 * G + 0.072169 * B;
  const z = (0.019334 * R + 0.119193 * G + 0.950227 * B) / ZN;
  const fy = labF(y);
  out[0] = Math.fround(y > LAB_EPS ? 116 * fy - 16 : 903.3 * y);
  out[1] = Math.fround(500 * (labF(x) - fy));
  out[2] = Math.fround(200 * (fy - labF(z)));
  return out;
}

/** Inverse of labF: linear below f(0.008856). */
function labFInverse(f: number): number {
  return f <= 0.20689303442 ? (f - 16 / 116) / 7.787 : f * f * f;
}

/** [L 0..100, a, b] → uint8 sRGB, rounded half to even and clamped. */
export function labToSrgb(L: number, a: number, b: number, out: number[] | Uint8Array = [0, 0, 0]): typeof out {
  let y: number;
  let fy: number;
  if (L <= LAB_EPS * 903.3) {
    y = L / 903.3;
    fy = 7.787 * y + 16 / 116;
  } else {
    fy = (L + 16) / 116;
    y = fy * fy * fy;
  }
  const x = labFInverse(a / 500 + fy) * XN;
  const z = labFInverse(fy - b / 200) * ZN;
  const R = 3.240479 * x - 1.53715 * y - 0.498535 * z;
  const G = -0.969256 * x + 1.875991 * y + 0.041556 * z;
  const B = 0.055648 * x - 0.204043 * y + 1.057311 * z;
  out[0] = rint(clamp01(linearToSrgb(clamp01(R))) * 255);
  out[1] = rint(clamp01(linearToSrgb(clamp01(G))) * 255);
  out[2] = rint(clamp01(linearToSrgb(clamp01(B))) * 255);
  return out;
}

/**
 * OpenCV's 8-bit LAB as the cpu backend computes it (cv2's fixed-point
 * RGB → LAB8, native/color/lab_opencv8.h; LAB8 → RGB in fp32 with the level
 * table of native/color/lab8_to_srgb.h): see src/color/lab_opencv8.ts. The
 * float formulas above stay the twin of native/color/lab.cc.
 */
export { lab8ToSrgb, srgbToLab8 } from '../color/lab_opencv8.js';

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

/** Round half to even, as C's nearbyint / rint in the default rounding mode. */
export function rint(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** saturate_cast<uchar>: rint, then clamp to [0, 255]. */
export function toByte(v: number): number {
  const r = rint(v);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/**
 * Strictly increasing in atan2(y, x) over (−π, π], in [−2, 2]: Macenko ranks
 * pixels by it and takes atan2 only of the order statistics (as the cpu
 * backend does, native/stain/macenko_plane.h; GPU atan2 is not trustworthy
 * near the axes either).
 */
const TINY = Math.fround(1e-30);

export function pseudoAngle(x: number, y: number): number {
  const s = Math.max(Math.fround(Math.abs(x) + Math.abs(y)), TINY);
  const v = Math.fround(1 - Math.fround(x / s));
  return y < 0 || Object.is(y, -0) ? -v : v;
}

/** The angle whose pseudoAngle is d. */
export function angleOfPseudo(d: number): number {
  const x = 1 - Math.abs(d);
  const phi = Math.atan2(1 - Math.abs(x), x);
  return d < 0 ? -phi : phi;
}
