/**
 * The benchmark suites and the one entry point that runs them (the CLI's
 * `histoflow bench` and `npm run bench` both come here).
 */
import { runSuites, type BenchReport, type Suite } from './harness.js';
import { augmentSuite } from './augment.js';
import { stainSuite } from './stain.js';
import { packedSuite } from './packed.js';
import { tileSuite } from './tile.js';
import { trainSuite } from './train.js';
import { dataSuite } from './data.js';
import { batchSuite } from './batch.js';

export type { BenchReport, BenchResult, BenchFailure, BenchCheck, BenchTable, BenchTarget, BenchEnvironment, Suite, SuiteContext } from './harness.js';
export { exitStatus, failureLines, renderJson, renderMarkdown } from './harness.js';

export const SUITES: readonly Suite[] = [stainSuite, augmentSuite, packedSuite, tileSuite, trainSuite, dataSuite, batchSuite];

export function suiteNames(available: readonly Suite[] = SUITES): string[] {
  return available.map((s) => s.name);
}

export interface RunBenchOptions {
  json: boolean;
  quick?: boolean;
  repeats?: number;
  /** Where progress lines go (default stderr); never called with json. */
  log?: (line: string) => void;
  /** The suites names are looked up in (default SUITES; tests pass synthetic ones). */
  available?: readonly Suite[];
}

/** Runs the named suites (all when none are named) and returns the report. */
export async function runBench(suites: string[], options: RunBenchOptions): Promise<BenchReport> {
  const available = options.available ?? SUITES;
  const names = suites.length ? suites : suiteNames(available);
  const chosen = names.map((name) => {
    const suite = available.find((s) => s.name === name);
    if (!suite) throw new RangeError(`Expected a benchmark suite (one of ${suiteNames(available).join(', ')}) but received '${name}'`);
    return suite;
  });
  if (options.repeats !== undefined && !(Number.isInteger(options.repeats) && options.repeats >= 1)) {
    throw new RangeError(`Expected an integer ≥ 1 for repeats but received ${String(options.repeats)}`);
  }
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  return runSuites(
    [...new Set(chosen)],
    { json: options.json, quick: options.quick ?? false, ...(options.repeats !== undefined ? { repeats: options.repeats } : {}) },
    log,
  );
}
