/**
 * report.html renders in headless Chromium, opened from disk as a
 * double-click would (file://, no flags that relax file access): the overlay
 * image decodes and the zoomable viewer opens and loads Deep Zoom tiles of
 * the slide and the map (the page marks both on <body>, read back with
 * --dump-dom), and a screenshot shows the viewer's slide-plus-map colours and
 * the overlay's own. Skips, saying why, only when no Chromium binary is
 * installed (apt install chromium).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import test from 'ava';
import sharp from 'sharp';

import { predictSlide } from '../../src/heatmap/predict_slide.js';
import { viridis } from '../../src/heatmap/colormap.js';
import { rednessModel, SLIDE_HEIGHT, SLIDE_WIDTH, SQUARE_CENTRE, writeTestSlide } from '../support/heatmap_support.js';

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
  t.notRegex(html, /\.dzi['"]/, 'no .dzi fetched: the Deep Zoom descriptions are inline');
  // The viewer's files sit beside the page.
  for (const f of ['openseadragon.min.js', 'images/zoomin_rest.png', 'slide.dzi', 'overlay.dzi']) t.true(existsSync(join(out, 'report_files', f)), f);
  t.true(readdirSync(join(out, 'report_files', 'slide_files')).length > 1, 'Deep Zoom levels of the slide');

  const dom = headless('--dump-dom', page);
  t.is(dom.status, 0, dom.stderr);
  const body = /<body[^>]*>/.exec(dom.stdout)?.[0] ?? '';
  t.log(body);
  t.regex(body, /data-overlay="loaded"/, 'the overlay image decoded');
  t.regex(dom.stdout, /<title>[^<]*\(overlay loaded\)<\/title>/);
  t.regex(body, /data-viewer="open"/, 'OpenSeadragon opened both Deep Zoom images');
  t.true(Number(/data-slide-tiles="(\d+)"/.exec(body)?.[1]) > 0, 'slide tiles loaded');
  t.true(Number(/data-overlay-tiles="(\d+)"/.exec(body)?.[1]) > 0, 'overlay tiles loaded');

  // Screenshots of two copies of the page, beside it so report_files/ resolves: one without the viewer, one with only it.
  const staticPage = join(out, 'static-only.html'), viewerPage = join(out, 'viewer-only.html');
  writeFileSync(staticPage, html.replace(/<h2>Zoomable viewer<\/h2>[\s\S]*<\/script>/, ''));
  writeFileSync(viewerPage, html.replace(/<div class="images">[\s\S]*?<\/div>/, ''));
  const screenshot = async (file: string) => {
    const shotPath = `${file}.png`;
    const shot = headless(`--screenshot=${shotPath}`, '--window-size=1200,900', pathToFileURL(file).href);
    t.is(shot.status, 0, shot.stderr);
    return sharp(shotPath).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  };
  const { data, info } = await screenshot(staticPage);
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

  // The viewer alone: the map at opacity 0.5 over the slide, so at the square half viridis(1), half red.
  const viewer = await screenshot(viewerPage);
  const v = viridis(1), mixed = [0.5 * v[0] + 0.5 * 255, 0.5 * v[1], 0.5 * v[2]];
  let inViewer = 0;
  const viewerPixels = viewer.info.width * viewer.info.height;
  for (let p = 0; p < viewerPixels; p++) {
    const d = viewer.data;
    if (Math.abs(d[3 * p]! - mixed[0]!) + Math.abs(d[3 * p + 1]! - mixed[1]!) + Math.abs(d[3 * p + 2]! - mixed[2]!) < 30) inViewer++;
  }
  // The slide fits the 630-px-high viewer (70vh), so a level-0 px is 630 / 768 screen px: the peak cells are a patch of ~15 px across.
  t.log(`${inViewer} screen pixels of the viewer's square colour ${mixed.map(Math.round)}; slide ${SLIDE_WIDTH} x ${SLIDE_HEIGHT}`);
  t.true(inViewer > 100, 'the viewer shows the slide with the map on top');
});
