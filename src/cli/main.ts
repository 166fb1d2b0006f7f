#!/usr/bin/env node
/**
 * histoflow's command line: one subcommand per job. Errors print one line
 * (the message names the parameter) and exit 1; --json keeps stdout
 * machine-readable.
 */
import { augmentCommand } from './augment.js';
import { benchCommand } from './bench.js';
import { demoCommand } from './demo.js';
import { evaluateCommand } from './evaluate.js';
import { fetchDataCommand } from './fetch_data.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';
import { infoCommand } from './info.js';
import { inspectCommand } from './inspect.js';
import { packCommand } from './pack.js';
import { predictSlideCommand } from './predict_slide.js';
import { predictCommand } from './predict.js';
import { stainCommand } from './stain.js';
import { synthCommand } from './synth.js';
import { tileCommand } from './tile.js';
import { trainCommand } from './train.js';

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<number>; summary: string }> = {
  info: { run: infoCommand, summary: 'what was compiled and what this machine offers (--json)' },
  stain: { run: stainCommand, summary: 'stain-normalize images: reinhard, macenko, vahadane, ruifrok' },
  tile: { run: tileCommand, summary: 'cut a slide\'s tissue into tiles: folder + manifest or packed file, mask and overview' },
  augment: { run: augmentCommand, summary: 'augment one image into a grid of seeded draws, to judge a pipeline by eye' },
  bench: { run: benchCommand, summary: 'benchmarks of every kernel on every backend, with peers (--json)' },
  demo: { run: demoCommand, summary: 'the whole path on the sample slide (from the data folder) and synthetic data' },
  'fetch-data': { run: fetchDataCommand, summary: 'download the public test/benchmark/demo data into the cache, checked by SHA-256' },
  pack: { run: packCommand, summary: 'Kaggle folder, PatchCamelyon HDF5 or tile folder → packed dataset' },
  inspect: { run: inspectCommand, summary: 'know your data: class balance, channel stats, blank/background/blurry/pen patches, duplicates, grids' },
  synth: { run: synthCommand, summary: 'synthetic PatchCamelyon-like patches in the Kaggle layout (synth patches), a synthetic slide with tumour truth (synth slide)' },
  train: { run: trainCommand, summary: 'train a patch classifier: model zoo, validation AUC, best/last checkpoints, --resume' },
  evaluate: { run: evaluateCommand, summary: 'AUC with bootstrap CI, accuracy, confusion matrix and ROC curve of a model on labelled data' },
  predict: { run: predictCommand, summary: 'a model\'s probabilities as the Kaggle submission (id,label), optional TTA' },
  'predict-slide': { run: predictSlideCommand, summary: 'tumour heatmap of a slide: probability map, overlay, regions (GeoJSON), tiles.csv, report.html' },
  // Loaded on use: they bring BullMQ and ioredis, which no other command needs.
  batch: { run: async (argv) => (await import('./batch.js')).batchCommand(argv), summary: 'one tile / predict-slide / pack job per slide of a manifest: here in a process pool, or enqueued on Redis (--queue)' },
  worker: { run: async (argv) => (await import('./worker.js')).workerCommand(argv), summary: 'run the jobs of a batch queue (BullMQ on Redis); any number, on any machines' },
  queue: { run: async (argv) => (await import('./queue.js')).queueCommand(argv), summary: 'a batch queue: status (counts, progress, failures), retry, drain' },
};

/** Options before any command (only the first argument is read). */
const MAIN_FLAGS = defineFlags({
  version: { type: 'boolean', short: 'v', help: 'print the version and exit' },
});

function help(): string {
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(13)} ${c.summary}`);
  return `Usage: histoflow <command> [options]\n\nCommands:\n${rows.join('\n')}\n\n${optionsHelp(MAIN_FLAGS)}\nRun 'histoflow <command> --help' for a command's options.\n`;
}

function unknownCommand(name: string): number {
  process.stderr.write(`histoflow: unknown command '${name}'\n\n${help()}`);
  return 1;
}

/** `histoflow --help` or `histoflow --version`; anything else starting with '-' is not a command. */
async function mainFlag(arg: string): Promise<number> {
  let parsed;
  try {
    parsed = parseFlags('', MAIN_FLAGS, [arg]);
  } catch {
    return unknownCommand(arg);
  }
  if (parsed.help) {
    process.stdout.write(help());
    return 0;
  }
  if (!parsed.values.version) return unknownCommand(arg);
  const { info } = await import('../info.js');
  process.stdout.write(`${(await info()).version}\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help') {
    process.stdout.write(help());
    return name ? 0 : 1;
  }
  if (name.startsWith('-')) return mainFlag(name);
  if (!Object.hasOwn(COMMANDS, name)) return unknownCommand(name);
  return COMMANDS[name]!.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`histoflow: ${message}\n`);
    if (process.env.HISTOFLOW_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  },
);
