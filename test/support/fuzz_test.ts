/**
 * The ava side of the fuzz suite: one test per family, bounded (DEFAULT_CASES
 * cases, a fixed seed so CI is repeatable; HISTOFLOW_FUZZ_SEED and
 * HISTOFLOW_FUZZ_CASES override them). It logs the family's counts and fails,
 * listing the cases and how to reproduce each, on any crash, hang, write
 * outside out/, unclear error or wrong result.
 */
import type { TestFn } from 'ava';

import { DEFAULT_CASES, describeFailure, describeReport, runFamily, type FamilyName } from './fuzz_runner.js';
import { DIST } from './helpers.js';

/** The CI seed (any fixed value; a failure prints it with its case index). */
export const CI_SEED = 20_261_205;

export function fuzzFamilyTest(test: TestFn, family: FamilyName): void {
  const seed = process.env.HISTOFLOW_FUZZ_SEED ? Number(process.env.HISTOFLOW_FUZZ_SEED) : CI_SEED;
  const cases = process.env.HISTOFLOW_FUZZ_CASES ? Number(process.env.HISTOFLOW_FUZZ_CASES) : DEFAULT_CASES[family];
  test(`${family}: every mutated input ends in a clear error or a correct result, never a signal, a hang or a byte written outside out/`, async (t) => {
    t.timeout(30 * 60_000);
    const report = await runFamily(family, { seed, cases, dist: DIST });
    t.log(describeReport(report));
    for (const f of report.failures) t.log(describeFailure(f));
    t.is(report.tried, cases, 'every case ran');
    t.is(report.crashes, 0, 'crashes (a signal or a dead process)');
    t.is(report.hangs, 0, 'hangs');
    t.is(report.destroyed, 0, 'cases that changed files outside out/');
    t.is(report.unclear, 0, 'internal errors that say nothing (e.g. "Cannot read properties of undefined")');
    t.is(report.wrong, 0, 'wrong results');
  });
}
