/**
 * The fuzz suite's runner. The property, per case: a clear error (an Error
 * with a message that is not an internal one like "Cannot read properties of
 * undefined"; for the CLI a non-zero exit with a message and no stack trace)
 * or a correct result; never a signal, never a hang, never a byte written
 * outside the case's out/ folder. Cases run in child processes
 * (fuzz_child.ts), a batch per child, each case announced before it runs, so
 * a native crash or a hang is pinned on its case, counted, and the next
 * batch starts after it.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

// Sandboxes: what a case may not touch

export type Snapshot = Record<string, string>;

/** Every file under `dir` except its `out/` folder: relative path → size and SHA-1 (a link: its target). */
export function snapshot(dir: string, skip = 'out'): Snapshot {
  const files: Snapshot = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const rel = relative(dir, p);
      if (rel === skip) continue;
      const st = lstatSync(p);
      if (st.isDirectory()) {
        files[`${rel}/`] = 'dir';
        walk(p);
      } else if (st.isSymbolicLink()) files[rel] = 'link';
      else files[rel] = `${st.size}:${createHash('sha1').update(readFileSync(p)).digest('hex')}`;
    }
  };
  walk(dir);
  return files;
}

/** What differs between two snapshots: 'changed X', 'removed X', 'created X'. */
export function snapshotDiff(before: Snapshot, after: Snapshot): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(before)) {
    if (!(k in after)) out.push(`removed ${k}`);
    else if (after[k] !== v) out.push(`changed ${k}`);
  }
  for (const k of Object.keys(after)) if (!(k in before)) out.push(`created ${k}`);
  return out;
}

// The runner (parent side)

export const FAMILIES = ['slide', 'image', 'geojson', 'pipeline', 'packed', 'dataset', 'model', 'addon'] as const;
export type FamilyName = (typeof FAMILIES)[number];

/** Cases per family in the bounded mode (`npm test`): a few seconds each on two cores. */
export const DEFAULT_CASES: Record<FamilyName, number> = { slide: 50, image: 40, geojson: 60, pipeline: 60, packed: 150, dataset: 16, model: 80, addon: 200 };

/** 'ok' a correct result, 'error' a clear error; the rest break the property. */
export type Outcome = 'ok' | 'error' | 'unclear' | 'wrong' | 'crash' | 'hang';

export interface CaseResult {
  index: number;
  outcome: Outcome;
  what: string;
  message?: string;
  /** Files outside out/ that the case changed, removed or created. */
  destroyed?: string[];
}

export interface FamilyReport {
  family: string;
  seed: number;
  tried: number;
  ok: number;
  errors: number;
  unclear: number;
  wrong: number;
  crashes: number;
  hangs: number;
  /** Cases that changed a byte outside out/. */
  destroyed: number;
  seconds: number;
  /** Every case that broke the property, with how to reproduce it. */
  failures: Array<CaseResult & { reproduce: string }>;
}

export interface RunOptions {
  seed: number;
  /** First case index (default 0). */
  from?: number;
  /** How many cases (default: until `deadline`). */
  cases?: number;
  /** Stop starting batches after this time (ms since the epoch). */
  deadline?: number;
  /** The compiled tree (dist/ or another --outDir) whose test/support/fuzz_child.js runs the cases. */
  dist: string;
  /** A case that runs longer is killed and counted as a hang (default 40 s; a command it runs has 15 s, the tiler 30 s). */
  caseTimeoutMs?: number;
  /** Cases per child process (default 25). */
  batchSize?: number;
  /** Data-segment limit (RLIMIT_DATA: heap and writable mappings, not wasm reservations) of the child processes in MiB, so a memory bomb fails there, not on the machine (default 6144). */
  memoryLimitMiB?: number;
  /** Called after each case. */
  onCase?: (r: CaseResult) => void;
}

const MARK = '@@fuzz ';

interface BatchOutcome {
  results: CaseResult[];
  /** The index after the last case accounted for. */
  next: number;
}

