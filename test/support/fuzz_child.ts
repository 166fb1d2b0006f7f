/**
 * The child process of the fuzz runner (fuzz_runner.ts): runs cases FROM..TO−1 of
 * one family, each in its own sandbox folder ROOT/case-I holding its inputs,
 * a sentinel file and an empty out/, and reports each on stdout as a line
 * `@@fuzz {json}`: {start, what} before it runs, then its CaseResult. The
 * snapshot of the sandbox taken before the run is left in ROOT/case-I.snap.json
 * so that the runner can check it after a crash.
 *
 *   node fuzz_child.js FAMILY SEED FROM TO ROOT SEEDS
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { caseRng } from './fuzz.js';
import { addonFamily } from './fuzz_families/addon.js';
import { datasetFamily } from './fuzz_families/dataset.js';
import { geojsonFamily } from './fuzz_families/geojson.js';
import { imageFamily } from './fuzz_families/image.js';
import { modelFamily } from './fuzz_families/model.js';
import { packedFamily } from './fuzz_families/packed.js';
import { pipelineFamily } from './fuzz_families/pipeline.js';
import { selftestFamily } from './fuzz_families/selftest.js';
import { slideFamily } from './fuzz_families/slide.js';
import { snapshot, snapshotDiff, type CaseResult } from './fuzz_runner.js';
import { classifyError, type FuzzCase, type FuzzFamily } from './fuzz_verdict.js';

const FAMILY_CODE: Record<string, FuzzFamily> = {
  slide: slideFamily,
  image: imageFamily,
  geojson: geojsonFamily,
  pipeline: pipelineFamily,
  packed: packedFamily,
  dataset: datasetFamily,
  model: modelFamily,
  addon: addonFamily,
  selftest: selftestFamily,
};

function emit(message: object): void {
  process.stdout.write(`@@fuzz ${JSON.stringify(message)}\n`);
}

async function main(): Promise<void> {
  const [family, seedText, fromText, toText, root, seeds] = process.argv.slice(2);
  const code = FAMILY_CODE[family ?? ''];
  if (!code || !root || !seeds) throw new Error(`usage: fuzz_child.js FAMILY SEED FROM TO ROOT SEEDS (family one of ${Object.keys(FAMILY_CODE).join(', ')})`);
  const seed = Number(seedText), from = Number(fromText), to = Number(toText);
  if (!existsSync(join(seeds, '.ready'))) {
    mkdirSync(seeds, { recursive: true });
    await code.prepare(seeds);
    writeFileSync(join(seeds, '.ready'), '');
  }
  mkdirSync(root, { recursive: true });
  for (let index = from; index < to; index++) {
    const dir = join(root, `case-${index}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, 'out'), { recursive: true });
    writeFileSync(join(dir, 'sentinel.txt'), `case ${index} of ${family}, seed ${seed}: nothing may change this file\n`);
    const rng = caseRng(seed, family!, index);
    let c: FuzzCase;
    try {
      c = await code.make({ rng, dir, seeds });
    } catch (e) {
      emit({ harness: `the fuzz harness could not make case ${index} of ${family}: ${e instanceof Error ? e.stack : String(e)}` });
      process.exit(2);
    }
    const before = snapshot(dir);
    writeFileSync(join(root, `case-${index}.snap.json`), JSON.stringify(before));
    emit({ start: index, what: c.what });
    process.chdir(dir);
    const verdict = await c.run().catch(classifyError);
    process.chdir(root);
    const destroyed = snapshotDiff(before, snapshot(dir));
    const result: CaseResult = { index, outcome: verdict.outcome, what: c.what, ...(verdict.message ? { message: verdict.message } : {}), ...(destroyed.length ? { destroyed } : {}) };
    emit(result);
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(root, `case-${index}.snap.json`), { force: true });
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(2);
  },
);
