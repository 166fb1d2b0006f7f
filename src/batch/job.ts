/**
 * A batch job: one slide through one of histoflow's per-slide commands (tile,
 * predict-slide, pack), its outputs in ROOT/<stem>/ exactly as the command
 * would write them for `--out ROOT/<stem>`.
 *
 * A job is a plain object (JobSpec) so it can cross a process boundary or sit
 * in Redis: the command's own options as argv tokens, checked with the
 * command's own flag table when the batch is planned and again when the job
 * runs. The tables live with the commands (src/cli/*.ts) and are imported
 * lazily, so a tile worker never loads the model code.
 *
 * Idempotent. Each command already stages its outputs and renames them into
 * place (tile journals every finished tile and resumes; predict-slide commits
 * a staging folder; pack renames FILE.partial). When a job ends, a record of
 * it — ROOT/.histoflow-batch/<stem>.json, written atomically, outside the
 * slide's folder so that folder stays byte-identical to a single run — makes
 * a rerun of the same job a no-op. The record holds the job's fingerprint (the
 * slide, the command, every option): the same slide asked for with other
 * options is refused rather than mixed.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { writeFileAtomic } from '../image.js';
import { pathExists } from '../output.js';
import { parseFlags, type FlagTable } from '../cli/flags.js';
import type { Manifest } from './manifest.js';

export const JOB_KINDS = ['tile', 'predict-slide', 'pack'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** Where a batch keeps its per-slide records, inside ROOT. */
export const RECORD_FOLDER = '.histoflow-batch';

/** The options of a command that the batch decides itself, never a job or a row. */
const BATCH_OWNED = ['out', 'json', 'no-resume', 'overwrite'];

interface KindInfo {
  /** The command's flag table, less the batch's own options. */
  flags: FlagTable;
  /** Options whose value is a path: relative ones are resolved (rows: against the manifest's folder). */
  paths: readonly string[];
  /** Options every job of this kind needs. */
  required: readonly string[];
  slideKind: 'file' | 'file-or-folder';
}

function withoutBatchOwned(table: FlagTable): FlagTable {
  return Object.fromEntries(Object.entries(table).filter(([name]) => !BATCH_OWNED.includes(name)));
}

/** A job kind's options and rules (the command's module is loaded on first use). */
export async function jobKind(kind: JobKind): Promise<KindInfo> {
  switch (kind) {
    case 'tile': {
      const { TILE_FLAGS } = await import('../cli/tile.js');
      return { flags: withoutBatchOwned(TILE_FLAGS), paths: ['annotations', 'target'], required: [], slideKind: 'file' };
    }
    case 'predict-slide': {
      const { PREDICT_SLIDE_FLAGS } = await import('../cli/predict_slide.js');
      return { flags: withoutBatchOwned(PREDICT_SLIDE_FLAGS), paths: ['model'], required: ['model'], slideKind: 'file' };
    }
    case 'pack': {
      const { PACK_FLAGS } = await import('../cli/pack.js');
      return { flags: withoutBatchOwned(PACK_FLAGS), paths: [], required: [], slideKind: 'file-or-folder' };
    }
  }
}

/** One slide's job, as it travels (to a pool process, through Redis). */
export interface JobSpec {
  /** `<kind>.<stem>.<first 12 hex of the fingerprint>`: the same job always gets the same id. */
  id: string;
  kind: JobKind;
  /** The input, absolute. */
  slide: string;
  stem: string;
  /** The batch's output root, absolute. */
  root: string;
  /** ROOT/<stem>, absolute. */
  out: string;
  /** The command's options as tokens (`--size=96`, `--tta`), every path absolute. */
  argv: string[];
  /** sha256 of kind, slide, out and argv. */
  fingerprint: string;
  /** The manifest row it came from. */
  line: number;
}

/** A path option's value made absolute against `base` (builtin models are not paths). */
function absolutePath(name: string, value: string, base: string): string {
  if (name === 'model' && value.startsWith('builtin:')) return value;
  return resolve(base, value);
}

/**
 * The tokens of the options given on the batch's command line (`values` as
 * parseFlags returned them), for the job's table: a flag at its default is
 * left out, so a job's fingerprint does not change when a default does not.
 */
