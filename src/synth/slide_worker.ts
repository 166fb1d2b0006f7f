/**
 * Worker thread body for synthSlide: rebuilds the slide's plan from
 * (seed, width, height) and paints the rectangles it is asked for, handing the
 * pixels back transferred. Painting is pure (slide_render.ts), so a rectangle
 * is the same whichever worker paints it.
 */
import { parentPort } from 'node:worker_threads';

import { planSlide, type SlidePlan } from './slide_plan.js';
import { renderSlideRect } from './slide_render.js';

export interface SlideJob {
  seed: number;
  width: number;
  height: number;
  rect: { x: number; y: number; w: number; h: number };
}

export interface SlideDone {
  rect: SlideJob['rect'];
  pixels: Uint8Array;
}

let cached: { key: string; plan: SlidePlan } | null = null;

parentPort?.on('message', (job: SlideJob) => {
  const key = `${job.seed}:${job.width}x${job.height}`;
  if (cached?.key !== key) cached = { key, plan: planSlide(job.seed, job.width, job.height) };
  const { x, y, w, h } = job.rect;
  const pixels = renderSlideRect(cached.plan, x, y, w, h);
  parentPort!.postMessage({ rect: job.rect, pixels } satisfies SlideDone, [pixels.buffer as ArrayBuffer]);
});
