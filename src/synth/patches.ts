/**
 * Synthetic PatchCamelyon-like patches: H&E-looking tissue rendered from
 * stain densities (Beer–Lambert, as a slide scanner sees it), labelled like
 * PCam: positive when tumour cells lie in the centre 32x32 region.
 *
 * A patch is a *scene* drawn from (seed, index) alone (rng.ts):
 *   stroma       eosin stroma with fibre texture, sparse fibroblast nuclei,
 *                white gaps (glass, clefts)                              → 0
 *   fat          mostly glass and thin septa (background-heavy)          → 0
 *   lymphocytes  a cluster of small, round, very dark nuclei (hard)       → 0
 *   gland        normal glands: rings of small regular nuclei round a
 *                lumen, dense in the centre (hard)                        → 0
 *   margin       a tumour nest only outside the centre: no tumour pixel
 *                reaches the centre region (hard)                         → 0
 *   tumour       a crowded nest of large, dark, pleomorphic nuclei with
 *                thin cytoplasm (high N/C ratio) over the centre          → 1
 *   sparse       a few tumour cells in the centre among normal tissue     → 1
 * The label is not the scene's name but the ground truth: 1 exactly when a
 * drawn tumour nucleus has its centre in the centre region (`truth`).
 *
 * Rendering: H and E optical-density fields (stroma, cytoplasm, nuclei with
 * chromatin texture and irregular outlines), a 3x3 blur (scanner optics),
 * then RGB = 255·exp(−(H·h + E·e)) with per-patch stain vectors jittered
 * around Ruifrok & Johnston's (staining varies between slides), plus noise.
 */
import { checkInteger, checkKnownKeys, checkNumber, checkObject } from '../errors.js';
import type { RgbBatch } from '../kernels/types.js';
import { RUIFROK_HE } from '../stain/presets.js';
import { Rng, fractalNoise, patchKey, valueNoise } from './rng.js';

/** Side of the labelled centre region, as in PatchCamelyon. */
export const CENTRE_SIZE = 32;

export const NEGATIVE_SCENES = ['stroma', 'fat', 'lymphocytes', 'gland', 'margin'] as const;
export const POSITIVE_SCENES = ['tumour', 'sparse'] as const;
export type SynthScene = (typeof NEGATIVE_SCENES)[number] | (typeof POSITIVE_SCENES)[number];
/** Hard negatives: tissue a classifier confuses with tumour. */
export const HARD_NEGATIVE_SCENES: readonly SynthScene[] = ['lymphocytes', 'gland', 'margin'];

export type NucleusKind = 'fibroblast' | 'normal' | 'lymphocyte' | 'tumour';

export interface Nucleus {
  kind: NucleusKind;
  /** Centre (pixels, may be outside the patch for nuclei cut by its edge). */
  cx: number;
  cy: number;
  /** Semi-axes (pixels) and orientation (radians). */
  a: number;
  b: number;
  theta: number;
}

export interface SynthTruth {
  scene: SynthScene;
  label: 0 | 1;
  /** Every nucleus drawn. */
  nuclei: Nucleus[];
  /** Tumour nuclei whose centre lies in the centre region. */
  tumourInCentre: number;
}

export interface SynthPatchOptions {
  /** Side in pixels (default 96, PCam's), at least CENTRE_SIZE + 16. */
  size?: number;
  /** Probability of a positive patch (default 0.5). */
  positive?: number;
  /** Also return a mask of the pixels covered by tumour nuclei (tests). */
  tumourMask?: boolean;
}

export interface SynthPatch {
  image: RgbBatch;
  label: 0 | 1;
  truth: SynthTruth;
  /** 1 where a tumour nucleus covers the pixel (only with options.tumourMask). */
  tumourMask?: Uint8Array;
}

export interface CheckedSynthOptions {
  size: number;
  positive: number;
}