export function optionTokens(table: FlagTable, values: Record<string, unknown>, paths: readonly string[], base: string): string[] {
  const tokens: string[] = [];
  for (const [name, flag] of Object.entries(table)) {
    const v = values[name];
    if (v === undefined || v === false) continue;
    if ('default' in flag && flag.default === v) continue;
    if (v === true) tokens.push(`--${name}`);
    else for (const item of Array.isArray(v) ? v : [v]) tokens.push(`--${name}=${paths.includes(name) ? absolutePath(name, String(item), base) : String(item)}`);
  }
  return tokens;
}

const TRUE_CELLS = ['true', 'yes', '1', 'on'];
const FALSE_CELLS = ['false', 'no', '0', 'off'];

/** A manifest row's cells as option tokens (after the batch's, so a row overrides them). */
function cellTokens(table: FlagTable, cells: Readonly<Record<string, string>>, paths: readonly string[], base: string, where: string): string[] {
  const tokens: string[] = [];
  for (const [name, value] of Object.entries(cells)) {
    const flag = table[name]!;
    if (flag.type === 'boolean') {
      const v = value.toLowerCase();
      if (TRUE_CELLS.includes(v)) tokens.push(`--${name}`);
      else if (!FALSE_CELLS.includes(v)) throw new RangeError(`${where}: Expected true or false for column ${name} but received '${value}'`);
      continue;
    }
    tokens.push(`--${name}=${paths.includes(name) ? absolutePath(name, value, base) : value}`);
  }
  return tokens;
}

export function fingerprintOf(job: Pick<JobSpec, 'kind' | 'slide' | 'out' | 'argv'>): string {
  return createHash('sha256').update(JSON.stringify([job.kind, job.slide, job.out, job.argv])).digest('hex');
}

/**
 * The manifest's rows as jobs: the batch's options (`tokens`) then each row's
 * cells, every combination checked with the command's own parser (so a bad
 * value fails here, naming the row, before anything runs or is enqueued).
 */
export async function planJobs(manifest: Manifest, kind: JobKind, tokens: readonly string[], root: string): Promise<JobSpec[]> {
  const info = await jobKind(kind);
  const jobs: JobSpec[] = [];
  for (const row of manifest.rows) {
    const where = `Manifest ${manifest.source} row ${row.line}`;
    // A row's cell replaces the command line's value, lists (--model …) included.
    const lists = Object.keys(row.cells).filter((name) => info.flags[name]?.type === 'list');
    const kept = tokens.filter((tok) => !lists.some((name) => tok.startsWith(`--${name}=`)));
    const argv = [...kept, ...cellTokens(info.flags, row.cells, info.paths, manifest.base, where)];
    let values: Record<string, unknown>;
    try {
      values = parseFlags(kind, info.flags, [row.slide, ...argv], { positionals: true }).values;
    } catch (e) {
      throw new RangeError(`${where}: ${(e as Error).message}`);
    }
    for (const name of info.required) {
      if (values[name] === undefined || (Array.isArray(values[name]) && (values[name] as unknown[]).length === 0)) throw new RangeError(`Expected --${name} for every ${kind} job (on the command line or a '${name}' column) but ${where} has none`);
    }
    for (const model of ([] as (string | undefined)[]).concat(values.model as string | string[] | undefined)) {
      if (model !== undefined && !model.startsWith('builtin:') && !(await pathExists(model))) {
        throw new RangeError(`${where}: Expected an existing model for --model but received '${model}' (no such file or folder)`);
      }
    }
    const out = join(root, row.stem);
    const spec = { kind, slide: row.slide, out, argv };
    const fingerprint = fingerprintOf(spec);
    jobs.push({ id: `${kind}.${row.stem.replaceAll(':', '_')}.${fingerprint.slice(0, 12)}`, stem: row.stem, root, fingerprint, line: row.line, ...spec });
  }
  return jobs;
}

/** What a finished job leaves in ROOT/.histoflow-batch/<stem>.json. */
export interface JobRecord {
  id: string;
  kind: JobKind;
  slide: string;
  out: string;
  argv: string[];
  fingerprint: string;
  finished: string;
  seconds: number;
  summary: Record<string, unknown>;
}

export function recordPath(job: Pick<JobSpec, 'root' | 'stem'>): string {
  return join(job.root, RECORD_FOLDER, `${job.stem}.json`);
}

