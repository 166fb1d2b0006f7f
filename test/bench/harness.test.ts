/**
 * The benchmark harness's verdicts: a case that fails — it throws, or its
 * output is further from the peer's than the case's stated tolerance — makes
 * `histoflow bench` exit 1 and say which; and every report records the
 * machine it ran on (CPU model, ISA level).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { loadAddon } from '../../bindings/loader.js';
import { collectEnvironment, isaLevel, renderMarkdown, type BenchReport } from '../../src/bench/harness.js';
import { histoflow } from '../support/helpers.js';

const SYNTHETIC = join(dirname(fileURLToPath(import.meta.url)), 'synthetic_bench.js');

function bench(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SYNTHETIC, ...args], { maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

test('an output beyond its case\'s stated tolerance makes bench exit 1, naming the case, the measure and the bound', async (t) => {
  const r = await bench('beyond-tolerance', '--json');
  t.is(r.code, 1);
  t.regex(r.stderr, /1 case failed/);
  t.regex(r.stderr, /beyond-tolerance synthetic-case cpu: out of tolerance: output differs from peer:fake: max \|Δ\| \(8-bit levels\) 3 > tolerance 2/);
  const report = JSON.parse(r.stdout) as BenchReport;
  t.deepEqual(report.failures.map((f) => [f.case, f.backend, f.kind]), [['synthetic-case', 'cpu', 'tolerance']]);
  t.deepEqual(report.checks.map((c) => [c.value, c.tolerance, c.pass]), [[3, 2, false]]);
});

test('an output exactly at its tolerance passes and bench exits 0', async (t) => {
  const r = await bench('at-tolerance', '--json');
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  const report = JSON.parse(r.stdout) as BenchReport;
  t.deepEqual(report.failures, []);
  t.deepEqual(report.checks.map((c) => c.pass), [true]);
});

test('a comparison that measured NaN counts as out of tolerance', async (t) => {
  const r = await bench('nan-difference', '--json');
  t.is(r.code, 1);
  t.regex(r.stderr, /nan-difference synthetic-case cpu: out of tolerance: .*NaN > tolerance 1/);
});

test('a case that throws makes bench exit 1, naming the case, the backend and the error', async (t) => {
  const r = await bench('case-throws');
  t.is(r.code, 1);
  t.regex(r.stderr, /case-throws synthetic-case cuda: failed: synthetic kernel exploded/);
  // the markdown report lists it too, under failures
  t.regex(r.stdout, /## failures\n\n- case-throws synthetic-case cuda: failed: synthetic kernel exploded/);
});

test('a suite that throws makes bench exit 1 and the other suites still run', async (t) => {
  const r = await bench('suite-throws', 'at-tolerance', '--json');
  t.is(r.code, 1);
  t.regex(r.stderr, /suite-throws \* \*: failed: synthetic inputs missing/);
  const report = JSON.parse(r.stdout) as BenchReport;
  t.true(report.results.some((x) => x.suite === 'at-tolerance'), 'the suite after the throwing one ran');
});

test('every failure is listed when several suites fail, and the count says how many', async (t) => {
  const r = await bench('beyond-tolerance', 'case-throws', 'at-tolerance');
  t.is(r.code, 1);
  t.regex(r.stderr, /2 cases failed/);
  t.regex(r.stderr, /beyond-tolerance synthetic-case cpu/);
  t.regex(r.stderr, /case-throws synthetic-case cuda/);
  t.notRegex(r.stderr, /at-tolerance synthetic-case/);
});

test('the markdown report shows each asserted comparison with its verdict, pipes escaped', async (t) => {
  const r = await bench('beyond-tolerance', 'at-tolerance');
  t.regex(r.stdout, /\| beyond-tolerance \| synthetic-case \| cpu \| peer:fake \| max \\\|Δ\\\| \(8-bit levels\) \| 3 \| 2 \| \*\*FAIL\*\* \|/);
  t.regex(r.stdout, /\| at-tolerance \| synthetic-case \| cpu \| peer:fake \| max \\\|Δ\\\| \(8-bit levels\) \| 2 \| 2 \| pass \|/);
  // the best peer is the reference column
  t.regex(r.stdout, /\| synthetic-case \| cpu \| — \| 100 \| MP\/s \| 10\.0 \| 20\.0 \| 1 \| 2\.00x \|/);
});

test('a missed speed target is measured against the best peer configuration and reported, not an exit status', async (t) => {
  const r = await bench('missed-target', '--json');
  t.is(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as BenchReport;
  t.is(report.targets.length, 1);
  const [target] = report.targets;
  t.is(target!.reference, 'peer:fake-fast', 'the faster of the two peers');
  t.is(target!.ratio, 100 / 80);
  t.is(target!.met, false);
});

test('the environment record names the CPU model, its core count and its ISA level', (t) => {
  const env = collectEnvironment();
  let cpuinfo: string | null = null;
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    // not Linux: the model comes from os.cpus()
  }
  if (cpuinfo) {
    t.is(env.cpu, cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1]?.trim() ?? '');
    const flags = cpuinfo.match(/^flags\s*:\s*(.*)$/m)?.[1]?.split(/\s+/) ?? [];
    t.is(env.isa.level, isaLevel(flags));
    if (flags.includes('avx2')) t.true(env.isa.flags.includes('avx2'));
    if (flags.includes('avx512f')) t.true(env.isa.flags.includes('avx512f'));
  }
  t.true(env.cpu.length > 0 && env.cpu !== 'unknown');
  t.true(env.cores >= 1);
  t.true(['AVX-512', 'AVX2', 'AVX', 'SSE4.2', 'baseline', 'unknown'].includes(env.isa.level), env.isa.level);
  const s = loadAddon();
  t.is(env.isa.addonLevel, s.ok ? s.cpu.level : null);
});

test('the ISA level is the highest complete set of flags', (t) => {
  t.is(isaLevel(['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512dq', 'avx512vl']), 'AVX-512');
  t.is(isaLevel(['sse4_2', 'avx', 'avx2', 'fma', 'avx512f']), 'AVX2', 'avx512f alone is not x86-64-v4');
  t.is(isaLevel(['sse4_2', 'avx', 'avx2']), 'AVX', 'AVX2 without FMA is not x86-64-v3');
  t.is(isaLevel(['sse4_2']), 'SSE4.2');
  t.is(isaLevel([]), 'baseline');
});

test('the markdown report\'s machine line states the CPU model and ISA level', (t) => {
  const env = collectEnvironment();
  const md = renderMarkdown({ env, results: [], failures: [], checks: [], targets: [], tables: [], notes: [] });
  t.true(md.includes(`- machine: ${env.cpu}, ${env.cores} cores, ISA ${env.isa.level}`), md.split('\n')[2]);
});

test('bench stain --quick asserts its outputs against the numpy peer and exits 0 when they agree', async (t) => {
  const r = await histoflow('bench', 'stain', '--quick', '--json');
  const report = JSON.parse(r.stdout) as BenchReport;
  t.is(r.code, report.failures.length ? 1 : 0, r.stderr);
  t.truthy(report.env.isa.level);
  if (cpus().length > 1 && loadAddon().ok) {
    // the single-threaded peers get a same-threads counterpart: native cpu pinned to one thread
    t.true(report.results.some((x) => x.case === 'macenko-96' && x.backend === 'cpu:1t' && x.extra?.threads === 1));
  }
  if (String(report.env['peer:numpy']).startsWith('not run')) {
    t.log(`peer:numpy not run here: ${String(report.env['peer:numpy'])}`);
    return;
  }
  const checks = report.checks.filter((c) => c.case === 'macenko-96' && c.backend === 'cpu' && c.reference === 'peer:numpy');
  t.is(checks.length, 2, 'max difference and fraction of differing bytes');
  for (const c of checks) t.true(c.pass, `${c.what} ${c.value} ≤ ${c.tolerance}`);
  t.is(r.code, 0, r.stderr);
});
