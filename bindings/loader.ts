/**
 * Loads the addon once and, when it cannot, says why in one message with the
 * fix. Nothing here throws on import: callers ask `loadAddon()` and decide
 * (the gpujs and js backends work without the addon).
 *
 * A portable build holds one file per x86-64 level (CMakeLists.txt, "CPU
 * levels"): histoflow.node, the v2 baseline, and histoflow-v3.node (AVX2+FMA),
 * histoflow-v4.node (AVX-512). The baseline is loaded first and asked which
 * levels this CPU runs; the highest built level it runs is used, capped by
 * HISTOFLOW_CPU_LEVEL (v2, v3 or v4) when that is set.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { NativeAddon } from './binding.js';

/** Which CPU level was loaded, and why. */
export interface CpuDispatch {
  /** The level of the file loaded: 'v2' | 'v3' | 'v4', 'native' (-march=native build) or 'base' (not x86-64). */
  level: string;
  /** The levels this CPU runs (from the baseline file's CPUID check). */
  supported: string[];
  /** The levels built (files found). */
  built: string[];
  /** HISTOFLOW_CPU_LEVEL, when set. */
  cap?: CpuLevel;
  /** Why this level, in words. */
  why: string;
}

export const CPU_LEVELS = ['v2', 'v3', 'v4'] as const;
export type CpuLevel = (typeof CPU_LEVELS)[number];

export type AddonState =
  | { ok: true; addon: NativeAddon; path: string; cpu: CpuDispatch }
  | { ok: false; reason: string };

let state: AddonState | undefined;

/** The package root, from dist/bindings/loader.js or bindings/loader.ts. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'CMakeLists.txt'))) return dir;
    dir = dirname(dir);
  }
  return dirname(dirname(dirname(fileURLToPath(import.meta.url))));
}

function candidates(root: string): string[] {
  const env = process.env.HISTOFLOW_ADDON;
  return [
    ...(env ? [env] : []),
    join(root, 'build', 'Release', 'histoflow.node'),
    join(root, 'build', 'Debug', 'histoflow.node'),
  ];
}

function loadFailure(found: string, e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  let fix = 'rebuild it with `npm run build`';
  if (/NODE_MODULE_VERSION|was compiled against a different Node\.js version/.test(message)) {
    fix = 'it was built for another Node.js version: rebuild it with `npm run build`';
  } else if (/cannot open shared object file|Library not loaded|image not found/.test(message)) {
    const lib = /([\w.+-]+\.so[\d.]*)/.exec(message)?.[1] ?? 'a shared library';
    fix = `${lib} is missing at run time: install it (e.g. apt install libopenslide0 / libdnnl2) or rebuild with \`npm run build\``;
  }
  return `${found} failed to load: ${message}. Fix: ${fix}.`;
}

/** HISTOFLOW_CPU_LEVEL: undefined when unset, a level, or an error message. */
function cpuCap(): CpuLevel | undefined | { error: string } {
  const raw = process.env.HISTOFLOW_CPU_LEVEL;
  if (raw === undefined || raw === '') return undefined;
  const v = raw.trim().toLowerCase().replace(/^x86-64-/, '');
  if ((CPU_LEVELS as readonly string[]).includes(v)) return v as CpuLevel;
  return { error: `HISTOFLOW_CPU_LEVEL=${JSON.stringify(raw)} is not one of ${CPU_LEVELS.join(', ')}` };
}

/**
 * Picks the level to load: the highest built level that this CPU runs and the
 * cap allows. `built` is ordered lowest first and starts with the baseline.
 */
export function chooseCpuLevel(built: readonly string[], supported: readonly string[], cap?: CpuLevel): { level: string; why: string } {
  const rank = (l: string) => CPU_LEVELS.indexOf(l as CpuLevel);
  // The baseline is running already; the others need the CPU's word.
  const usable = [built[0]!, ...built.slice(1).filter((l) => supported.includes(l))];
  const allowed = cap ? usable.filter((l) => rank(l) < 0 || rank(l) <= rank(cap)) : usable;
  const level = allowed[allowed.length - 1] ?? built[0]!;
  if (rank(level) < 0) return { level, why: level === 'native' ? 'a -march=native build (one level)' : 'one build for this architecture' };
  const best = usable[usable.length - 1]!;
  let why = `the highest built level this CPU runs (built: ${built.join(', ')}; CPU runs: ${supported.join(', ') || 'unknown'})`;
  if (cap && level !== best) why = `capped by HISTOFLOW_CPU_LEVEL=${cap} (this CPU would run ${best})`;
  else if (cap && rank(cap) > rank(level)) why = `HISTOFLOW_CPU_LEVEL=${cap} asks for more than ${supported.includes(cap) ? 'was built' : 'this CPU runs'}; ${why}`;
  return { level, why };
}

