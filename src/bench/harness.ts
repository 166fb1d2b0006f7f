/**
 * The benchmark harness: every suite measures completion the same way.
 *
 * `measure` times an async operation until its Promise settles with the output
 * in host memory (the native AsyncWorker has finished and, on CUDA, copied the
 * result back, so the device is synchronized). The first run is timed and
 * reported apart (JIT, lazy initialization, first allocations); then `warmup`
 * untimed runs; then timed repeats, summarized by their median. Slow
 * operations are bounded by time (`maxTimeMs`) rather than by count, so one
 * slow backend cannot stall a whole suite, but there is always at least one
 * timed repeat after the first run.
 *
 * Results are plain rows `{ suite, case, backend, value, unit }`; peers (other
 * tools on identical inputs) are rows with `backend: 'peer:<name>'`. A backend
 * that throws is recorded as a failure of its case, never fatal to the run; so
 * is an output that differs from a peer's by more than the case's stated
 * tolerance (`ctx.check`). A report with any failure makes `histoflow bench`
 * exit with status 1 (`exitStatus`), naming each.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { arch, cpus, freemem, loadavg, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { loadAddon, packageRoot, type CpuDispatch } from '../../bindings/loader.js';

export interface MeasureOptions {
  /** Untimed runs after the first run. */
  warmup?: number;
  /** Timed runs wanted (at least one is always made). */
  repeats?: number;
  /** Keep repeating (beyond `repeats`, up to `maxRepeats`) until the timed runs add up to this. */
  minTimeMs?: number;
  /** Stop warming up and repeating once the whole measurement has taken this long (after ≥ 1 timed run). */
  maxTimeMs?: number;
  maxRepeats?: number;
  /**
   * When the first run alone takes longer than this, stop there: the result is
   * that run (median = first, repeats 0). For operations too slow to repeat
   * within a suite's time budget; the report says 'cold only'.
   */
  coldOnlyOverMs?: number;
}

