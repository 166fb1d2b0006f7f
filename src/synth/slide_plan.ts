/**
 * The layout of a synthetic slide, drawn from (seed, width, height) alone:
 * one to three tissue pieces (smooth blobs with a noisy edge) and, inside
 * them, two to four tumour regions (smooth blobs, several hundred µm across).
 * Everything else is a pure function of the plan and the canvas position, so
 * any worker can rebuild the plan and paint any part of the slide.
 *
 * A blob is an ellipse (centre, semi-axes a ≥ b, angle) whose radius is
 * modulated by harmonics 2..4 of the polar angle, as nuclei are (paint.ts):
 *   d(x, y) = |(u/a, v/b)| / (1 + Σ amp_k cos(k φ + phase_k)),  φ = atan2(v/b, u/a)
 * with (u, v) the point in the blob's axes; d < 1 inside. The outline is the
 * polygon of the points where d = 1, exact at its vertices.
 */
import type { StainLook, StromaStyle } from './paint.js';
import { drawStainLook, drawStromaStyle } from './paint.js';
import { Rng, hash3, patchKey, valueNoise } from './rng.js';

/** Side of a scene block, as a PCam patch: the negative tissue is laid out one scene per block. */
export const SLIDE_BLOCK = 96;

export interface ShapeBlob {
  cx: number;
  cy: number;
  a: number;
  b: number;
  theta: number;
  harmonics: Array<{ k: number; amp: number; phase: number }>;
  /** Edge roughness (tissue pieces): d shifts by amp·(noise − 0.5), noise of lattice `scale` px. */
  edge?: { key: number; amp: number; scale: number };
}

/** Normalised distance from the blob's centre: < 1 inside (see the file comment). */
export function blobDistance(blob: ShapeBlob, x: number, y: number): number {
  const dx = x - blob.cx, dy = y - blob.cy;
  const cos = Math.cos(blob.theta), sin = Math.sin(blob.theta);
  const u = (dx * cos + dy * sin) / blob.a, v = (-dx * sin + dy * cos) / blob.b;
  const phi = Math.atan2(v, u);
  let r = 1;
  for (const { k, amp, phase } of blob.harmonics) r += amp * Math.cos(k * phi + phase);
  let d = Math.hypot(u, v) / r;
  if (blob.edge) d -= blob.edge.amp * (valueNoise(blob.edge.key, x, y, blob.edge.scale) - 0.5);
  return d;
}

/**
 * Cheap bounds of blobDistance (no atan2, no noise), left in boundLo and
 * boundHi (no array per pixel: this runs for every pixel of the slide): the
 * harmonics scale the radius by 1 ± Σ|amp| at most and the edge noise shifts
 * d by ± amp/2. Points deep inside or far outside are decided from these alone.
 */
let boundLo = 0, boundHi = 0;
function distanceBounds(blob: ShapeBlob, x: number, y: number): void {
  const dx = x - blob.cx, dy = y - blob.cy;
  const cos = Math.cos(blob.theta), sin = Math.sin(blob.theta);
  const rho = Math.hypot((dx * cos + dy * sin) / blob.a, (-dx * sin + dy * cos) / blob.b);
  let w = 0;
  for (const h of blob.harmonics) w += Math.abs(h.amp);
  const e = blob.edge ? blob.edge.amp / 2 : 0;
  boundLo = rho / (1 + w) - e;
  boundHi = rho / (1 - w) + e;
}

/** The largest distance from the centre any point of the blob can have (a bounding circle). */
export function blobExtent(blob: ShapeBlob): number {
  const wobble = blob.harmonics.reduce((s, h) => s + Math.abs(h.amp), 0);
  return Math.max(blob.a, blob.b) * (1 + wobble) * (1 + (blob.edge ? blob.edge.amp : 0)) + 2;
}

