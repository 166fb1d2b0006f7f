/**
 * Where the real data files live (see manifest.ts). One lookup for tests,
 * benchmarks and the demo:
 *   1. $HISTOFLOW_DATA, when set (and then only there);
 *   2. ../shared/data beside the package (the project's CI and machines);
 *   3. the fetch cache, filled by `npm run fetch-data`:
 *      $HISTOFLOW_CACHE, else $XDG_CACHE_HOME/histoflow/data, else ~/.cache/histoflow/data.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import { packageRoot } from '../../bindings/loader.js';

export function cacheFolder(): string {
  if (process.env.HISTOFLOW_CACHE) return resolve(process.env.HISTOFLOW_CACHE);
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'histoflow', 'data');
}

/** The folders searched, in order. */
export function dataFolders(): string[] {
  if (process.env.HISTOFLOW_DATA) return [resolve(process.env.HISTOFLOW_DATA)];
  return [join(dirname(packageRoot()), 'shared', 'data'), cacheFolder()];
}

/** A data file that is in none of the folders. */
export class DataMissingError extends Error {
  readonly code = 'HISTOFLOW_DATA_MISSING';
  constructor(readonly file: string, readonly searched: string[]) {
    super(`data file ${file} not found (looked in ${searched.join(', ')}). ` +
      'Fix: run `npm run fetch-data` (downloads the public originals into the cache, checked by SHA-256), ' +
      'or point HISTOFLOW_DATA at a folder that holds it');
    this.name = 'DataMissingError';
  }
}

/** The path of a data file, or null when no folder has it. */
export function findData(name: string): string | null {
  for (const dir of dataFolders()) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** The path of a data file; throws DataMissingError (with the fix) when no folder has it. */
export function dataPath(name: string): string {
  const p = findData(name);
  if (p === null) throw new DataMissingError(name, dataFolders());
  return p;
}
