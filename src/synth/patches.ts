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
 * Rendering (paint.ts, shared with the synthetic slide): H and E
 * optical-density fields (stroma, cytoplasm, nuclei with chromatin texture and
 * irregular outlines), a 3x3 blur (scanner optics), then
 * RGB = glass·exp(−(H·h + E·e)) with per-patch stain vectors jittered around
 * Ruifrok & Johnston's (staining varies between slides), plus noise.
 * layoutScene places a scene's nuclei; the slide generator reuses it per block.
 */
import { checkInteger, checkKnownKeys, checkNumber, checkObject } from '../errors.js';
import type { RgbBatch } from '../kernels/types.js';
import { clearLumen, drawStainLook, drawStromaStyle, makeField, nucleusMakers, paintNucleus, paintStroma, renderField, styleOf, type Nucleus } from './paint.js';
import { Rng, patchKey } from './rng.js';

/** Side of the labelled centre region, as in PatchCamelyon. */
export const CENTRE_SIZE = 32;

export const NEGATIVE_SCENES = ['stroma', 'fat', 'lymphocytes', 'gland', 'margin'] as const;
export const POSITIVE_SCENES = ['tumour', 'sparse'] as const;
export type SynthScene = (typeof NEGATIVE_SCENES)[number] | (typeof POSITIVE_SCENES)[number];
/** Hard negatives: tissue a classifier confuses with tumour. */
export const HARD_NEGATIVE_SCENES: readonly SynthScene[] = ['lymphocytes', 'gland', 'margin'];

export type { Nucleus, NucleusKind } from './paint.js';

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

/** Where a scene is laid out: a patch, or one block of a synthetic slide. */
export interface SceneContext {
  /** Centre of the patch or block, in canvas pixels. */
  cx: number;
  cy: number;
  /** Side of the patch or block (pixels). */
  size: number;
  /** Whether a nucleus centred there lies in tissue (nuclei are not put on glass). */
  inTissue: (n: Nucleus) => boolean;
  /** Clears a gland's lumen from the tissue (later inTissue calls see it). */
  clearLumen: (gx: number, gy: number, lumen: number) => void;
}

/**
 * The nuclei of a scene around ctx's centre, drawn from `geo`: the structure
 * of each scene in the file comment. The patch generator and the slide
 * generator (slide_render.ts) both lay their scenes out here.
 */
