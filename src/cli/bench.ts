/**
 * `histoflow bench [SUITE...] [--json] [--quick] [--repeats N] [--out FILE.json]`:
 * runs benchmark suites (all when none is named) and prints a markdown table,
 * or with --json one JSON object { env, results, failures, checks, targets, tables, notes }.
 * Exits with status 1, naming each on stderr, when a case failed: it threw, or
 * its output differed from the peer's by more than the case's stated tolerance.
 * Speed targets are reported (MET / NOT MET), never part of the exit status.
 */
import { resolve } from 'node:path';

import { checkOutputPath } from '../output.js';
import { exitStatus, failureLines, renderJson, renderMarkdown, runBench, suiteNames, SUITES, type Suite } from '../bench/index.js';
import { writeFileAtomic } from '../image.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';

export const BENCH_FLAGS = defineFlags({
  json: { type: 'boolean', help: 'print one JSON object { env, results, … } instead of the table' },
  quick: { type: 'boolean', help: 'small inputs and one repeat (a smoke test, not a measurement; outputs are still checked against the peers)' },
  repeats: { type: 'int', value: 'N', min: 1, help: 'timed runs per case (default: time-bounded, 3–5+)' },
  out: { type: 'string', value: 'FILE', help: 'also write the JSON report to FILE' },
});

function help(available: readonly Suite[]): string {
  return `Usage: histoflow bench [SUITE...] [options]

Benchmarks every kernel on every available backend (cuda, cpu, gpujs, js) and
on peers installed here (peer:numpy, peer:torch-…), on identical real H&E
inputs: first run apart, warm-up, repeats, median; the machine (CPU model,
cores, ISA level) recorded. Exits 1, naming each, when a case fails or its
output differs from a peer's by more than the case's stated tolerance.

Suites: ${suiteNames(available).join(', ')} (all when none is named)

${optionsHelp(BENCH_FLAGS)}`;
}

/** Where the command writes, and the suites it offers (tests inject synthetic ones). */
export interface BenchCommandIo {
  suites?: readonly Suite[];
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

export async function benchCommand(argv: string[], io: BenchCommandIo = {}): Promise<number> {
  const available = io.suites ?? SUITES;
  const out = io.stdout ?? ((text: string) => void process.stdout.write(text));
  const err = io.stderr ?? ((text: string) => void process.stderr.write(text));
  let parsed;
  try {
    parsed = parseFlags('bench', BENCH_FLAGS, argv, { positionals: true });
  } catch (e) {
    err(`histoflow bench: ${e instanceof Error ? e.message : String(e)}\n\n${help(available)}`);
    return 1;
  }
  const { values, positionals } = parsed;
  if (parsed.help) {
    out(help(available));
    return 0;
  }
  const known = suiteNames(available);
  const unknown = positionals.filter((s) => !known.includes(s));
  if (unknown.length) {
    err(`histoflow bench: unknown suite ${unknown.map((s) => `'${s}'`).join(', ')} (available: ${known.join(', ')})\n`);
    return 1;
  }

  if (values.out) await checkOutputPath('--out', values.out, 'file');
  const report = await runBench(positionals, {
    json: values.json,
    quick: values.quick,
    available,
    ...(values.repeats !== undefined ? { repeats: values.repeats } : {}),
    log: (line) => err(`${line}\n`),
  });
  const json = renderJson(report);
  if (values.out) {
    await writeFileAtomic(resolve(values.out), json);
  }
  out(values.json ? json : renderMarkdown(report));
  const status = exitStatus(report);
  if (status !== 0) {
    const lines = failureLines(report);
    err(`histoflow bench: ${lines.length} case${lines.length === 1 ? '' : 's'} failed:\n${lines.map((l) => `  ${l}`).join('\n')}\n`);
  }
  return status;
}
