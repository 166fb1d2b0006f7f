/**
 * What `inspect` finds beyond per-patch flags, each with its rule stated:
 *
 *   near-duplicates  perceptual hash (pHash: grey 32x32 by area averaging,
 *                    2-D DCT-II, the 8x8 lowest frequencies, each bit = the
 *                    coefficient above the median of the 63 without DC) within
 *                    NEAR_DUPLICATE_BITS of another patch's under any of the 8
 *                    rotations/flips (a DCT coefficient (u, v) of a flipped
 *                    image is ±(u, v), of a transposed one (v, u): the eight
 *                    hashes come from one transform). Exact duplicates, and
 *                    blank or background patches (they hash alike whatever
 *                    they hold), are not counted here.
 *   over-saturated   ≥ SATURATED_FRACTION of the pixels with HSV saturation
 *                    ≥ 0.8 and value ≥ 0.2 (ink, dye and scanner artefacts;
 *                    H&E tissue sits far lower)
 *   colour outliers  the patch's mean optical density (−ln((I + 1)/256) per
 *                    channel) at a Mahalanobis distance² above χ²₃(0.999) =
 *                    16.27 from the dataset's (mean and covariance over the
 *                    patches that are not background)
 */

/** Hamming distance (of 64 bits) at or below which two patches are near-duplicates. */
export const NEAR_DUPLICATE_BITS = 4;
/** Fraction of vivid pixels that flags a patch as over-saturated. */
export const SATURATED_FRACTION = 0.5;
/** χ²₃ at p = 0.001: a patch's mean OD this far (squared Mahalanobis) from the rest is an outlier. */
export const COLOUR_OUTLIER_D2 = 16.27;

/** A 64-bit hash as two 32-bit halves. */
export type Hash64 = [number, number];

const HASH_SIDE = 32;
const LOW = 8;

/** cos((2x + 1) u π / 64) for u < 8, x < 32: the DCT-II basis rows the hash needs. */
const BASIS = (() => {
  const b = new Float64Array(LOW * HASH_SIDE);
  for (let u = 0; u < LOW; u++) for (let x = 0; x < HASH_SIDE; x++) b[u * HASH_SIDE + x] = Math.cos(((2 * x + 1) * u * Math.PI) / (2 * HASH_SIDE));
  return b;
})();

/**
 * Area weights resampling n samples to HASH_SIDE: for each output o, the input
 * indices overlapping [o·n/32, (o+1)·n/32) and their overlaps (summing to 1).
 */
const weightsBySize = new Map<number, Array<Array<[number, number]>>>();
function areaWeights(n: number): Array<Array<[number, number]>> {
  const cached = weightsBySize.get(n);
  if (cached) return cached;
  const s = n / HASH_SIDE;
  const weights = Array.from({ length: HASH_SIDE }, (_, o) => {
    const a = o * s, b = (o + 1) * s;
    const w: Array<[number, number]> = [];
    for (let i = Math.floor(a); i < Math.min(n, Math.ceil(b)); i++) w.push([i, (Math.min(b, i + 1) - Math.max(a, i)) / s]);
    return w;
  });
  weightsBySize.set(n, weights);
  return weights;
}

/** Rec. 601 grey of an RGB patch, averaged down to 32x32 by area (separable: rows, then columns). */
function greyThumbnail(data: Uint8Array, height: number, width: number): Float64Array {
  const wx = areaWeights(width), wy = areaWeights(height);
  const rows = new Float64Array(height * HASH_SIDE);
  for (let y = 0; y < height; y++) {
    for (let o = 0; o < HASH_SIDE; o++) {
      let s = 0;
      for (const [x, w] of wx[o]!) {
        const i = 3 * (y * width + x);
        s += w * (0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!);
      }
      rows[y * HASH_SIDE + o] = s;
    }
  }
  const out = new Float64Array(HASH_SIDE * HASH_SIDE);
  for (let o = 0; o < HASH_SIDE; o++) {
    for (const [y, w] of wy[o]!) for (let x = 0; x < HASH_SIDE; x++) out[o * HASH_SIDE + x]! += w * rows[y * HASH_SIDE + x]!;
  }
  return out;
}

