/**
 * overlay.tif: the probability map as a colour overlay for slide viewers, a
 * tiled (256 x 256), pyramidal, deflate-compressed RGBA TIFF covering the
 * slide at a stated downsample d of level 0: pixel (x, y) shows the cell
 * under level-0 point ((x + ½)·d, (y + ½)·d) in viridis, alpha 255 where the
 * map has data and 0 where it has none (viewers set the opacity). It is
 * ceil(W/d) x ceil(H/d) px for a W x H level 0, and its resolution tags say
 * 1000 / (µm/px · d) px/mm, so a viewer that aligns by physical size puts it
 * on the slide exactly.
 *
 * The default d is the smallest power of two (1 included: level-0 geometry)
 * that keeps the overlay within MAX_OVERLAY_PIXELS, since its raster is built
 * in memory, 4 bytes a pixel: level 0 for slides up to 32 Mpx, 16 for a
 * 100k x 80k px one. Powers of two line up with the slide's own pyramid levels.
 */
import sharp from 'sharp';

import { invalidRange } from '../errors.js';
import { VIRIDIS } from './colormap.js';
import type { ProbabilityMap } from './probability_map.js';

/** 2^25 px: a 128 MiB RGBA raster at most. */
export const MAX_OVERLAY_PIXELS = 2 ** 25;

export interface OverlayGeometry {
  /** Level-0 px per overlay px. */
  downsample: number;
  width: number;
  height: number;
}

/** The overlay's geometry for a W x H level 0 (see above); `requested` is an explicit downsample, checked against the cap. */
export function overlayGeometry(width0: number, height0: number, requested?: number): OverlayGeometry {
  const at = (d: number): OverlayGeometry => ({ downsample: d, width: Math.ceil(width0 / d), height: Math.ceil(height0 / d) });
  if (requested !== undefined) {
    const g = at(requested);
    if (g.width * g.height > MAX_OVERLAY_PIXELS) {
      let d = requested;
      while (at(d).width * at(d).height > MAX_OVERLAY_PIXELS) d *= 2;
      throw invalidRange('options.overlayDownsample', `a downsample giving at most ${MAX_OVERLAY_PIXELS} px (${g.width}x${g.height} is more; ${d} fits)`, requested);
    }
    return g;
  }
  let d = 1;
  while (at(d).width * at(d).height > MAX_OVERLAY_PIXELS) d *= 2;
  return at(d);
}

/**
 * The map as an RGBA raster of `width` x `height` px, each `dx` x `dy` level-0 px:
 * pixel (x, y) shows the cell under its centre (viridis; alpha 0 where no data).
 */
export function colourMapRaster(map: ProbabilityMap, cellSize0: number, width: number, height: number, dx: number, dy: number): Uint8Array {
  const out = new Uint8Array(width * height * 4);
  const col = Int32Array.from({ length: width }, (_, x) => Math.floor(((x + 0.5) * dx) / cellSize0));
  // The colour of each cell once (index into VIRIDIS, or -1 = no data), then one lookup per pixel.
  // A loop, not Int32Array.from(map.data, f): that walks a typed array through its iterator, seconds for a pixel map of 16 Mpx.
  const entry = new Int32Array(map.data.length);
  for (let k = 0; k < entry.length; k++) {
    const p = map.data[k]!;
    entry[k] = Number.isNaN(p) ? -1 : Math.round(Math.min(1, Math.max(0, p)) * 255) * 3;
  }
  for (let y = 0; y < height; y++) {
    const i = Math.floor(((y + 0.5) * dy) / cellSize0);
    if (i >= map.height) continue;
    for (let x = 0; x < width; x++) {
      const j = col[x]!;
      if (j >= map.width) continue;
      const k = entry[i * map.width + j]!;
      if (k < 0) continue;
      const o = (y * width + x) * 4;
      out[o] = VIRIDIS[k]!;
      out[o + 1] = VIRIDIS[k + 1]!;
      out[o + 2] = VIRIDIS[k + 2]!;
      out[o + 3] = 255;
    }
  }
  return out;
}

/** Writes overlay.tif (see above) for a map over a W x H level 0 with `mpp0` µm/px (null: no resolution tags). */
export async function writeOverlayTiff(path: string, map: ProbabilityMap, cellSize0: number, geometry: OverlayGeometry, mpp0: number | null): Promise<void> {
  const { width, height, downsample } = geometry;
  const rgba = colourMapRaster(map, cellSize0, width, height, downsample, downsample);
  const pxPerMm = mpp0 === null ? null : 1000 / (mpp0 * downsample);
  await sharp(rgba, { raw: { width, height, channels: 4 }, limitInputPixels: false })
    .tiff({
      tile: true, tileWidth: 256, tileHeight: 256, pyramid: true, compression: 'deflate', predictor: 'horizontal',
      ...(pxPerMm === null ? {} : { xres: pxPerMm, yres: pxPerMm, resolutionUnit: 'cm' as const }),
    })
    .toFile(path);
}
