/**
 * The H&E painter shared by synthetic patches (patches.ts) and synthetic
 * slides (slide_render.ts): stain-density fields (stroma, glass gaps, nuclei
 * with chromatin texture and irregular outlines), a 3x3 blur (scanner
 * optics), then Beer–Lambert RGB = glass·exp(−(H·h + E·e)) plus sensor noise.
 *
 * A Field is a window of a larger canvas: (x0, y0) is its top-left corner in
 * canvas pixels, and every texture is looked up by canvas coordinates, so two
 * overlapping windows of one canvas paint the same pixels (a slide is painted
 * in tiles that agree at their seams). A patch is the window at (0, 0).
 */
import { RUIFROK_HE } from '../stain/presets.js';
import { type Rng, fractalNoise, valueNoise } from './rng.js';

export type NucleusKind = 'fibroblast' | 'normal' | 'lymphocyte' | 'tumour';

export interface Nucleus {
  kind: NucleusKind;
  /** Centre (canvas pixels, may be outside the field for nuclei cut by its edge). */
  cx: number;
  cy: number;
  /** Semi-axes (pixels) and orientation (radians). */
  a: number;
  b: number;
  theta: number;
}

export interface Field {
  /** Canvas coordinates of pixel (0, 0). */
  x0: number;
  y0: number;
  width: number;
  height: number;
  h: Float32Array;
  e: Float32Array;
  /** 1 in tissue, 0 on glass. */
  tissue: Float32Array;
  /** 1 where a tumour nucleus covers the pixel, when asked for. */
  mask: Uint8Array | undefined;
}

export function makeField(x0: number, y0: number, width: number, height: number, withMask = false): Field {
  const n = width * height;
  return { x0, y0, width, height, h: new Float32Array(n), e: new Float32Array(n), tissue: new Float32Array(n), mask: withMask ? new Uint8Array(n) : undefined };
}

/** The look of the stroma: fibre direction and period, eosin level, where the glass gaps are. */
export interface StromaStyle {
  keys: { tex: number; warp: number; gap: number; cleft: number };
  theta: number;
  period: number;
  eBase: number;
  /** Glass where the gap noise exceeds this (lower = more glass). */
  gapThreshold: number;
  /** Lattice spacing of the gap noise (pixels). */
  gapScale: number;
  /** Thin retraction clefts along the fibres (not in fat). */
  clefts: boolean;
  /** Fewer gaps within this distance of a point (a patch keeps its centre in tissue). */
  clearCentre?: { cx: number; cy: number; r: number };
  /** Per-pixel change of gapThreshold (a slide: fat lobules, solid tumour sheets). */
  gapShift?: (x: number, y: number) => number;
  /** Tissue envelope in [0, 1] (a slide: the tissue pieces); 0 leaves the pixel as glass and skips it. */
  envelope?: (x: number, y: number) => number;
  /** Amplitude (radians) of a large-scale bend of the fibres (a slide: one style across many patches). */
  bend?: number;
}

/** Draws a stroma style, as one patch of `fat` or other tissue has it. */
export function drawStromaStyle(rng: Rng, fat: boolean): StromaStyle {
  const keys = { tex: rng.fork(1).key, warp: rng.fork(2).key, gap: rng.fork(3).key, cleft: rng.fork(4).key };
  const theta = rng.range(0, Math.PI);
  const period = rng.range(4, 9);
  const eBase = rng.range(0.35, 0.6);
  // Fraction of glass: fat is mostly glass; otherwise a few gaps.
  const gapThreshold = fat ? rng.range(0.3, 0.4) : rng.range(0.58, 0.75);
  return { keys, theta, period, eBase, gapThreshold, gapScale: fat ? 18 : 26, clefts: !fat };
}

