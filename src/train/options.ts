/**
 * The trainer's options: validated once here (TypeError / RangeError naming
 * the option), defaulted, and kept as one JSON object in the run's
 * state.json so that `--resume` replays exactly the same run.
 */
import { readFile } from 'node:fs/promises';

import { checkPipeline, type AugmentPipelineInput } from '../augment/pipeline.js';
import { checkBoolean, checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, invalidRange, invalidType } from '../errors.js';
import { STAIN_METHODS, type StainMethod } from '../stain/normalize.js';
import { checkTrainingBackend, type TrainingBackend } from '../tfjs/backend.js';
import { BASELINE_MAX_BLOCKS } from '../models/baseline_cnn.js';
import { UNET_MAX_DEPTH } from '../models/unet.js';
import { isZooModel, modelTask } from '../models/zoo.js';
import { LR_SCHEDULES, type LrSchedule } from './schedule.js';
import { TRAIN_TASKS, type TrainTask } from './segment.js';

/**
 * Augmentation presets. `light` (the default) is what trains well on
 * PCam-like patches: any of the 8 dihedral views (tissue has no orientation),
 * HED jitter at Tellez et al.'s "light" strength, and mild brightness /
 * contrast / saturation / hue jitter for scanner and stain variation.
 */
export const AUGMENT_PRESETS: Record<string, AugmentPipelineInput> = {
  none: {},
  d4: { d4: true },
  light: { d4: true, hed: 'light', hsv: { brightness: 0.1, contrast: 0.1, saturation: 0.1, hue: 0.02 } },
  strong: {
    d4: true, hed: 'strong', hsv: { brightness: 0.2, contrast: 0.2, saturation: 0.2, hue: 0.04 },
    blur: { sigma: [0.1, 1.5], p: 0.3 }, elastic: { alpha: 4, sigma: 16, p: 0.3 },
  },
  /** `light` plus elastic deformation, which a mask follows (segmentation's default). */
  segment: {
    d4: true, hed: 'light', hsv: { brightness: 0.1, contrast: 0.1, saturation: 0.1, hue: 0.02 }, elastic: { alpha: 4, sigma: 16, p: 0.5 },
  },
};
export const DEFAULT_AUGMENT = 'light';
/** Defaults of `task: 'segment'` where they differ from the recipe's: the model and the augmentation. */
export const SEGMENT_DEFAULTS = { model: 'unet', augment: 'segment' } as const;

/**
 * Recipes: the defaults of a run, chosen by experiment on real PatchCamelyon
 * (README, "Training recipes"). `quick` is the default of every option it
 * sets; an option given explicitly wins over the recipe. The time budget
 * applies only when --epochs is not given (a run of an explicit length runs
 * that long unless it is given a budget too). Both train on the whole patch:
 * on PCam the 32 px of context around the labelled centre 32x32 are worth
 * more than the speed of a 64 px crop (README, "Training recipes": 0.9334
 * against 0.9099 in 8 epochs). `best` trains two members side by side
 * (ensemble.ts): on 2 cores two one-thread runs train 21 % more patches a
 * second than one two-thread run; with three blocks their mean with TTA
 * scored 0.9496 where single runs of seeds 0 and 2 scored 0.9473 and
 * 0.9476. Its fourth block (depth 4: the last map sees 76 px of the 96
 * instead of 36) took the pair to 0.9518 with TTA in the same 90 minutes.
 * quick keeps three blocks: a fourth was screened at 10 fixed epochs
 * (0.9431 against 0.9358), not yet within quick's 15-minute budget.
 */