export interface Measurement {
  /** Seconds of the first (cold) run, not part of the median. */
  first: number;
  median: number;
  min: number;
  /** How many timed runs the median is of (0: too slow to repeat, the median is the first run). */
  repeats: number;
  samples: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Times `fn` (seconds): first run apart, warm-up, repeats, median. */
export async function measure(fn: () => Promise<unknown> | unknown, options: MeasureOptions = {}): Promise<Measurement> {
  const warmup = Math.max(0, options.warmup ?? 1);
  const repeats = Math.max(1, options.repeats ?? 5);
  const minTimeMs = options.minTimeMs ?? 0;
  const maxTimeMs = options.maxTimeMs ?? Infinity;
  const maxRepeats = Math.max(repeats, options.maxRepeats ?? 100);
  const start = performance.now();
  const timeOnce = async (): Promise<number> => {
    const t0 = performance.now();
    await fn();
    return (performance.now() - t0) / 1000;
  };

  const first = await timeOnce();
  if (options.coldOnlyOverMs !== undefined && first * 1000 > options.coldOnlyOverMs) {
    return { first, median: first, min: first, repeats: 0, samples: [] };
  }
  for (let i = 0; i < warmup && performance.now() - start < maxTimeMs; i++) await fn();
  const samples: number[] = [];
  let timed = 0;
  while (samples.length < maxRepeats) {
    if (samples.length >= repeats && timed * 1000 >= minTimeMs) break;
    if (samples.length >= 1 && performance.now() - start >= maxTimeMs) break;
    const s = await timeOnce();
    samples.push(s);
    timed += s;
  }
  return { first, median: median(samples), min: Math.min(...samples), repeats: samples.length, samples };
}

export interface BenchResult {
  suite: string;
  case: string;
  /** A kernel backend ('cuda', 'cpu', 'gpujs', 'js') or a peer ('peer:numpy'). */
  backend: string;
  value: number;
  unit: string;
  extra?: Record<string, unknown>;
}

export interface BenchFailure {
  suite: string;
  case: string;
  backend: string;
  /** 'error': the case threw; 'tolerance': its output differed from the reference by more than the stated tolerance. */
  kind: 'error' | 'tolerance';
  error: string;
}

/** One asserted comparison of an output with a reference's (a peer's, or the same network's shape). */
export interface BenchCheck {
  suite: string;
  case: string;
  backend: string;
  /** What the output was compared with ('peer:numpy', …). */
  reference: string;
  /** What was measured ('max |Δ| (8-bit levels)', 'fraction of bytes differing', …). */
  what: string;
  value: number;
  /** The case's stated bound: the check passes when value ≤ tolerance. */
  tolerance: number;
  pass: boolean;
}

/** A table a suite lays out itself (the train suite's summary), rendered after its rows. */
export interface BenchTable {
  suite: string;
  title: string;
  header: string[];
  rows: string[][];
}

/** A target's reference meaning "the best peer configuration of the case in this run". */
export const BEST_PEER = 'peer:best';

/** A claim the project makes: `backend` on `case` is at least `atLeast` times `reference`. */
export interface BenchTarget {
  suite: string;
  case: string;
  backend: string;
  reference: string;
  atLeast: number;
  /** value(backend) / value(reference) for throughput units; inverted for times. null when either is missing. */
  ratio: number | null;
  met: boolean | null;
}

/** The instruction-set level of the machine, from /proc/cpuinfo's flags (x86-64). */
export interface IsaRecord {
  /** The highest of 'AVX-512', 'AVX2', 'AVX', 'SSE4.2', or 'baseline' (none of these), or 'unknown' (no flags readable). */
  level: string;
  /** The SIMD-relevant flags present (sse4_2, avx, avx2, fma, avx512*, amx*). */
  flags: string[];
  /** The addon file loaded for this CPU ('v2' | 'v3' | 'v4' | 'native' | 'base'), null when the addon did not load. */
  addonLevel: string | null;
  /** What the loaded addon was compiled with (`buildInfo().simd`), null when unknown. */
  addonSimd: string | null;
}

export interface BenchEnvironment {
  date: string;
  node: string;
  v8: string;
  os: string;
  arch: string;
  /** The CPU model (/proc/cpuinfo 'model name', else os.cpus()). */
  cpu: string;
  cores: number;
  isa: IsaRecord;
  memoryGiB: number;
  freeMemoryGiB: number;
  /** 1, 5 and 15 minute load averages when the run started: above the core count, timings are contended. */
  loadAverage: number[];
  histoflow: {
    version: string | null;
    addon: { ok: true; path: string; build: unknown; threads: number | null; cpuLevel?: CpuDispatch } | { ok: false; reason: string };
    gitCommit: string | null;
    gitDirty: boolean | null;
  };
  /** The same when the run ended. */
  loadAverageAfter?: number[];
  /** Suite-specific facts (backend availability, peer versions, inputs). */
  [key: string]: unknown;
}

export interface BenchReport {
  env: BenchEnvironment;
  results: BenchResult[];
  failures: BenchFailure[];
  checks: BenchCheck[];
  targets: BenchTarget[];
  tables: BenchTable[];
  notes: string[];
}

export interface BenchOptions {
  /** Smaller inputs and fewer repeats (tests, smoke runs). */
  quick: boolean;
  /** Overrides every case's repeat count. */
  repeats?: number;
  json: boolean;
}

export interface SuiteContext {
  readonly suite: string;
  readonly options: BenchOptions;
  record(caseName: string, backend: string, value: number, unit: string, extra?: Record<string, unknown>): void;
  fail(caseName: string, backend: string, error: unknown): void;
  /**
   * Asserts that `backend`'s output on `caseName` is within `tolerance` of
   * `reference`'s (value ≤ tolerance; NaN fails). A miss is a failure of the
   * case, named in the report and in the exit status. Returns whether it passed.
   */
  check(caseName: string, backend: string, reference: string, what: string, value: number, tolerance: number): boolean;
  /** A summary table of the suite's own layout (rendered after its rows; in the JSON's tables). */
  table(title: string, header: string[], rows: string[][]): void;
  /** Declares a ratio the project promises, evaluated once all results are in (reference BEST_PEER: the case's best peer). */
  target(caseName: string, backend: string, reference: string, atLeast: number): void;
  /** A fact about the environment this suite found (recorded under env[key]). */
  environment(key: string, value: unknown): void;
  /** A line for the report (printed under the table; in the JSON's notes). */
  note(message: string): void;
  /** Progress on stderr; silent with --json. */
  log(message: string): void;
}

export interface Suite {
  name: string;
  description: string;
  run(ctx: SuiteContext): Promise<void>;
}

/** The CPU model and flags from /proc/cpuinfo (Linux), or null where it cannot be read. */
function procCpuinfo(): { model: string | null; flags: string[] } | null {
  let text: string;
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
  const field = (name: string) => text.match(new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm'))?.[1]?.trim() ?? null;
  return { model: field('model name'), flags: (field('flags') ?? '').split(/\s+/).filter(Boolean) };
}

const SIMD_FLAG = /^(sse4_2|avx|avx2|fma|f16c|avx512.*|avx_vnni|amx.*)$/;

/** The highest SIMD level a flag list shows (AVX-512 means the F, BW, DQ, VL set x86-64-v4 needs). */
export function isaLevel(flags: readonly string[]): string {
  const has = (f: string) => flags.includes(f);
  if (['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every(has)) return 'AVX-512';
  if (has('avx2') && has('fma')) return 'AVX2';
  if (has('avx')) return 'AVX';
  if (has('sse4_2')) return 'SSE4.2';
  return 'baseline';
}

function gitInfo(root: string): { commit: string | null; dirty: boolean | null } {
  const git = (args: string[]): string | null => {
    try {
      return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    } catch {
      return null;
    }
  };
  const commit = git(['rev-parse', 'HEAD']);
  if (commit === null) return { commit: null, dirty: null };
  const status = git(['status', '--porcelain', '--untracked-files=no']);
  return { commit, dirty: status === null ? null : status.length > 0 };
}

/** Where and on what the benchmark ran. */
export function collectEnvironment(): BenchEnvironment {
  const root = packageRoot();
  let version: string | null = null;
  try {
    version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string }).version ?? null;
  } catch {
    // not fatal: a report without the version still says everything else
  }
  const s = loadAddon();
  let addon: BenchEnvironment['histoflow']['addon'];
  if (s.ok) {
    let build: unknown = null;
    let threads: number | null = null;
    try {
      build = s.addon.buildInfo();
      threads = s.addon.getThreads();
    } catch (e) {
      build = { error: e instanceof Error ? e.message : String(e) };
    }
    addon = { ok: true, path: s.path, build, threads, cpuLevel: s.cpu };
  } else {
    addon = { ok: false, reason: s.reason };
  }
  const { commit, dirty } = gitInfo(root);
  const cpuList = cpus();
  const proc = procCpuinfo();
  const simd = addon.ok && addon.build && typeof addon.build === 'object' ? (addon.build as { simd?: unknown }).simd : undefined;
  const isa: IsaRecord = {
    level: proc && proc.flags.length ? isaLevel(proc.flags) : 'unknown',
    flags: proc ? proc.flags.filter((f) => SIMD_FLAG.test(f)) : [],
    addonLevel: addon.ok ? (addon.cpuLevel?.level ?? null) : null,
    addonSimd: typeof simd === 'string' ? simd : null,
  };
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    os: `${platform()} ${release()}`,
    arch: arch(),
    cpu: proc?.model ?? cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
    isa,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    freeMemoryGiB: Math.round((freemem() / 2 ** 30) * 10) / 10,
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    histoflow: { version, addon, gitCommit: commit, gitDirty: dirty },
  };
}

function errorLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.split('\n')[0]!.slice(0, 300);
}

