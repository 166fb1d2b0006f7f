/**
 * Overlap of binary masks on a grid: Dice (2|P∩T| / (|P| + |T|)) and IoU
 * (|P∩T| / |P∪T|), and resampling a mask onto another grid of the same slide
 * (e.g. a 1/16 truth mask onto a heatmap with one cell per 96-px stride).
 *
 * A cell is positive when its value is ≥ threshold (default 0.5), so 0/1
 * masks, 0/255 masks and probability maps all work, as in classification.ts.
 * Two empty masks agree perfectly: Dice = IoU = 1.
 */
import { checkInteger, checkNumber, checkObject, invalidRange, invalidType } from '../errors.js';

export interface MaskGrid {
  /** width·height values, row-major. */
  data: ArrayLike<number>;
  width: number;
  height: number;
  /** Level-0 pixels per cell (default 1): how the grid sits on the slide, for resampleMask. */
  downsample?: number;
}

interface CheckedGrid { data: ArrayLike<number>; width: number; height: number; downsample: number }

function checkGrid(name: string, value: unknown): CheckedGrid {
  const g = checkObject(name, value);
  const width = checkInteger(`${name}.width`, g.width, 1);
  const height = checkInteger(`${name}.height`, g.height, 1);
  const data = g.data;
  if (!Array.isArray(data) && !(ArrayBuffer.isView(data) && !(data instanceof DataView))) throw invalidType(`${name}.data`, 'an array or typed array', data);
  const length = (data as ArrayLike<number>).length;
  if (length !== width * height) throw invalidRange(`${name}.data`, `${width * height} values (width·height)`, data);
  const downsample = g.downsample === undefined ? 1 : checkNumber(`${name}.downsample`, g.downsample, Number.MIN_VALUE);
  return { data: data as ArrayLike<number>, width, height, downsample };
}

/** Counts |P∩T|, |P| and |T| on two grids of one shape. */
function overlap(pred: unknown, truth: unknown, threshold: number): { both: number; p: number; t: number } {
  const a = checkGrid('pred', pred), b = checkGrid('truth', truth);
  checkNumber('threshold', threshold);
  if (a.width !== b.width || a.height !== b.height) {
    throw invalidRange('pred', `a ${b.width}x${b.height} grid like truth (resample it with resampleMask)`, `${a.width}x${a.height}`);
  }
  let both = 0, p = 0, t = 0;
  for (let i = 0; i < a.data.length; i++) {
    const pi = a.data[i]! >= threshold, ti = b.data[i]! >= threshold;
    if (pi) p++;
    if (ti) t++;
    if (pi && ti) both++;
  }
  return { both, p, t };
}

/** Dice coefficient of two masks on one grid. */
export function dice(pred: MaskGrid, truth: MaskGrid, threshold = 0.5): number {
  const { both, p, t } = overlap(pred, truth, threshold);
  return p + t === 0 ? 1 : (2 * both) / (p + t);
}

/** Intersection over union of two masks on one grid. */
export function iou(pred: MaskGrid, truth: MaskGrid, threshold = 0.5): number {
  const { both, p, t } = overlap(pred, truth, threshold);
  return p + t - both === 0 ? 1 : both / (p + t - both);
}

/**
 * `mask` on another grid of the same slide: `target` gives its size and its
 * downsample (level-0 pixels per cell). A target cell takes the share of
 * positive source cells whose centres fall inside it (an area vote; ≥ 0.5 →
 * 255, else 0), or, when it is smaller than a source cell, the source cell
 * under its centre. Cells beyond the source are 0.
 */
export function resampleMask(mask: MaskGrid, target: { width: number; height: number; downsample: number }, threshold = 0.5): Required<MaskGrid> & { data: Uint8Array } {
  const src = checkGrid('mask', mask);
  const t = checkObject('target', target);
  const width = checkInteger('target.width', t.width, 1), height = checkInteger('target.height', t.height, 1);
  const ds = checkNumber('target.downsample', t.downsample, Number.MIN_VALUE);
  checkNumber('threshold', threshold);
  const out = new Uint8Array(width * height);
  const r = ds / src.downsample; // source cells per target cell
  const at = (i: number, j: number): boolean => i < src.width && j < src.height && src.data[j * src.width + i]! >= threshold;
  for (let j = 0; j < height; j++) for (let i = 0; i < width; i++) {
    // Source cells whose centres (k + 0.5) lie in [i·r, (i+1)·r).
    const k0 = Math.ceil(i * r - 0.5), k1 = Math.ceil((i + 1) * r - 0.5);
    const l0 = Math.ceil(j * r - 0.5), l1 = Math.ceil((j + 1) * r - 0.5);
    let inside: boolean;
    if (k1 > k0 && l1 > l0) {
      let pos = 0;
      for (let l = l0; l < l1; l++) for (let k = k0; k < k1; k++) pos += at(k, l) ? 1 : 0;
      inside = pos >= 0.5 * (k1 - k0) * (l1 - l0);
    } else {
      inside = at(Math.floor((i + 0.5) * r), Math.floor((j + 0.5) * r));
    }
    if (inside) out[j * width + i] = 255;
  }
  return { data: out, width, height, downsample: ds };
}
