/** A small synthetic pyramidal slide for the heatmap tests: pink "tissue" on glass, a pure red square planted off the grid. */
import sharp from 'sharp';

import type { RgbBatch } from '../../src/image.js';
import type { SlidePredictorSpec } from '../../src/heatmap/predictor.js';

export const SLIDE_WIDTH = 1024;
export const SLIDE_HEIGHT = 768;
/** The tissue rectangle (level-0 px); outside it is white glass. */
export const TISSUE = { left: 128, top: 96, width: 768, height: 576 };
/** The red square: not aligned to any power-of-two stride. */
export const SQUARE = { left: 437, top: 301, side: 60 };
export const SQUARE_CENTRE = { x: SQUARE.left + SQUARE.side / 2, y: SQUARE.top + SQUARE.side / 2 };
/** µm per level-0 px written into the file (2000 px/mm). */
export const SLIDE_MPP = 0.5;

/**
 * Writes the slide as a tiled, lossless (deflate) pyramidal TIFF: level 0 at
 * 1024 x 768, then halvings. With `tissue: false` it is all glass.
 */
export async function writeTestSlide(path: string, options: { tissue?: boolean } = {}): Promise<void> {
  const layers = options.tissue === false ? [] : [
    { input: { create: { width: TISSUE.width, height: TISSUE.height, channels: 3 as const, background: { r: 226, g: 160, b: 200 } } }, left: TISSUE.left, top: TISSUE.top },
    { input: { create: { width: SQUARE.side, height: SQUARE.side, channels: 3 as const, background: { r: 255, g: 0, b: 0 } } }, left: SQUARE.left, top: SQUARE.top },
  ];
  await sharp({ create: { width: SLIDE_WIDTH, height: SLIDE_HEIGHT, channels: 3, background: { r: 245, g: 245, b: 245 } } })
    .composite(layers)
    .tiff({ tile: true, pyramid: true, tileWidth: 128, tileHeight: 128, compression: 'deflate', xres: 1000 / SLIDE_MPP, yres: 1000 / SLIDE_MPP, resolutionUnit: 'cm' })
    .toFile(path);
}

/** The stand-in model: each tile's mean redness (R − (G+B)/2)/255, clipped, at any input size. */
export function rednessModel(inputSize: number): SlidePredictorSpec {
  return {
    name: 'test:redness',
    inputSize,
    predict: async (batch: RgbBatch) => {
      const pixels = batch.height * batch.width;
      const out = new Float32Array(batch.n);
      for (let i = 0; i < batch.n; i++) {
        let s = 0;
        for (let p = i * pixels * 3; p < (i + 1) * pixels * 3; p += 3) s += batch.data[p]! - (batch.data[p + 1]! + batch.data[p + 2]!) / 2;
        out[i] = Math.min(1, Math.max(0, s / pixels / 255));
      }
      return out;
    },
  };
}