/** Runs suites in order and collects one report. */
export async function runSuites(suites: Suite[], options: BenchOptions, log: (line: string) => void): Promise<BenchReport> {
  const report: BenchReport = { env: collectEnvironment(), results: [], failures: [], checks: [], targets: [], tables: [], notes: [] };
  const pendingTargets: Omit<BenchTarget, 'ratio' | 'met'>[] = [];
  for (const suite of suites) {
    const ctx: SuiteContext = {
      suite: suite.name,
      options,
      record(caseName, backend, value, unit, extra) {
        report.results.push({ suite: suite.name, case: caseName, backend, value, unit, ...(extra ? { extra } : {}) });
      },
      fail(caseName, backend, error) {
        report.failures.push({ suite: suite.name, case: caseName, backend, kind: 'error', error: errorLine(error) });
      },
      check(caseName, backend, reference, what, value, tolerance) {
        if (typeof value !== 'number') throw new TypeError(`Expected a number for value but received ${typeof value}`);
        if (typeof tolerance !== 'number' || !(tolerance >= 0)) throw new RangeError(`Expected a number ≥ 0 for tolerance but received ${String(tolerance)}`);
        const pass = value <= tolerance;
        report.checks.push({ suite: suite.name, case: caseName, backend, reference, what, value, tolerance, pass });
        if (!pass) {
          report.failures.push({
            suite: suite.name,
            case: caseName,
            backend,
            kind: 'tolerance',
            error: `output differs from ${reference}: ${what} ${fmtExact(value)} > tolerance ${fmtExact(tolerance)}`,
          });
        }
        return pass;
      },
      table(title, header, rows) {
        report.tables.push({ suite: suite.name, title, header, rows });
      },
      target(caseName, backend, reference, atLeast) {
        pendingTargets.push({ suite: suite.name, case: caseName, backend, reference, atLeast });
      },
      environment(key, value) {
        report.env[key] = value;
      },
      note(message) {
        report.notes.push(message);
      },
      log: options.json ? () => {} : log,
    };
    try {
      await suite.run(ctx);
    } catch (e) {
      // a suite that cannot even prepare its inputs is reported, like a backend that throws
      ctx.fail('*', '*', e);
    }
  }
  report.env.loadAverageAfter = loadavg().map((x) => Math.round(x * 100) / 100);
  for (const t of pendingTargets) {
    // 'peer:best' is whichever peer configuration did best on the case in this run
    const reference = t.reference === BEST_PEER ? (bestPeer(report.results, t.suite, t.case)?.backend ?? BEST_PEER) : t.reference;
    const ratio = ratioOf(report.results, t.suite, t.case, t.backend, reference);
    report.targets.push({ ...t, reference, ratio, met: ratio === null ? null : ratio >= t.atLeast });
  }
  return report;
}

