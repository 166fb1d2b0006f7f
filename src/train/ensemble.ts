/**
 * train({ members: N }): N models trained side by side, an ensemble in one
 * run folder:
 *
 *   out/ensemble.json     the members' folders, seeds and options, and after
 *                         the run the ensemble's validation AUC
 *   out/member-1/ …       each an ordinary run folder (run_folder.ts)
 *   out/evaluation/       the ensemble (mean of probabilities) scored on the
 *                         validation split (evaluate.ts)
 *
 * Each member is a process of its own (member_worker.ts) with an equal share
 * of the CPU threads (OMP_NUM_THREADS, and TF_NUM_INTRAOP_THREADS /
 * TF_NUM_INTEROP_THREADS for libtensorflow), seed seed + i and the split of
 * `seed` (splitSeed), so that the members' validation images are the same
 * and the ensemble's validation AUC is a fair one. Independent processes
 * scale better than one process with more threads: on a 2-core machine two
 * one-thread members train 336 patches/s where one two-thread run trains
 * 277 (README, "Training recipes"). The time budget is each member's;
 * scoring the ensemble on the validation split comes after it (a few
 * seconds per member).
 *
 * `--resume` on the folder resumes every member (one that never finished an
 * epoch starts again from its recorded options). predict, evaluate and
 * predict-slide take the folder as one `--model` (models/io.ts
 * expandEnsembles).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { StatusLine } from '../cli/progress.js';
import { checkObject, invalidRange } from '../errors.js';
import { evaluateModel } from '../inference/evaluate.js';
import { ENSEMBLE_JSON, ensembleMembers, readEnsembleJson } from '../models/io.js';
import { makeDirectory, pathExists } from '../output.js';
import { checkMembers, DEFAULT_RECIPE, RECIPE_NAMES, RECIPES, resolveRunArgs, type RecipeName, type TrainOptions } from './options.js';
import { defaultRunName, LAST_DIR, STATE_JSON, writeJson } from './run_folder.js';
import type { MemberReport, MemberRequest } from './member_worker.js';
import type { TrainHooks, TrainResult } from './train.js';

const WORKER = fileURLToPath(new URL('./member_worker.js', import.meta.url));

/** ensemble.json. */
export interface EnsembleManifest {
  version: 1;
  /** Member run folders, inside the ensemble's folder. */
  members: string[];
  /** Each member's options (a member that never finished an epoch starts again from them). */
  member_options: TrainOptions[];
  /** CPU threads of each member (OMP_NUM_THREADS). */
  threads: number;
  /** After a finished run: the ensemble's (mean of probabilities) validation AUC, and each member's best. */
  val_auc?: number;
  member_val_auc?: number[];
}

/** The ensemble's result: TrainResult's fields for the whole (run and checkpoint: the ensemble's folder), and each member's. */
export interface EnsembleResult extends TrainResult {
  /** The ensemble's validation AUC (mean of the members' best/ probabilities, no TTA); best_val_auc holds the same. */
  ensemble_val_auc: number;
  members: TrainResult[];
  /** CPU threads of each member. */
  threads: number;
}

/** Whether `options` asks for several members (given, or the recipe's) or resumes an ensemble folder. */
export async function wantsEnsemble(options: TrainOptions): Promise<boolean> {
  if (typeof options !== 'object' || options === null) return false;
  if (options.resume === true) return typeof options.out === 'string' && options.out !== '' && (await ensembleMembers(options.out)) !== undefined;
  if (options.members !== undefined) return checkMembers(options.members) > 1;
  const recipe = RECIPE_NAMES.includes(options.recipe as RecipeName) ? options.recipe! : DEFAULT_RECIPE;
  return RECIPES[recipe].members > 1;
}

/**
 * The threads of each of `members` processes: an equal share of the threads
 * one process would use, by the rule of native/core/runtime.cc
 * (default_threads): OMP_NUM_THREADS when it names a count of 1 to 4096 (its
 * first, for a nested list), else the CPUs this process may run on (Node's
 * availableParallelism reads the same affinity mask).
 */
export function memberThreads(members: number, env: NodeJS.ProcessEnv = process.env): number {
  const omp = /^\s*\+?(\d+)(?:,|$)/.exec(env.OMP_NUM_THREADS ?? '');
  const total = omp && Number(omp[1]) >= 1 && Number(omp[1]) <= 4096 ? Number(omp[1]) : availableParallelism();
  return Math.max(1, Math.floor(total / members));
}

