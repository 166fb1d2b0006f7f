/** Stain normalization as the first step of an augmentation pipeline. */
import test from 'ava';

import { augment } from '../../src/augment/augment.js';
import { checkPipeline } from '../../src/augment/pipeline.js';
import { fitStainTarget, normalizeStain } from '../../src/stain/normalize.js';
import { rgbFixture, syntheticHE } from '../support/helpers.js';

test('a pipeline with a stain step equals stain normalization followed by the rest of the pipeline', async (t) => {
  const batch = syntheticHE(5, 24, 24, 11);
  const rest = { d4: true, hed: 'light' as const, normalize: 'imagenet' as const };
  const withStain = await augment(batch, { stain: { method: 'macenko' }, ...rest }, { seed: 4, backend: 'cpu' });
  const normalized = await normalizeStain(batch, { method: 'macenko', backend: 'cpu' });
  const after = await augment({ ...batch, data: normalized.data }, rest, { seed: 4, backend: 'cpu' });
  t.is(withStain.data.length, after.data.length);
  t.true(withStain.data.every((v, i) => Object.is(v, after.data[i])), 'bit-identical');
});

test('a fitted Reinhard target travels inside the pipeline and survives JSON', async (t) => {
  const target = await fitStainTarget(await rgbFixture('tiatoolbox__target_image.png'), { method: 'reinhard', backend: 'cpu' });
  const p = checkPipeline({ stain: { method: 'reinhard', target } });
  t.deepEqual(checkPipeline(JSON.parse(JSON.stringify(p))), p);
  const batch = syntheticHE(2, 16, 16, 3);
  const r = await augment(batch, p, { backend: 'cpu' });
  t.is(r.data.length, 2 * 16 * 16 * 3);
});

test('a stain step without a usable target is a RangeError naming pipeline.stain', (t) => {
  t.throws(() => checkPipeline({ stain: { method: 'reinhard' } }), { instanceOf: RangeError, message: /pipeline\.stain\.target/ });
  t.throws(() => checkPipeline({ stain: { method: 'magic' } }), { instanceOf: RangeError, message: /pipeline\.stain\.method/ });
  t.throws(() => checkPipeline({ stain: { method: 'macenko', target: { method: 'macenko', he: [1], maxC: [1, 1] } } }), {
    instanceOf: RangeError,
    message: /pipeline\.stain\.target\.he/,
  });
});
