/**
 * report_files/: what report.html's zoomable viewer needs, next to it, so the
 * folder opens from disk with a double-click (no server, no network):
 *
 *   openseadragon.min.js, images/   OpenSeadragon (npm `openseadragon`), copied
 *   slide.dzi, slide_files/         Deep Zoom (JPEG tiles) of the slide image
 *   overlay.dzi, overlay_files/     Deep Zoom (PNG tiles, alpha) of the map in viridis
 *
 * The slide image is the slide downsampled so that its longer side is at most
 * `maxSize` px (slide.thumbnail: read in bands from the nearest level, memory
 * bounded by the image itself, 3 bytes a pixel, and 4 more for the map's); a full-resolution Deep Zoom of
 * a 100k px slide would be tens of GB. The overlay has the same size, so the
 * two align. The page gives OpenSeadragon the Deep Zoom descriptions inline
 * (file:// pages cannot fetch the .dzi XML; tiles load as <img>, which they can);
 * the .dzi files are there for other viewers.
 */
import { cp, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import sharp from 'sharp';

import type { RgbBatch } from '../image.js';
import { colourMapRaster } from './overlay_tiff.js';
import type { ProbabilityMap } from './probability_map.js';

export const VIEWER_FOLDER = 'report_files';
const TILE_SIZE = 254, OVERLAP = 1;

/** A Deep Zoom image as OpenSeadragon's inline tile source ({ Image: … }), Url relative to report.html. */
export interface DeepZoomSource {
  Image: { xmlns: string; Url: string; Format: 'jpeg' | 'png'; Overlap: string; TileSize: string; Size: { Width: string; Height: string } };
}

export interface ViewerImages {
  slide: DeepZoomSource;
  overlay: DeepZoomSource;
  /** Size of both images and their level-0 px per px. */
  width: number;
  height: number;
  downsample: number;
}

/** The folder of OpenSeadragon's built files (openseadragon.min.js, images/). */
function openSeadragonBuild(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('openseadragon'));
}

function source(name: string, format: 'jpeg' | 'png', width: number, height: number): DeepZoomSource {
  return {
    Image: {
      xmlns: 'http://schemas.microsoft.com/deepzoom/2008',
      Url: `${VIEWER_FOLDER}/${name}_files/`,
      Format: format,
      Overlap: String(OVERLAP),
      TileSize: String(TILE_SIZE),
      Size: { Width: String(width), Height: String(height) },
    },
  };
}

/**
 * Writes report_files/ into `dir` from the slide image (`image`, `downsample`
 * level-0 px per px) and the map; returns the inline tile sources.
 */
export async function writeViewerFiles(dir: string, image: { image: RgbBatch; downsample: number }, map: ProbabilityMap, cellSize0: number, width0: number, height0: number): Promise<ViewerImages> {
  const folder = join(dir, VIEWER_FOLDER);
  await mkdir(folder, { recursive: true });
  const build = openSeadragonBuild();
  await cp(join(build, 'openseadragon.min.js'), join(folder, 'openseadragon.min.js'));
  await cp(join(build, 'images'), join(folder, 'images'), { recursive: true });

  const { width, height, data } = image.image;
  const slide = sharp(Buffer.from(data.buffer, data.byteOffset, width * height * 3), { raw: { width, height, channels: 3 }, limitInputPixels: false });
  await slide.jpeg({ quality: 85 }).tile({ size: TILE_SIZE, overlap: OVERLAP, layout: 'dz' }).toFile(join(folder, 'slide.dz'));
  // Each axis's own scale, so the overlay's edges meet the slide image's.
  const rgba = colourMapRaster(map, cellSize0, width, height, width0 / width, height0 / height);
  await sharp(rgba, { raw: { width, height, channels: 4 }, limitInputPixels: false })
    .png({ compressionLevel: 6 })
    .tile({ size: TILE_SIZE, overlap: OVERLAP, layout: 'dz' })
    .toFile(join(folder, 'overlay.dz'));
  return { slide: source('slide', 'jpeg', width, height), overlay: source('overlay', 'png', width, height), width, height, downsample: image.downsample };
}
