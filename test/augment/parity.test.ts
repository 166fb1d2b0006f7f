/**
 * The augmentation parity table: augment() on cpu, cuda and gpujs against the
 * TypeScript reference (src/augment/js_augment.ts) on the same drawn
 * parameters, every op alone and all at once, on small awkward shapes (odd
 * sizes, a 1x1 image, batch 1 and batch 257) with two seeds, and at the
 * pixel extremes. Permutations of the input (D4, crops) are exact on the
 * native backends; everything else, and all of gpu.js, within 1e-3. The
 * output array starts as NaN, so a value a backend never writes fails.
 */
import { augment, augmentFamily } from '../../src/augment/augment.js';
import { augmentJs } from '../../src/augment/js_augment.js';
import { batchParams, drawBatchParams } from '../../src/augment/params.js';
import { checkPipeline, outputShape, type AugmentPipelineInput } from '../../src/augment/pipeline.js';
import { backendStatus } from '../../src/backend_choice.js';
import type { RgbBatch } from '../../src/kernels/types.js';
import { OPS, SHAPES } from '../support/augment_cases.js';
import { fromStatus, parityTable, type Case, type Outcome, type Shape } from '../support/parity.js';

type Name = 'cpu' | 'cuda' | 'gpujs';

const status = await backendStatus(augmentFamily, (_name, runner) => {
  const mode = (runner as { mode?: string }).mode;
  return mode ? `gpu.js ${mode} mode` : 'available';
});

interface Input {
  batch: RgbBatch;
  seed: number;
}

const SEEDED: Shape<Input>[] = SHAPES.flatMap(([label, make]) => [1, 2024].map((seed) => ({ label: `${label}, seed ${seed}`, make: () => ({ batch: make(), seed }) })));

// Flat and saturated pixels: the hue of a grey pixel, the log of 0, clipping at both ends.
const COLOURS = [0, 0, 0, 255, 255, 255, 128, 128, 128, 255, 0, 0, 0, 255, 0, 0, 0, 255, 200, 100, 50];
const extremes: RgbBatch = { data: Uint8Array.from({ length: 4 * 5 * 3 }, (_, i) => COLOURS[i % COLOURS.length]!), n: 1, height: 4, width: 5 };
const EXTREMES: Shape<Input>[] = [0, 1, 2, 3, 4, 5, 6, 7].map((seed) => ({ label: `seed ${seed}`, make: () => ({ batch: extremes, seed }) }));

/** augment() on a backend, into a NaN-filled out. */
async function onBackend(backend: Name, { batch, seed }: Input, pipeline: AugmentPipelineInput): Promise<Outcome> {
  const p = checkPipeline(pipeline);
  const shape = outputShape(p, batch.height, batch.width, p.d4);
  const out = new Float32Array(batch.n * shape.height * shape.width * 3).fill(NaN);
  const r = await augment(batch, pipeline, { seed, backend, out });
  return { values: r.data, same: { params: r.params, batchParams: r.batchParams } };
}

/** The reference: the parameters drawn as augment() draws them (seed, epoch 0, from index 0), run by augmentJs. */
async function reference({ batch, seed }: Input, pipeline: AugmentPipelineInput): Promise<Outcome> {
  const p = checkPipeline(pipeline);
  const shape = outputShape(p, batch.height, batch.width, p.d4);
  const params = drawBatchParams(p, shape, batch.height, batch.width, batch.n, seed, 0, 0);
  const b = batchParams(p, shape);
  const out = new Float32Array(batch.n * b.outH * b.outW * 3);
  augmentJs(batch, params, b, out);
  return { values: out, same: { params, batchParams: b } };
}

const WITHIN = { within: 1e-3, unit: 'per float' };

const opCases: Case<Name, Input>[] = OPS.map(([op, exact, make]) => ({
  label: op,
  // A permutation of the input is exact where the kernels run in float32 on the CPU or CUDA; gpu.js samples textures.
  tolerance: (backend) => (exact && backend !== 'gpujs' ? 'exact' : WITHIN),
  run: (backend, input) => onBackend(backend, input, make(input.batch.height, input.batch.width)),
  reference: (input) => reference(input, make(input.batch.height, input.batch.width)),
}));

const STRONG: AugmentPipelineInput = {
  hed: { sigma: 0.5, units: 'rgb2hed' },
  hsv: { brightness: 1, contrast: 1, saturation: 1, hue: 0.5 },
  blur: { sigma: [1, 3], p: 1 },
  noise: { sigma: 0.5, p: 1 },
  normalize: 'imagenet',
};

parityTable<Name, Input>({
  family: 'augment',
  reference: { ...fromStatus(status, 'js', true), why: 'src/augment/js_augment.ts: plain TypeScript, pixel by pixel, written apart from native/augment and the gpu.js kernels' },
  backends: (['cpu', 'cuda', 'gpujs'] as const).map((name) => {
    const s = fromStatus(status, name, name !== 'cuda');
    return { ...s, ...(name === 'gpujs' ? { tag: s.detail } : {}), make: () => name };
  }),
  familyOrder: augmentFamily.order,
  shapes: SEEDED,
  cases: [
    ...opCases,
    {
      label: 'every op at its extremes (grey, black, white and saturated pixels, strong jitter)',
      tolerance: WITHIN,
      shapes: EXTREMES,
      run: (backend, input) => onBackend(backend, input, STRONG),
      reference: (input) => reference(input, STRONG),
    },
  ],
});
