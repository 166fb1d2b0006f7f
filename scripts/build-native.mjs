#!/usr/bin/env node
// Builds the addon (histoflow.node and its CPU-level variants) with cmake-js during `npm ci` / `npm install`.
// A failed native build must not fail the install: the gpujs and js backends
// still work, and `histoflow info` / the loader explain what went wrong. With
// --strict (npm run build, CI) a failure is fatal.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict') || process.env.HISTOFLOW_STRICT_BUILD === '1';
const extra = (process.env.HISTOFLOW_CMAKE_ARGS ?? '').split(/\s+/).filter(Boolean);
const logFile = join(root, 'build', 'histoflow-build.log');

if (process.env.HISTOFLOW_SKIP_NATIVE === '1') {
  console.log('histoflow: HISTOFLOW_SKIP_NATIVE=1, not building the native addon');
  process.exit(0);
}

const require = createRequire(import.meta.url);
let cmakeJs;
try {
  cmakeJs = require.resolve('cmake-js/bin/cmake-js');
} catch {
  console.warn('histoflow: cmake-js is not installed; skipping the native build');
  process.exit(strict ? 1 : 0);
}
const version = require(join(root, 'package.json')).version;
const args = [cmakeJs, 'compile', '--out', 'build', `--CDHISTOFLOW_VERSION=${version}`, '--CDHISTOFLOW_TESTS=OFF',
  `--CDHISTOFLOW_NODE_EXECUTABLE=${process.execPath}`,
  ...extra.map((a) => (a.startsWith('-D') ? `--CD${a.slice(2)}` : a))];
console.log('histoflow: building the native addon (cmake-js compile) ...');
const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
mkdirSync(join(root, 'build'), { recursive: true });
writeFileSync(logFile, `${r.stdout ?? ''}\n${r.stderr ?? ''}`);
const found = `${r.stdout ?? ''}`.split('\n').filter((l) => l.includes('histoflow:'));
for (const line of found) console.log(line.replace(/^.*?histoflow:/, 'histoflow:'));
if (r.status !== 0) {
  const tail = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n').slice(-25).join('\n');
  console.warn(`${tail}\n\nhistoflow: the native addon did not build (full log: ${logFile}).\n` +
    'histoflow will run on its gpujs/js backends; `npx histoflow info` explains what is missing.');
  process.exit(strict ? 1 : 0);
}
const files = readdirSync(join(root, 'build', 'Release')).filter((f) => /^histoflow(-v\d)?\.node$/.test(f)).sort();
console.log(`histoflow: native addon built: build/Release/{${files.join(', ')}}`);
