/**
 * Issue 14: shape products that overflow int64 (absurd n, height, width or
 * tensor shapes) are a RangeError naming the parameter, checked in the addon
 * itself (src/ checks in doubles; a direct call does not go through it). A
 * wrapped product used to pass the length check against a tiny array and
 * send the kernel far past it, so each call runs in a child process.
 */
import { spawnSync } from 'node:child_process';

import test from 'ava';

import { loadAddon } from '../../bindings/loader.js';

const addon = loadAddon();
const loaderUrl = new URL('../../bindings/loader.js', import.meta.url).href;

// 272 · 61681 · 1099510579201 = 2^64 + 16: n·height·width·3 wraps to exactly 48.
const WRAP_48 = '{ data: new Uint8Array(48), n: 272, height: 61681, width: 1099510579201 }';

const CASES: [string, string, RegExp][] = [
  ['rgbToOd with a batch whose n·height·width·3 wraps to its length', `addon.rgbToOd('cpu', ${WRAP_48}, od, new Float32Array(48))`, /batch/],
  ['macenkoFit with the same batch', `addon.macenkoFit('cpu', ${WRAP_48}, {})`, /batch/],
  ['odToRgb with 2^62 pixels', 'addon.odToRgb(\'cpu\', new Float32Array(3), 2 ** 62, od, new Uint8Array(3))', /pixels/],
  ['maskFilter with height·width = 2^64', 'addon.maskFilter(\'median\', new Uint8Array(0), 2 ** 32, 2 ** 32, { size: 3 }, new Uint8Array(0))', /mask/],
  ['nn.binary with an aShape of 2^64 elements', 'addon.nn.binary(\'add\', new Float32Array(0), [2 ** 32, 2 ** 32], new Float32Array(1), [1], [1], new Float32Array(1))', /aShape/],
  ['nn.reduceSum whose outer·inner is 2^64', 'addon.nn.reduceSum(new Float32Array(0), [2 ** 32, 0, 2 ** 32], false, new Float32Array(0))', /out \(outer·inner\)/],
  ['nn.batchMatMul whose m·k is 2^64', 'addon.nn.batchMatMul([1, 1, 1, 2 ** 32, 1, 2 ** 32, 0, 0], new Float32Array(0), new Float32Array(0), null, \'linear\', 0, new Float32Array(0))', /a \(batchA·m·k\)/],
  ['nn.conv2d whose input is 2^64 elements', 'addon.nn.conv2d([1, 2 ** 32, 2 ** 32, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], new Float32Array(0), new Float32Array(1), null, \'linear\', 0, new Float32Array(1))', /convShape's input/],
];

for (const [label, call, names] of CASES) {
  (addon.ok ? test : test.skip)(`${label} is a RangeError naming it, not a crash`, (t) => {
    const code = `
      import { requireAddon } from ${JSON.stringify(loaderUrl)};
      const addon = requireAddon();
      const od = { io: 240, offset: 1, minOd: -Infinity };
      try {
        const p = ${call};
        await p;
        console.log('NO ERROR');
      } catch (e) {
        console.log(e.constructor.name + ': ' + e.message);
      }
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000 });
    const out = `${r.stdout}${r.stderr}`;
    t.is(r.status, 0, out);
    t.regex(out, /^RangeError: Expected the size of /m);
    t.regex(out, names);
  });
}