export function loadAddon(): AddonState {
  if (state) return state;
  if (process.env.HISTOFLOW_DISABLE_ADDON === '1') {
    return (state = { ok: false, reason: 'the native addon is disabled by HISTOFLOW_DISABLE_ADDON=1' });
  }
  const cap = cpuCap();
  if (typeof cap === 'object') return (state = { ok: false, reason: `${cap.error}: unset it or give one of those` });
  const root = packageRoot();
  const require = createRequire(import.meta.url);
  const paths = candidates(root);
  const found = paths.find((p) => existsSync(p));
  if (!found) {
    const log = join(root, 'build', 'histoflow-build.log');
    const why = existsSync(log)
      ? `the native build failed (see ${log})`
      : 'the native addon was never built';
    return (state = {
      ok: false,
      reason:
        `histoflow.node not found (looked in ${paths.join(', ')}): ${why}. ` +
        'Fix: install cmake ≥ 3.18 and a C++17 compiler (apt install cmake g++), then run `npm run build` in the histoflow package.',
    });
  }
  let base: NativeAddon;
  try {
    base = require(found) as NativeAddon;
  } catch (e) {
    return (state = { ok: false, reason: `histoflow.node at ${loadFailure(found, e)}` });
  }
  const abi = base.buildInfo().nodeModuleVersion;
  if (abi !== undefined && String(abi) !== process.versions.modules) {
    return (state = {
      ok: false,
      reason: `histoflow.node at ${found} was built for Node ABI ${abi} (it holds V8 backing stores), this Node ${process.version} ` +
        `is ABI ${process.versions.modules}. Fix: rebuild it with \`npm run build\`.`,
    });
  }
  const baseLevel = base.buildInfo().cpuLevel ?? 'unknown';
  const supported = base.cpuLevels?.() ?? [];
  // Only a portable build (a v2 baseline) has level files beside it;
  // HISTOFLOW_ADDON names one file: no dispatch.
  const fileOf = (l: string) => (l === baseLevel ? found : join(dirname(found), `histoflow-${l}.node`));
  const built = process.env.HISTOFLOW_ADDON || baseLevel !== 'v2'
    ? [baseLevel]
    : [baseLevel, ...CPU_LEVELS.filter((l) => l !== baseLevel && existsSync(fileOf(l)))];
  const choice = chooseCpuLevel(built, supported, cap);
  let addon = base, path = found, why = choice.why, level = baseLevel;
  if (choice.level !== baseLevel) {
    try {
      const variant = require(fileOf(choice.level)) as NativeAddon;
      const b = variant.buildInfo(), bb = base.buildInfo();
      if (b.cpuLevel !== choice.level || b.version !== bb.version || b.compiler !== bb.compiler) {
        why = `the baseline, since ${fileOf(choice.level)} is left from another build (level ${String(b.cpuLevel)}, version ${String(b.version)}); rebuild with \`npm run build\``;
      } else {
        addon = variant;
        path = fileOf(choice.level);
        level = choice.level;
      }
    } catch (e) {
      why = `the baseline, since ${loadFailure(fileOf(choice.level), e)}`;
    }
  }
  return (state = { ok: true, addon, path, cpu: { level, supported, built, ...(cap ? { cap } : {}), why } });
}

/** The addon, or an Error that explains why it is unavailable. */
export function requireAddon(): NativeAddon {
  const s = loadAddon();
  if (!s.ok) {
    const err = new Error(s.reason) as Error & { code?: string };
    err.code = 'HISTOFLOW_NO_ADDON';
    throw err;
  }
  return s.addon;
}