/** The outline (d = 1, edge noise left out) as a closed ring of `points` + 1 vertices. */
export function blobPolygon(blob: ShapeBlob, points = 64): Array<[number, number]> {
  const cos = Math.cos(blob.theta), sin = Math.sin(blob.theta);
  const ring: Array<[number, number]> = [];
  for (let i = 0; i <= points; i++) {
    const phi = ((i % points) / points) * 2 * Math.PI;
    let r = 1;
    for (const { k, amp, phase } of blob.harmonics) r += amp * Math.cos(k * phi + phase);
    const u = r * blob.a * Math.cos(phi), v = r * blob.b * Math.sin(phi);
    ring.push([blob.cx + u * cos - v * sin, blob.cy + u * sin + v * cos]);
  }
  return ring;
}

export interface SlidePlan {
  seed: number;
  width: number;
  height: number;
  pieces: ShapeBlob[];
  tumours: ShapeBlob[];
  /** Keys of the per-block scenes, the scene zones, the fat lobules, the tumour lattice and the sensor noise. */
  keys: { block: number; zone: number; fat: number; lattice: number; noise: number };
  stroma: StromaStyle;
  look: StainLook;
}

function drawBlob(rng: Rng, cx: number, cy: number, a: number, b: number, wobble: number): ShapeBlob {
  return {
    cx, cy, a, b,
    theta: rng.range(-0.5, 0.5),
    harmonics: [2, 3, 4].map((k) => ({ k, amp: wobble * rng.range(0.3, 1) / (k - 1), phase: rng.range(0, 2 * Math.PI) })),
  };
}

/** Tissue pieces in the slide: one large piece, or two side by side, or one large and two small. */
function drawPieces(rng: Rng, width: number, height: number): ShapeBlob[] {
  const count = rng.int(1, 3);
  const spots: Array<[number, number, number, number]> = count === 1
    ? [[0.5, 0.5, 0.36, 0.32]]
    : count === 2
      ? [[0.29, 0.5, 0.2, 0.34], [0.72, 0.5, 0.2, 0.32]]
      : [[0.33, 0.5, 0.24, 0.34], [0.76, 0.27, 0.15, 0.14], [0.76, 0.73, 0.15, 0.14]];
  return spots.map(([fx, fy, fa, fb], i) => {
    const a = fa * width * rng.range(0.9, 1.05), b = fb * height * rng.range(0.9, 1.05);
    const blob = drawBlob(rng, (fx + rng.range(-0.02, 0.02)) * width, (fy + rng.range(-0.02, 0.02)) * height, a, b, 0.14);
    blob.theta *= 0.4; // keep pieces roughly axis-aligned so that they stay on the glass
    blob.edge = { key: rng.fork(100 + i).key, amp: 0.16, scale: Math.max(24, 0.22 * Math.min(a, b)) };
    return blob;
  });
}

/** Tumour regions: blobs inside a piece (their whole outline at d < 0.8 of it), apart from each other. */
function drawTumours(rng: Rng, pieces: ShapeBlob[], width: number, height: number): ShapeBlob[] {
  const count = rng.int(2, 4);
  const tumours: ShapeBlob[] = [];
  const side = Math.min(width, height);
  for (let t = 0; t < count; t++) {
    let r = Math.max(1.2 * SLIDE_BLOCK, rng.range(0.06, 0.11) * side);
    for (let tries = 0; tries < 400; tries++) {
      if (tries > 0 && tries % 40 === 0) r *= 0.9;
      const piece = pieces[rng.int(0, pieces.length - 1)]!;
      const ang = rng.range(0, 2 * Math.PI), rad = 0.6 * Math.sqrt(rng.next());
      const cx = piece.cx + rad * piece.a * Math.cos(ang), cy = piece.cy + rad * piece.b * Math.sin(ang);
      const blob = drawBlob(rng, cx, cy, r, r * rng.range(0.6, 0.95), 0.16);
      blob.theta = rng.range(0, Math.PI);
      const ring = blobPolygon(blob, 48);
      const inside = ring.every(([x, y]) => pieces.some((p) => blobDistance(p, x, y) < 0.8));
      const apart = tumours.every((o) => Math.hypot(o.cx - cx, o.cy - cy) > blobExtent(o) + blobExtent(blob) + SLIDE_BLOCK);
      if (inside && apart) {
        tumours.push(blob);
        break;
      }
    }
  }
  return tumours;
}