export function layoutScene(scene: SynthScene, geo: Rng, ctx: SceneContext): Nucleus[] {
  const { cx, cy, size, inTissue } = ctx;
  const half = CENTRE_SIZE / 2;
  const nuclei: Nucleus[] = [];
  /** A tumour nucleus whose outline (with margin) stays out of the centre region. */
  const clearOfCentre = (n: Nucleus): boolean => {
    // The outline reaches 1 + 3·0.2 = 1.6 semi-axes at most (styleOf's wobble); 1.7 keeps it out.
    const m = Math.max(n.a, n.b) * 1.7 + 2;
    return Math.abs(n.cx - cx) > half + m || Math.abs(n.cy - cy) > half + m;
  };
  const fibreTheta = geo.range(0, Math.PI);
  const { fibroblast, normal, lymphocyte: lymph, tumour } = nucleusMakers(geo, fibreTheta);
  const whole = { cx, cy, r: size * 0.75 };

  switch (scene) {
    case 'stroma':
    case 'fat':
      scatter(geo, nuclei, scene === 'fat' ? 4 : geo.int(10, 22), whole, fibroblast, inTissue, 1.1);
      break;
    case 'lymphocytes': {
      const at = { cx: cx + geo.range(-10, 10), cy: cy + geo.range(-10, 10), r: geo.range(18, 32) };
      scatter(geo, nuclei, geo.int(50, 110), at, lymph, inTissue, 0.62);
      scatter(geo, nuclei, geo.int(4, 10), whole, fibroblast, inTissue, 1.1);
      break;
    }
    case 'gland': {
      // One or two glands: a ring of regular nuclei round a lumen; the centre holds many normal nuclei.
      const glands = geo.int(1, 2);
      for (let g = 0; g < glands; g++) {
        const gx = cx + geo.range(-12, 12) + (g ? geo.range(-30, 30) : 0), gy = cy + geo.range(-12, 12) + (g ? geo.range(-30, 30) : 0);
        const ring = geo.range(11, 17), lumen = ring - 4.5;
        ctx.clearLumen(gx, gy, lumen);
        const count = Math.round((2 * Math.PI * ring) / 5.2);
        const phase = geo.range(0, 2 * Math.PI);
        for (let k = 0; k < count; k++) {
          const ang = phase + (2 * Math.PI * k) / count + geo.range(-0.05, 0.05);
          const n = normal(gx + ring * Math.cos(ang), gy + ring * Math.sin(ang));
          n.theta = ang;
          nuclei.push(n);
        }
      }
      scatter(geo, nuclei, geo.int(15, 30), { cx, cy, r: 26 }, normal, inTissue, 0.8);
      scatter(geo, nuclei, geo.int(4, 10), whole, fibroblast, inTissue, 1.1);
      break;
    }
    case 'margin': {
      // A tumour nest beside the centre, never in it: the label is about the centre only.
      const side = geo.int(0, 3), off = geo.range(34, 44);
      const at = { cx: cx + [off, -off, 0, 0][side]! + geo.range(-15, 15), cy: cy + [0, 0, off, -off][side]! + geo.range(-15, 15), r: geo.range(14, 22) };
      scatter(geo, nuclei, geo.int(10, 25), at, tumour, (n) => clearOfCentre(n) && inTissue(n), 0.55);
      scatter(geo, nuclei, geo.int(6, 14), whole, fibroblast, inTissue, 1.1);
      break;
    }
    case 'tumour': {
      const at = { cx: cx + geo.range(-6, 6), cy: cy + geo.range(-6, 6), r: geo.range(26, 48) };
      // At least one tumour cell sits in the centre: seed the nest there, then fill.
      scatter(geo, nuclei, geo.int(1, 3), { cx, cy, r: half - 3 }, tumour, () => true, 0.55);
      scatter(geo, nuclei, geo.int(20, 45), at, tumour, inTissue, 0.55);
      scatter(geo, nuclei, geo.int(2, 6), whole, fibroblast, inTissue, 1.1);
      break;
    }
    case 'sparse': {
      scatter(geo, nuclei, geo.int(2, 5), { cx, cy, r: half - 3 }, tumour, () => true, 0.6);
      scatter(geo, nuclei, geo.int(8, 18), whole, fibroblast, inTissue, 1.1);
      scatter(geo, nuclei, geo.int(0, 12), whole, lymph, inTissue, 0.7);
      break;
    }
  }
  // Scattered stromal cells everywhere: real tissue is rarely empty between structures.
  scatter(geo, nuclei, geo.int(3, 12), whole, (x, y) => (geo.chance(0.5) ? lymph(x, y) : normal(x, y)),
    inTissue, 1.2);
  return nuclei;
}

/** Renders patch `index` of the dataset keyed by `seed`. */
export function synthPatch(seed: number, index: number, options: SynthPatchOptions = {}): SynthPatch {
  checkInteger('seed', seed, 0, Number.MAX_SAFE_INTEGER);
  checkInteger('index', index, 0, Number.MAX_SAFE_INTEGER);
  const { size, positive } = checkSynthOptions(options);
  const rng = new Rng(patchKey(seed, index));
  const scene = drawScene(rng, positive);
  const f = makeField(0, 0, size, size, options.tumourMask === true);
  const c = size / 2;
  const stroma = drawStromaStyle(rng.fork(10), scene === 'fat');
  // Positives, glands and lymphocyte clusters keep the centre in tissue.
  if (scene === 'tumour' || scene === 'sparse' || scene === 'gland' || scene === 'lymphocytes') stroma.clearCentre = { cx: c, cy: c, r: 0.45 * size };
  paintStroma(f, stroma);

  /** Tissue at a point of the patch; nuclei centred outside it (cut by the edge) count as in tissue. */
  const tissueAt = (x: number, y: number): number => {
    const xi = Math.round(x), yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= size || yi >= size) return 1;
    return f.tissue[yi * size + xi]!;
  };
  const nuclei = layoutScene(scene, rng.fork(20), {
    cx: c, cy: c, size,
    inTissue: (n) => tissueAt(n.cx, n.cy) > 0.6,
    clearLumen: (gx, gy, lumen) => clearLumen(f, gx, gy, lumen),
  });
  const paint = rng.fork(30);
  for (const n of nuclei) paintNucleus(f, n, styleOf(n.kind, paint), paint);

  const tumourInCentre = nuclei.filter((n) => n.kind === 'tumour' && inCentre(n.cx, n.cy, size)).length;
  const label: 0 | 1 = tumourInCentre > 0 ? 1 : 0;
  const noise = rng.fork(40);
  const look = drawStainLook(noise);
  const data = new Uint8Array(size * size * 3);
  renderField(f, look, () => noise.normal(), data);
  const out: SynthPatch = { image: { data, n: 1, height: size, width: size }, label, truth: { scene, label, nuclei, tumourInCentre } };
  if (f.mask) out.tumourMask = f.mask;
  return out;
}