async function readRecord(job: JobSpec): Promise<JobRecord | undefined> {
  const text = await readFile(recordPath(job), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as JobRecord;
  } catch {
    return undefined; // a torn record cannot exist (atomic writes); anything else there is not ours
  }
}

/**
 * Whether a job has finished already: its record matches and its output is
 * there. Throws, naming the folder, when the slide was finished with other
 * options: the outputs would mix.
 */
export async function isFinished(job: JobSpec): Promise<boolean> {
  const record = await readRecord(job);
  if (!record) return false;
  if (!(await pathExists(job.out))) return false;
  if (record.fingerprint !== job.fingerprint) {
    throw new RangeError(
      `${job.out} was written by an earlier ${record.kind} batch with other options (${record.argv.join(' ') || 'none'}; now ${job.argv.join(' ') || 'none'}); ` +
        `remove it and ${recordPath(job)} to redo it, or choose another --out`,
    );
  }
  return true;
}

export interface JobProgress {
  /** What the job is doing: tile, predict, write, pack. */
  phase: string;
  done: number;
  total: number;
}

export interface JobOutcome {
  id: string;
  stem: string;
  out: string;
  /** done: ran now; already-done: its record said so (a no-op). */
  status: 'done' | 'already-done';
  seconds: number;
  summary: Record<string, unknown>;
}

export interface RunJobOptions {
  onProgress?: (p: JobProgress) => void;
  signal?: AbortSignal;
}

/** A wrong input or option: retrying cannot help, so a queue fails it at once. */
export function isPermanent(e: unknown): boolean {
  return e instanceof RangeError || e instanceof TypeError;
}

/** A trained model is loaded once per process and kept for the jobs after. */
const predictors = new Map<string, Promise<unknown>>();

/** Runs one job here (or does nothing if it finished before) and records it. */
export async function runJob(job: JobSpec, options: RunJobOptions = {}): Promise<JobOutcome> {
  const started = performance.now();
  if (await isFinished(job)) {
    const record = (await readRecord(job))!;
    return { id: job.id, stem: job.stem, out: job.out, status: 'already-done', seconds: 0, summary: record.summary };
  }
  const info = await jobKind(job.kind);
  const { values } = parseFlags(job.kind, info.flags, [job.slide, ...job.argv], { positionals: true });
  const summary = await RUNNERS[job.kind](job, values, options);
  const seconds = (performance.now() - started) / 1000;
  const record: JobRecord = {
    id: job.id, kind: job.kind, slide: job.slide, out: job.out, argv: job.argv, fingerprint: job.fingerprint,
    finished: new Date().toISOString(), seconds, summary,
  };
  await writeFileAtomic(recordPath(job), `${JSON.stringify(record, null, 2)}\n`);
  return { id: job.id, stem: job.stem, out: job.out, status: 'done', seconds, summary };
}

type Values = Record<string, unknown>;
type Runner = (job: JobSpec, values: Values, options: RunJobOptions) => Promise<Record<string, unknown>>;

/** Drops undefined options (the library functions refuse explicit undefined for some). */
function defined<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/** The same mapping from flags to options as `histoflow tile` (src/cli/tile.ts), always resuming. */
const runTile: Runner = async (job, v, { onProgress, signal }) => {
  const { tileSlide } = await import('../tiling/tile.js');
  const { memoryLimit } = await import('../memory_budget.js');
  const { parseRoi, readTarget } = await import('../cli/tile.js');
  const result = await tileSlide(job.slide, job.out, defined({
    size: v.size as number | undefined,
    stride: v.stride as number | undefined,
    level: v.level as number | undefined,
    mpp: v.mpp as number | undefined,
    minTissue: v['min-tissue'] as number | undefined,
    roi: v.roi === undefined ? undefined : parseRoi(v.roi as string),
    normalize: v.normalize as never,
    target: v.target === undefined ? undefined : (await readTarget(v.target as string)) as never,
    format: v.format as never,
    quality: v.quality as number | undefined,
    annotations: v.annotations as string | undefined,
    masks: v.masks ? true : undefined,
    reader: v.reader as never,
    maxMemory: memoryLimit(v['max-memory'] as string | undefined),
    resume: true,
    tissue: {
      ...(v['tissue-channel'] === undefined ? {} : { channel: v['tissue-channel'] as never }),
      ...(v['exclude-pen'] ? { excludePen: true } : {}),
      ...(v.thumbnail === undefined ? {} : { maxSize: v.thumbnail as number }),
    },
    onProgress: onProgress && ((done: number, total: number) => onProgress({ phase: 'tile', done, total })),
    signal,
  }));
  return { tiles: result.kept, written: result.written, skipped: result.skipped, level: result.level, format: result.format };
};

