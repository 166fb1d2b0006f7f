/**
 * The tiatoolbox 0.5.0 fixtures: fit on target_image.png, transform
 * source_image.png; tiatoolbox's own rule is mean(|expected/255 − output/255|)
 * < 0.01 (Vahadane, being dictionary learning there, < 0.03 here).
 */
import test from 'ava';

import { normalizeStain, type StainMethod } from '../../src/stain/normalize.js';
import { diff, rgbFixture } from '../support/helpers.js';

const CASES: [StainMethod, number][] = [
  ['macenko', 0.01],
  ['reinhard', 0.01],
  ['ruifrok', 0.01],
  ['vahadane', 0.03],
];

for (const [method, tolerance] of CASES) {
  test(`${method} (tiatoolbox preset) matches tiatoolbox's norm_${method}.png within ${tolerance}`, async (t) => {
    const source = await rgbFixture('tiatoolbox__source_image.png');
    const target = await rgbFixture('tiatoolbox__target_image.png');
    const expected = await rgbFixture(`tiatoolbox__norm_${method}.png`);
    const r = await normalizeStain(source, { method, preset: 'tiatoolbox', target, backend: 'cpu' });
    const d = diff(r.data, expected.data);
    t.log(`${method}: mean |diff|/255 = ${(d.mean / 255).toFixed(5)} (max ${d.max})`);
    t.true(d.mean / 255 < tolerance);
  });
}
