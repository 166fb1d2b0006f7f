/**
 * The stain-normalization conventions users compare against.
 *
 * canonical — Macenko et al. 2009 as in HEnorm_python (Io 240, alpha 1,
 *   beta 0.15, OD = −ln((I+1)/Io)); without a target, images are normalized to
 *   its reference H&E matrix and maximum concentrations.
 * tiatoolbox — tiatoolbox 0.5 (Io 255, OD = max(−ln(I/255), 1e−6) with 0 read
 *   as 1, tissue = contrast-stretched LAB L/255 < 0.8, unit stain vectors,
 *   values clipped to 255).
 */
import type { MacenkoParams, OdParams, TissueParams, VahadaneParams } from '../kernels/types.js';

export const STAIN_PRESETS = ['canonical', 'tiatoolbox'] as const;
export type StainPreset = (typeof STAIN_PRESETS)[number];

/** HEnorm_python's reference stain matrix, rows H and E (RGB OD). */
export const REFERENCE_HE: readonly number[] = [0.5626, 0.7201, 0.4062, 0.2159, 0.8012, 0.5581];
/** HEnorm_python's reference 99th-percentile concentrations (H, E). */
export const REFERENCE_MAX_C: readonly number[] = [1.9705, 1.0308];
/** Ruifrok & Johnston's H and E vectors (tiatoolbox's RuifrokExtractor), before unit scaling. */
export const RUIFROK_HE: readonly number[] = [0.65, 0.7, 0.29, 0.07, 0.99, 0.11];

export interface PresetParams {
  od: OdParams;
  tissue: TissueParams;
  alpha: number;
  unitRows: boolean;
  overflowValue: number;
}

export function presetParams(preset: StainPreset): PresetParams {
  if (preset === 'tiatoolbox') {
    return {
      od: { io: 255, offset: 0, minOd: 1e-6 },
      tissue: { rule: 'luminosity', beta: 0.15, luminosityThreshold: 0.8 },
      alpha: 1,
      unitRows: true,
      overflowValue: 255,
    };
  }
  return {
    od: { io: 240, offset: 1, minOd: -Infinity },
    tissue: { rule: 'od', beta: 0.15, luminosityThreshold: 0.8 },
    alpha: 1,
    unitRows: false,
    overflowValue: 254,
  };
}

export function macenkoParams(p: PresetParams): MacenkoParams {
  return { od: p.od, tissue: p.tissue, alpha: p.alpha, unitRows: p.unitRows };
}

export interface VahadaneOptions {
  lambda: number;
  iterations: number;
  maxPixels: number;
  seed: number;
}

export const VAHADANE_DEFAULTS: VahadaneOptions = { lambda: 0.1, iterations: 50, maxPixels: 20000, seed: 0 };

/**
 * Vahadane's L1 weight per preset. canonical: 0.1 on the per-pixel
 * concentrations (Vahadane et al. 2016, SPAMS/staintools). tiatoolbox: its
 * DictionaryLearning puts alpha 0.1 on the stain matrix while the
 * concentrations are unit-norm atoms over all tissue pixels, which makes the
 * penalty vanish at this scale: the equivalent here is 0.
 */
export function vahadaneLambda(preset: StainPreset): number {
  return preset === 'tiatoolbox' ? 0 : VAHADANE_DEFAULTS.lambda;
}

export function vahadaneParams(p: PresetParams, v: VahadaneOptions): VahadaneParams {
  return { od: p.od, tissue: p.tissue, ...v };
}

/** Rows scaled to unit length. */
export function unitRows(he: readonly number[]): number[] {
  const out = he.slice();
  for (let r = 0; r < 2; r++) {
    const n = Math.hypot(he[3 * r]!, he[3 * r + 1]!, he[3 * r + 2]!);
    for (let k = 0; k < 3; k++) out[3 * r + k] = he[3 * r + k]! / n;
  }
  return out;
}
