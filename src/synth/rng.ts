/**
 * Counter-based random numbers for the synthetic data: everything a patch
 * draws depends only on (seed, index), never on which patches were drawn
 * before or on which worker drew it, so a dataset is the same however it is
 * generated. The key is splitmix64(seed, index) (the repo's generator); the
 * stream under a key is 32-bit (fast enough for per-pixel noise) and the
 * lattice noise hashes (key, x, y) directly, with no state at all.
 */
import { splitmix64 } from '../stain/math.js';

/** The 32-bit key of patch `index` under `seed`. */
export function patchKey(seed: number, index: number): number {
  return Number(splitmix64(seed, index) & 0xffffffffn) >>> 0;
}

/** murmur3's 32-bit finalizer over a, b, c: a well-mixed hash of three words. */
export function hash3(a: number, b: number, c: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b, 0xc2b2ae35) ^ Math.imul(c + 0x27d4eb2f, 0x165667b1);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A stream of uniforms keyed by one 32-bit key: the k-th draw is hash3(key, stream, k). */
export class Rng {
  #k = 0;
  constructor(readonly key: number, readonly stream = 0) {}

  /** Uniform in [0, 1). */
  next(): number {
    return hash3(this.key, this.stream, this.#k++) / 4294967296;
  }

  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  int(lo: number, hiInclusive: number): number {
    return lo + Math.floor(this.next() * (hiInclusive - lo + 1));
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A child stream: independent draws that do not shift this stream's sequence. */
  fork(stream: number): Rng {
    return new Rng(hash3(this.key, this.stream, 0x51ed270b ^ stream), stream);
  }
}

/**
 * Smooth value noise in [0, 1): bilinear (smoothstep-weighted) interpolation
 * of hashed lattice values, lattice spacing `scale` pixels.
 */
export function valueNoise(key: number, x: number, y: number, scale: number): number {
  const fx = x / scale, fy = y / scale;
  const x0 = Math.floor(fx), y0 = Math.floor(fy);
  const tx = fx - x0, ty = fy - y0;
  const sx = tx * tx * (3 - 2 * tx), sy = ty * ty * (3 - 2 * ty);
  const v = (i: number, j: number): number => hash3(key, x0 + i, y0 + j) / 4294967296;
  const a = v(0, 0) + (v(1, 0) - v(0, 0)) * sx;
  const b = v(0, 1) + (v(1, 1) - v(0, 1)) * sx;
  return a + (b - a) * sy;
}

/** Two octaves of value noise, in [0, 1). */
export function fractalNoise(key: number, x: number, y: number, scale: number): number {
  return (2 * valueNoise(key, x, y, scale) + valueNoise(key ^ 0x6a09e667, x, y, scale / 2)) / 3;
}