/** The plan of the slide keyed by `seed` of `width` x `height` level-0 pixels. */
export function planSlide(seed: number, width: number, height: number): SlidePlan {
  // A key space apart from synth patches' (whose keys are patchKey(seed, index)).
  const rng = new Rng(hash3(patchKey(seed, 0), 0x736c6964, 1));
  const pieces = drawPieces(rng.fork(1), width, height);
  const tumours = drawTumours(rng.fork(2), pieces, width, height);
  const stroma = drawStromaStyle(rng.fork(3), false);
  stroma.bend = 2.5;
  // Fewer glass gaps than a patch draws: across a whole slide they would read as holes everywhere.
  stroma.gapThreshold += 0.1;
  const look = drawStainLook(rng.fork(4));
  const keys = { block: rng.fork(5).key, zone: rng.fork(6).key, fat: rng.fork(7).key, lattice: rng.fork(8).key, noise: rng.fork(9).key };
  return { seed, width, height, pieces, tumours, keys, stroma, look };
}

/** Tissue envelope at (x, y): 1 well inside a piece, 0 on the glass, a soft edge of about 3 px. */
export function tissueEnvelope(plan: SlidePlan, x: number, y: number): number {
  let best = 0;
  for (const p of plan.pieces) {
    const ext = blobExtent(p);
    if (Math.abs(x - p.cx) > ext || Math.abs(y - p.cy) > ext) continue;
    // The envelope is 1 for d ≤ 1 − 1.5/b and 0 for d ≥ 1 + 1.5/b: decide from the bounds when they allow.
    distanceBounds(p, x, y);
    if (boundLo >= 1 + 1.5 / p.b) continue;
    if (boundHi <= 1 - 1.5 / p.b) return 1;
    const inside = (1 - blobDistance(p, x, y)) * p.b; // ≈ pixels inside the edge
    best = Math.max(best, Math.min(1, Math.max(0, inside / 3 + 0.5)));
    if (best >= 1) break;
  }
  return best;
}

/** The tumour region (index) containing (x, y), or −1. */
export function tumourAt(plan: SlidePlan, x: number, y: number): number {
  for (let i = 0; i < plan.tumours.length; i++) {
    const t = plan.tumours[i]!;
    const ext = blobExtent(t);
    if (Math.abs(x - t.cx) > ext || Math.abs(y - t.cy) > ext) continue;
    distanceBounds(t, x, y);
    if (boundLo >= 1) continue;
    if (boundHi < 1 || blobDistance(t, x, y) < 1) return i;
  }
  return -1;
}

/** How solid the tissue is at (x, y): 1 inside a tumour region (d ≤ 0.9), 0 beyond d = 1.1, linear between. */
function tumourSolidity(plan: SlidePlan, x: number, y: number): number {
  let best = 0;
  for (const t of plan.tumours) {
    const ext = 1.5 * blobExtent(t);
    if (Math.abs(x - t.cx) > ext || Math.abs(y - t.cy) > ext) continue;
    distanceBounds(t, x, y);
    if (boundLo >= 1.1) continue;
    if (boundHi <= 0.9) return 1;
    best = Math.max(best, Math.min(1, Math.max(0, (1.1 - blobDistance(t, x, y)) / 0.2)));
  }
  return best;
}

/**
 * The slide's stroma: one style for the whole slide, with the plan's tissue
 * envelope, fat lobules (more glass where a low-frequency noise is high) and
 * solid tumour sheets (almost no gaps inside tumour regions).
 */
export function slideStroma(plan: SlidePlan): StromaStyle {
  return {
    ...plan.stroma,
    envelope: (x, y) => tissueEnvelope(plan, x, y),
    gapShift: (x, y) => {
      const fat = valueNoise(plan.keys.fat, x, y, 260);
      const fatShift = -0.25 * Math.min(1, Math.max(0, (fat - 0.76) / 0.08));
      const solid = tumourSolidity(plan, x, y);
      return fatShift * (1 - solid) + 0.25 * solid;
    },
  };
}