/** The 8x8 lowest DCT-II coefficients of the 32x32 grey thumbnail, row u (vertical frequency) major. */
export function lowDct(data: Uint8Array, height: number, width: number): Float64Array {
  const g = greyThumbnail(data, height, width);
  const rows = new Float64Array(HASH_SIDE * LOW); // rows[y][v]: DCT along x
  for (let y = 0; y < HASH_SIDE; y++) {
    for (let v = 0; v < LOW; v++) {
      let s = 0;
      for (let x = 0; x < HASH_SIDE; x++) s += g[y * HASH_SIDE + x]! * BASIS[v * HASH_SIDE + x]!;
      rows[y * LOW + v] = s;
    }
  }
  const c = new Float64Array(LOW * LOW);
  for (let u = 0; u < LOW; u++) {
    for (let v = 0; v < LOW; v++) {
      let s = 0;
      for (let y = 0; y < HASH_SIDE; y++) s += rows[y * LOW + v]! * BASIS[u * HASH_SIDE + y]!;
      c[u * LOW + v] = s;
    }
  }
  return c;
}

/** Bits of 64 coefficients against the median of all but DC (index 0): bit k set when c[k] > median. */
function bitsOf(c: Float64Array): Hash64 {
  const sorted = Array.from(c.subarray(1)).sort((a, b) => a - b);
  const median = (sorted[31]! + sorted[30]!) / 2;
  let hi = 0, lo = 0;
  for (let k = 0; k < 64; k++) {
    if (!(c[k]! > median)) continue;
    if (k < 32) hi |= 1 << k;
    else lo |= 1 << (k - 32);
  }
  return [hi >>> 0, lo >>> 0];
}

/**
 * The pHash of a patch under each of the 8 rotations/flips, the identity
 * first. Flipping x negates coefficients of odd v, flipping y those of odd u,
 * transposing swaps u and v: every D4 element is a composition of these.
 */
