/**
 * Issue 14: typed arrays that are detached (transferred) when a kernel is
 * called are refused naming them (bindings/common.h, ArrayPin). A detach
 * *during* the call is not yet guarded (the kernels view arrays in place;
 * see ArrayPin).
 */
import test from 'ava';

import { loadAddon } from '../../bindings/loader.js';

const addon = loadAddon();
const skip = !addon.ok;

(skip ? test.skip : test)('an array already detached when the call is made is a TypeError naming it', (t) => {
  if (!addon.ok) return;
  const out = new Float32Array(48);
  structuredClone(out.buffer, { transfer: [out.buffer] });
  const batch = { data: new Uint8Array(48), n: 1, height: 4, width: 4 };
  t.throws(() => addon.addon.rgbToOd('cpu', batch, { io: 240, offset: 1, minOd: -Infinity }, out), {
    instanceOf: TypeError,
    message: /out but its ArrayBuffer was detached/,
  });
});
