/**
 * The tissue detection chain in plain TypeScript, written for clarity rather
 * than speed (brute-force neighbourhoods, union–find components): the
 * independent reference the native kernel is tested against, and the 'js'
 * backend when the addon is not built. Spec: native/tissue/tissue_mask.h.
 */
import type { NativeTissueParams, TissueChannel } from './options.js';

/** Step 1: the channel, higher = more tissue. */
export function tissueChannel(rgb: Uint8Array, channel: TissueChannel): Uint8Array {
  const pixels = rgb.length / 3;
  const out = new Uint8Array(pixels);
  const od = (v: number): number => Math.fround(-Math.log((v + 1) / 256));
  for (let i = 0; i < pixels; i++) {
    const r = rgb[3 * i]!, g = rgb[3 * i + 1]!, b = rgb[3 * i + 2]!;
    if (channel === 'saturation') {
      const mx = Math.max(r, g, b), mn = Math.min(r, g, b);
      out[i] = mx === 0 ? 0 : Math.round((255 * (mx - mn)) / mx);
    } else if (channel === 'od') {
      const sum = Math.fround(Math.fround(od(r) + od(g)) + od(b));
      out[i] = Math.min(255, Math.round(Math.fround(sum * Math.fround(255 / 3))));
    } else {
      out[i] = 255 - Math.floor((r * 299 + g * 587 + b * 114) / 1000);
    }
  }
  return out;
}

/** Otsu: the t maximising w0·w1·(μ0 − μ1)² for classes {≤ t}, {> t}, each computed directly. */
export function otsuThreshold(hist: ArrayLike<number>): number {
  const values = Array.from({ length: 256 }, (_, v) => v).filter((v) => hist[v]! > 0);
  if (values.length === 0) return 0;
  if (values.length === 1) return values[0]!;
  let best = -1, bestT = values[0]!;
  for (let t = values[0]!; t < values[values.length - 1]!; t++) {
    let w0 = 0, s0 = 0, w1 = 0, s1 = 0;
    for (let v = 0; v < 256; v++) {
      if (v <= t) {
        w0 += hist[v]!;
        s0 += v * hist[v]!;
      } else {
        w1 += hist[v]!;
        s1 += v * hist[v]!;
      }
    }
    const d = s0 / w0 - s1 / w1;
    const variance = w0 * w1 * d * d;
    if (variance > best) {
      best = variance;
      bestT = t;
    }
  }
  return bestT;
}

export function medianFilter(input: Uint8Array, height: number, width: number, k: number): Uint8Array {
  const r = k >> 1;
  const out = new Uint8Array(input.length);
  const clamp = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const window: number[] = [];
      for (let dy = -r; dy <= r; dy++) {
        for (let dx = -r; dx <= r; dx++) window.push(input[clamp(y + dy, height - 1) * width + clamp(x + dx, width - 1)]!);
      }
      window.sort((a, b) => a - b);
      out[y * width + x] = window[window.length >> 1]!;
    }
  }
  return out;
}

/** Dilation (any neighbour set, outside = unset) or erosion (all set, outside = set) with disk(radius). */
export function morphology(mask: Uint8Array, height: number, width: number, radius: number, op: 'dilate' | 'erode'): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let hit = op === 'erode';
      for (let dy = -radius; dy <= radius && hit === (op === 'erode'); dy++) {
        for (let dx = -radius; dx <= radius; dx++) {
          if (dx * dx + dy * dy > radius * radius) continue;
          const yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= height || xx < 0 || xx >= width) continue;
          const set = mask[yy * width + xx] !== 0;
          if (op === 'dilate' && set) { hit = true; break; }
          if (op === 'erode' && !set) { hit = false; break; }
        }
      }
      out[y * width + x] = hit ? 255 : 0;
    }
  }
  return out;
}

/** 8-connected components of pixels whose "setness" equals `value`, by union–find. */
function components(mask: Uint8Array, height: number, width: number, value: boolean): { root: Int32Array; size: Map<number, number>; border: Set<number> } {
  const parent = new Int32Array(mask.length).map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]!]!;
    return i;
  };
  const is = (i: number): boolean => (mask[i] !== 0) === value;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (!is(i)) continue;
      for (const [dy, dx] of [[0, -1], [-1, -1], [-1, 0], [-1, 1]] as const) {
        const yy = y + dy, xx = x + dx;
        if (yy < 0 || xx < 0 || xx >= width || !is(yy * width + xx)) continue;
        parent[find(i)] = find(yy * width + xx);
      }
    }
  }
  const root = new Int32Array(mask.length).fill(-1);
  const size = new Map<number, number>(), border = new Set<number>();
  for (let i = 0; i < mask.length; i++) {
    if (!is(i)) continue;
    const r = find(i);
    root[i] = r;
    size.set(r, (size.get(r) ?? 0) + 1);
    const y = Math.floor(i / width), x = i % width;
    if (y === 0 || x === 0 || y === height - 1 || x === width - 1) border.add(r);
  }
  return { root, size, border };
}

