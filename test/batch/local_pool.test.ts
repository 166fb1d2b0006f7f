/**
 * `histoflow batch` without --queue: a pool of worker processes on this
 * machine, outputs identical to `histoflow tile` per slide, reruns that do
 * nothing, failures that keep their reason, and a pool process killed in the
 * middle of a slide whose job another process resumes.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { CLI, histoflow } from '../support/helpers.js';
import { folderDifferences, stopAll, synthSlides, tileReferences } from './batch_support.js';

const dir = mkdtempSync(join(tmpdir(), 'histoflow-batch-pool-'));
let slides: string[] = [];
const stemOf = (s: string) => s.replace(/^.*\//, '').replace(/\.tif$/, '');
const references = join(dir, 'reference');
const SIZE = ['--size', '64'];

test.before(async () => {
  slides = await synthSlides(dir, [11, 12, 13, 14], 512);
  await tileReferences(slides, references, () => SIZE);
});

test.after.always(() => {
  stopAll();
  rmSync(dir, { recursive: true, force: true });
});

test.serial('batch runs every slide of a glob in two worker processes, byte-identical to histoflow tile on each', async (t) => {
  const root = join(dir, 'pool');
  const r = await histoflow('batch', join(dir, 'slide-*.tif'), '--job', 'tile', '--out', root, '--workers', '2', ...SIZE, '--json');
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { jobs: 4, done: 4, alreadyDone: 0, failed: [], workers: 2 });
  for (const s of slides) t.deepEqual(folderDifferences(join(references, stemOf(s)), join(root, stemOf(s))), [], s);
});

test.serial('a rerun of a finished batch is a no-op: every slide is skipped and no output is rewritten', async (t) => {
  const root = join(dir, 'pool');
  const before = statSync(join(root, stemOf(slides[0]!), 'manifest.json')).mtimeMs;
  const r = await histoflow('batch', join(dir, 'slide-*.tif'), '--job', 'tile', '--out', root, ...SIZE, '--json');
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { jobs: 4, done: 0, alreadyDone: 4, failed: [] });
  t.is(statSync(join(root, stemOf(slides[0]!), 'manifest.json')).mtimeMs, before);
});

test.serial('the same slides asked for with other options are refused, naming the folder, rather than mixed', async (t) => {
  const r = await histoflow('batch', join(dir, 'slide-*.tif'), '--job', 'tile', '--out', join(dir, 'pool'), '--size', '32');
  t.is(r.code, 1);
  t.regex(r.stderr, /pool\/slide-11 was written by an earlier tile batch with other options \(--size=64; now --size=32\)/);
});

test.serial('a slide that cannot be read fails after its attempts with its reason, and the other slides finish', async (t) => {
  const junk = join(dir, 'junk', 'broken.tif');
  execFileSync('mkdir', ['-p', join(dir, 'junk')]);
  writeFileSync(junk, Buffer.alloc(4096, 7));
  const manifest = join(dir, 'junk.csv');
  writeFileSync(manifest, `slide\n${slides[0]}\n${junk}\n`);
  const root = join(dir, 'junk-out');
  const r = await histoflow('batch', manifest, '--job', 'tile', '--out', root, '--attempts', '2', '--backoff', '0.1s', ...SIZE, '--json');
  t.is(r.code, 1, 'a batch with a failed slide exits 1');
  const summary = JSON.parse(r.stdout) as { done: number; failed: { slide: string; reason: string; attempts: number }[] };
  t.is(summary.done, 1);
  t.is(summary.failed.length, 1);
  t.is(summary.failed[0]!.slide, junk);
  t.is(summary.failed[0]!.attempts, 2);
  t.regex(summary.failed[0]!.reason, /cannot open slide .*broken\.tif/);
  t.false(existsSync(join(root, '.histoflow-batch', 'broken.json')), 'no record: a rerun tries it again');
});

test.serial('a pool process killed in the middle of a slide costs an attempt, and another process resumes the slide', async (t) => {
  const [big] = await synthSlides(join(dir), [19], 2048);
  const ref = join(dir, 'big-reference');
  await tileReferences([big!], ref, () => ['--size', '16']);
  const root = join(dir, 'big');
  const child = spawn(process.execPath, [CLI, 'batch', big!, '--job', 'tile', '--out', root, '--size', '16', '--workers', '1', '--backoff', '0.1s', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const journal = join(root, 'slide-19', '.tiles-journal');
  let rows = 0;
  for (let i = 0; i < 6000 && rows < 2; i++) {
    await new Promise((r) => setTimeout(r, 5));
    rows = existsSync(journal) ? readFileSync(journal, 'utf8').split('\n').filter(Boolean).length - 1 : 0;
  }
  const pool = execFileSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' }).trim().split(/\s+/).map(Number);
  t.is(pool.length, 1, 'one pool process');
  process.kill(pool[0]!, 'SIGKILL');
  t.true(rows >= 2, `killed after ${rows} tiles were journalled`);
  t.is(await exited, 0, stdout);
  t.like(JSON.parse(stdout), { done: 1, failed: [] });
  t.deepEqual(folderDifferences(join(ref, 'slide-19'), join(root, 'slide-19')), []);
  const record = JSON.parse(readFileSync(join(root, '.histoflow-batch', 'slide-19.json'), 'utf8')) as { summary: { tiles: number; written: number; skipped: number } };
  t.true(record.summary.skipped > 0, 'resumed from the dead process\'s tiles');
  t.is(record.summary.written + record.summary.skipped, record.summary.tiles);
});

test.serial('predict-slide jobs write what histoflow predict-slide writes for each slide (its timings and dates aside)', async (t) => {
  const root = join(dir, 'predict');
  const args = ['--model', 'builtin:redness', '--report-size', '256'];
  const r = await histoflow('batch', join(dir, 'slide-1[12].tif'), '--job', 'predict-slide', '--out', root, '--workers', '2', ...args, '--json');
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { jobs: 2, done: 2, failed: [] });
  for (const s of slides.slice(0, 2)) {
    const ref = join(dir, 'predict-reference', stemOf(s));
    const one = await histoflow('predict-slide', s, '--out', ref, ...args, '--json');
    t.is(one.code, 0, one.stderr);
    for (const f of ['probability.f32', 'probability.png', 'tiles.csv', 'regions.geojson', 'overlay.tif']) {
      t.true(readFileSync(join(ref, f)).equals(readFileSync(join(root, stemOf(s), f))), `${stemOf(s)}/${f}`);
    }
  }
});

test.serial('pack jobs turn tile folders into one packed dataset each, as histoflow pack does', async (t) => {
  const sources = slides.slice(0, 2).map((s) => join(dir, 'pool', stemOf(s)));
  const manifest = join(dir, 'pack.csv');
  writeFileSync(manifest, `slide\n${sources.join('\n')}\n`);
  const root = join(dir, 'packed');
  const r = await histoflow('batch', manifest, '--job', 'pack', '--out', root, '--json');
  t.is(r.code, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { jobs: 2, done: 2, failed: [] });
  for (const src of sources) {
    const ref = join(dir, 'pack-reference', `${stemOf(src)}.hfpack`);
    const one = await histoflow('pack', src, '--out', ref, '--json');
    t.is(one.code, 0, one.stderr);
    t.true(readFileSync(ref).equals(readFileSync(join(root, stemOf(src), 'dataset.hfpack'))), src);
  }
});
