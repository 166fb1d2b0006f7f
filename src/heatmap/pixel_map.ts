/**
 * The pixel map of a segmentation model: its per-pixel probabilities over
 * overlapping windows, stitched into one map with no seam.
 *
 * Windows. Squares of `size` level px laid every `stride` px from the
 * level's origin, in both directions, until they cover the level: the last
 * column starts at ceil((width − size)/stride)·stride, so it may reach past
 * the right edge (the slide reads white there) and the pixels beyond the
 * edge are dropped. A window that is read at `size` px and resampled to the
 * model's `outputSize` (a target µm/px between levels) gives output pixel u
 * the level position of its centre, x + (u + ½)·size/outputSize.
 *
 * Blending. Each window's probabilities are weighted by the separable window
 * w(u)·w(v), w(u) = sin²(π(u + ½)/n) over the window's n output pixels:
 * largest in the middle, small but never 0 at the border (so every covered
 * pixel has a weight), and for stride n/2 the weights of overlapping windows
 * sum to 1 (sin² + cos²), the overlap-add of a Hann window. A model's output
 * is least reliable near a window's border, where it saw the least context;
 * the weight hands those pixels to the neighbouring window.
 *
 * Map pixels. One map pixel covers `mapDownsample` (m) level px a side:
 * pixel (i, j) is level px [j·m, (j+1)·m) x [i·m, (i+1)·m) (clipped to the
 * level). Each window gives a map pixel the plain mean of its output pixels
 * that fall in it, p̄ₖ, with the weight cₖ = Σ w of those pixels; the map
 * pixel is Σₖ cₖ·p̄ₖ / Σₖ cₖ. At m = 1 that is Σ w·p / Σ w per level px;
 * when m divides the stride and the window size, every window covering a map
 * pixel covers all of it, so a model that is a function of each pixel's
 * colour gives exactly that function's mean over the map pixel.
 *
 * Memory: two float32 accumulators and a byte of tissue per map pixel, and
 * one window's scratch; never an image of the level.
 */
import { invalidRange } from '../errors.js';
import { integralImage, type GridMask } from '../tiling/grid.js';
import type { ProbabilityMap } from './probability_map.js';

/** The blend weight of output pixel u of n: sin²(π(u + ½)/n), in (0, 1]. */
export function blendWeights(n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, u) => Math.sin((Math.PI * (u + 0.5)) / n) ** 2);
}

/** Top-left positions of the windows along one axis of `length` level px (see the file comment). */
export function windowStarts(length: number, size: number, stride: number): number[] {
  const count = Math.ceil(Math.max(0, length - size) / stride) + 1;
  return Array.from({ length: count }, (_, k) => k * stride);
}

/**
 * Bytes a map pixel costs over a run: the two accumulators and the tissue
 * byte while predicting, then the outputs made from the map (regions'
 * labels and mask, the PNG, the f32 and npy copies): 32 bytes, rounded up.
 */
export const MAP_BYTES_PER_PIXEL = 32;

/** Default bound on the map's pixels: 4096 x 4096, 512 MiB at MAP_BYTES_PER_PIXEL. */
export const MAX_DEFAULT_MAP_PIXELS = 2 ** 24;

/**
 * The default map downsample: the smallest power of two whose map of the
 * level has at most MAX_DEFAULT_MAP_PIXELS pixels and fits `maxBytes`
 * (MAP_BYTES_PER_PIXEL each). Powers of two divide the usual window sizes and
 * strides, so the map pixels stay aligned with the windows.
 */
export function defaultMapDownsample(levelWidth: number, levelHeight: number, maxBytes: number): number {
  let m = 1;
  const pixels = () => Math.ceil(levelWidth / m) * Math.ceil(levelHeight / m);
  while (m < Math.max(levelWidth, levelHeight) && (pixels() > MAX_DEFAULT_MAP_PIXELS || pixels() * MAP_BYTES_PER_PIXEL > maxBytes)) m *= 2;
  return m;
}

