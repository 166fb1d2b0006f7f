/**
 * report.html renders in headless Chromium: the overlay image decodes (its
 * onload marks the page, read back with --dump-dom) and a screenshot of the
 * page is not blank and shows the overlay's own colours. Skips, saying why,
 * only when no Chromium binary is installed (apt install chromium).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import test from 'ava';
import sharp from 'sharp';

import { predictSlide } from '../../src/heatmap/predict_slide.js';
import { rednessModel, SLIDE_WIDTH, SQUARE_CENTRE, writeTestSlide } from '../support/heatmap_support.js';

const CANDIDATES = [process.env.CHROMIUM, 'chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome'].filter((c): c is string => !!c);
const chromium = CANDIDATES.find((c) => spawnSync('sh', ['-c', `command -v "${c}"`]).status === 0);
const run = chromium ? test : test.skip;
const title = 'report.html renders in headless Chromium with the overlay loaded and visible';

const headless = (...args: string[]) =>
  spawnSync(chromium!, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--virtual-time-budget=5000', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });

run(chromium ? title : `${title} (skipped: no chromium binary found; apt install chromium)`, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'histoflow-report-'));
  const slide = join(root, 'slide.tif'), out = join(root, 'out');
  await writeTestSlide(slide);
  await predictSlide(slide, rednessModel(32), { out, stride: 16 });
  const page = pathToFileURL(join(out, 'report.html')).href;

  const html = readFileSync(join(out, 'report.html'), 'utf8');
  t.notRegex(html, /(src|href)="(https?:)?\/\//, 'no network references');

  const dom = headless('--dump-dom', page);
  t.is(dom.status, 0, dom.stderr);
  t.regex(dom.stdout, /<body data-overlay="loaded">/, 'the overlay image decoded');
  t.regex(dom.stdout, /<title>[^<]*\(overlay loaded\)<\/title>/);

  const shotPath = join(root, 'shot.png');
  const shot = headless(`--screenshot=${shotPath}`, '--window-size=1200,900', page);
  t.is(shot.status, 0, shot.stderr);
  const { data, info } = await sharp(shotPath).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  t.deepEqual([info.width, info.height], [1200, 900]);
  let sum = 0, sum2 = 0;
  const pixels = info.width * info.height;
  for (let p = 0; p < pixels; p++) {
    const g = (data[3 * p]! + data[3 * p + 1]! + data[3 * p + 2]!) / 3;
    sum += g;
    sum2 += g * g;
  }
  const variance = sum2 / pixels - (sum / pixels) ** 2;
  t.log(`screenshot grey variance ${variance.toFixed(0)}`);
  t.true(variance > 100, 'not blank');

  // The overlay's colour at the red square (viridis near 1 over red) appears on screen.
  const overlay = await sharp(join(out, 'overlay.png')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const d = SLIDE_WIDTH / (await sharp(join(out, 'thumbnail.png')).metadata()).width!; // the thumbnail's downsample
  const o = (Math.round(SQUARE_CENTRE.y / d) * overlay.info.width + Math.round(SQUARE_CENTRE.x / d)) * 3;
  const want = [overlay.data[o]!, overlay.data[o + 1]!, overlay.data[o + 2]!];
  let near = 0;
  for (let p = 0; p < pixels; p++) {
    if (Math.abs(data[3 * p]! - want[0]!) + Math.abs(data[3 * p + 1]! - want[1]!) + Math.abs(data[3 * p + 2]! - want[2]!) < 24) near++;
  }
  t.log(`${near} screen pixels of the square's overlay colour ${want}`);
  // The peak cells (16 px at level 0, about 14 px on screen): a patch of that colour, found nowhere else on the page.
  t.true(near > 50, 'the overlay is visible');
});
