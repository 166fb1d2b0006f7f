#!/usr/bin/env node
/**
 * The fuzz suite outside ava: the same families and cases as test/fuzz/*.test.ts
 * (test/support/fuzz_runner.ts), for as long as asked.
 *
 *   node scripts/fuzz.mjs [--family F]... [--seed S] [--cases N | --minutes M | --long] [--case I] [--json] [--dist DIR]
 *
 *   --family F   slide, image, geojson, pipeline, packed, dataset, model, addon (repeatable; default all)
 *   --seed S     the run's seed, an integer ≥ 0 (default: the time; printed, so a run reproduces)
 *   --cases N    cases per family (default: the bounded CI count)
 *   --minutes M  run for M minutes in all instead, split evenly between the families
 *   --long       hours: --minutes 240 unless --minutes says otherwise
 *   --case I     run only case I (with --family and --seed: reproduces a reported failure) and print it
 *   --json       print the reports as JSON (one object) instead of a table
 *   --dist DIR   the compiled tree to use (default dist, or $HISTOFLOW_DIST)
 *
 * Exits 1 when any case crashed, hung, wrote outside its out/ folder, ended in
 * an unclear error or gave a wrong result.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const OPTIONS = {
  family: { type: 'string', multiple: true },
  seed: { type: 'string' },
  cases: { type: 'string' },
  minutes: { type: 'string' },
  long: { type: 'boolean', default: false },
  case: { type: 'string' },
  json: { type: 'boolean', default: false },
  dist: { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
};
const { values } = (() => {
  try {
    return parseArgs({ options: OPTIONS });
  } catch (e) {
    console.error(`${e.message} (node scripts/fuzz.mjs --help)`);
    process.exit(2);
  }
})();

if (values.help) {
  const doc = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0].split('\n').slice(2).map((l) => l.replace(/^ \* ?/, ''));
  console.log(doc.join('\n').trim());
  process.exit(0);
}

const dist = resolve(root, values.dist ?? process.env.HISTOFLOW_DIST ?? 'dist');
const lib = join(dist, 'test', 'support', 'fuzz_runner.js');
if (!existsSync(lib)) {
  console.error(`${lib} is missing: compile first (npm run build:ts, or tsc --outDir DIR and pass --dist DIR)`);
  process.exit(2);
}
const { FAMILIES, DEFAULT_CASES, runFamily, describeFailure, describeReport } = await import(pathToFileURL(lib).href);

const integer = (name, text, min) => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) {
    console.error(`Expected an integer ≥ ${min} for --${name} but received ${text}`);
    process.exit(2);
  }
  return n;
};

const families = values.family ?? [...FAMILIES];
for (const f of families) {
  if (!FAMILIES.includes(f)) {
    console.error(`Expected --family to be one of ${FAMILIES.join(', ')} but received ${f}`);
    process.exit(2);
  }
}
const seed = values.seed === undefined ? Date.now() % 1_000_000 : integer('seed', values.seed, 0);
const minutes = values.minutes !== undefined ? Number(values.minutes) : values.long ? 240 : undefined;
if (minutes !== undefined && !(minutes > 0)) {
  console.error(`Expected a number > 0 for --minutes but received ${values.minutes}`);
  process.exit(2);
}

const reports = [];
const log = (line) => (values.json ? process.stderr : process.stdout).write(`${line}\n`);
log(`histoflow fuzz: seed ${seed}, families ${families.join(', ')}${minutes ? `, ${minutes} min` : ''} (${dist})`);
for (const family of families) {
  const options = { seed, dist };
  if (values.case !== undefined) {
    options.from = integer('case', values.case, 0);
    options.cases = 1;
    options.onCase = (r) => log(JSON.stringify(r, null, 2));
  } else if (minutes !== undefined) {
    options.deadline = Date.now() + (minutes * 60_000) / families.length;
  } else {
    options.cases = values.cases !== undefined ? integer('cases', values.cases, 1) : DEFAULT_CASES[family];
  }
  const report = await runFamily(family, options);
  reports.push(report);
  log(describeReport(report));
  for (const f of report.failures) log(`  ${describeFailure(f)}`);
}

if (values.json) {
  console.log(JSON.stringify({ seed, reports }, null, 2));
} else {
  const columns = ['family', 'inputs tried', 'clear errors', 'correct results', 'unclear errors', 'wrong results', 'crashes', 'hangs', 'files destroyed', 'seconds'];
  const rows = reports.map((r) => [r.family, r.tried, r.errors, r.ok, r.unclear, r.wrong, r.crashes, r.hangs, r.destroyed, r.seconds.toFixed(0)].map(String));
  const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(['', line(columns), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n'));
}
const bad = reports.some((r) => r.crashes + r.hangs + r.destroyed + r.unclear + r.wrong > 0);
process.exit(bad ? 1 : 0);