export interface PixelMapGeometry {
  /** The level's size in its px. */
  levelWidth: number;
  levelHeight: number;
  /** Level px per map pixel side. */
  mapDownsample: number;
  /** Window side read at the level, in its px. */
  windowSize: number;
  /** The model's output side (the window resampled to it; = windowSize at a level's own resolution). */
  outputSize: number;
}

/**
 * Tissue area of the mask in [0, X] x [0, Y] (mask px, real X and Y): the
 * bilinear interpolation of its summed-area table, as grid.ts's
 * tissueFraction reads it (the mask is constant over each of its pixels).
 */
function areaTo(s: Float64Array, width: number, height: number, X: number, Y: number): number {
  X = Math.min(Math.max(X, 0), width);
  Y = Math.min(Math.max(Y, 0), height);
  const i = Math.min(Math.floor(X), width - 1), j = Math.min(Math.floor(Y), height - 1);
  const fx = X - i, fy = Y - j, w = width + 1;
  return s[j * w + i]! * (1 - fx) * (1 - fy) + s[j * w + i + 1]! * fx * (1 - fy) + s[(j + 1) * w + i]! * (1 - fx) * fy + s[(j + 1) * w + i + 1]! * fx * fy;
}

/**
 * Which map pixels hold data: those whose footprint's tissue fraction (the
 * thumbnail's mask; level px times `downsample` = level-0 px) is at least
 * minTissue. 1 = data, 0 = no data (NaN in the map). The area under each
 * corner of the map's grid is looked up once and shared by the four map
 * pixels around it: a map can have millions of pixels.
 */
export function tissuePixels(g: PixelMapGeometry, downsample: number, mask: GridMask, minTissue: number): Uint8Array {
  const width = Math.ceil(g.levelWidth / g.mapDownsample), height = Math.ceil(g.levelHeight / g.mapDownsample);
  const sat = integralImage(mask.mask, mask.width, mask.height);
  const m = g.mapDownsample, scale = downsample / mask.downsample;
  // Corners of the map's pixels in mask px, the last ones at the level's edge.
  const xs = Float64Array.from({ length: width + 1 }, (_, j) => Math.min(j * m, g.levelWidth) * scale);
  const ys = Float64Array.from({ length: height + 1 }, (_, i) => Math.min(i * m, g.levelHeight) * scale);
  const out = new Uint8Array(width * height);
  let above = xs.map((x) => areaTo(sat, mask.width, mask.height, x, ys[0]!));
  for (let i = 0; i < height; i++) {
    const below = xs.map((x) => areaTo(sat, mask.width, mask.height, x, ys[i + 1]!));
    const h = ys[i + 1]! - ys[i]!;
    for (let j = 0; j < width; j++) {
      const area = below[j + 1]! - below[j]! - above[j + 1]! + above[j]!;
      out[i * width + j] = Math.min(1, Math.max(0, area / ((xs[j + 1]! - xs[j]!) * h))) >= minTissue ? 1 : 0;
    }
    above = below;
  }
  return out;
}

/** Accumulates windows' per-pixel probabilities into the map (see the file comment). */
export class PixelMapAccumulator {
  readonly width: number;
  readonly height: number;
  private readonly sum: Float32Array;
  private readonly weight: Float32Array;
  private readonly w: Float64Array;
  /** Scratch of one window: per map pixel it touches, Σp, Σw and the count. */
  private readonly scratch: { p: Float64Array; w: Float64Array; n: Float64Array; cells: number };

  constructor(readonly geometry: PixelMapGeometry, private readonly data: Uint8Array) {
    const { levelWidth, levelHeight, mapDownsample: m, windowSize, outputSize } = geometry;
    this.width = Math.ceil(levelWidth / m);
    this.height = Math.ceil(levelHeight / m);
    if (data.length !== this.width * this.height) throw invalidRange('data', `${this.width * this.height} bytes (one per map pixel)`, data);
    this.sum = new Float32Array(this.width * this.height);
    this.weight = new Float32Array(this.width * this.height);
    this.w = blendWeights(outputSize);
    const cells = Math.ceil(windowSize / m) + 2;
    this.scratch = { p: new Float64Array(cells * cells), w: new Float64Array(cells * cells), n: new Float64Array(cells * cells), cells };
  }

