import test from 'ava';

import { loadAddon } from '../../bindings/loader.js';
import { chooseKernelBackend, kernelBackendStatus } from '../../src/kernels/registry.js';

test('the native addon is built and loads', (t) => {
  const s = loadAddon();
  t.true(s.ok, s.ok ? '' : s.reason);
});

test('auto picks the native cpu backend on a machine without a GPU and says why', async (t) => {
  const status = await kernelBackendStatus();
  const cuda = status.find((b) => b.name === 'cuda')!;
  const { backend, reason } = await chooseKernelBackend('auto');
  if (cuda.available) {
    t.is(backend.name, 'cuda');
  } else {
    t.is(backend.name, 'cpu');
    t.regex(reason, /passed over: cuda: /);
  }
});

test('an unknown backend is a RangeError naming the parameter', async (t) => {
  await t.throwsAsync(() => chooseKernelBackend('tpu'), { instanceOf: RangeError, message: /backend/ });
});

const cudaPresent = (() => {
  const s = loadAddon();
  return s.ok && s.addon.cudaDevices().devices.length > 0;
})();
(cudaPresent ? test.skip : test)(`a CPU-only build reports CUDA as unavailable with the reason${cudaPresent ? ' (skipped: a CUDA device is present)' : ''}`, async (t) => {
  const s = loadAddon();
  if (!s.ok) return t.fail(s.reason);
  const info = s.addon.buildInfo();
  const devices = s.addon.cudaDevices();
  t.truthy(devices.reason.length > 0);
  if (!info.cuda) t.regex(devices.reason, /built without CUDA/);
  await t.throwsAsync(() => chooseKernelBackend('cuda'), { message: /cuda backend is unavailable/ });
});