export interface Recipe {
  model: string;
  width: number;
  /** The model's blocks (baseline: zoo.ts BuildModelOptions.depth). */
  depth: number;
  epochs: number;
  /** Seconds (when epochs is not given explicitly). */
  timeBudget: number;
  augment: string;
  ema: number;
  patience: number;
  /** Models trained side by side as an ensemble (TrainOptions.members). */
  members: number;
}
export const RECIPES = {
  quick: { model: 'baseline', width: 0.5, depth: 3, epochs: 20, timeBudget: 15 * 60, augment: 'light', ema: 0.999, patience: 0, members: 1 },
  best: { model: 'baseline', width: 0.5, depth: 4, epochs: 100, timeBudget: 90 * 60, augment: 'light', ema: 0.999, patience: 0, members: 2 },
} as const satisfies Record<string, Recipe>;
export type RecipeName = keyof typeof RECIPES;
export const RECIPE_NAMES = Object.keys(RECIPES) as RecipeName[];
export const DEFAULT_RECIPE: RecipeName = 'quick';

export interface TrainOptions {
  /**
   * 'classify' (default): one label per patch; 'segment': per-pixel targets
   * from label masks (tiles written with --masks) for a segmentation model
   * (default unet, augmentation 'segment', whole tiles: no crop).
   */
  task?: TrainTask;
  /** segment: the mask label trained as foreground (default 'tumour' when the masks have it, else their only label). */
  positive?: string;
  /** The defaults of every option not given (default quick; see RECIPES). */
  recipe?: RecipeName;
  /** Dataset: Kaggle folder, tile folder, packed file or PatchCamelyon folder (required unless resuming). */
  data?: string;
  /** 'baseline' (default), 'resnet', 'vgg', or a path to a TF.js model.json (folder or file). */
  model?: string;
  /** Filter multiplier of zoo models (default: the recipe's, 0.5). */
  width?: number;
  /**
   * Poolings of a zoo model that takes them: the baseline's blocks (1–6;
   * default: the recipe's), the unet's levels (1–6, default 3).
   */
  depth?: number;
  /** Epochs in all (default: the recipe's, within its time budget). */
  epochs?: number;
  /** Images per training step (default 64). */
  batchSize?: number;
  /** Adam's base learning rate (default 1e-3). */
  learningRate?: number;
  /** LR schedule over the epochs (default cosine). */
  schedule?: LrSchedule;
  /** Stop after this many epochs without a better validation AUC; 0 never stops early (default: the recipe's, 0). */
  patience?: number;
  /**
   * Seconds of wall time this call may take: no epoch starts that the slowest
   * epoch so far (this call's first left out once a second is timed) says
   * would end past it (the first always runs); the schedule is planned over
   * the epochs that fit; best/ holds the best epoch as always. Default: none.
   */
  timeBudget?: number;
  /** A preset name (none, d4, light, strong), a pipeline JSON file, or a pipeline object (default light). */
  augment?: string | AugmentPipelineInput;
  /**
   * Train on random crops of this side and predict on the centre crop (PCam's
   * label is about the centre 32x32, which every crop of at least
   * (size + 32) / 2 contains; smaller inputs train faster, but on PCam the
   * context beyond the crop is worth more). 0 = the whole patch (default).
   */
  crop?: number;
  /** Stain-normalize every patch first (train and inference). */
  normalize?: StainMethod;
  /** Image whose stains are the target of `normalize` (default: the method's reference). */
  target?: string;
  /** TF.js training backend (default auto). */
  backend?: 'auto' | TrainingBackend;
  /** Seed of the split, initial weights, shuffles, augmentation and dropout (default 0). */
  seed?: number;
  /** Seed of the train / validation split alone (default: seed); an ensemble's members share it. */
  splitSeed?: number;
  /**
   * Train this many models side by side, each in its own process with an
   * equal share of the CPU threads, seeds seed, seed + 1, … and one split, into
   * out/member-1 … with out/ensemble.json listing them: predict, evaluate and
   * predict-slide take out as the ensemble (ensemble.ts). Default: the
   * recipe's (1: one model in out).
   */
  members?: number;
  /** Validation fraction when the data has no validation split (default 0.2). */
  validation?: number;
  /** Metadata field (packed, tiles) or train_labels.csv column keeping groups on one side of the split. */
  groupBy?: string;
  /**
   * Keep one image of each group of identical images (Kaggle and tile folders,
   * packed files). Without it identical images are kept but never straddle the
   * split; a fixed valid split never holds a copy of a training image.
   */
  dedupe?: boolean;
  /**
   * Decay per step of an exponential moving average of the weights, which
   * validation scores and best/ keeps (train/ema.ts); 0 = none (default 0).
   */
  ema?: number;
  /** Run folder (default runs/<model>-<date>). */
  out?: string;
  /** Continue the run in `out` from its last finished epoch. */
  resume?: boolean;
}

