/**
 * `histoflow bench [SUITE...] [--json] [--quick] [--repeats N] [--out FILE.json]`:
 * runs benchmark suites (all when none is named) and prints a markdown table,
 * or with --json one JSON object { env, results, failures, targets, notes }.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { renderJson, renderMarkdown, runBench, suiteNames } from '../../benchmarks/index.js';
import { writeFileAtomic } from '../image.js';

function help(): string {
  return `Usage: histoflow bench [SUITE...] [options]

Benchmarks every kernel on every available backend (cuda, cpu, gpujs, js) and
on peers installed here (peer:numpy), on identical real H&E inputs: first run
apart, warm-up, repeats, median.

Suites: ${suiteNames().join(', ')} (all when none is named)

Options:
  --json          print one JSON object { env, results, … } instead of the table
  --quick         small inputs and one repeat (a smoke test, not a measurement)
  --repeats N     timed runs per case (default: time-bounded, 3–5+)
  --out FILE      also write the JSON report to FILE
  -h, --help      this help
`;
}

export async function benchCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        quick: { type: 'boolean', default: false },
        repeats: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    process.stderr.write(`histoflow bench: ${e instanceof Error ? e.message : String(e)}\n\n${help()}`);
    return 1;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(help());
    return 0;
  }
  let repeats: number | undefined;
  if (values.repeats !== undefined) {
    repeats = Number(values.repeats);
    if (!/^\d+$/.test(values.repeats) || !Number.isInteger(repeats) || repeats < 1) {
      process.stderr.write(`histoflow bench: Expected an integer ≥ 1 for --repeats but received '${values.repeats}'\n`);
      return 1;
    }
  }
  const known = suiteNames();
  const unknown = positionals.filter((s) => !known.includes(s));
  if (unknown.length) {
    process.stderr.write(`histoflow bench: unknown suite ${unknown.map((s) => `'${s}'`).join(', ')} (available: ${known.join(', ')})\n`);
    return 1;
  }

  const report = await runBench(positionals, {
    json: values.json === true,
    quick: values.quick === true,
    ...(repeats !== undefined ? { repeats } : {}),
  });
  const json = renderJson(report);
  if (values.out) {
    await writeFileAtomic(resolve(values.out), json);
  }
  process.stdout.write(values.json ? json : renderMarkdown(report));
  return 0;
}
