/**
 * Paints any rectangle of a synthetic slide (slide_plan.ts) with the patch
 * generator's painter (paint.ts) and scene layouts (patches.ts):
 *
 *   - stroma: one style for the slide, textures looked up by slide position,
 *     inside the tissue envelope; glass elsewhere;
 *   - negative tissue: the slide is cut into 96-px blocks (PCam's patch side);
 *     each block lays out a negative scene (stroma, fat, gland, lymphocytes)
 *     around its centre, drawn from (seed, block) alone, with its nuclei kept
 *     out of the tumour regions;
 *   - tumour regions: crowded tumour nuclei (the patch generator's tumour
 *     shape and style) on a jittered lattice of PCam-tumour density, kept to
 *     the region: a block's nest would leave stroma between nests, which a
 *     tile classifier sees as negative, and the truth would no longer be the
 *     region itself.
 *
 * Nuclei reach across block and rectangle edges; a rectangle paints every
 * nucleus that reaches it, in one global order (blocks row by row, then the
 * lattice row by row), so two rectangles agree on their common pixels and a
 * slide painted in tiles has no seams.
 */
import { clearLumen, makeField, nucleusMakers, paintNucleus, paintStroma, renderField, styleOf, stromaOpacity, type Field, type Nucleus, type StromaStyle } from './paint.js';
import { layoutScene, type SynthScene } from './patches.js';
import { Rng, hash3, valueNoise } from './rng.js';
import { SLIDE_BLOCK, slideStroma, tissueEnvelope, tumourAt, type SlidePlan } from './slide_plan.js';

/** Lattice spacing of the tumour nuclei: about PCam tumour nests' density (30 nuclei in a disc of radius 37). */
const LATTICE = 11.5;
/** How far a block's nuclei can reach beyond the block: a centre 29 px off, the whole-disc scatter (r = 0.75·96) and an outline. */
const BLOCK_REACH = SLIDE_BLOCK;
/** How far a tumour nucleus can reach from its lattice point (jitter + a 6.8-px semi-axis with wobble and cytoplasm). */
const LATTICE_REACH = 16;

/** The negative scene of a block: zones of similar tissue (a low-frequency noise) mixed with a per-block draw. */
function blockScene(plan: SlidePlan, rng: Rng, cx: number, cy: number): SynthScene {
  const u = 0.6 * valueNoise(plan.keys.zone, cx, cy, 420) + 0.4 * rng.next();
  return u < 0.44 ? 'stroma' : u < 0.54 ? 'fat' : u < 0.76 ? 'gland' : 'lymphocytes';
}

interface Lumen { gx: number; gy: number; lumen: number }

/** The nuclei (and gland lumens) of block (bx, by), in canvas pixels. */
function blockLayout(plan: SlidePlan, stroma: StromaStyle, bx: number, by: number): { nuclei: Nucleus[]; lumens: Lumen[]; paint: Rng } {
  const rng = new Rng(hash3(plan.keys.block, bx, by));
  const cx = (bx + 0.5) * SLIDE_BLOCK, cy = (by + 0.5) * SLIDE_BLOCK;
  const lumens: Lumen[] = [];
  if (tissueEnvelope(plan, cx, cy) <= 0 && !nearTissue(plan, bx, by)) return { nuclei: [], lumens, paint: rng };
  const scene = blockScene(plan, rng, cx, cy);
  // The scene's centre wanders within the block, so that glands and clusters do not line up on the block grid.
  const sx = cx + rng.range(-0.3, 0.3) * SLIDE_BLOCK, sy = cy + rng.range(-0.3, 0.3) * SLIDE_BLOCK;
  const tissueAt = (x: number, y: number): number => {
    if (tumourAt(plan, x, y) >= 0) return 0;
    if (lumens.some((l) => Math.hypot(x - l.gx, y - l.gy) < l.lumen)) return 0;
    return tissueEnvelope(plan, x, y) * stromaOpacity(stroma, x, y);
  };
  const laid = layoutScene(scene, rng.fork(20), {
    cx: sx, cy: sy, size: SLIDE_BLOCK,
    inTissue: (n) => tissueAt(n.cx, n.cy) > 0.6,
    clearLumen: (gx, gy, lumen) => { lumens.push({ gx, gy, lumen }); },
  });
  // A gland's ring is laid out whole (as in a patch); on a slide, its nuclei off the tissue or in a tumour go.
  const nuclei = laid.filter((n) => tissueEnvelope(plan, n.cx, n.cy) > 0.5 && tumourAt(plan, n.cx, n.cy) < 0);
  return { nuclei, lumens, paint: rng.fork(30) };
}