/** The options a run records (state.json `args`): everything resolved, JSON only. */
export interface RunArgs {
  /** What the run trains (runs recorded before the option: classify). */
  task?: TrainTask;
  /** segment: the mask label trained as foreground; null until the masks are read. */
  positive?: string | null;
  /** The recipe the defaults came from (runs recorded before recipes: none). */
  recipe?: RecipeName;
  data: string;
  model: string;
  width: number;
  /** The model's poolings (TrainOptions.depth), or null: the model's own (runs recorded before the option: null). */
  depth?: number | null;
  epochs: number;
  batchSize: number;
  learningRate: number;
  schedule: LrSchedule;
  patience: number;
  /** Seconds this call may take (TrainOptions.timeBudget), or null. */
  timeBudget: number | null;
  /** The augmentation pipeline as given (preset resolved, file read). */
  augment: AugmentPipelineInput;
  /** The preset name or file the pipeline came from. */
  augmentSource: string;
  crop: number | null;
  normalize: StainMethod | null;
  target: string | null;
  backend: 'auto' | TrainingBackend;
  seed: number;
  /** The split's seed (runs recorded before the option: seed). */
  splitSeed?: number;
  validation: number;
  groupBy: string | null;
  dedupe: boolean;
  /** Weight-average decay per step; 0 = none (runs recorded before the option: none). */
  ema: number;
}

export const TRAIN_OPTION_KEYS = [
  'task', 'positive', 'recipe', 'data', 'model', 'width', 'depth', 'epochs', 'batchSize', 'learningRate', 'schedule', 'patience', 'timeBudget', 'augment', 'crop', 'normalize',
  'target', 'backend', 'seed', 'splitSeed', 'validation', 'groupBy', 'dedupe', 'ema', 'out', 'resume', 'members',
] as const;

function checkString(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw invalidType(name, 'a non-empty string', value);
  return value;
}

async function resolveAugment(value: unknown): Promise<{ pipeline: AugmentPipelineInput; source: string }> {
  if (value === undefined) return { pipeline: AUGMENT_PRESETS[DEFAULT_AUGMENT]!, source: DEFAULT_AUGMENT };
  if (typeof value === 'string') {
    const preset = AUGMENT_PRESETS[value];
    if (preset) return { pipeline: preset, source: value };
    if (!/\.json$/i.test(value)) throw invalidRange('augment', `a preset (${Object.keys(AUGMENT_PRESETS).join(', ')}) or a pipeline .json file`, value);
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(value, 'utf8'));
    } catch (e) {
      throw new RangeError(`Expected a readable pipeline JSON file for augment but ${value}: ${e instanceof Error ? e.message : String(e)}`);
    }
    checkPipeline(parsed);
    return { pipeline: parsed as AugmentPipelineInput, source: value };
  }
  checkPipeline(value);
  return { pipeline: value as AugmentPipelineInput, source: 'object' };
}