/** 0 when every case ran and every asserted comparison held, 1 otherwise. */
export function exitStatus(report: BenchReport): 0 | 1 {
  return report.failures.length ? 1 : 0;
}

/** One line per failed case, saying which and why (what `histoflow bench` prints on stderr before exiting 1). */
export function failureLines(report: BenchReport): string[] {
  return report.failures.map((f) => `${f.suite} ${f.case} ${f.backend}: ${f.kind === 'tolerance' ? 'out of tolerance' : 'failed'}: ${f.error}`);
}

/** Throughput units (higher is better) end in '/s'; anything else is a time (lower is better). */
function higherIsBetter(unit: string): boolean {
  return unit.endsWith('/s');
}

function ratioOf(results: BenchResult[], suite: string, caseName: string, backend: string, reference: string): number | null {
  const find = (b: string) => results.find((r) => r.suite === suite && r.case === caseName && r.backend === b);
  const a = find(backend);
  const ref = find(reference);
  if (!a || !ref || a.unit !== ref.unit || !(a.value > 0) || !(ref.value > 0)) return null;
  return higherIsBetter(a.unit) ? a.value / ref.value : ref.value / a.value;
}

/** One JSON object: { env, results, failures, targets, notes }. */
export function renderJson(report: BenchReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(3);
}

/** Enough digits to show why a value missed its bound (1.0004 vs 1). */
function fmtExact(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(6))) : String(x);
}

function fmtRatio(r: number | null): string {
  return r === null ? '—' : `${fmt(r)}x`;
}

