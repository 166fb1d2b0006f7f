/**
 * How well a predicted tumour map matches a synthetic slide's ground truth:
 * the map (probability.f32, one cell per stride at the level read, or one
 * pixel per map downsample for a segmentation model's pixel map) and the
 * truth mask (S.tumour.png, one cell per MASK_DOWNSAMPLE level-0 px) are
 * brought onto the map's grid (resampleMask: majority vote where the truth is
 * finer) and compared by Dice at the threshold. Cells without tissue (NaN)
 * count as predicted negative.
 */
import { readFile } from 'node:fs/promises';

import { decodeProbabilityF32 } from '../heatmap/probability_map.js';
import type { PredictSlideResult } from '../heatmap/predict_slide.js';
import { dice, iou, resampleMask } from '../metrics/segmentation.js';
import { readSlideTruth } from '../synth/slide.js';

export interface SlideAgreement {
  dice: number;
  iou: number;
  /** Cells of the map grid called tumour by the map and by the truth. */
  predictedCells: number;
  truthCells: number;
  cells: number;
}

export async function slideAgreement(slidePath: string, result: PredictSlideResult): Promise<SlideAgreement> {
  const truth = await readSlideTruth(slidePath);
  const probs = decodeProbabilityF32(await readFile(result.outputs.probabilityRaw!));
  // Level-0 px per map cell: the stride of a patch classifier's map, the map downsample of a pixel map.
  const cell = (result.mapKind === 'pixels' ? result.mapDownsample! : result.stride) * result.downsample;
  const map = { data: probs.map((p) => (Number.isNaN(p) ? 0 : p)), width: result.mapWidth, height: result.mapHeight, downsample: cell };
  const truthOnMap = resampleMask(truth.tumour, { width: result.mapWidth, height: result.mapHeight, downsample: cell });
  let predictedCells = 0, truthCells = 0;
  for (let i = 0; i < map.data.length; i++) {
    if (map.data[i]! >= result.threshold) predictedCells++;
    if (truthOnMap.data[i]! >= 0.5) truthCells++;
  }
  return {
    dice: dice(map, truthOnMap, result.threshold),
    iou: iou(map, truthOnMap, result.threshold),
    predictedCells,
    truthCells,
    cells: map.data.length,
  };
}
