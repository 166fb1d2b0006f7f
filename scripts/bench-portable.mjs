#!/usr/bin/env node
// The portable build against a -march=native build of the same checkout, on
// this machine: builds the native-arch addon into build-march/ (once), then
// runs `histoflow bench SUITES` with each, interleaved for ROUNDS rounds, and
// prints per case the best and the median of the rounds and their ratio.
// Usage: node scripts/bench-portable.mjs [--rounds 4] [--suites stain,augment,train]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '4' }, suites: { type: 'string', default: 'stain,augment,train' } } });
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new RangeError(`Expected an integer ≥ 1 for --rounds but received '${values.rounds}'`);
const suites = values.suites.split(',');
const march = join(root, 'build-march', 'Release', 'histoflow.node');
if (!existsSync(march)) {
  console.error('building the -march=native addon into build-march/ …');
  const cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
  const r = spawnSync(process.execPath, [cmakeJs, 'compile', '--out', 'build-march', '--CDHISTOFLOW_NATIVE_ARCH=ON',
    '--CDHISTOFLOW_TESTS=OFF', '--CDHISTOFLOW_CUDA=OFF', '--CDHISTOFLOW_VERSION=bench'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) process.exit(1);
}
const out = join(root, 'out', 'bench-portable');
mkdirSync(out, { recursive: true });
const runs = { portable: [], march: [] };
for (let i = 1; i <= rounds; i++) {
  for (const [name, env] of [['portable', {}], ['march', { HISTOFLOW_ADDON: march }]]) {
    const file = join(out, `${name}-${i}.json`);
    console.error(`round ${i}/${rounds}: ${name}`);
    const r = spawnSync(process.execPath, [join(root, 'dist', 'src', 'cli', 'main.js'), 'bench', ...suites, '--out', file],
      { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) process.exit(r.status ?? 1);
    runs[name].push(JSON.parse(readFileSync(file, 'utf8')));
  }
}
const key = (r) => `${r.suite} ${r.case} ${r.backend}`;
const collect = (list) => {
  const m = new Map();
  for (const j of list) for (const r of j.results) if (r.backend === 'cpu' || r.backend === 'native') (m.get(key(r)) ?? m.set(key(r), { unit: r.unit, v: [] }).get(key(r))).v.push(r.value);
  return m;
};
const median = (v) => { const s = [...v].sort((a, b) => a - b); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const p = collect(runs.portable), m = collect(runs.march);
const level = runs.portable[0].env.histoflow.addon.cpuLevel;
console.log(`portable: level ${level?.level} (${level?.why}); -march=native: build-march/; ${rounds} interleaved rounds; ${runs.portable[0].env.cpu}`);
console.log('| case | unit | portable best | native best | ratio | portable median | native median | ratio |');
console.log('|---|---|--:|--:|--:|--:|--:|--:|');
for (const [k, a] of p) {
  const b = m.get(k);
  if (!b) continue;
  const ba = Math.max(...a.v), bb = Math.max(...b.v), ma = median(a.v), mb = median(b.v);
  console.log(`| ${k} | ${a.unit} | ${ba.toFixed(1)} | ${bb.toFixed(1)} | ${(ba / bb).toFixed(3)} | ${ma.toFixed(1)} | ${mb.toFixed(1)} | ${(ma / mb).toFixed(3)} |`);
}
