/**
 * What predict and evaluate read from a training run folder (runs/NAME, as
 * `histoflow train` writes it): the validation split the run held out.
 *
 *   runs/NAME/split.json   { "validation": [id, …], "data"?: "path", … }
 *                          ("val" is read as well as "validation"; ids are the
 *                          data's ids: Kaggle ids, packed record ids or indices)
 *   runs/NAME/state.json   { "args": { "data": "path" }, … }   (where the data
 *                          was, when split.json does not say)
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

import { MODEL_JSON } from '../models/io.js';
import { readJson } from './data.js';

export const SPLIT_JSON = 'split.json';
export const STATE_JSON = 'state.json';

const isFile = (p: string) => stat(p).then((s) => s.isFile(), () => false);

/**
 * The run folder a --model argument belongs to: the folder itself (runs/NAME),
 * or the run above a checkpoint (runs/NAME/best, runs/NAME/best/model.json);
 * undefined when no split.json is found there.
 */
export async function runFolderOf(model: string): Promise<string | undefined> {
  let dir = resolve(model);
  if (basename(dir) === MODEL_JSON) dir = dirname(dir);
  for (const candidate of [dir, dirname(dir)]) if (await isFile(join(candidate, SPLIT_JSON))) return candidate;
  return undefined;
}

export interface RunValidation {
  run: string;
  /** The validation ids as the scoring data names them (PatchCamelyon: the index in its split). */
  ids: string[];
  /** Where they are: the data's own valid split (PCam's, a Kaggle folder's valid/) or a split drawn from train. */
  split: 'train' | 'valid';
  /** The data the run trained on, when recorded. */
  data: string | undefined;
}

/** The validation ids of a run (see the file comment); Errors name the file and what is wrong. */
export async function readRunValidation(run: string): Promise<RunValidation> {
  const path = join(run, SPLIT_JSON);
  const split = (await readJson(path)) as Record<string, unknown> | null;
  const list = split && typeof split === 'object' ? (split.validation ?? split.val) : undefined;
  if (!Array.isArray(list) || list.some((v) => typeof v !== 'string' && typeof v !== 'number')) {
    throw new Error(`${path} has no "validation" array of ids`);
  }
  if (list.length === 0) throw new Error(`${path}: the run's validation split is empty`);
  let data = typeof split!.data === 'string' ? split!.data : undefined;
  if (data === undefined && (await isFile(join(run, STATE_JSON)))) {
    const state = (await readJson(join(run, STATE_JSON))) as { args?: { data?: unknown }; data?: unknown } | null;
    const d = state?.args?.data ?? state?.data;
    if (typeof d === 'string') data = d;
  }
  // Training drew its validation from train/ unless the data had its own valid split.
  const own = split!.split === 'pcam-valid' || split!.split === 'kaggle-valid';
  const ids = list.map(String).map((id) => (split!.split === 'pcam-valid' ? id.replace(/^valid-/, '') : id));
  return { run, ids, split: own ? 'valid' : 'train', data };
}
