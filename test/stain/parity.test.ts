/**
 * The stain and colour kernels' parity table: cuda, gpujs and js against the
 * native cpu backend, on every input image among the fixtures and on
 * synthetic batches of awkward shapes (odd sizes, 1x1, batch 1 and 257).
 * Normalized images within 1 grey level (and the same images reported
 * unchanged), optical density and deconvolution within 1e-3, reconvolution
 * within 1 grey level.
 */
import { RGB_FROM_HED, stainMatrix } from '../../src/color/deconvolution.js';
import { kernelBackend, kernelBackendStatus, kernelFamily } from '../../src/kernels/registry.js';
import type { KernelBackend, KernelBackendName, OdParams, RgbBatch } from '../../src/kernels/types.js';
import { normalizeStain, type StainMethod } from '../../src/stain/normalize.js';
import { rgbFixture, syntheticHE } from '../support/helpers.js';
import { fromStatus, parityTable, type Case, type Shape } from '../support/parity.js';

const status = await kernelBackendStatus();
// Which gpu.js mode runs (CPU mode, or WebGL through headless-gl under xvfb-run), for the titles.
const gpujsMode = status.find((s) => s.name === 'gpujs')?.available ? kernelFamily.detail?.('gpujs', await kernelBackend('gpujs')) : undefined;

interface Kernels {
  name: KernelBackendName;
  kernels: KernelBackend;
}

/** An image and the target Reinhard normalizes it to. */
interface Input {
  image: RgbBatch;
  target: RgbBatch;
}

// Every input image among the fixtures (expected outputs are not inputs).
const FIXTURES = [
  'HEnorm_python__example1.png',
  'tiatoolbox__source_image.png',
  'tiatoolbox__target_image.png',
  'tiatoolbox__kather1.tif',
  'tiatoolbox__kather2.tif',
  'torchstain__source.png',
  'torchstain__target.png',
  'scikit-image__ihc.png',
  'histolab__tcga-lung-rgb.png',
  'histolab__tiles__tissue-level0-4302-10273-4814-10785.png',
  'histolab__tiles__kidney-ihc-level0-350-530-360-540.png',
  'histolab__tiles__no-tissue.png',
  'histolab__tiles__no-tissue-red-pen.png',
  'histolab__tiles__almost-white-1.png',
];

const SYNTHETIC_TARGET = syntheticHE(1, 40, 40, 9);

const SHAPES: Shape<Input>[] = [
  ...FIXTURES.map((file) => ({
    label: file,
    make: async () => ({ image: await rgbFixture(file), target: await rgbFixture('tiatoolbox__target_image.png') }),
  })),
  { label: '257 patches of 7x5', make: () => ({ image: syntheticHE(257, 7, 5, 3), target: SYNTHETIC_TARGET }) },
  { label: '1 image of 33x17', make: () => ({ image: syntheticHE(1, 33, 17, 4), target: SYNTHETIC_TARGET }) },
  { label: 'a 1x1 image', make: () => ({ image: syntheticHE(1, 1, 1, 5), target: SYNTHETIC_TARGET }) },
];

const cpu = async (): Promise<Kernels> => ({ name: 'cpu', kernels: await kernelBackend('cpu') });
const HED = stainMatrix(RGB_FROM_HED);

/** A case run the same way on a backend and on the cpu reference. */
function sameOnBoth(label: string, tolerance: Case<Kernels, Input>['tolerance'], run: Case<Kernels, Input>['run']): Case<Kernels, Input> {
  return { label, tolerance, run, reference: async (input) => run(await cpu(), input) };
}

const normalization = (method: StainMethod) =>
  sameOnBoth(`${method} normalization`, { within: 1, unit: 'grey level' }, async (b, { image, target }) => {
    const r = await normalizeStain(image, { method, backend: b.name, ...(method === 'reinhard' ? { target } : {}) });
    return { values: r.data, same: { unchanged: r.unchanged } };
  });

const opticalDensity = (label: string, od: OdParams) =>
  sameOnBoth(`optical density (${label})`, { within: 1e-3, unit: 'OD' }, async (b, { image }) => ({ values: await b.kernels.rgbToOd(image, od) }));

parityTable<Kernels, Input>({
  family: 'stain',
  reference: { ...fromStatus(status, 'cpu', true), why: 'native/stain in double precision: cuda, gpujs and js are written apart from it' },
  backends: (['cuda', 'gpujs', 'js'] as const).map((name) => ({
    ...fromStatus(status, name, name !== 'cuda'),
    ...(name === 'gpujs' && gpujsMode ? { tag: gpujsMode } : {}),
    make: async () => ({ name, kernels: await kernelBackend(name) }),
  })),
  familyOrder: kernelFamily.order,
  shapes: SHAPES,
  cases: [
    ...(['macenko', 'vahadane', 'ruifrok', 'reinhard'] as const).map(normalization),
    opticalDensity('Io 240, offset 1', { io: 240, offset: 1, minOd: -Infinity }),
    opticalDensity('Io 255, OD at least 1e-6', { io: 255, offset: 0, minOd: 1e-6 }),
    sameOnBoth('HED deconvolution', { within: 1e-3, unit: 'OD' }, async (b, { image }) => ({ values: await b.kernels.deconvolve(image, HED.stainFromRgb) })),
    sameOnBoth('reconvolution of the cpu backend\'s HED', { within: 1, unit: 'grey level' }, async (b, { image }) => {
      const hed = await (await cpu()).kernels.deconvolve(image, HED.stainFromRgb);
      return { values: await b.kernels.reconvolve(hed, image.n * image.height * image.width, HED.rgbFromStain) };
    }),
  ],
});