/** Removes tissue components with area < minObjectArea, then fills holes (not touching the border) with area ≤ maxHoleArea. */
export function filterComponents(mask: Uint8Array, height: number, width: number, minObjectArea: number, maxHoleArea: number): Uint8Array {
  const out = Uint8Array.from(mask, (v) => (v ? 255 : 0));
  if (minObjectArea > 1) {
    const c = components(out, height, width, true);
    for (let i = 0; i < out.length; i++) if (c.root[i]! >= 0 && c.size.get(c.root[i]!)! < minObjectArea) out[i] = 0;
  }
  if (maxHoleArea > 0) {
    const c = components(out, height, width, false);
    for (let i = 0; i < out.length; i++) {
      const r = c.root[i]!;
      if (r >= 0 && !c.border.has(r) && c.size.get(r)! <= maxHoleArea) out[i] = 255;
    }
  }
  return out;
}

// deephistopath's pen rules (native/tissue/tissue_mask_cpu.cc has the citation).
const RED_PEN = [[150, 80, 90], [110, 20, 30], [185, 65, 105], [195, 85, 125], [220, 115, 145], [125, 40, 70], [200, 120, 150], [100, 50, 65], [85, 25, 45], [60, 35, 60]];
const GREEN_PEN = [[150, 160, 140], [70, 110, 110], [45, 115, 100], [30, 75, 60], [195, 220, 210], [225, 230, 225], [170, 210, 200], [20, 30, 20], [50, 60, 40], [30, 50, 35], [65, 70, 60], [100, 110, 105], [165, 180, 180], [140, 140, 150], [185, 195, 195]];
const BLUE_PEN = [[60, 120, 190], [120, 170, 200], [175, 210, 230], [145, 180, 210], [37, 95, 160], [30, 65, 130], [130, 155, 180], [40, 35, 85], [30, 20, 65], [90, 90, 140], [60, 60, 120], [110, 110, 175]];

export function isPenInk(r: number, g: number, b: number): boolean {
  return RED_PEN.some(([R, G, B]) => r > R! && g < G! && b < B!)
    || GREEN_PEN.some(([R, G, B]) => r < R! && g > G! && b > B!)
    || BLUE_PEN.some(([R, G, B]) => r < R! && g < G! && b > B!);
}

/** The whole chain on one image: the mask (0 | 255) and the threshold applied. */
export function tissueMaskJs(rgb: Uint8Array, height: number, width: number, p: NativeTissueParams): { mask: Uint8Array; threshold: number } {
  let channel: Uint8Array = tissueChannel(rgb, p.channel);
  if (p.medianSize > 1) channel = medianFilter(channel, height, width, p.medianSize);
  let threshold = p.threshold;
  if (threshold < 0) {
    const hist = new Float64Array(256);
    for (const v of channel) hist[v]! += 1;
    threshold = Math.max(otsuThreshold(hist), p.minThreshold);
  }
  let mask: Uint8Array = new Uint8Array(channel.length);
  for (let i = 0; i < channel.length; i++) {
    mask[i] = channel[i]! > threshold ? 255 : 0;
  }
  if (p.closingRadius > 0) mask = morphology(morphology(mask, height, width, p.closingRadius, 'dilate'), height, width, p.closingRadius, 'erode');
  if (p.openingRadius > 0) mask = morphology(morphology(mask, height, width, p.openingRadius, 'erode'), height, width, p.openingRadius, 'dilate');
  if (p.dilationRadius > 0) mask = morphology(mask, height, width, p.dilationRadius, 'dilate');
  if (p.excludePen) {
    const ink = new Uint8Array(mask.length);
    for (let i = 0; i < ink.length; i++) ink[i] = isPenInk(rgb[3 * i]!, rgb[3 * i + 1]!, rgb[3 * i + 2]!) ? 255 : 0;
    const c = components(mask, height, width, true);
    const inked = new Map<number, number>();
    for (let i = 0; i < mask.length; i++) if (c.root[i]! >= 0 && ink[i]) inked.set(c.root[i]!, (inked.get(c.root[i]!) ?? 0) + 1);
    for (let i = 0; i < mask.length; i++) if (c.root[i]! >= 0 && 2 * (inked.get(c.root[i]!) ?? 0) >= c.size.get(c.root[i]!)!) mask[i] = 0;
    const grown = morphology(morphology(ink, height, width, 1, 'erode'), height, width, 1, 'dilate');
    for (let i = 0; i < mask.length; i++) if (grown[i]) mask[i] = 0;
  }
  mask = filterComponents(mask, height, width, p.minObjectArea, p.maxHoleArea);
  let count = 0;
  for (const v of mask) count += v ? 1 : 0;
  if (count < p.minTissueArea) mask.fill(0);
  return { mask, threshold };
}