/** Tissue opacity of the stroma at canvas (x, y) before clefts: 0 in a glass gap, 1 in tissue. */
export function stromaOpacity(s: StromaStyle, x: number, y: number): number {
  let g = fractalNoise(s.keys.gap, x, y, s.gapScale);
  if (s.clearCentre) g -= 0.5 * Math.max(0, 1 - Math.hypot(x - s.clearCentre.cx, y - s.clearCentre.cy) / s.clearCentre.r);
  const threshold = s.gapShift ? s.gapThreshold + s.gapShift(x, y) : s.gapThreshold;
  return Math.min(1, Math.max(0, (threshold - g) / 0.04));
}

/** Stroma and glass: eosin fibres along a wavy direction, white gaps where a low-frequency noise is high. */
export function paintStroma(f: Field, s: StromaStyle): void {
  const cos = Math.cos(s.theta), sin = Math.sin(s.theta);
  const { tex: k, warp: kWarp, cleft: kCleft } = s.keys;
  for (let j = 0; j < f.height; j++) {
    for (let i0 = 0; i0 < f.width; i0++) {
      const x = f.x0 + i0, y = f.y0 + j;
      const i = j * f.width + i0;
      const env = s.envelope ? s.envelope(x, y) : 1;
      if (env <= 0) continue; // glass: the field is zero there already
      const along = x * cos + y * sin;
      let warp = 9 * valueNoise(kWarp, x, y, 16) + 2.5 * valueNoise(kWarp ^ 0x5bd1e995, x, y, 5);
      if (s.bend) warp += s.bend * valueNoise(kWarp ^ 0x1b873593, x, y, 180);
      const fibre = 0.5 + 0.5 * Math.sin((2 * Math.PI * along) / s.period + warp);
      const tex = fractalNoise(k, x, y, 6);
      f.e[i] = s.eBase * (0.6 + 0.4 * fibre * fibre) * (0.55 + 0.9 * tex);
      f.h[i] = 0.03 + 0.05 * tex;
      let t = stromaOpacity(s, x, y);
      // Thin clefts (retraction artefacts) along the fibres, in some places.
      const cleft = Math.abs(Math.sin((Math.PI * along) / (s.period * 5) + 2 * warp));
      if (s.clefts && valueNoise(kCleft, x, y, 30) > 0.72 && cleft < 0.08) t *= cleft / 0.08;
      f.tissue[i] = s.envelope ? t * env : t;
    }
  }
}

/** Clears the tissue inside a gland's lumen (a disc), with a 2-pixel soft edge. */
export function clearLumen(f: Field, gx: number, gy: number, lumen: number): void {
  const xa = Math.max(0, Math.floor(gx - lumen) - f.x0), xb = Math.min(f.width - 1, Math.ceil(gx + lumen) - f.x0);
  const ya = Math.max(0, Math.floor(gy - lumen) - f.y0), yb = Math.min(f.height - 1, Math.ceil(gy + lumen) - f.y0);
  for (let j = ya; j <= yb; j++) for (let i0 = xa; i0 <= xb; i0++) {
    const d = Math.hypot(f.x0 + i0 - gx, f.y0 + j - gy);
    const i = j * f.width + i0;
    if (d < lumen) f.tissue[i] = Math.min(f.tissue[i]!, Math.max(0, (d - lumen + 2) / 2));
  }
}

export interface NucleusStyle {
  density: number;
  /** Chromatin texture contrast (0 smooth .. 1 coarse). */
  chromatin: number;
  /** Outline irregularity: amplitudes of harmonics 2..4 of the radius. */
  wobble: number;
  /** Cytoplasm rim around the nucleus (× the axes), 1 = none. */
  cytoplasm: number;
  nucleolus: boolean;
}

export function styleOf(kind: NucleusKind, rng: Rng): NucleusStyle {
  switch (kind) {
    case 'fibroblast':
      return { density: rng.range(0.65, 0.9), chromatin: 0.2, wobble: 0.03, cytoplasm: 1, nucleolus: false };
    case 'normal':
      return { density: rng.range(0.55, 0.75), chromatin: 0.25, wobble: 0.03, cytoplasm: 1.9, nucleolus: false };
    case 'lymphocyte':
      return { density: rng.range(1.15, 1.45), chromatin: 0.12, wobble: 0.04, cytoplasm: 1, nucleolus: false };
    case 'tumour':
      return { density: rng.range(0.85, 1.35), chromatin: rng.range(0.45, 0.8), wobble: rng.range(0.08, 0.2), cytoplasm: 1.3, nucleolus: rng.chance(0.5) };
  }
}