/** A new ensemble: every option checked, the folder made, ensemble.json written before any member starts. */
async function newEnsemble(options: TrainOptions): Promise<{ run: string; manifest: EnsembleManifest; launch: TrainOptions[] }> {
  const o = checkObject('options', options) as TrainOptions;
  const recipe = RECIPE_NAMES.includes(o.recipe as RecipeName) ? o.recipe! : DEFAULT_RECIPE;
  const n = o.members === undefined ? RECIPES[recipe].members : checkMembers(o.members);
  const { members: _members, out, ...single } = o;
  const args = await resolveRunArgs(single);
  if (args.task === 'segment') throw invalidRange('members', '1 with task segment (an ensemble is of classifiers)', n);
  if (!(await pathExists(args.data))) throw invalidRange('data', 'an existing dataset (file or folder)', args.data);
  if (args.seed + n - 1 > 2 ** 31 - 1) throw invalidRange('seed', `at most ${2 ** 31 - n} with ${n} members (they take seeds seed … seed + ${n - 1})`, args.seed);
  const run = resolve(out ?? defaultRunName(args.model));
  if ((await pathExists(join(run, ENSEMBLE_JSON))) || (await pathExists(join(run, STATE_JSON)))) {
    throw new Error(`${run} already holds a run: pass --resume to continue it, or choose another --out`);
  }
  await makeDirectory(run, 'out');
  const names = Array.from({ length: n }, (_, i) => `member-${i + 1}`);
  const manifest: EnsembleManifest = {
    version: 1, members: names, threads: memberThreads(n),
    member_options: names.map((name, i) => ({ ...single, seed: args.seed + i, splitSeed: args.splitSeed ?? args.seed, members: 1, out: join(run, name) })),
  };
  await writeJson(join(run, ENSEMBLE_JSON), manifest);
  return { run, manifest, launch: manifest.member_options };
}

/** A recorded ensemble to resume: members with a finished epoch resume (with this call's epochs, patience, time budget), the others start again. */
async function resumedEnsemble(options: TrainOptions): Promise<{ run: string; manifest: EnsembleManifest; launch: TrainOptions[] }> {
  const run = resolve(options.out!);
  const { folders, json } = (await readEnsembleJson(run))!;
  const manifest = json as unknown as EnsembleManifest;
  if (!Array.isArray(manifest.member_options) || manifest.member_options.length !== folders.length) {
    throw new Error(`${join(run, ENSEMBLE_JSON)}: member_options does not list one entry per member; start the ensemble again without --resume`);
  }
  const { members, resume: _resume, out: _out, ...changes } = options;
  if (members !== undefined && checkMembers(members) !== folders.length) {
    throw invalidRange('members', `the resumed ensemble's ${folders.length} or nothing`, members);
  }
  // A member resumes once it has recorded an epoch (state.json, or last/ when a crash fell between the two); train's readState recovers a swap.
  const resume = await Promise.all(folders.map(async (f) => (await pathExists(join(f, STATE_JSON))) || (await pathExists(join(f, LAST_DIR)))));
  const launch = manifest.member_options.map((m, i) => (resume[i] ? { ...changes, members: 1, out: folders[i]!, resume: true } : { ...m, ...changes, members: 1, out: folders[i]! }));
  manifest.threads = memberThreads(folders.length);
  return { run, manifest, launch };
}

/** What the parent shows of a member while it trains. */
interface MemberView {
  epoch: number;
  horizon: number;
  batch: number;
  best: number | null;
}

