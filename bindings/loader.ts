/**
 * Loads histoflow.node once and, when it cannot, says why in one message with
 * the fix. Nothing here throws on import: callers ask `loadAddon()` and decide
 * (the gpujs and js backends work without the addon).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { NativeAddon } from './binding.js';

export type AddonState = { ok: true; addon: NativeAddon; path: string } | { ok: false; reason: string };

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

export function loadAddon(): AddonState {
  if (state) return state;
  if (process.env.HISTOFLOW_DISABLE_ADDON === '1') {
    return (state = { ok: false, reason: 'the native addon is disabled by HISTOFLOW_DISABLE_ADDON=1' });
  }
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
  try {
    const addon = require(found) as NativeAddon;
    return (state = { ok: true, addon, path: found });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    let fix = 'rebuild it with `npm run build`';
    if (/NODE_MODULE_VERSION|was compiled against a different Node\.js version/.test(message)) {
      fix = 'it was built for another Node.js version: rebuild it with `npm run build`';
    } else if (/cannot open shared object file|Library not loaded|image not found/.test(message)) {
      const lib = /([\w.+-]+\.so[\d.]*)/.exec(message)?.[1] ?? 'a shared library';
      fix = `${lib} is missing at run time: install it (e.g. apt install libopenslide0 / libdnnl2) or rebuild with \`npm run build\``;
    }
    return (state = { ok: false, reason: `histoflow.node at ${found} failed to load: ${message}. Fix: ${fix}.` });
  }
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
