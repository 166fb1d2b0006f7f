/**
 * A training run's folder, everything written atomically:
 *
 *   runs/NAME/best/          model.json + weights.bin of the best validation AUC
 *                            (card: epoch, val_auc, …): what predict / evaluate load
 *   runs/NAME/last/          the latest finished epoch, optimizer state included,
 *                            its card holding the run state (`train_state`);
 *                            ema.bin, the weight average (ema.ts), with --ema
 *   runs/NAME/state.json     the run state: epoch, best, patience counter, lr,
 *                            seed, args, history (a mirror of last/'s card)
 *   runs/NAME/metrics.json   { epochs: [per-epoch row] }; metrics.csv the same rows
 *   runs/NAME/curves.png     loss and AUC per epoch
 *   runs/NAME/split.json     the ids of the train and validation records
 *   runs/NAME/skipped.json   the records left out, with the reason
 *
 * A checkpoint folder is replaced whole: saved to NAME.partial/, then renamed
 * over NAME/ (through NAME.old/), so a crash leaves the previous checkpoint or
 * the new one, never a mix; `recoverCheckpoint` finishes a swap a crash
 * interrupted.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type * as tf from '@tensorflow/tfjs';

import { writeFileAtomic } from '../image.js';
import { csvText } from '../csv.js';
import { MODEL_JSON, saveModel, type ModelCard } from '../models/io.js';
import { pathExists } from '../output.js';
import { writeLineChart } from '../plot/chart.js';

export const BEST_DIR = 'best';
export const LAST_DIR = 'last';
export const STATE_JSON = 'state.json';
export const METRICS_JSON = 'metrics.json';
export const METRICS_CSV = 'metrics.csv';
export const CURVES_PNG = 'curves.png';
export const SPLIT_JSON = 'split.json';
export const SKIPPED_JSON = 'skipped.json';

/** One row of metrics.json / metrics.csv (epochs count from 1). */
export interface EpochMetrics {
  epoch: number;
  lr: number;
  train_loss: number;
  train_acc: number;
  val_loss: number;
  val_acc: number;
  /** ROC AUC (segmentation: over validation pixels; NaN, null in JSON, with one class only). */
  val_auc: number;
  /** Segmentation: Dice and IoU at 0.5 over every valid validation pixel (segment.ts). */
  val_dice?: number;
  val_iou?: number;
  /** Wall time of the epoch, validation included. */
  seconds: number;
  /** Training images per second (augmentation and training step, validation excluded). */
  images_per_s: number;
}

export const METRICS_COLUMNS = ['epoch', 'lr', 'train_loss', 'train_acc', 'val_loss', 'val_acc', 'val_auc', 'seconds', 'images_per_s'] as const;
/** A segmentation run's columns: the classifier's, plus Dice and IoU. */
export const SEGMENT_METRICS_COLUMNS = ['epoch', 'lr', 'train_loss', 'train_acc', 'val_loss', 'val_acc', 'val_auc', 'val_dice', 'val_iou', 'seconds', 'images_per_s'] as const;

function columnsOf(rows: readonly EpochMetrics[]): readonly (keyof EpochMetrics)[] {
  return rows.some((r) => r.val_dice !== undefined) ? SEGMENT_METRICS_COLUMNS : METRICS_COLUMNS;
}

/** runs/<model>-<UTC date and time>: a new run's folder when none is given. */
export function defaultRunName(model: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const base = /^[a-z]+$/.test(model) ? model : 'custom';
  return join('runs', `${base}-${stamp}`);
}

/** Finishes a checkpoint swap that a crash interrupted; drops half-written ones. */
export async function recoverCheckpoint(run: string, name: string): Promise<void> {
  const dir = join(run, name), partial = `${dir}.partial`, old = `${dir}.old`;
  if (!(await pathExists(dir)) && (await pathExists(join(partial, MODEL_JSON)))) await rename(partial, dir);
  if (!(await pathExists(dir)) && (await pathExists(join(old, MODEL_JSON)))) await rename(old, dir);
  await rm(partial, { recursive: true, force: true });
  await rm(old, { recursive: true, force: true });
}

/** Saves `model` (and `extra` files beside it) as run/name/, replacing the previous checkpoint whole. */
export async function writeCheckpoint(
  run: string, name: string, model: tf.LayersModel, card: ModelCard, includeOptimizer: boolean, extra: Record<string, Uint8Array> = {},
): Promise<void> {
  const dir = join(run, name), partial = `${dir}.partial`, old = `${dir}.old`;
  await rm(partial, { recursive: true, force: true });
  await saveModel(model, partial, { card, includeOptimizer });
  for (const [file, bytes] of Object.entries(extra)) await writeFile(join(partial, file), bytes);
  await rm(old, { recursive: true, force: true });
  if (await pathExists(dir)) await rename(dir, old);
  await rename(partial, dir);
  await rm(old, { recursive: true, force: true });
}

export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** The rows as CSV; String(number) is the shortest text that reads back the same double, as in the JSON. */
export function metricsCsv(rows: readonly EpochMetrics[]): string {
  const columns = columnsOf(rows);
  return csvText(columns, rows.map((r) => columns.map((c) => r[c])));
}

/** metrics.json, metrics.csv and curves.png from the history. */
export async function writeMetrics(run: string, rows: readonly EpochMetrics[]): Promise<void> {
  await writeJson(join(run, METRICS_JSON), { columns: columnsOf(rows), epochs: rows });
  await writeFileAtomic(join(run, METRICS_CSV), metricsCsv(rows));
  const x = rows.map((r) => r.epoch);
  const segment = rows.some((r) => r.val_dice !== undefined);
  await writeLineChart(join(run, CURVES_PNG), {
    title: 'training curves', xLabel: 'epoch', yLabel: segment ? 'loss / Dice / IoU' : 'loss / AUC',
    series: [
      { name: 'train loss', x, y: rows.map((r) => r.train_loss) },
      { name: 'val loss', x, y: rows.map((r) => r.val_loss), dashed: true },
      ...(segment
        ? [{ name: 'val Dice', x, y: rows.map((r) => r.val_dice!) }, { name: 'val IoU', x, y: rows.map((r) => r.val_iou!), dashed: true }]
        : [{ name: 'val AUC', x, y: rows.map((r) => r.val_auc) }]),
    ],
  });
}
