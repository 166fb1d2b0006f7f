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
 * that throws is recorded as a failure of its case, never fatal.
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
  error: string;
}

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

export interface BenchEnvironment {
  date: string;
  node: string;
  v8: string;
  os: string;
  arch: string;
  cpu: string;
  cores: number;
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
  targets: BenchTarget[];
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
  /** Declares a ratio the project promises, evaluated once all results are in. */
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
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    os: `${platform()} ${release()}`,
    arch: arch(),
    cpu: cpuList[0]?.model.trim() ?? 'unknown',
    cores: cpuList.length,
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
  const report: BenchReport = { env: collectEnvironment(), results: [], failures: [], targets: [], notes: [] };
  const pendingTargets: Omit<BenchTarget, 'ratio' | 'met'>[] = [];
  for (const suite of suites) {
    const ctx: SuiteContext = {
      suite: suite.name,
      options,
      record(caseName, backend, value, unit, extra) {
        report.results.push({ suite: suite.name, case: caseName, backend, value, unit, ...(extra ? { extra } : {}) });
      },
      fail(caseName, backend, error) {
        report.failures.push({ suite: suite.name, case: caseName, backend, error: errorLine(error) });
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
    const ratio = ratioOf(report.results, t.suite, t.case, t.backend, t.reference);
    report.targets.push({ ...t, ratio, met: ratio === null ? null : ratio >= t.atLeast });
  }
  return report;
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

function fmtRatio(r: number | null): string {
  return r === null ? '—' : `${fmt(r)}x`;
}

function fmtMs(seconds: unknown): string {
  return typeof seconds === 'number' ? fmt(seconds * 1000) : '—';
}

/**
 * Markdown: the environment in a few lines, then one row per result with its
 * median and first-run times, speedups against the case's reference backend
 * and against each peer, failures, and the targets with their verdicts.
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
    `- machine: ${e.cpu}, ${e.cores} cores, ${e.memoryGiB} GiB; ${e.os} ${e.arch}; Node ${e.node}; load ${e.loadAverage.join(' ')}${
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
    if (['date', 'node', 'v8', 'os', 'arch', 'cpu', 'cores', 'memoryGiB', 'freeMemoryGiB', 'loadAverage', 'loadAverageAfter', 'histoflow'].includes(k)) continue;
    // long explanations (why a backend is unavailable) stay whole in the JSON
    const short = (x: unknown) => (typeof x === 'string' && x.length > 110 ? `${x.slice(0, 109)}…` : x);
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      lines.push(`- ${k}: ${Object.entries(v).map(([kk, vv]) => `${kk} ${String(short(vv))}`).join('; ')}`);
    } else {
      lines.push(`- ${k}: ${String(short(typeof v === 'string' ? v : JSON.stringify(v)))}`);
    }
  }
  lines.push('');

  const suites = [...new Set(report.results.map((r) => r.suite))];
  for (const suite of suites) {
    const rows = report.results.filter((r) => r.suite === suite);
    const peers = [...new Set(rows.filter((r) => r.backend.startsWith('peer:')).map((r) => r.backend))];
    const header = ['case', 'backend', 'input', 'value', 'unit', 'median ms', 'first ms', 'runs', `vs ${reference}`, ...peers.map((p) => `vs ${p}`)];
    lines.push(`## ${suite}`);
    lines.push('');
    lines.push(`| ${header.join(' | ')} |`);
    lines.push(`| ${header.map((h, i) => (i < 3 || h === 'unit' ? '---' : '---:')).join(' | ')} |`);
    for (const r of rows) {
      const x = r.extra ?? {};
      const cells = [
        r.case,
        r.backend,
        typeof x.input === 'string' ? x.input : '—',
        fmt(r.value),
        r.unit,
        fmtMs(x.median_s),
        fmtMs(x.first_s),
        typeof x.repeats === 'number' ? (x.repeats === 0 ? 'cold only' : String(x.repeats)) : '—',
        r.backend === reference ? '1x' : fmtRatio(ratioOf(report.results, suite, r.case, r.backend, reference)),
        ...peers.map((p) => (r.backend === p ? '1x' : fmtRatio(ratioOf(report.results, suite, r.case, r.backend, p)))),
      ];
      lines.push(`| ${cells.join(' | ')} |`);
    }
    lines.push('');
    // the speedup line per case: every backend against each peer present
    for (const p of peers) {
      for (const c of [...new Set(rows.map((r) => r.case))]) {
        const others = rows.filter((r) => r.case === c && r.backend !== p);
        const parts = others
          .map((r) => ({ b: r.backend, x: ratioOf(report.results, suite, c, r.backend, p) }))
          .filter((o) => o.x !== null)
          .map((o) => `${o.b} ${fmtRatio(o.x)}`);
        if (parts.length) lines.push(`- speedup vs ${p}, ${c}: ${parts.join(', ')}`);
      }
    }
    if (peers.length) lines.push('');
  }

  if (report.failures.length) {
    lines.push('## failures');
    lines.push('');
    for (const f of report.failures) lines.push(`- ${f.suite} ${f.case} ${f.backend}: ${f.error}`);
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