export function d4Hashes(data: Uint8Array, height: number, width: number): Hash64[] {
  const c = lowDct(data, height, width);
  const out: Hash64[] = [];
  for (const transpose of [false, true]) {
    for (const flipY of [false, true]) {
      for (const flipX of [false, true]) {
        const t = new Float64Array(64);
        for (let u = 0; u < LOW; u++) {
          for (let v = 0; v < LOW; v++) {
            const [su, sv] = transpose ? [v, u] : [u, v];
            const sign = (flipY && su % 2 ? -1 : 1) * (flipX && sv % 2 ? -1 : 1);
            t[u * LOW + v] = sign * c[su * LOW + sv]!;
          }
        }
        out.push(bitsOf(t));
      }
    }
  }
  return out;
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

export function hamming(a: Hash64, b: Hash64): number {
  return popcount32((a[0] ^ b[0]) >>> 0) + popcount32((a[1] ^ b[1]) >>> 0);
}

/**
 * Near-duplicate pairs (i < j) among hashes, under any rotation/flip of j:
 * multi-index hashing (the 64 bits in maxBits + 1 chunks: two hashes within
 * maxBits agree exactly on at least one chunk), so the search costs the
 * candidates sharing a chunk, not every pair.
 */
export function nearDuplicatePairs(hashes: readonly Hash64[][], maxBits = NEAR_DUPLICATE_BITS): Array<[number, number, number]> {
  const chunks = maxBits + 1;
  const bounds = Array.from({ length: chunks + 1 }, (_, k) => Math.round((64 * k) / chunks));
  const chunkOf = (h: Hash64, k: number): string => {
    let key = '';
    for (let bit = bounds[k]!; bit < bounds[k + 1]!; bit++) key += (bit < 32 ? h[0] >>> bit : h[1] >>> (bit - 32)) & 1;
    return key;
  };
  const tables = Array.from({ length: chunks }, () => new Map<string, number[]>());
  hashes.forEach((h, i) => {
    for (let k = 0; k < chunks; k++) {
      const key = chunkOf(h[0]!, k);
      const list = tables[k]!.get(key);
      if (list) list.push(i);
      else tables[k]!.set(key, [i]);
    }
  });
  const best = new Map<number, number>();
  hashes.forEach((variants, j) => {
    for (const h of variants) {
      for (let k = 0; k < chunks; k++) {
        for (const i of tables[k]!.get(chunkOf(h, k)) ?? []) {
          if (i >= j) continue;
          const d = hamming(hashes[i]![0]!, h);
          const key = i * hashes.length + j;
          if (d <= maxBits && d < (best.get(key) ?? Infinity)) best.set(key, d);
        }
      }
    }
  });
  return [...best].map(([key, d]): [number, number, number] => [Math.floor(key / hashes.length), key % hashes.length, d]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
}

/** Fraction of pixels with HSV saturation ≥ 0.8 and value ≥ 0.2. */
export function saturatedFraction(data: Uint8Array): number {
  let vivid = 0;
  const n = data.length / 3;
  for (let i = 0; i < data.length; i += 3) {
    const r = data[i]!, g = data[i + 1]!, b = data[i + 2]!;
    const max = Math.max(r, g, b), min = Math.min(r, g, b);
    if (max >= 51 && max - min >= 0.8 * max) vivid++;
  }
  return n > 0 ? vivid / n : 0;
}

/** Mean optical density per channel, −ln((I + 1)/256). */
export function meanOd(data: Uint8Array): [number, number, number] {
  const s = [0, 0, 0];
  for (let i = 0; i < data.length; i += 3) for (let c = 0; c < 3; c++) s[c]! += OD_TABLE[data[i + c]!]!;
  const n = Math.max(1, data.length / 3);
  return [s[0]! / n, s[1]! / n, s[2]! / n];
}

const OD_TABLE = Float64Array.from({ length: 256 }, (_, v) => -Math.log((v + 1) / 256));

/**
 * Squared Mahalanobis distance of each point from the mean and covariance of
 * the points `fit` selects; NaN for all when fewer than 4 are selected or the
 * covariance is singular.
 */
export function mahalanobis2(points: ReadonlyArray<readonly [number, number, number]>, fit: (i: number) => boolean): Float64Array {
  const sel = points.filter((_, i) => fit(i));
  const out = new Float64Array(points.length).fill(Number.NaN);
  if (sel.length < 4) return out;
  const mu = [0, 1, 2].map((c) => sel.reduce((s, p) => s + p[c]!, 0) / sel.length);
  const cov = new Float64Array(9);
  for (const p of sel) for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) cov[a * 3 + b]! += ((p[a]! - mu[a]!) * (p[b]! - mu[b]!)) / (sel.length - 1);
  const inv = invert3(cov);
  if (!inv) return out;
  points.forEach((p, i) => {
    const d = [p[0] - mu[0]!, p[1] - mu[1]!, p[2] - mu[2]!];
    let s = 0;
    for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) s += d[a]! * inv[a * 3 + b]! * d[b]!;
    out[i] = s;
  });
  return out;
}

function invert3(m: Float64Array): Float64Array | null {
  const [a, b, c, d, e, f, g, h, k] = m as unknown as number[];
  const A = e! * k! - f! * h!, B = -(d! * k! - f! * g!), C = d! * h! - e! * g!;
  const det = a! * A + b! * B + c! * C;
  if (!(Math.abs(det) > 1e-18)) return null;
  return Float64Array.from([
    A, -(b! * k! - c! * h!), b! * f! - c! * e!,
    B, a! * k! - c! * g!, -(a! * f! - c! * d!),
    C, -(a! * h! - b! * g!), a! * e! - b! * d!,
  ], (v) => v / det);
}