/** The shape of each kind of nucleus (drawn from `geo`); fibroblasts align with the fibres (`fibreTheta`). */
export function nucleusMakers(geo: Rng, fibreTheta: number): Record<NucleusKind, (x: number, y: number) => Nucleus> {
  return {
    fibroblast: (x, y) => ({ kind: 'fibroblast', cx: x, cy: y, a: geo.range(2.8, 4.8), b: geo.range(0.9, 1.5), theta: fibreTheta + geo.range(-0.3, 0.3) }),
    normal: (x, y) => { const r = geo.range(2.1, 2.7); return { kind: 'normal', cx: x, cy: y, a: r * geo.range(1, 1.15), b: r, theta: geo.range(0, Math.PI) }; },
    lymphocyte: (x, y) => { const r = geo.range(1.8, 2.4); return { kind: 'lymphocyte', cx: x, cy: y, a: r, b: r * geo.range(0.9, 1), theta: geo.range(0, Math.PI) }; },
    tumour: (x, y) => { const a = geo.range(4, 6.8); return { kind: 'tumour', cx: x, cy: y, a, b: a * geo.range(0.6, 0.95), theta: geo.range(0, Math.PI) }; },
  };
}

/** How far (pixels) a nucleus's paint reaches from its centre (outline wobble and cytoplasm included). */
export function nucleusReach(n: Nucleus, style: NucleusStyle): number {
  return Math.ceil(Math.max(n.a, n.b) * Math.max(style.cytoplasm, 1.3) + 2);
}

/** Draws one nucleus (and its cytoplasm rim) into the field; the part outside the field is clipped. */
export function paintNucleus(f: Field, n: Nucleus, style: NucleusStyle, rng: Rng): void {
  const cos = Math.cos(n.theta), sin = Math.sin(n.theta);
  const harm = [2, 3, 4].map((h) => ({ h, amp: style.wobble * rng.range(0.3, 1), phase: rng.range(0, 2 * Math.PI) }));
  const kTex = rng.fork(9).key;
  const nx = n.cx + rng.range(-0.3, 0.3) * n.a, ny = n.cy + rng.range(-0.3, 0.3) * n.b;
  const reach = nucleusReach(n, style);
  const yEnd = Math.min(f.y0 + f.height - 1, Math.ceil(n.cy + reach)), xEnd = Math.min(f.x0 + f.width - 1, Math.ceil(n.cx + reach));
  for (let y = Math.max(f.y0, Math.floor(n.cy - reach)); y <= yEnd; y++) {
    for (let x = Math.max(f.x0, Math.floor(n.cx - reach)); x <= xEnd; x++) {
      const dx = x - n.cx, dy = y - n.cy;
      const u = (dx * cos + dy * sin) / n.a, v = (-dx * sin + dy * cos) / n.b;
      const phi = Math.atan2(v, u);
      let r = 1;
      for (const { h, amp, phase } of harm) r += amp * Math.cos(h * phi + phase);
      const d = Math.hypot(u, v) / r; // < 1 inside the outline
      const i = (y - f.y0) * f.width + (x - f.x0);
      if (style.cytoplasm > 1 && d < style.cytoplasm) {
        // Cytoplasm: pale pink-purple, replaces the stroma fibres under it.
        const w = Math.min(1, (style.cytoplasm - d) / 0.3);
        f.e[i] = f.e[i]! * (1 - w) + w * 0.3;
        f.h[i] = f.h[i]! * (1 - w) + w * 0.12;
        f.tissue[i] = Math.max(f.tissue[i]!, w);
      }
      // Soft edge over about one pixel.
      const edge = Math.min(1, Math.max(0, (1 - d) * Math.min(n.a, n.b) + 0.5));
      if (edge <= 0) continue;
      const tex = valueNoise(kTex, x, y, 1.6);
      // Tumour chromatin clumps at the membrane (vesicular nuclei).
      const rim = n.kind === 'tumour' ? 0.25 * Math.max(0, d - 0.6) : 0;
      let hd = style.density * (1 - style.chromatin / 2 + style.chromatin * tex) + rim;
      if (style.nucleolus && Math.hypot(x - nx, y - ny) < 1.1) hd += 0.5;
      f.h[i] = f.h[i]! * (1 - edge) + edge * hd;
      f.e[i] = f.e[i]! * (1 - 0.7 * edge);
      f.tissue[i] = Math.max(f.tissue[i]!, edge);
      if (f.mask && n.kind === 'tumour' && edge >= 0.5) f.mask[i] = 1;
    }
  }
}