/** As `histoflow predict-slide` (src/cli/predict_slide.ts); a staging folder a dead worker left is removed first. */
const runPredictSlide: Runner = async (job, v, { onProgress }) => {
  const loader = await import('../heatmap/load_predictor.js');
  const { predictSlide } = await import('../heatmap/predict_slide.js');
  const { memoryLimit } = await import('../memory_budget.js');
  // --model is one model, or (where predict-slide takes ensembles) a list of them.
  const models = ([] as string[]).concat(v.model as string | string[]);
  const load = { backend: v.backend as never, ...(v.batch ? { batchSize: v.batch as number } : {}), ...(v.provider ? { provider: v.provider as never } : {}) };
  const key = JSON.stringify([models, load]);
  if (!predictors.has(key)) {
    const ensemble = (loader as { loadSlideEnsemble?: (m: readonly string[], o: typeof load) => Promise<unknown> }).loadSlideEnsemble;
    const loading = models.length === 1 || !ensemble ? loader.loadSlidePredictor(models[0]!, load) : ensemble(models, load);
    predictors.set(key, loading.catch((e: unknown) => {
      predictors.delete(key);
      throw e;
    }));
  }
  const predictor = (await predictors.get(key)) as Awaited<ReturnType<typeof loader.loadSlidePredictor>>;
  const stale = await readdir(job.out).catch(() => [] as string[]);
  for (const name of stale) if (name.startsWith('.predict-slide-')) await rm(join(job.out, name), { recursive: true, force: true });
  const result = await predictSlide(job.slide, predictor, defined({
    out: job.out,
    level: v.level as number | undefined,
    mpp: v.mpp as number | undefined,
    size: v.size as number | undefined,
    stride: v.stride as number | undefined,
    tta: v.tta as boolean | undefined,
    threshold: v.threshold as number | undefined,
    minTissue: v['min-tissue'] as number | undefined,
    batchSize: v.batch as number | undefined,
    reader: v.reader as never,
    maxMemory: v['max-memory'] === undefined ? undefined : memoryLimit(v['max-memory'] as string),
    tissue: v.thumbnail === undefined ? undefined : { maxSize: v.thumbnail as number },
    detections: v.detections as boolean | undefined,
    overlayDownsample: v['overlay-downsample'] as number | undefined,
    reportSize: v['report-size'] as number | undefined,
    onProgress: onProgress && ((done: number, total: number) => onProgress({ phase: 'predict', done, total })),
    onWrite: onProgress && ((done: number, total: number) => onProgress({ phase: 'write', done, total })),
  }));
  return { tiles: result.tiles, regions: result.regions, tumourFraction: result.tumourFraction, maxProbability: result.maxProbability, model: result.model };
};

/** The packed file of a pack job, in ROOT/<stem>/. */
export const PACK_FILE = 'dataset.hfpack';

/** As `histoflow pack SRC --out ROOT/<stem>/dataset.hfpack`: resumes FILE.partial; a file already renamed into place is the finished job of a worker that died before its record. */
const runPack: Runner = async (job, v, { onProgress, signal }) => {
  const { packDataset } = await import('../dataset/pack.js');
  const { makeDirectory } = await import('../output.js');
  const file = join(job.out, PACK_FILE);
  if (await stat(file).then((s) => s.isFile(), () => false)) return { file, renamedBefore: true };
  await makeDirectory(job.out, '--out');
  const r = await packDataset(job.slide, file, defined({
    split: v.split as never,
    concurrency: v.concurrency as number | undefined,
    resume: true,
    signal,
    onProgress: onProgress && ((done: number, total: number) => onProgress({ phase: 'pack', done, total })),
  }));
  return { file, count: r.count, written: r.written, resumed: r.resumed, unreadable: r.unreadable, duplicates: r.duplicates };
};

const RUNNERS: Record<JobKind, Runner> = { tile: runTile, 'predict-slide': runPredictSlide, pack: runPack };