/** Trains (or resumes) an ensemble; see the file comment. */
export async function trainEnsemble(options: TrainOptions, hooks: TrainHooks = {}): Promise<EnsembleResult> {
  const started = performance.now();
  const quiet = hooks.quiet ?? false;
  const log = quiet ? () => undefined : (hooks.log ?? ((line: string) => process.stderr.write(`${line}\n`)));
  hooks.signal?.throwIfAborted();
  const resuming = options.resume === true;
  const { run, manifest, launch } = resuming ? await resumedEnsemble(options) : await newEnsemble(options);
  const n = manifest.members.length;
  log(`${resuming ? 'resuming' : 'training'} an ensemble of ${n} side by side, ${manifest.threads} thread${manifest.threads === 1 ? '' : 's'} each → ${run}`);
  const views: MemberView[] = manifest.members.map(() => ({ epoch: 0, horizon: 0, batch: 0, best: null }));
  const line = new StatusLine(quiet);
  const children: ChildProcess[] = [];
  const stopAll = (reason: string) => {
    for (const c of children) if (c.connected) c.send({ type: 'abort', reason } satisfies MemberRequest);
  };
  const onAbort = () => stopAll('interrupted');
  // A member that fails stops the others at their next batch (resumable), instead of letting them train for nothing.
  let firstFailure: number | undefined;
  hooks.signal?.addEventListener('abort', onAbort);
  let results: PromiseSettledResult<TrainResult>[];
  try {
    results = await Promise.allSettled(launch.map((memberOptions, i) => runMember(i, memberOptions, manifest.threads, children, {
      onReport: (m) => {
        const v = views[i]!;
        if (m.type === 'batch') v.batch = m.batch;
        if (m.type === 'epoch') {
          Object.assign(v, { epoch: m.row.epoch, horizon: m.horizon, batch: 0, best: m.best });
          line.clear();
          log(`member ${i + 1}/${n} epoch ${m.row.epoch}/${m.horizon}: loss ${m.row.train_loss.toFixed(4)}, val AUC ${m.row.val_auc.toFixed(4)}` +
            ` (best ${m.best?.toFixed(4) ?? '–'}), ${m.row.seconds.toFixed(0)} s`);
        }
        line.draw(`ensemble of ${n}: ${views.map((w, k) => `#${k + 1} epoch ${w.epoch + 1}/${w.horizon || '?'} batch ${w.batch}`).join(' · ')}` +
          ` · ${((performance.now() - started) / 60_000).toFixed(1)} min`);
      },
    }).catch((e: unknown) => {
      if (firstFailure === undefined && !hooks.signal?.aborted) {
        firstFailure = i;
        stopAll(`stopped when member ${i + 1} failed`);
      }
      throw e;
    })));
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort);
    line.clear();
  }
  const failed = results.map((r, i) => (r.status === 'rejected' ? `member ${i + 1}: ${(r.reason as Error).message}` : '')).filter(Boolean);
  if (hooks.signal?.aborted) throw hooks.signal.reason instanceof Error ? hooks.signal.reason : new Error('interrupted');
  if (failed.length) throw new Error(`The ensemble in ${run} did not finish: ${failed.join('; ')}`);
  const members = results.map((r) => (r as PromiseFulfilledResult<TrainResult>).value);
  log(`scoring the ensemble of ${n} on the validation split`);
  const evaluation = await evaluateModel({ model: [run], split: 'val', out: join(run, 'evaluation') });
  await writeJson(join(run, ENSEMBLE_JSON), { ...manifest, val_auc: evaluation.auc, member_val_auc: members.map((m) => m.best_val_auc) });
  const best = Math.max(...members.map((m) => m.best_val_auc));
  log(`ensemble validation AUC ${evaluation.auc.toFixed(4)} (members ${members.map((m) => m.best_val_auc.toFixed(4)).join(', ')}; ` +
    `${evaluation.auc >= best ? '+' : ''}${(evaluation.auc - best).toFixed(4)} over the best)`);
  return {
    run, checkpoint: run, best_val_auc: evaluation.auc, ensemble_val_auc: evaluation.auc,
    best_epoch: Math.max(...members.map((m) => m.best_epoch)), epochs: Math.max(...members.map((m) => m.epochs)),
    backend: members[0]!.backend, seconds: (performance.now() - started) / 1000,
    images_per_s: members.reduce((s, m) => s + m.images_per_s, 0),
    stopped_early: members.every((m) => m.stopped_early), stopped_by_time_budget: members.some((m) => m.stopped_by_time_budget),
    resumed_from: Math.min(...members.map((m) => m.resumed_from)),
    train_images: members[0]!.train_images, val_images: members[0]!.val_images, skipped: members[0]!.skipped,
    members, threads: manifest.threads,
  };
}

/** Last bytes of a member's stderr kept for the error when it dies. */
const STDERR_TAIL = 2000;

/** Forks member `i` and trains it; rejects with what it reported or how it died. */
function runMember(
  i: number, options: TrainOptions, threads: number, children: ChildProcess[], on: { onReport: (m: MemberReport) => void },
): Promise<TrainResult> {
  return new Promise((resolvePromise, reject) => {
    const child = fork(WORKER, [], {
      // The kernels' and oneDNN's pools read OMP_NUM_THREADS; libtensorflow's (backend tensorflow) its own variables.
      env: { ...process.env, OMP_NUM_THREADS: String(threads), TF_NUM_INTRAOP_THREADS: String(threads), TF_NUM_INTEROP_THREADS: String(threads) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced',
    });
    children.push(child);
    let tail = '';
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString('utf8')).slice(-STDERR_TAIL);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let settled = false;
    child.on('message', (m: MemberReport) => {
      if (m.type === 'done') {
        settled = true;
        resolvePromise(m.result);
      } else if (m.type === 'error') {
        settled = true;
        const e = new Error(m.message);
        e.name = m.name;
        reject(e);
      } else on.onReport(m);
    });
    child.on('error', (e) => {
      if (!settled) reject(e);
      settled = true;
    });
    // 'close' comes after the member's last message and its stdio (unlike 'exit').
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      reject(new Error(`its process ended (${signal ?? `exit code ${code}`}) before it finished; --resume continues from its last finished epoch` +
        `${tail.trim() ? `; it wrote: ${tail.trim().split('\n').slice(-5).join(' | ')}` : ''}`));
    });
    child.send({ type: 'train', options } satisfies MemberRequest);
  });
}