export function checkSynthOptions(options: SynthPatchOptions = {}): CheckedSynthOptions {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['size', 'positive', 'tumourMask']);
  return {
    size: o.size === undefined ? 96 : checkInteger('options.size', o.size, CENTRE_SIZE + 16, 1024),
    positive: o.positive === undefined ? 0.5 : checkNumber('options.positive', o.positive, 0, 1),
  };
}

/** Whether (x, y) lies in the centre region of a patch of side `size`. */
export function inCentre(x: number, y: number, size: number): boolean {
  const lo = (size - CENTRE_SIZE) / 2;
  return x >= lo && x < lo + CENTRE_SIZE && y >= lo && y < lo + CENTRE_SIZE;
}

/** The scene of a patch: the class first (P(positive)), then a scene within it. */
function drawScene(rng: Rng, positive: number): SynthScene {
  if (rng.next() < positive) return rng.chance(0.7) ? 'tumour' : 'sparse';
  const u = rng.next();
  // Hard negatives are 55% of negatives, so the classifier has to look at nuclei.
  return u < 0.3 ? 'stroma' : u < 0.45 ? 'fat' : u < 0.62 ? 'lymphocytes' : u < 0.8 ? 'gland' : 'margin';
}

interface Field {
  size: number;
  h: Float32Array;
  e: Float32Array;
  /** 1 in tissue, 0 on glass. */
  tissue: Float32Array;
  mask: Uint8Array | undefined;
}

/** Stroma and glass: eosin fibres along a wavy direction, white gaps where a low-frequency noise is high. */
function paintStroma(f: Field, rng: Rng, scene: SynthScene, clearCentre: boolean): void {
  const { size } = f;
  const k = rng.fork(1).key, kWarp = rng.fork(2).key, kGap = rng.fork(3).key, kCleft = rng.fork(4).key;
  const theta = rng.range(0, Math.PI);
  const cos = Math.cos(theta), sin = Math.sin(theta);
  const period = rng.range(4, 9);
  const eBase = rng.range(0.35, 0.6);
  // Fraction of glass: fat is mostly glass; otherwise a few gaps.
  const gapThreshold = scene === 'fat' ? rng.range(0.3, 0.4) : rng.range(0.58, 0.75);
  const c = size / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = y * size + x;
      const along = x * cos + y * sin;
      const warp = 9 * valueNoise(kWarp, x, y, 16) + 2.5 * valueNoise(kWarp ^ 0x5bd1e995, x, y, 5);
      const fibre = 0.5 + 0.5 * Math.sin((2 * Math.PI * along) / period + warp);
      const tex = fractalNoise(k, x, y, 6);
      f.e[i] = eBase * (0.6 + 0.4 * fibre * fibre) * (0.55 + 0.9 * tex);
      f.h[i] = 0.03 + 0.05 * tex;
      let g = fractalNoise(kGap, x, y, scene === 'fat' ? 18 : 26);
      if (clearCentre) g -= 0.5 * Math.max(0, 1 - Math.hypot(x - c, y - c) / (0.45 * size));
      let t = Math.min(1, Math.max(0, (gapThreshold - g) / 0.04));
      // Thin clefts (retraction artefacts) along the fibres, in some patches.
      const cleft = Math.abs(Math.sin((Math.PI * along) / (period * 5) + 2 * warp));
      if (scene !== 'fat' && valueNoise(kCleft, x, y, 30) > 0.72 && cleft < 0.08) t *= cleft / 0.08;
      f.tissue[i] = t;
    }
  }
}

function tissueAt(f: Field, x: number, y: number): number {
  const xi = Math.round(x), yi = Math.round(y);
  if (xi < 0 || yi < 0 || xi >= f.size || yi >= f.size) return 1;
  return f.tissue[yi * f.size + xi]!;
}

interface NucleusStyle {
  density: number;
  /** Chromatin texture contrast (0 smooth .. 1 coarse). */
  chromatin: number;
  /** Outline irregularity: amplitudes of harmonics 2..4 of the radius. */
  wobble: number;
  /** Cytoplasm rim around the nucleus (× the axes), 1 = none. */
  cytoplasm: number;
  nucleolus: boolean;
}