/** Validates and defaults the options of a new run (data required). */
export async function resolveRunArgs(options: TrainOptions): Promise<RunArgs> {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, TRAIN_OPTION_KEYS);
  if (o.data === undefined) throw invalidType('data', 'a dataset path (Kaggle folder, tile folder, packed file or PatchCamelyon folder)', o.data);
  const recipeName = o.recipe === undefined ? DEFAULT_RECIPE : checkOneOf('recipe', o.recipe, RECIPE_NAMES);
  const recipe: Recipe = RECIPES[recipeName];
  const epochs = o.epochs === undefined ? recipe.epochs : checkInteger('epochs', o.epochs, 1, 100_000);
  const timeBudget = o.timeBudget !== undefined ? checkTimeBudget(o.timeBudget) : o.epochs === undefined ? recipe.timeBudget : null;
  const task = o.task === undefined ? 'classify' : checkOneOf('task', o.task, TRAIN_TASKS);
  const segment = task === 'segment';
  if (o.positive !== undefined && !segment) throw invalidRange('positive', 'a positive label only with task segment', o.positive);
  const model = o.model === undefined ? (segment ? SEGMENT_DEFAULTS.model : recipe.model) : checkString('model', o.model);
  if (isZooModel(model) && modelTask(model) !== task) {
    throw invalidRange('model', `a ${task === 'segment' ? 'segmentation model (unet) for task segment' : 'classifier for task classify (unet needs --task segment)'}`, model);
  }
  const { pipeline, source } = await resolveAugment(o.augment ?? (segment ? SEGMENT_DEFAULTS.augment : recipe.augment));
  if (o.target !== undefined && o.normalize === undefined) throw invalidRange('target', 'a target only together with normalize', o.target);
  const seed = o.seed === undefined ? 0 : checkInteger('seed', o.seed, 0, 2 ** 31 - 1);
  if (o.members !== undefined && checkMembers(o.members) !== 1) throw invalidRange('members', '1 for one run (trainEnsemble trains several)', o.members);
  return {
    task,
    positive: o.positive === undefined ? null : checkString('positive', o.positive),
    recipe: recipeName,
    data: checkString('data', o.data),
    model,
    width: o.width === undefined ? recipe.width : checkNumber('width', o.width, 1 / 64, 16),
    depth: o.depth === undefined ? (model === recipe.model ? recipe.depth : null) : checkDepth(o.depth, model),
    epochs,
    batchSize: o.batchSize === undefined ? 64 : checkInteger('batchSize', o.batchSize, 1, 65536),
    learningRate: o.learningRate === undefined ? 1e-3 : checkNumber('learningRate', o.learningRate, 0, 10),
    schedule: o.schedule === undefined ? 'cosine' : checkOneOf('schedule', o.schedule, LR_SCHEDULES),
    patience: o.patience === undefined ? recipe.patience : checkInteger('patience', o.patience, 0, 100_000),
    timeBudget,
    augment: pipeline,
    augmentSource: source,
    crop: o.crop === undefined ? null : checkCrop(o.crop, segment),
    normalize: o.normalize === undefined ? null : checkOneOf('normalize', o.normalize, STAIN_METHODS),
    target: o.target === undefined ? null : checkString('target', o.target),
    backend: o.backend === undefined ? 'auto' : checkTrainingBackend('backend', o.backend),
    seed,
    splitSeed: o.splitSeed === undefined ? seed : checkInteger('splitSeed', o.splitSeed, 0, 2 ** 31 - 1),
    validation: o.validation === undefined ? 0.2 : checkValidation(o.validation),
    groupBy: o.groupBy === undefined ? null : checkString('groupBy', o.groupBy),
    dedupe: o.dedupe === undefined ? false : checkBoolean('dedupe', o.dedupe),
    ema: o.ema === undefined ? recipe.ema : checkEma(o.ema),
  };
}

/** The members of an ensemble run: 1 (a single model) to 64. */
export function checkMembers(value: unknown): number {
  return checkInteger('members', value, 1, 64);
}

/** A depth for the models that take one (zoo.ts buildModel checks it against the input size). */
function checkDepth(value: unknown, model: string): number {
  const v = checkInteger('depth', value, 1, model === 'unet' ? UNET_MAX_DEPTH : BASELINE_MAX_BLOCKS);
  if (model !== 'baseline' && model !== 'unet') throw invalidRange('depth', `no depth for model ${model} (only baseline and unet take one)`, v);
  return v;
}

