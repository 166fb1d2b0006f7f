/**
 * The addon re-checks what would corrupt memory even when called directly,
 * past src/'s validation: wrong typed-array kinds, short buffers, missing
 * fields. Each must throw, never crash the process.
 */
import test from 'ava';

import { requireAddon } from '../../bindings/loader.js';

const addon = requireAddon();
const batch = { data: new Uint8Array(4 * 4 * 3), n: 1, height: 4, width: 4 };
const od = { io: 240, offset: 1, minOd: -Infinity };
const tissue = { rule: 'od', beta: 0.15, luminosityThreshold: 0.8 };
const macenko = { od, tissue, alpha: 1, unitRows: false };

type Call = [string, () => unknown, typeof TypeError | typeof RangeError];

const CALLS: Call[] = [
  ['a short output array', () => addon.rgbToOd('cpu', batch, od, new Float32Array(10)), RangeError],
  ['an output of the wrong kind', () => addon.rgbToOd('cpu', batch, od, new Uint8Array(48) as never), TypeError],
  ['a batch whose data is shorter than its shape', () => addon.macenkoFit('cpu', { ...batch, data: new Uint8Array(5) }, macenko as never), RangeError],
  ['a batch with a negative size', () => addon.macenkoFit('cpu', { ...batch, height: -4 }, macenko as never), RangeError],
  ['a batch whose data is a plain array', () => addon.macenkoFit('cpu', { ...batch, data: [1, 2, 3] as never }, macenko as never), TypeError],
  ['a missing params object', () => addon.macenkoFit('cpu', batch, undefined as never), TypeError],
  ['params without od', () => addon.macenkoFit('cpu', batch, { ...macenko, od: 3 } as never), TypeError],
  ['an unknown tissue rule', () => addon.macenkoFit('cpu', batch, { ...macenko, tissue: { ...tissue, rule: 'x' } } as never), RangeError],
  ['an unknown device', () => addon.macenkoFit('tpu' as never, batch, macenko as never), RangeError],
  ['fits of the wrong count', () => addon.stainTransform('cpu', batch, [], { od, targetHe: [1, 2, 3, 4, 5, 6], targetMaxC: [1, 1], overflowValue: 255 }, new Uint8Array(48), null, null), RangeError],
  ['a stain matrix of 8 numbers', () => addon.deconvolve('cpu', batch, [1, 2, 3, 4, 5, 6, 7, 8], new Float32Array(48)), RangeError],
  ['a pixel count larger than the arrays', () => addon.odToRgb('cpu', new Float32Array(3), 1000, od, new Uint8Array(3)), RangeError],
];

for (const [label, call, kind] of CALLS) {
  test(`the addon rejects ${label} with a ${kind.name}`, (t) => {
    t.throws(call, { instanceOf: kind });
  });
}

test('a rejected native call leaves the addon usable', async (t) => {
  t.throws(() => addon.rgbToOd('cpu', batch, od, new Float32Array(1)));
  const out = new Float32Array(48);
  await addon.rgbToOd('cpu', batch, od, out);
  t.true(Math.abs(out[0]! - Math.log(240)) < 1e-5);
});