function styleOf(kind: NucleusKind, rng: Rng): NucleusStyle {
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

/** Draws one nucleus (and its cytoplasm rim) into the field. */
function paintNucleus(f: Field, n: Nucleus, style: NucleusStyle, rng: Rng): void {
  const { size } = f;
  const cos = Math.cos(n.theta), sin = Math.sin(n.theta);
  const harm = [2, 3, 4].map((h) => ({ h, amp: style.wobble * rng.range(0.3, 1), phase: rng.range(0, 2 * Math.PI) }));
  const kTex = rng.fork(9).key;
  const nx = n.cx + rng.range(-0.3, 0.3) * n.a, ny = n.cy + rng.range(-0.3, 0.3) * n.b;
  const reach = Math.ceil(Math.max(n.a, n.b) * Math.max(style.cytoplasm, 1.3) + 2);
  for (let y = Math.max(0, Math.floor(n.cy - reach)); y <= Math.min(size - 1, Math.ceil(n.cy + reach)); y++) {
    for (let x = Math.max(0, Math.floor(n.cx - reach)); x <= Math.min(size - 1, Math.ceil(n.cx + reach)); x++) {
      const dx = x - n.cx, dy = y - n.cy;
      const u = (dx * cos + dy * sin) / n.a, v = (-dx * sin + dy * cos) / n.b;
      const phi = Math.atan2(v, u);
      let r = 1;
      for (const { h, amp, phase } of harm) r += amp * Math.cos(h * phi + phase);
      const d = Math.hypot(u, v) / r; // < 1 inside the outline
      const i = y * size + x;
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

/** Rejection-samples up to `count` nuclei in a disc, spaced by `spacing`·(sum of radii). */
function scatter(
  rng: Rng,
  placed: Nucleus[],
  count: number,
  disc: { cx: number; cy: number; r: number },
  make: (x: number, y: number) => Nucleus,
  accept: (n: Nucleus) => boolean,
  spacing: number,
): Nucleus[] {
  const out: Nucleus[] = [];
  for (let tries = 0; tries < count * 25 && out.length < count; tries++) {
    const ang = rng.range(0, 2 * Math.PI), rad = disc.r * Math.sqrt(rng.next());
    const n = make(disc.cx + rad * Math.cos(ang), disc.cy + rad * Math.sin(ang));
    if (!accept(n)) continue;
    const ok = [...placed, ...out].every((m) => Math.hypot(m.cx - n.cx, m.cy - n.cy) > spacing * (Math.max(m.a, m.b) + Math.max(n.a, n.b)));
    if (ok) out.push(n);
  }
  placed.push(...out);
  return out;
}

/** Renders patch `index` of the dataset keyed by `seed`. */
export function synthPatch(seed: number, index: number, options: SynthPatchOptions = {}): SynthPatch {
  checkInteger('seed', seed, 0, Number.MAX_SAFE_INTEGER);
  checkInteger('index', index, 0, Number.MAX_SAFE_INTEGER);
  const { size, positive } = checkSynthOptions(options);
  const rng = new Rng(patchKey(seed, index));
  const scene = drawScene(rng, positive);
  const n2 = size * size;
  const f: Field = { size, h: new Float32Array(n2), e: new Float32Array(n2), tissue: new Float32Array(n2), mask: options.tumourMask ? new Uint8Array(n2) : undefined };
  const c = size / 2, half = CENTRE_SIZE / 2;
  const needsCentre = scene === 'tumour' || scene === 'sparse' || scene === 'gland' || scene === 'lymphocytes';
  paintStroma(f, rng.fork(10), scene, needsCentre);

  const nuclei: Nucleus[] = [];
  const inTissue = (n: Nucleus): boolean => tissueAt(f, n.cx, n.cy) > 0.6;
  /** A tumour nucleus whose outline (with margin) stays out of the centre region. */
  const clearOfCentre = (n: Nucleus): boolean => {
    // The outline reaches 1 + 3·0.2 = 1.6 semi-axes at most (styleOf's wobble); 1.7 keeps it out.
    const m = Math.max(n.a, n.b) * 1.7 + 2;
    return Math.abs(n.cx - c) > half + m || Math.abs(n.cy - c) > half + m;
  };
  const geo = rng.fork(20);
  const fibreTheta = geo.range(0, Math.PI);
  const fibroblast = (x: number, y: number): Nucleus => ({ kind: 'fibroblast', cx: x, cy: y, a: geo.range(2.8, 4.8), b: geo.range(0.9, 1.5), theta: fibreTheta + geo.range(-0.3, 0.3) });
  const normal = (x: number, y: number): Nucleus => { const r = geo.range(2.1, 2.7); return { kind: 'normal', cx: x, cy: y, a: r * geo.range(1, 1.15), b: r, theta: geo.range(0, Math.PI) }; };
  const lymph = (x: number, y: number): Nucleus => { const r = geo.range(1.8, 2.4); return { kind: 'lymphocyte', cx: x, cy: y, a: r, b: r * geo.range(0.9, 1), theta: geo.range(0, Math.PI) }; };
  const tumour = (x: number, y: number): Nucleus => { const a = geo.range(4, 6.8); return { kind: 'tumour', cx: x, cy: y, a, b: a * geo.range(0.6, 0.95), theta: geo.range(0, Math.PI) }; };
  const whole = { cx: c, cy: c, r: size * 0.75 };
  const notTumourCentre = (n: Nucleus): boolean => inTissue(n);

  switch (scene) {
    case 'stroma':
    case 'fat':
      scatter(geo, nuclei, scene === 'fat' ? 4 : geo.int(10, 22), whole, fibroblast, inTissue, 1.1);
      break;
    case 'lymphocytes': {
      const at = { cx: c + geo.range(-10, 10), cy: c + geo.range(-10, 10), r: geo.range(18, 32) };
      scatter(geo, nuclei, geo.int(50, 110), at, lymph, notTumourCentre, 0.62);
      scatter(geo, nuclei, geo.int(4, 10), whole, fibroblast, inTissue, 1.1);
      break;
    }
    case 'gland': {
      // One or two glands: a ring of regular nuclei round a lumen; the centre holds many normal nuclei.
      const glands = geo.int(1, 2);
      for (let g = 0; g < glands; g++) {
        const gx = c + geo.range(-12, 12) + (g ? geo.range(-30, 30) : 0), gy = c + geo.range(-12, 12) + (g ? geo.range(-30, 30) : 0);
        const ring = geo.range(11, 17), lumen = ring - 4.5;
        for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
          const d = Math.hypot(x - gx, y - gy);
          if (d < lumen) f.tissue[y * size + x] = Math.min(f.tissue[y * size + x]!, Math.max(0, (d - lumen + 2) / 2));
        }
        const count = Math.round((2 * Math.PI * ring) / 5.2);
        const phase = geo.range(0, 2 * Math.PI);
        for (let k = 0; k < count; k++) {
          const ang = phase + (2 * Math.PI * k) / count + geo.range(-0.05, 0.05);
          const n = normal(gx + ring * Math.cos(ang), gy + ring * Math.sin(ang));
          n.theta = ang;
          nuclei.push(n);
        }
      }
      scatter(geo, nuclei, geo.int(15, 30), { cx: c, cy: c, r: 26 }, normal, notTumourCentre, 0.8);
      scatter(geo, nuclei, geo.int(4, 10), whole, fibroblast, inTissue, 1.1);
      break;
    }
    case 'margin': {
      // A tumour nest beside the centre, never in it: the label is about the centre only.
      const side = geo.int(0, 3), off = geo.range(34, 44);
      const at = { cx: c + [off, -off, 0, 0][side]! + geo.range(-15, 15), cy: c + [0, 0, off, -off][side]! + geo.range(-15, 15), r: geo.range(14, 22) };
      scatter(geo, nuclei, geo.int(10, 25), at, tumour, (n) => clearOfCentre(n) && inTissue(n), 0.55);
      scatter(geo, nuclei, geo.int(6, 14), whole, fibroblast, inTissue, 1.1);
      break;
    }
    case 'tumour': {
      const at = { cx: c + geo.range(-6, 6), cy: c + geo.range(-6, 6), r: geo.range(26, 48) };
      // At least one tumour cell sits in the centre: seed the nest there, then fill.
      scatter(geo, nuclei, geo.int(1, 3), { cx: c, cy: c, r: half - 3 }, tumour, () => true, 0.55);
      scatter(geo, nuclei, geo.int(20, 45), at, tumour, inTissue, 0.55);
      scatter(geo, nuclei, geo.int(2, 6), whole, fibroblast, inTissue, 1.1);
      break;
    }
    case 'sparse': {
      scatter(geo, nuclei, geo.int(2, 5), { cx: c, cy: c, r: half - 3 }, tumour, () => true, 0.6);
      scatter(geo, nuclei, geo.int(8, 18), whole, fibroblast, inTissue, 1.1);
      scatter(geo, nuclei, geo.int(0, 12), whole, lymph, inTissue, 0.7);
      break;
    }
  }
  // Scattered stromal cells everywhere: real tissue is rarely empty between structures.
  scatter(geo, nuclei, geo.int(3, 12), whole, (x, y) => (geo.chance(0.5) ? lymph(x, y) : normal(x, y)),
    inTissue, 1.2);
  const paint = rng.fork(30);
  for (const n of nuclei) paintNucleus(f, n, styleOf(n.kind, paint), paint);

  const tumourInCentre = nuclei.filter((n) => n.kind === 'tumour' && inCentre(n.cx, n.cy, size)).length;
  const label: 0 | 1 = tumourInCentre > 0 ? 1 : 0;
  const image = render(f, rng.fork(40));
  const out: SynthPatch = { image, label, truth: { scene, label, nuclei, tumourInCentre } };
  if (f.mask) out.tumourMask = f.mask;
  return out;
}

/** Blurs the densities, converts them to RGB through jittered stain vectors, adds sensor noise. */
function render(f: Field, rng: Rng): RgbBatch {
  const { size } = f;
  const unit = (v: number[]): number[] => { const n = Math.hypot(...v); return v.map((x) => x / n); };
  const hv = unit(RUIFROK_HE.slice(0, 3).map((x) => x + rng.range(-0.06, 0.06)));
  const ev = unit(RUIFROK_HE.slice(3, 6).map((x) => x + rng.range(-0.05, 0.05)));
  const hScale = rng.range(0.85, 1.15), eScale = rng.range(0.75, 1.2);
  const glass = [rng.range(236, 250), rng.range(234, 248), rng.range(238, 252)];
  const h = blur3(f.h, size), e = blur3(f.e, size), t = blur3(f.tissue, size);
  const data = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) {
    const hd = h[i]! * hScale * t[i]!, ed = e[i]! * eScale * t[i]!;
    for (let ch = 0; ch < 3; ch++) {
      const v = glass[ch]! * Math.exp(-(hd * hv[ch]! + ed * ev[ch]!)) + 2.2 * rng.normal();
      data[i * 3 + ch] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return { data, n: 1, height: size, width: size };
}

/** 3x3 binomial blur ([1 2 1]/4 each way), edges clamped. */
function blur3(src: Float32Array, size: number): Float32Array {
  const tmp = new Float32Array(src.length), out = new Float32Array(src.length);
  const at = (i: number): number => Math.min(size - 1, Math.max(0, i));
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    tmp[y * size + x] = (src[y * size + at(x - 1)]! + 2 * src[y * size + x]! + src[y * size + at(x + 1)]!) / 4;
  }
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    out[y * size + x] = (tmp[at(y - 1) * size + x]! + 2 * tmp[y * size + x]! + tmp[at(y + 1) * size + x]!) / 4;
  }
  return out;
}