function fmtMs(seconds: unknown): string {
  return typeof seconds === 'number' ? fmt(seconds * 1000) : '—';
}

/** A markdown table cell: a '|' inside would end it. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The best (highest throughput, or shortest time) peer row of a case, or null when no peer ran it. */
function bestPeer(results: BenchResult[], suite: string, caseName: string): BenchResult | null {
  let best: BenchResult | null = null;
  for (const r of results) {
    if (r.suite !== suite || r.case !== caseName || !r.backend.startsWith('peer:') || !(r.value > 0)) continue;
    if (!best || (higherIsBetter(r.unit) ? r.value > best.value : r.value < best.value)) best = r;
  }
  return best;
}

/**
 * Markdown: the environment in a few lines (the machine: CPU model, cores,
 * ISA level), then one row per result with its median and first-run times,
 * its speedup against the case's reference backend and against the case's
 * best peer (every peer configuration is a row of its own), the suites' own
 * summary tables, the asserted comparisons, failures, and the targets with
 * their verdicts.
 */
export function renderMarkdown(report: BenchReport, options: { reference?: string } = {}): string {
  const reference = options.reference ?? 'js';
  const e = report.env;
  const addon = e.histoflow.addon;
  const build = addon.ok && addon.build && typeof addon.build === 'object' ? (addon.build as Record<string, unknown>) : null;
  const lines: string[] = [];
  lines.push(`# histoflow bench — ${e.date}`);
  lines.push('');
  lines.push(
    `- machine: ${e.cpu}, ${e.cores} cores, ISA ${e.isa.level}${e.isa.flags.length ? ` (${e.isa.flags.join(' ')})` : ''}, ${e.memoryGiB} GiB; ${e.os} ${e.arch}; Node ${e.node}; load ${e.loadAverage.join(' ')}${
      e.loadAverageAfter ? ` → ${e.loadAverageAfter.join(' ')}` : ''
    }${Math.max(e.loadAverage[0] ?? 0, e.loadAverageAfter?.[0] ?? 0) > e.cores ? ' (busy machine: timings are contended)' : ''}`,
  );
  lines.push(
    `- histoflow ${e.histoflow.version ?? '?'}${e.histoflow.gitCommit ? ` @ ${e.histoflow.gitCommit.slice(0, 10)}${e.histoflow.gitDirty ? ' (modified)' : ''}` : ' (no git commit)'}; addon: ${
      addon.ok
        ? `${addon.cpuLevel ? `cpu level ${addon.cpuLevel.level} (${addon.cpuLevel.why}), ` : ''}${build ? `simd ${String(build.simd)}, openmp ${String(build.openmp)}, cuda ${String(build.cuda)}, ${String(build.compiler)}` : 'loaded'}${addon.threads ? `, ${addon.threads} threads` : ''}`
        : `not loaded (${addon.reason.slice(0, 160)})`
    }`,
  );
  for (const [k, v] of Object.entries(e)) {
    if (['date', 'node', 'v8', 'os', 'arch', 'cpu', 'cores', 'isa', 'memoryGiB', 'freeMemoryGiB', 'loadAverage', 'loadAverageAfter', 'histoflow'].includes(k)) continue;
    // long explanations (why a backend is unavailable) stay whole in the JSON
    const short = (x: unknown) => (typeof x === 'string' && x.length > 110 ? `${x.slice(0, 109)}…` : x);
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      lines.push(`- ${k}: ${Object.entries(v).map(([kk, vv]) => `${kk} ${String(short(typeof vv === 'object' && vv !== null ? JSON.stringify(vv) : vv))}`).join('; ')}`);
    } else {
      lines.push(`- ${k}: ${String(short(typeof v === 'string' ? v : JSON.stringify(v)))}`);
    }
  }
  lines.push('');

  const suites = [...new Set([...report.results.map((r) => r.suite), ...report.tables.map((t) => t.suite)])];
  for (const suite of suites) {
    const rows = report.results.filter((r) => r.suite === suite);
    lines.push(`## ${suite}`);
    lines.push('');
    if (rows.length) {
      const hasPeers = rows.some((r) => r.backend.startsWith('peer:'));
      const hasReference = rows.some((r) => r.backend === reference);
      const header = ['case', 'backend', 'input', 'value', 'unit', 'median ms', 'first ms', 'runs', ...(hasReference ? [`vs ${reference}`] : []), ...(hasPeers ? ['vs best peer'] : [])];
      lines.push(`| ${header.join(' | ')} |`);
      lines.push(`| ${header.map((h, i) => (i < 3 || h === 'unit' ? '---' : '---:')).join(' | ')} |`);
      for (const r of rows) {
        const x = r.extra ?? {};
        const best = hasPeers ? bestPeer(report.results, suite, r.case) : null;
        const cells = [
          r.case,
          r.backend,
          typeof x.input === 'string' ? x.input : '—',
          fmt(r.value),
          r.unit,
          fmtMs(x.median_s),
          fmtMs(x.first_s),
          typeof x.repeats === 'number' ? (x.repeats === 0 ? 'cold only' : String(x.repeats)) : '—',
          ...(hasReference ? [r.backend === reference ? '1x' : fmtRatio(ratioOf(report.results, suite, r.case, r.backend, reference))] : []),
          ...(hasPeers ? [!best ? '—' : r.backend === best.backend ? '1x (best)' : fmtRatio(ratioOf(report.results, suite, r.case, r.backend, best.backend))] : []),
        ];
        lines.push(`| ${cells.map(cell).join(' | ')} |`);
      }
      lines.push('');
      // the speedup line per case: every backend against the case's best peer (every peer is a row above)
      for (const c of [...new Set(rows.map((r) => r.case))]) {
        const best = bestPeer(report.results, suite, c);
        if (!best) continue;
        const parts = rows
          .filter((r) => r.case === c && !r.backend.startsWith('peer:'))
          .map((r) => ({ b: r.backend, x: ratioOf(report.results, suite, c, r.backend, best.backend) }))
          .filter((o) => o.x !== null)
          .map((o) => `${o.b} ${fmtRatio(o.x)}`);
        if (parts.length) lines.push(`- speedup vs best peer (${best.backend}), ${c}: ${parts.join(', ')}`);
      }
      if (rows.some((r) => r.backend.startsWith('peer:'))) lines.push('');
    }
    for (const t of report.tables.filter((x) => x.suite === suite)) {
      lines.push(`### ${t.title}`);
      lines.push('');
      lines.push(`| ${t.header.join(' | ')} |`);
      lines.push(`| ${t.header.map(() => '---').join(' | ')} |`);
      for (const row of t.rows) lines.push(`| ${row.map(cell).join(' | ')} |`);
      lines.push('');
    }
  }

  if (report.checks.length) {
    lines.push('## output checks (asserted)');
    lines.push('');
    lines.push('| suite | case | backend | vs | measure | value | tolerance | verdict |');
    lines.push('| --- | --- | --- | --- | --- | ---: | ---: | --- |');
    for (const c of report.checks) {
      const cells = [c.suite, c.case, c.backend, c.reference, c.what, fmtExact(c.value), fmtExact(c.tolerance), c.pass ? 'pass' : '**FAIL**'];
      lines.push(`| ${cells.map(cell).join(' | ')} |`);
    }
    lines.push('');
  }
  if (report.failures.length) {
    lines.push('## failures');
    lines.push('');
    for (const line of failureLines(report)) lines.push(`- ${line}`);
    lines.push('');
  }
  if (report.targets.length) {
    lines.push('## targets');
    lines.push('');
    for (const t of report.targets) {
      const verdict = t.met === null ? 'NOT MEASURED' : t.met ? 'MET' : 'NOT MET';
      lines.push(
        `- **${t.backend} ${t.case} = ${t.ratio === null ? '—' : `${fmt(t.ratio)}x`} ${t.reference}** (target ≥ ${t.atLeast}x): ${verdict}`,
      );
    }
    lines.push('');
  }
  for (const n of report.notes) lines.push(`- ${n}`);
  if (report.notes.length) lines.push('');
  return `${lines.join('\n')}\n`;
}