/** Whether any corner of the block's reach touches tissue (blocks on the glass lay nothing out). */
function nearTissue(plan: SlidePlan, bx: number, by: number): boolean {
  for (const [fx, fy] of [[-0.5, -0.5], [1.5, -0.5], [-0.5, 1.5], [1.5, 1.5], [0.5, -0.5], [0.5, 1.5], [-0.5, 0.5], [1.5, 0.5]] as const) {
    if (tissueEnvelope(plan, (bx + fx) * SLIDE_BLOCK, (by + fy) * SLIDE_BLOCK) > 0) return true;
  }
  return false;
}

/** The tumour nucleus of lattice cell (i, j), or null where the lattice drops a cell or leaves the region. */
function latticeNucleus(plan: SlidePlan, stroma: StromaStyle, i: number, j: number): { n: Nucleus; paint: Rng } | null {
  const rng = new Rng(hash3(plan.keys.lattice, i, j));
  if (rng.next() < 0.08) return null;
  // Alternate rows shift by half a cell (a hexagonal packing), then jitter.
  const x = (i + 0.5 + (j & 1) * 0.5 + rng.range(-0.3, 0.3)) * LATTICE, y = (j + 0.5 + rng.range(-0.3, 0.3)) * LATTICE;
  if (tumourAt(plan, x, y) < 0) return null;
  if (tissueEnvelope(plan, x, y) * stromaOpacity(stroma, x, y) <= 0.6) return null;
  const n = nucleusMakers(rng, 0).tumour(x, y);
  return { n, paint: rng.fork(30) };
}

/**
 * RGB (w·h·3 bytes) of the level-0 rectangle [x, x+w) x [y, y+h) of the
 * slide: the same pixels whichever rectangles the slide is cut into.
 */
export function renderSlideRect(plan: SlidePlan, x: number, y: number, w: number, h: number): Uint8Array {
  // One pixel of apron: the 3x3 blur at the rectangle's edge needs its neighbours.
  const f: Field = makeField(x - 1, y - 1, w + 2, h + 2);
  const stroma = slideStroma(plan);
  paintStroma(f, stroma);

  const layouts: Array<{ nuclei: Nucleus[]; paint: Rng }> = [];
  const bx0 = Math.max(0, Math.floor((x - BLOCK_REACH) / SLIDE_BLOCK)), bx1 = Math.floor((x + w + BLOCK_REACH) / SLIDE_BLOCK);
  const by0 = Math.max(0, Math.floor((y - BLOCK_REACH) / SLIDE_BLOCK)), by1 = Math.floor((y + h + BLOCK_REACH) / SLIDE_BLOCK);
  for (let by = by0; by <= by1; by++) for (let bx = bx0; bx <= bx1; bx++) {
    const b = blockLayout(plan, stroma, bx, by);
    for (const l of b.lumens) clearLumen(f, l.gx, l.gy, l.lumen);
    layouts.push(b);
  }
  // Every nucleus of a block draws its style in order, painted here or not, so draws do not depend on the rectangle.
  for (const { nuclei, paint } of layouts) for (const n of nuclei) paintNucleus(f, n, styleOf(n.kind, paint), paint);

  if (plan.tumours.length) {
    const i0 = Math.floor((x - LATTICE_REACH) / LATTICE) - 1, i1 = Math.ceil((x + w + LATTICE_REACH) / LATTICE);
    const j0 = Math.floor((y - LATTICE_REACH) / LATTICE), j1 = Math.ceil((y + h + LATTICE_REACH) / LATTICE);
    for (let j = j0; j <= j1; j++) for (let i = i0; i <= i1; i++) {
      const cell = latticeNucleus(plan, stroma, i, j);
      if (cell) paintNucleus(f, cell.n, styleOf('tumour', cell.paint), cell.paint);
    }
  }

  const out = new Uint8Array(w * h * 3);
  renderField(f, plan.look, (px, py, ch) => gaussian(plan.keys.noise, px, py, ch), out, { ox: 1, oy: 1, w, h });
  return out;
}

/** A standard normal keyed by (key, x, y, channel) (Box–Muller on two hashed uniforms). */
function gaussian(key: number, x: number, y: number, ch: number): number {
  const s = (y * 3 + ch) * 2;
  const u = 1 - hash3(key, x, s) / 4294967296, v = hash3(key, x, s + 1) / 4294967296;
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