/** A slide's (or patch's) staining and glass: stain vectors jittered around Ruifrok & Johnston's, strengths, glass colour. */
export interface StainLook {
  hv: number[];
  ev: number[];
  hScale: number;
  eScale: number;
  glass: number[];
}

export function drawStainLook(rng: Rng): StainLook {
  const unit = (v: number[]): number[] => { const n = Math.hypot(...v); return v.map((x) => x / n); };
  const hv = unit(RUIFROK_HE.slice(0, 3).map((x) => x + rng.range(-0.06, 0.06)));
  const ev = unit(RUIFROK_HE.slice(3, 6).map((x) => x + rng.range(-0.05, 0.05)));
  const hScale = rng.range(0.85, 1.15), eScale = rng.range(0.75, 1.2);
  const glass = [rng.range(236, 250), rng.range(234, 248), rng.range(238, 252)];
  return { hv, ev, hScale, eScale, glass };
}

/** Sensor noise (a standard normal) of channel `ch` at canvas (x, y). */
export type PixelNoise = (x: number, y: number, ch: number) => number;

/**
 * Blurs the densities, converts them to RGB through the stain look, adds
 * 2.2·noise. Writes the window [ox, ox+w) x [oy, oy+h) of the field (field
 * pixels) into `out` (w·h·3 bytes); a window inside the field by ≥ 1 pixel
 * is exact however the canvas was cut into fields.
 */
export function renderField(f: Field, look: StainLook, noise: PixelNoise, out: Uint8Array, window = { ox: 0, oy: 0, w: f.width, h: f.height }): void {
  const { hv, ev, hScale, eScale, glass } = look;
  const h = blur3(f.h, f.width, f.height), e = blur3(f.e, f.width, f.height), t = blur3(f.tissue, f.width, f.height);
  for (let j = 0; j < window.h; j++) for (let k = 0; k < window.w; k++) {
    const i = (j + window.oy) * f.width + k + window.ox, o = (j * window.w + k) * 3;
    const hd = h[i]! * hScale * t[i]!, ed = e[i]! * eScale * t[i]!;
    const x = f.x0 + window.ox + k, y = f.y0 + window.oy + j;
    for (let ch = 0; ch < 3; ch++) {
      const v = glass[ch]! * Math.exp(-(hd * hv[ch]! + ed * ev[ch]!)) + 2.2 * noise(x, y, ch);
      out[o + ch] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
}

/** 3x3 binomial blur ([1 2 1]/4 each way), edges clamped. */
function blur3(src: Float32Array, width: number, height: number): Float32Array {
  const tmp = new Float32Array(src.length), out = new Float32Array(src.length);
  const atX = (i: number): number => Math.min(width - 1, Math.max(0, i));
  const atY = (i: number): number => Math.min(height - 1, Math.max(0, i));
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    tmp[y * width + x] = (src[y * width + atX(x - 1)]! + 2 * src[y * width + x]! + src[y * width + atX(x + 1)]!) / 4;
  }
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    out[y * width + x] = (tmp[atY(y - 1) * width + x]! + 2 * tmp[y * width + x]! + tmp[atY(y + 1) * width + x]!) / 4;
  }
  return out;
}
