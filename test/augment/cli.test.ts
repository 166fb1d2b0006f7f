/**
 * `histoflow augment` as a user runs it (the grid PNG, --json, errors that
 * name the field), and the output contract of `histoflow bench augment`.
 */
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { dataFile, histoflow } from '../support/helpers.js';

const KATHER = dataFile('tiatoolbox__kather2.tif'); // 224 x 224
const PIPELINE = {
  d4: true,
  hed: { sigma: 0.05 },
  hsv: { brightness: 0.1, contrast: 0.1, saturation: 0.1, hue: 0.02 },
  blur: { sigma: [0.1, 1.5], p: 0.5 },
  normalize: 'imagenet',
};


function workdir(pipeline: unknown): { dir: string; pipeline: string } {
  const dir = mkdtempSync(join(tmpdir(), 'histoflow-augment-'));
  const path = join(dir, 'pipeline.json');
  writeFileSync(path, typeof pipeline === 'string' ? pipeline : JSON.stringify(pipeline));
  return { dir, pipeline: path };
}

test('histoflow augment writes a rows x cols grid PNG with 2-px gutters, and --json gives one params entry per tile', async (t) => {
  const w = workdir(PIPELINE);
  const out = join(w.dir, 'grid.png');
  const r = await histoflow('augment', KATHER, '--pipeline', w.pipeline, '--grid', '2x3', '--seed', '5', '--backend', 'js', '--out', out, '--json');
  t.is(r.code, 0, r.stderr);
  const meta = await sharp(out).metadata();
  t.is(meta.format, 'png');
  t.is(meta.width, 3 * 224 + 2 * 2);
  t.is(meta.height, 2 * 224 + 1 * 2);
  const summary = JSON.parse(r.stdout);
  t.is(summary.tiles.length, 6);
  t.deepEqual(summary.tile, { height: 224, width: 224 });
  t.deepEqual(summary.pipeline.hed, { sigma: 0.05, units: 'od' });
  summary.tiles.forEach((tile: { index: number; row: number; col: number; params: Record<string, unknown> }, i: number) => {
    t.is(tile.index, i);
    t.is(tile.row, Math.floor(i / 3));
    t.is(tile.col, i % 3);
    t.true(Number.isInteger(tile.params.d4) && (tile.params.d4 as number) >= 0 && (tile.params.d4 as number) < 8);
    t.is(tile.params.hedEnabled, true);
  });
  // each tile is its own draw
  t.true(new Set(summary.tiles.map((x: { params: unknown }) => JSON.stringify(x.params))).size === 6);

  // the gutter is white; the tiles are not
  const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
  const px = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
  t.deepEqual(px(224, 100), [255, 255, 255]);
  t.deepEqual(px(100, 225), [255, 255, 255]);
  let notWhite = 0;
  for (let y = 0; y < 224; y += 7) for (let x = 0; x < 224; x += 7) if (px(x, y).some((v) => v < 250)) notWhite++;
  t.true(notWhite > 500, `${notWhite} of 1024 sampled tile pixels are not white`);
});

test('histoflow augment draws elastic deformation from the pipeline file and reports it per tile', async (t) => {
  const w = workdir({ crop: 96, elastic: { alpha: 8, sigma: 12, p: 1 } });
  const out = join(w.dir, 'grid.png');
  const r = await histoflow('augment', KATHER, '--pipeline', w.pipeline, '--grid', '2x2', '--seed', '3', '--out', out, '--json');
  t.is(r.code, 0, r.stderr);
  t.true(existsSync(out));
  const summary = JSON.parse(r.stdout) as { pipeline: { elastic: unknown }; tiles: { params: { elasticAlpha: number; elasticSigma: number } }[] };
  t.deepEqual(summary.pipeline.elastic, { alpha: 8, sigma: 12, p: 1 });
  t.true(summary.tiles.every((tile) => tile.params.elasticAlpha === 8 && tile.params.elasticSigma === 12));
});

test('histoflow augment is seeded: the same seed gives the same draw', async (t) => {
  const w = workdir(PIPELINE);
  const run = (seed: string) =>
    histoflow('augment', KATHER, '--pipeline', w.pipeline, '--grid', '1x2', '--seed', seed, '--backend', 'js', '--out', join(w.dir, `s${seed}.png`), '--json');
  const [a, b, c] = await Promise.all([run('3'), run('3'), run('4')]);
  const params = (r: { stdout: string }) => JSON.stringify(JSON.parse(r.stdout).tiles.map((x: { params: unknown }) => x.params));
  t.is(params(a), params(b));
  t.not(params(a), params(c));
});

test('a bad pipeline file exits 1 naming the field and writes nothing', async (t) => {
  for (const [pipeline, field] of [
    [{ ...PIPELINE, blur: { sigma: [0.1, 1.5], p: 1.5 } }, /pipeline\.blur\.p/],
    [{ ...PIPELINE, hed: { sigma: -0.1 } }, /pipeline\.hed\.sigma/],
    [{ ...PIPELINE, jitter: true }, /jitter/],
    ['{ not json', /--pipeline .*not valid JSON/],
  ] as const) {
    const w = workdir(pipeline);
    const out = join(w.dir, 'grid.png');
    const r = await histoflow('augment', KATHER, '--pipeline', w.pipeline, '--grid', '2x2', '--out', out);
    t.is(r.code, 1);
    t.regex(r.stderr, field);
    t.false(existsSync(out));
    t.deepEqual(readdirSync(w.dir), ['pipeline.json'], 'no temporary file left either');
  }
});

test('histoflow augment names a bad --grid, --seed or --backend', async (t) => {
  const w = workdir(PIPELINE);
  const out = join(w.dir, 'grid.png');
  for (const [flag, value] of [
    ['--grid', '4by4'],
    ['--grid', '0x3'],
    ['--seed', '-1'],
    ['--backend', 'tpu'],
  ] as const) {
    const r = await histoflow('augment', KATHER, '--pipeline', w.pipeline, '--out', out, flag, value);
    t.is(r.code, 1);
    t.true(r.stderr.includes(flag), r.stderr);
  }
  t.false(existsSync(out));
});

test('histoflow bench augment --quick --json gives patches/s for cpu, gpujs and js in cases pipeline-96 and elastic-96', async (t) => {
  const { code, stdout, stderr } = await histoflow('bench', 'augment', '--quick', '--json');
  t.is(code, 0, stderr);
  t.is(stderr, '', 'quiet with --json');
  const report = JSON.parse(stdout) as { results: Record<string, unknown>[]; failures: unknown[]; notes: string[] };
  t.deepEqual(report.failures, []);
  for (const r of report.results) {
    t.is(r.suite, 'augment');
    t.true(r.case === 'pipeline-96' || r.case === 'elastic-96', String(r.case));
    t.is(r.unit, 'patches/s');
    t.true(typeof r.value === 'number' && (r.value as number) > 0, JSON.stringify(r));
  }
  for (const name of ['pipeline-96', 'elastic-96']) {
    const backends = new Set(report.results.filter((r) => r.case === name).map((r) => r.backend));
    t.true(backends.has('cpu'), name);
    t.true(backends.has('js'), name);
    t.true(backends.has('gpujs'), `${name}: gpujs runs augment too`);
  }
  t.true(report.notes.some((n) => /target/.test(n)));
});
