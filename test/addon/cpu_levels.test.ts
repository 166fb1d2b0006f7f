/**
 * The portable addon's CPU levels (CMakeLists.txt, "CPU levels"; the loader in
 * bindings/loader.ts): which level is chosen for which CPU, build and cap; that
 * HISTOFLOW_CPU_LEVEL forces a lower level in a fresh process and info names
 * it; and the kernels' parity suites (stain, augment, tissue, PNG, the
 * native TF.js backend's GEMM/conv against TF.js cpu) pass at every level this
 * CPU runs, each in its own process.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { CPU_LEVELS, chooseCpuLevel, loadAddon } from '../../bindings/loader.js';
import { loadGpu } from '../../src/kernels/gpujs_loader.js';
import { CLI, DIST, IN_CI, ROOT } from '../support/helpers.js';

const exec = promisify(execFile);
const addon = loadAddon();

test('chooseCpuLevel: the highest built level the CPU runs, capped by HISTOFLOW_CPU_LEVEL', (t) => {
  const all = ['v2', 'v3', 'v4'];
  const cases: Array<[string[], string[], string | undefined, string, RegExp]> = [
    [all, ['v1', 'v2', 'v3', 'v4'], undefined, 'v4', /highest built level/],
    [all, ['v1', 'v2', 'v3'], undefined, 'v3', /highest built level/],
    [all, ['v1', 'v2'], undefined, 'v2', /highest built level/],
    [['v2', 'v3'], ['v1', 'v2', 'v3', 'v4'], undefined, 'v3', /built: v2, v3/],
    [all, ['v1', 'v2', 'v3', 'v4'], 'v2', 'v2', /capped by HISTOFLOW_CPU_LEVEL=v2 \(this CPU would run v4\)/],
    [all, ['v1', 'v2', 'v3', 'v4'], 'v3', 'v3', /capped/],
    [all, ['v1', 'v2', 'v3'], 'v4', 'v3', /HISTOFLOW_CPU_LEVEL=v4 asks for more than this CPU runs/],
    [['v2', 'v3'], ['v1', 'v2', 'v3', 'v4'], 'v4', 'v3', /asks for more than was built/],
    // An old baseline that cannot report the CPU's levels: the baseline only.
    [all, [], undefined, 'v2', /highest built level/],
    [['native'], [], undefined, 'native', /-march=native build/],
    [['base'], [], 'v3', 'base', /one build for this architecture/],
  ];
  for (const [built, supported, cap, level, why] of cases) {
    const got = chooseCpuLevel(built, supported, cap as (typeof CPU_LEVELS)[number] | undefined);
    t.is(got.level, level, `${built} / ${supported} / ${cap}`);
    t.regex(got.why, why);
  }
});

if (!addon.ok) {
  test(IN_CI ? 'the addon loads (CI builds it)' : 'CPU levels need the addon', (t) => {
    if (IN_CI) t.fail(addon.reason);
    else t.log(`skipped: ${addon.reason}`);
  });
} else {
  const { built, supported, level: loaded } = addon.cpu;

  (IN_CI ? test : test.skip)(`every optional library that .ci/run installs is linked, and gpu.js (headless-gl) built${IN_CI ? '' : ' (skipped: checked in CI, where they are installed)'}`, async (t) => {
    const b = addon.addon.buildInfo();
    t.deepEqual({ openslide: b.openslide, onednn: b.onednn, libdeflate: b.png, openmp: b.openmp },
      { openslide: true, onednn: true, libdeflate: true, openmp: true });
    await t.notThrowsAsync(loadGpu(), 'gpu.js loads (its gl build needs the apt line\'s python-is-python3 and X/GL headers)');
  });

  test('the loaded level is the highest built one this CPU runs (no cap set here)', (t) => {
    t.log(`built ${built.join(', ')}; CPU runs ${supported.join(', ')}; loaded ${loaded} (${addon.cpu.why})`);
    if (process.env.HISTOFLOW_CPU_LEVEL) return t.log('HISTOFLOW_CPU_LEVEL is set in this environment: the cap is tested in child processes only');
    t.is(loaded, chooseCpuLevel(built, supported).level);
    t.is(addon.addon.buildInfo().cpuLevel, loaded);
    if (IN_CI && process.arch === 'x64') t.deepEqual(built, ['v2', 'v3', 'v4'], 'CI builds every level');
  });

  const info = async (env: NodeJS.ProcessEnv) =>
    JSON.parse((await exec(process.execPath, [CLI, 'info', '--json'], { env: { ...process.env, ...env } })).stdout) as
      { addon: { loaded: boolean; reason?: string; cpuLevel?: { level: string; why: string }; simd?: string } };

  test('HISTOFLOW_CPU_LEVEL=v2 loads the baseline in a new process and info says so; a bad value names the variable', async (t) => {
    const capped = await info({ HISTOFLOW_CPU_LEVEL: 'v2' });
    t.true(capped.addon.loaded);
    t.is(capped.addon.cpuLevel!.level, built[0]);
    if (built.length > 1 && supported.includes(built[1]!)) t.regex(capped.addon.cpuLevel!.why, /capped by HISTOFLOW_CPU_LEVEL=v2/);
    const bad = await info({ HISTOFLOW_CPU_LEVEL: 'avx9000' });
    t.false(bad.addon.loaded);
    t.regex(bad.addon.reason!, /HISTOFLOW_CPU_LEVEL="avx9000" is not one of v2, v3, v4/);
  });

  const SUITES = ['stain/parity', 'stain/macenko_canonical', 'augment/parity', 'augment/augment', 'tfjs/parity', 'tfjs/kernels', 'tissue/parity', 'tissue/tissue', 'codec/codec']
    .map((f) => join(DIST, 'test', `${f}.test.js`));
  for (const level of built.filter((l) => (CPU_LEVELS as readonly string[]).includes(l))) {
    // The loaded level is the one this whole run already tests.
    const why = !supported.includes(level) ? 'this CPU does not run it' : level === loaded ? 'the level this run has loaded: every suite here runs on it' : '';
    const runs = why === '';
    const title = `the kernels' parity suites pass at CPU level ${level}${runs ? '' : ` (skipped: ${why})`}`;
    (runs ? test.serial : test.skip)(title, async (t) => {
      const env = { ...process.env, HISTOFLOW_CPU_LEVEL: level };
      t.is((await info(env)).addon.cpuLevel!.level, level);
      const ava = join(ROOT, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
      try {
        const r = await exec(process.execPath, [ava, ...SUITES], { env, cwd: ROOT, maxBuffer: 64 << 20 });
        const summary = /(\d+) tests? passed/.exec(r.stdout + r.stderr);
        t.log(`level ${level}: ${summary?.[0] ?? 'no summary'}`);
        t.truthy(summary && Number(summary[1]) > 100, 'the suites ran');
      } catch (e) {
        const err = e as { stdout: string; stderr: string };
        t.fail(`parity at ${level} failed:\n${(err.stdout + err.stderr).slice(-4000)}`);
      }
    });
  }
}