/** Runs cases [from, to) of a family in one child; a crash or hang ends the batch at the case that caused it. */
function runBatch(family: string, o: RunOptions, from: number, to: number, root: string, seeds: string): Promise<BatchOutcome> {
  const child = join(o.dist, 'test', 'support', 'fuzz_child.js');
  const limitKb = (o.memoryLimitMiB ?? 6144) * 1024;
  // AddressSanitizer (CI loads the sanitized addon with the runtime preloaded) maps terabytes of shadow memory: no data limit then.
  const sanitized = /libasan/.test(process.env.LD_PRELOAD ?? '');
  const limit = sanitized ? '' : `ulimit -d ${limitKb} 2>/dev/null; `;
  const args = ['-c', `${limit}exec "$0" "$@"`, process.execPath, child, family, String(o.seed), String(from), String(to), root, seeds];
  return new Promise((resolvePromise, reject) => {
    const proc = spawn('/bin/sh', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const results: CaseResult[] = [];
    let current: { index: number; what: string } | null = null;
    let last = from - 1;
    let timer: NodeJS.Timeout | undefined;
    let killedForHang = false;
    let harness: string | undefined;
    let stderr = '';
    let buffered = '';
    const arm = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        killedForHang = true;
        try {
          process.kill(-proc.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }, ms);
    };
    arm(120_000); // start-up and seed preparation
    proc.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    proc.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!line.startsWith(MARK)) continue;
        const msg = JSON.parse(line.slice(MARK.length)) as { start?: number; what?: string; harness?: string } & Partial<CaseResult>;
        if (msg.harness !== undefined) {
          harness = msg.harness;
        } else if (msg.start !== undefined) {
          current = { index: msg.start, what: msg.what ?? '' };
          arm(o.caseTimeoutMs ?? 40_000);
        } else if (msg.index !== undefined) {
          const r = msg as CaseResult;
          results.push(r);
          o.onCase?.(r);
          last = r.index;
          current = null;
          arm(120_000);
        }
      }
    });
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      if (harness !== undefined) {
        reject(new Error(harness));
        return;
      }
      if (code === 0 && !killedForHang) {
        resolvePromise({ results, next: to });
        return;
      }
      const tail = stderr.trim().split('\n').slice(-6).join(' | ');
      // The case that was running, or (a late crash: a finalizer, a stray callback) the one just finished.
      const blamed = current ?? (results.length > 0 ? { index: results[results.length - 1]!.index, what: results[results.length - 1]!.what } : null);
      if (!blamed) {
        reject(new Error(`the fuzz child for ${family} died before its first case (code ${code}, signal ${signal}): ${tail}`));
        return;
      }
      if (!current) results.pop();
      const before = readSnapshot(root, blamed.index);
      const caseDir = join(root, `case-${blamed.index}`);
      const destroyed = before && existsSync(caseDir) ? snapshotDiff(before, snapshot(caseDir)) : [];
      const r: CaseResult = {
        index: blamed.index,
        outcome: killedForHang ? 'hang' : 'crash',
        what: blamed.what,
        message: killedForHang
          ? `no result within ${(o.caseTimeoutMs ?? 40_000) / 1000} s: killed`
          : `the process died (${signal ? `signal ${signal}` : `exit code ${code}`}): ${tail}`,
        ...(destroyed.length ? { destroyed } : {}),
      };
      results.push(r);
      o.onCase?.(r);
      resolvePromise({ results, next: Math.max(last, blamed.index) + 1 });
    });
  });
}

function readSnapshot(root: string, index: number): Snapshot | null {
  try {
    return JSON.parse(readFileSync(join(root, `case-${index}.snap.json`), 'utf8')) as Snapshot;
  } catch {
    return null;
  }
}

/** Runs a family's cases and counts outcomes. */
export async function runFamily(family: FamilyName | 'selftest', o: RunOptions): Promise<FamilyReport> {
  const started = Date.now();
  const report: FamilyReport = {
    family, seed: o.seed, tried: 0, ok: 0, errors: 0, unclear: 0, wrong: 0, crashes: 0, hangs: 0, destroyed: 0, seconds: 0, failures: [],
  };
  const work = mkdtempSync(join(tmpdir(), `histoflow-fuzz-${family}-`));
  const seeds = join(work, 'seeds');
  const root = join(work, 'cases');
  const batchSize = o.batchSize ?? 25;
  const end = o.cases === undefined ? Infinity : (o.from ?? 0) + o.cases;
  try {
    for (let i = o.from ?? 0; i < end && (o.deadline === undefined || Date.now() < o.deadline);) {
      const to = Math.min(end, i + batchSize);
      rmSync(root, { recursive: true, force: true });
      const { results, next } = await runBatch(family, o, i, to, root, seeds);
      // Nothing may appear in the sandbox root but the cases' own folders and snapshots.
      const stray = existsSync(root) ? readdirSync(root).filter((n) => !/^case-\d+(\.snap\.json)?$/.test(n)) : [];
      if (stray.length > 0 && results.length > 0) {
        const r = results[results.length - 1]!;
        r.destroyed = [...(r.destroyed ?? []), ...stray.map((n) => `created ../${n} (beside the case folders)`)];
      }
      for (const r of results) {
        report.tried++;
        if (r.outcome === 'ok') report.ok++;
        else if (r.outcome === 'error') report.errors++;
        else if (r.outcome === 'unclear') report.unclear++;
        else if (r.outcome === 'wrong') report.wrong++;
        else if (r.outcome === 'crash') report.crashes++;
        else report.hangs++;
        if (r.destroyed?.length) report.destroyed++;
        if (!(r.outcome === 'ok' || r.outcome === 'error') || r.destroyed?.length) {
          report.failures.push({ ...r, reproduce: `node scripts/fuzz.mjs --family ${family} --seed ${o.seed} --case ${r.index}` });
        }
      }
      i = next;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    report.seconds = (Date.now() - started) / 1000;
  }
  return report;
}

/** One line per failure, for t.log and the CLI. */
export function describeFailure(f: FamilyReport['failures'][number]): string {
  const destroyed = f.destroyed?.length ? ` [outside out/: ${f.destroyed.join(', ')}]` : '';
  return `case ${f.index} ${f.outcome}: ${f.what} → ${(f.message ?? '').slice(0, 400)}${destroyed}  (${f.reproduce})`;
}

/** The per-family counts, one line. */
export function describeReport(r: FamilyReport): string {
  return `${r.family}: seed ${r.seed}, ${r.tried} inputs in ${r.seconds.toFixed(1)} s: ${r.errors} clear errors, ${r.ok} correct results, ` +
    `${r.unclear} unclear errors, ${r.wrong} wrong results, ${r.crashes} crashes, ${r.hangs} hangs, ${r.destroyed} files destroyed`;
}