function checkTimeBudget(value: unknown): number {
  const v = checkNumber('timeBudget', value, 0, 366 * 86_400);
  if (v <= 0) throw invalidRange('timeBudget', 'a number of seconds > 0', v);
  return v;
}

function checkCrop(value: unknown, segment: boolean): number | null {
  const v = checkInteger('crop', value, 0, 4096);
  if (segment && v !== 0) throw invalidRange('crop', '0 with task segment (a segmentation model trains and predicts on whole tiles)', v);
  if (v > 0 && v < 8) throw invalidRange('crop', '0 (the whole patch) or a side of 8 to 4096 pixels', v);
  return v === 0 ? null : v;
}

function checkEma(value: unknown): number {
  const v = checkNumber('ema', value, 0, 1);
  if (v >= 1) throw invalidRange('ema', 'a decay per step in [0, 1) (0 = no weight average)', v);
  return v;
}

function checkValidation(value: unknown): number {
  const v = checkNumber('validation', value, 0, 1);
  if (v <= 0 || v >= 1) throw invalidRange('validation', 'a fraction strictly between 0 and 1', v);
  return v;
}

/**
 * A resumed run takes its recorded args; `epochs`, `patience` and
 * `timeBudget` (this call's) may be changed (train longer, stop later); any other option given must equal the
 * recorded one (a RangeError naming it otherwise).
 */
export function resumeArgs(recorded: RunArgs, options: TrainOptions, backend: TrainingBackend): RunArgs {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, TRAIN_OPTION_KEYS);
  const args = { ...recorded };
  if (o.epochs !== undefined) args.epochs = checkInteger('epochs', o.epochs, 1, 100_000);
  if (o.patience !== undefined) args.patience = checkInteger('patience', o.patience, 0, 100_000);
  args.timeBudget = o.timeBudget === undefined ? null : checkTimeBudget(o.timeBudget);
  args.dedupe = recorded.dedupe ?? false; // runs recorded before the option never deduplicated
  args.ema = recorded.ema ?? 0; // nor averaged weights
  if (o.resume !== undefined) checkBoolean('resume', o.resume);
  if (o.members !== undefined && checkMembers(o.members) !== 1) throw invalidRange('members', '1 or nothing to resume one run (an ensemble folder resumes its members)', o.members);
  const same: Array<[keyof TrainOptions, unknown]> = [
    ['data', recorded.data], ['model', recorded.model], ['width', recorded.width], ['depth', recorded.depth ?? undefined], ['batchSize', recorded.batchSize],
    ['learningRate', recorded.learningRate], ['schedule', recorded.schedule], ['normalize', recorded.normalize ?? undefined],
    ['target', recorded.target ?? undefined], ['seed', recorded.seed], ['splitSeed', recorded.splitSeed ?? recorded.seed], ['validation', recorded.validation],
    ['groupBy', recorded.groupBy ?? undefined], ['augment', recorded.augmentSource], ['crop', recorded.crop ?? 0],
    ['dedupe', recorded.dedupe ?? false], ['ema', recorded.ema ?? 0], ['recipe', recorded.recipe],
    ['task', recorded.task ?? 'classify'], ['positive', recorded.positive ?? undefined],
  ];
  for (const [key, value] of same) {
    const given = o[key];
    if (given === undefined) continue;
    const comparable = key === 'augment' && typeof given !== 'string' ? 'object' : given;
    if (comparable !== value) {
      throw invalidRange(key, `the resumed run's ${key} (${JSON.stringify(value)}) or nothing`, given);
    }
  }
  // 'auto' resolved to a backend when the run started: a resume stays on it (exactness needs one backend).
  if (o.backend !== undefined && o.backend !== 'auto' && o.backend !== backend) {
    throw invalidRange('backend', `the resumed run's backend (${backend})`, o.backend);
  }
  return args;
}
