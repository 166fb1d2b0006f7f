/**
 * `histoflow bench [SUITE...] [--json] [--quick] [--repeats N] [--out FILE.json]`:
 * runs benchmark suites (all when none is named) and prints a markdown table,
 * or with --json one JSON object { env, results, failures, targets, notes }.
 */
import { resolve } from 'node:path';

import { checkOutputPath } from '../output.js';
import { renderJson, renderMarkdown, runBench, suiteNames } from '../bench/index.js';
import { writeFileAtomic } from '../image.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';

export const BENCH_FLAGS = defineFlags({
  json: { type: 'boolean', help: 'print one JSON object { env, results, … } instead of the table' },
  quick: { type: 'boolean', help: 'small inputs and one repeat (a smoke test, not a measurement)' },
  repeats: { type: 'int', value: 'N', min: 1, help: 'timed runs per case (default: time-bounded, 3–5+)' },
  out: { type: 'string', value: 'FILE', help: 'also write the JSON report to FILE' },
});

function help(): string {
  return `Usage: histoflow bench [SUITE...] [options]

Benchmarks every kernel on every available backend (cuda, cpu, gpujs, js) and
on peers installed here (peer:numpy), on identical real H&E inputs: first run
apart, warm-up, repeats, median.

Suites: ${suiteNames().join(', ')} (all when none is named)

${optionsHelp(BENCH_FLAGS)}`;
}

export async function benchCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseFlags('bench', BENCH_FLAGS, argv, { positionals: true });
  } catch (e) {
    process.stderr.write(`histoflow bench: ${e instanceof Error ? e.message : String(e)}\n\n${help()}`);
    return 1;
  }
  const { values, positionals } = parsed;
  if (parsed.help) {
    process.stdout.write(help());
    return 0;
  }
  const known = suiteNames();
  const unknown = positionals.filter((s) => !known.includes(s));
  if (unknown.length) {
    process.stderr.write(`histoflow bench: unknown suite ${unknown.map((s) => `'${s}'`).join(', ')} (available: ${known.join(', ')})\n`);
    return 1;
  }

  if (values.out) await checkOutputPath('--out', values.out, 'file');
  const report = await runBench(positionals, {
    json: values.json,
    quick: values.quick,
    ...(values.repeats !== undefined ? { repeats: values.repeats } : {}),
  });
  const json = renderJson(report);
  if (values.out) {
    await writeFileAtomic(resolve(values.out), json);
  }
  process.stdout.write(values.json ? json : renderMarkdown(report));
  return 0;
}