  /** Map columns (or rows) of the output pixels of a window at level position `start` along an axis of `length` px; -1 past the edge. */
  private cellsOf(start: number, length: number): Int32Array {
    const { mapDownsample: m, windowSize, outputSize } = this.geometry;
    const exact = windowSize === outputSize;
    return Int32Array.from({ length: outputSize }, (_, u) => {
      // At the level's own resolution, integers: output pixel u is level px start + u.
      const at = exact ? start + u : start + ((u + 0.5) * windowSize) / outputSize;
      if (at < length) return Math.floor(at / m);
      // A resampled output pixel whose centre is past the edge but whose footprint is not: the level's last map pixel may have no other.
      return !exact && start + (u * windowSize) / outputSize < length ? Math.floor((length - 1) / m) : -1;
    });
  }

  /** Whether any map pixel under the window at level (x, y) holds data (else the window need not be predicted). */
  touchesData(x: number, y: number): boolean {
    const m = this.geometry.mapDownsample, size = this.geometry.windowSize;
    const j1 = Math.min(this.width, Math.ceil((x + size) / m)), i1 = Math.min(this.height, Math.ceil((y + size) / m));
    for (let i = Math.floor(y / m); i < i1; i++) {
      for (let j = Math.floor(x / m); j < j1; j++) if (this.data[i * this.width + j]) return true;
    }
    return false;
  }

  /**
   * Adds the window at level (x, y): `p` holds its outputSize² probabilities
   * from `offset`, row major. Returns their mean over the pixels inside the level.
   */
  add(x: number, y: number, p: Float32Array, offset = 0): number {
    const n = this.geometry.outputSize;
    const cols = this.cellsOf(x, this.geometry.levelWidth), rows = this.cellsOf(y, this.geometry.levelHeight);
    const j0 = cols[0]!, i0 = rows[0]!;
    const s = this.scratch, stride = s.cells;
    s.p.fill(0);
    s.w.fill(0);
    s.n.fill(0);
    let total = 0, inside = 0;
    for (let v = 0; v < n; v++) {
      const i = rows[v]!;
      if (i < 0) continue;
      const wy = this.w[v]!, row = (i - i0) * stride, base = offset + v * n;
      for (let u = 0; u < n; u++) {
        const j = cols[u]!;
        if (j < 0) continue;
        const k = row + j - j0, value = p[base + u]!;
        s.p[k] += value;
        s.w[k] += wy * this.w[u]!;
        s.n[k]++;
        total += value;
        inside++;
      }
    }
    for (let a = 0; a < stride; a++) {
      for (let b = 0; b < stride; b++) {
        const k = a * stride + b;
        if (s.n[k] === 0) continue;
        const cell = (i0 + a) * this.width + j0 + b;
        this.sum[cell] += (s.w[k]! * s.p[k]!) / s.n[k]!;
        this.weight[cell] += s.w[k]!;
      }
    }
    return inside ? total / inside : 0;
  }

  /** The map: Σ c·p̄ / Σ c where the map pixel holds data and some window reached it, NaN elsewhere. */
  finish(): ProbabilityMap {
    const data = this.sum;
    for (let k = 0; k < data.length; k++) {
      // Rounding can put a weighted mean of probabilities a hair outside [0, 1].
      data[k] = this.data[k] && this.weight[k]! > 0 ? Math.min(1, Math.max(0, data[k]! / this.weight[k]!)) : NaN;
    }
    return { data, width: this.width, height: this.height, stride: this.geometry.mapDownsample, tileSize: this.geometry.windowSize };
  }
}
