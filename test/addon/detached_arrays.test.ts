/**
 * Issue 14: a typed array a kernel uses is held for the whole call
 * (bindings/common.h, ArrayPin). Detached before the call: a TypeError naming
 * it. Detached *while an async kernel runs* (structuredClone with transfer,
 * the new owner collected at once): never a signal — the kernel's memory stays
 * valid (a held V8 backing store, or a staged copy in builds without v8.h); an
 * output's result is reported lost, an input's call completes. The racing
 * cases run in a child process so that a crash fails the test instead of ava.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { loadAddon } from '../../bindings/loader.js';
import { DIST, IN_CI } from '../support/helpers.js';

const addon = loadAddon();
const skip = !addon.ok;
const exec = promisify(execFile);
const LOADER = join(DIST, 'bindings', 'loader.js');

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

(skip ? test.skip : test)('a resizable ArrayBuffer is a TypeError naming the array (it could shrink under the kernel)', (t) => {
  if (!addon.ok) return;
  // ES2024 (Node 20 has it; this TypeScript lib does not type it)
  const Resizable = ArrayBuffer as unknown as new (bytes: number, options: { maxByteLength: number }) => ArrayBuffer;
  const buffer = new Resizable(48 * 4, { maxByteLength: 1024 });
  const batch = { data: new Uint8Array(48), n: 1, height: 4, width: 4 };
  t.throws(() => addon.addon.rgbToOd('cpu', batch, { io: 240, offset: 1, minOd: -Infinity }, new Float32Array(buffer, 0, 48)), {
    instanceOf: TypeError,
    message: /fixed-length ArrayBuffer under out/,
  });
});

(skip ? test.skip : test)('arrays over a SharedArrayBuffer are used in place and give the same result', async (t) => {
  if (!addon.ok) return;
  const pixels = Uint8Array.from({ length: 4 * 4 * 3 }, (_, i) => (i * 37) % 256);
  const shared = new Uint8Array(new SharedArrayBuffer(pixels.length));
  shared.set(pixels);
  const params = { io: 240, offset: 1, minOd: -Infinity };
  const a = new Float32Array(48), b = new Float32Array(new SharedArrayBuffer(48 * 4));
  await addon.addon.rgbToOd('cpu', { data: pixels, n: 1, height: 4, width: 4 }, params, a);
  await addon.addon.rgbToOd('cpu', { data: shared, n: 1, height: 4, width: 4 }, params, b);
  t.deepEqual(Array.from(b), Array.from(a));
});

(skip ? test.skip : test)('zero-copy: an output moved away mid-call received the kernel\'s writes (V8 backing store) or none (staged)', async (t) => {
  if (!addon.ok) return;
  const held = addon.addon.buildInfo().v8BackingStores === true;
  t.log(held ? 'this build holds V8 backing stores' : 'this build stages copies (no v8.h at build time)');
  if (IN_CI) t.true(held, 'CI builds with Node\'s own headers (/usr/include/node): async kernels must be zero-copy');
  const n = 8, h = 128, w = 128, values = n * h * w * 3;
  const batch = { data: Uint8Array.from({ length: values }, (_, i) => (i * 7) % 251), n, height: h, width: w };
  const params = { io: 240, offset: 1, minOd: -Infinity };
  const expected = new Float32Array(values);
  await addon.addon.rgbToOd('cpu', batch, params, expected);
  const out = new Float32Array(values);
  const pending = addon.addon.rgbToOd('cpu', batch, params, out);
  const moved = new Float32Array(structuredClone(out.buffer, { transfer: [out.buffer] }));
  await t.throwsAsync(pending, { message: /out was detached/ });
  if (held) t.deepEqual(moved, expected);
  else t.true(moved.every((v) => v === 0));
});

// Each case calls an async kernel on ~50 MB, detaches one array right after
// the call, lets the collector free the new owner, and scribbles over fresh
// memory while the kernel runs.
const RACE = `
const { loadAddon } = await import(${JSON.stringify(LOADER)});
const s = loadAddon();
if (!s.ok) { console.log(JSON.stringify({ skip: s.reason })); process.exit(0); }
const a = s.addon;
const n = 32, h = 256, w = 256, values = n * h * w * 3;
const params = { io: 240, offset: 1, minOd: -Infinity };
const cases = {
  'rgbToOd input': () => { const b = { data: new Uint8Array(values).fill(120), n, height: h, width: w }; return [a.rgbToOd('cpu', b, params, new Float32Array(values)), b.data]; },
  'rgbToOd out': () => { const o = new Float32Array(values); return [a.rgbToOd('cpu', { data: new Uint8Array(values).fill(120), n, height: h, width: w }, params, o), o]; },
  'odToRgb input': () => { const od = new Float32Array(values).fill(0.3); return [a.odToRgb('cpu', od, n * h * w, params, new Uint8Array(values)), od]; },
  'odToRgb out': () => { const o = new Uint8Array(values); return [a.odToRgb('cpu', new Float32Array(values).fill(0.3), n * h * w, params, o), o]; },
};
const results = {};
for (const [name, start] of Object.entries(cases)) {
  for (let round = 0; round < 3; round++) {
    const [promise, victim] = start();
    structuredClone(victim.buffer, { transfer: [victim.buffer] });
    globalThis.gc(); globalThis.gc();
    const junk = []; for (let i = 0; i < 8; i++) junk.push(new Uint8Array(values).fill(0xa5));
    try { await promise; results[name] = 'resolved'; } catch (e) { results[name] = String(e.message); }
  }
}
console.log(JSON.stringify(results));
`;

(skip ? test.skip : test)('an array detached while an async kernel runs: no signal; a lost output rejects naming it', async (t) => {
  let r: { stdout: string; stderr: string };
  try {
    r = await exec(process.execPath, ['--expose-gc', '--input-type=module', '-e', RACE], { maxBuffer: 16 << 20, timeout: 120_000 });
  } catch (e) {
    const err = e as { code?: number; signal?: string; stderr?: string };
    t.fail(`the child died (code ${err.code}, signal ${err.signal}): ${err.stderr?.slice(-2000)}`);
    return;
  }
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, string>;
  t.log(out);
  t.is(out['rgbToOd input'], 'resolved');
  t.is(out['odToRgb input'], 'resolved');
  t.regex(out['rgbToOd out']!, /^rgbToOd: out was detached \(or shrunk\) while the kernel ran; its result is lost$/);
  t.regex(out['odToRgb out']!, /^odToRgb: out was detached \(or shrunk\) while the kernel ran; its result is lost$/);
});

// nn.concat reads its inputs from a JS array: an element's getter runs JS
// between the elements' checks, and shrank an input already checked (a
// segfault in the copy). Run in a child so that a crash fails the test.
const SHRINK = `
const { loadAddon } = await import(${JSON.stringify(LOADER)});
const s = loadAddon();
if (!s.ok) { console.log(JSON.stringify({ skip: s.reason })); process.exit(0); }
const n = 1 << 24;
const a = new Float32Array(new ArrayBuffer(n * 4, { maxByteLength: n * 4 })).fill(1);
const inputs = [a];
Object.defineProperty(inputs, 1, { enumerable: true, get: () => { a.buffer.resize(0); return new Float32Array(n); } });
try { s.addon.nn.concat(inputs, 1, [n, n], new Float32Array(2 * n)); console.log(JSON.stringify({ result: 'returned' })); }
catch (e) { console.log(JSON.stringify({ result: e.constructor.name + ': ' + e.message })); }
`;

(skip ? test.skip : test)('nn.concat whose inputs array shrinks an input from a getter is a RangeError naming it, not a crash', async (t) => {
  let r: { stdout: string; stderr: string };
  try {
    r = await exec(process.execPath, ['--input-type=module', '-e', SHRINK], { timeout: 60_000 });
  } catch (e) {
    const err = e as { code?: number; signal?: string; stderr?: string };
    t.fail(`the child died (code ${err.code}, signal ${err.signal}): ${err.stderr?.slice(-2000)}`);
    return;
  }
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { result?: string; skip?: string };
  t.regex(out.result ?? '', /^RangeError: Expected inputs\[0\] to hold \d+ elements but it holds 0$/);
});
