/**
 * The `cpu` and `cuda` kernel backends: the addon's kernels over the caller's
 * typed arrays. Inputs are viewed in place; outputs are written into `out`
 * when given (no copy), else into a new array of the right size.
 */
import type { NativeAddon, NativeDevice } from '../../bindings/binding.js';
import { withCallerStack } from '../errors.js';
import type { KernelBackend, RgbBatch, StainFit } from './types.js';

function outArray<T extends Float32Array | Uint8Array>(
  name: string,
  given: T | undefined,
  length: number,
  make: (n: number) => T,
): T {
  if (given === undefined) return make(length);
  if (given.length !== length) throw new RangeError(`Expected ${name} to hold ${length} elements but it holds ${given.length}`);
  return given;
}

const bytes = (b: RgbBatch) => b.n * b.height * b.width * 3;

export function createAddonBackend(addon: NativeAddon, device: NativeDevice): KernelBackend {
  const call = withCallerStack;
  return {
    name: device,
    async rgbToOd(batch, p, out) {
      const o = outArray('out', out, bytes(batch), (n) => new Float32Array(n));
      await call(() => addon.rgbToOd(device, batch, p, o));
      return o;
    },
    async odToRgb(od, pixels, p, out) {
      const o = outArray('out', out, pixels * 3, (n) => new Uint8Array(n));
      await call(() => addon.odToRgb(device, od, pixels, p, o));
      return o;
    },
    async deconvolve(batch, m, out) {
      const o = outArray('out', out, bytes(batch), (n) => new Float32Array(n));
      await call(() => addon.deconvolve(device, batch, Array.from(m), o));
      return o;
    },
    async reconvolve(stains, pixels, m, out) {
      const o = outArray('out', out, pixels * 3, (n) => new Uint8Array(n));
      await call(() => addon.reconvolve(device, stains, pixels, Array.from(m), o));
      return o;
    },
    reinhardFit: (batch) => call(() => addon.reinhardFit(device, batch)),
    async reinhardTransform(batch, target, out) {
      const o = outArray('out', out, bytes(batch), (n) => new Uint8Array(n));
      await call(() => addon.reinhardTransform(device, batch, target, o));
      return o;
    },
    macenkoFit: (batch, p) => call(() => addon.macenkoFit(device, batch, p)),
    vahadaneFit: (batch, p) => call(() => addon.vahadaneFit(device, batch, p)),
    stainFitFixed: (batch, he, od) => call(() => addon.stainFitFixed(device, batch, Array.from(he), od)),
    async stainTransform(batch, fits: StainFit[], p, out, hOnly, eOnly) {
      const o = outArray('out', out, bytes(batch), (n) => new Uint8Array(n));
      await call(() => addon.stainTransform(device, batch, fits, p, o, hOnly ?? null, eOnly ?? null));
      return o;
    },
    async stainConcentrations(batch, fits, od, out) {
      const o = outArray('out', out, batch.n * batch.height * batch.width * 2, (n) => new Float32Array(n));
      await call(() => addon.stainConcentrations(device, batch, fits, od, o));
      return o;
    },
  };
}
