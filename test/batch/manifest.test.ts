/**
 * Batch manifests: what becomes a job, and every way a manifest can be wrong,
 * reported naming the manifest and row before anything is run or written.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { optionTokens, planJobs, jobKind } from '../../src/batch/job.js';
import { readManifest, slideStem } from '../../src/batch/manifest.js';
import { histoflow } from '../support/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'histoflow-batch-manifest-'));
mkdirSync(join(dir, 'a'));
mkdirSync(join(dir, 'b'));
for (const p of ['a/one.tif', 'a/two.svs', 'b/one.tif', 'a/regions.geojson']) writeFileSync(join(dir, p), 'x');

test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function csv(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const TILE = { columns: ['size', 'roi', 'annotations', 'exclude-pen'], slideKind: 'file' as const };

test('a slide\'s stem is its file name without the last extension', (t) => {
  t.is(slideStem('/x/case-1.ome.tif'), 'case-1.ome');
  t.is(slideStem('/x/case-2.svs'), 'case-2');
  t.is(slideStem('/x/folder'), 'folder');
});

test('a CSV manifest gives one row per slide, paths relative to the CSV, cells kept by column', async (t) => {
  const m = await readManifest(csv('ok.csv', 'slide,size,roi\na/one.tif,64,\n"a/two.svs",,"0,0,512,512"\n'), TILE);
  t.is(m.kind, 'csv');
  t.deepEqual(m.rows, [
    { line: 2, slide: join(dir, 'a/one.tif'), stem: 'one', cells: { size: '64' } },
    { line: 3, slide: join(dir, 'a/two.svs'), stem: 'two', cells: { roi: '0,0,512,512' } },
  ]);
});

test('a row\'s cells override the command line\'s options and its paths resolve against the manifest\'s folder', async (t) => {
  const m = await readManifest(csv('cells.csv', 'slide,size,annotations,exclude-pen\na/one.tif,64,regions.geojson,yes\na/two.svs,,,no\n'), TILE);
  const info = await jobKind('tile');
  const tokens = optionTokens(info.flags, { size: 96, format: 'png' }, info.paths, dir);
  const jobs = await planJobs(m, 'tile', tokens, join(dir, 'out'));
  t.deepEqual(jobs.map((j) => j.argv), [
    ['--size=96', '--format=png', '--size=64', `--annotations=${join(dir, 'regions.geojson')}`, '--exclude-pen'],
    ['--size=96', '--format=png'],
  ]);
  t.deepEqual(jobs.map((j) => j.out), [join(dir, 'out', 'one'), join(dir, 'out', 'two')]);
  t.regex(jobs[0]!.id, /^tile\.one\.[0-9a-f]{12}$/);
  const again = await planJobs(m, 'tile', tokens, join(dir, 'out'));
  t.deepEqual(again.map((j) => j.id), jobs.map((j) => j.id), 'the same job always gets the same id');
});

test('a quoted glob is a manifest of its matches, in order', async (t) => {
  const m = await readManifest(join(dir, 'a', '*.tif'), TILE);
  t.is(m.kind, 'glob');
  t.deepEqual(m.rows.map((r) => r.stem), ['one']);
});

const BAD: [string, string, RegExp][] = [
  ['a missing slide', 'slide\na/one.tif\na/three.tif\n', /row 3: slide .*a\/three\.tif does not exist/],
  ['the same slide twice', 'slide\na/one.tif\n./a/one.tif\n', /row 3: slide .*a\/one\.tif is listed twice \(also row 2\)/],
  ['two slides with one stem', 'slide\na/one.tif\nb/one.tif\n', /row 3: slides .*a\/one\.tif \(row 2\) and .*b\/one\.tif would share the output folder 'one'/],
  ['a row of the wrong length', 'slide,size\na/one.tif,64,7\n', /cannot be read as CSV: Invalid Record Length: expect 2, got 3 on line 2/],
  ['an unknown column', 'slide,colour\na/one.tif,red\n', /has a column 'colour' that is not an option of the job; expected slide or one of size/],
  ['no slide column', 'path\na/one.tif\n', /has no 'slide' column/],
  ['an empty slide cell', 'slide,size\n,64\n', /row 2: the 'slide' cell is empty/],
  ['a bad cell value', 'slide,size\na/one.tif,big\n', /row 2: Expected an integer ≥ 0 for --size but received 'big'/],
  ['a header only', 'slide\n', /lists no slides/],
];

for (const [what, text, message] of BAD) {
  test(`histoflow batch refuses a manifest with ${what}, naming it, and writes nothing`, async (t) => {
    const path = csv(`bad-${what.replaceAll(' ', '-')}.csv`, text);
    const root = join(dir, `out-${what.replaceAll(' ', '-')}`);
    const r = await histoflow('batch', path, '--job', 'tile', '--out', root);
    t.is(r.code, 1);
    t.regex(r.stderr, message);
    t.false(existsSync(root));
  });
}

test('histoflow batch says which arguments it needs: --job, one manifest (an unquoted glob is expanded by the shell)', async (t) => {
  const plain = csv('plain.csv', 'slide\na/one.tif\n');
  const noJob = await histoflow('batch', plain, '--out', join(dir, 'o'));
  t.regex(noJob.stderr, /Expected --job \(one of tile, predict-slide, pack\) for histoflow batch but received nothing/);
  const badJob = await histoflow('batch', plain, '--job', 'train', '--out', join(dir, 'o'));
  t.regex(badJob.stderr, /Expected one of tile, predict-slide, pack for --job but received 'train'/);
  const many = await histoflow('batch', join(dir, 'a/one.tif'), join(dir, 'a/two.svs'), '--job', 'tile', '--out', join(dir, 'o'));
  t.regex(many.stderr, /Expected one MANIFEST .* but received 2 \(an unquoted glob is expanded by the shell: quote it\)/);
  const glob = await histoflow('batch', join(dir, 'none', '*.svs'), '--job', 'tile', '--out', join(dir, 'o'));
  t.regex(glob.stderr, /Expected a glob matching at least one slide for MANIFEST but '.*none\/\*\.svs' matches nothing/);
  const model = await histoflow('batch', plain, '--job', 'predict-slide', '--out', join(dir, 'o'));
  t.regex(model.stderr, /Expected --model for every predict-slide job/);
  const queue = await histoflow('batch', plain, '--job', 'tile', '--out', join(dir, 'o'), '--queue', 'redis://host/');
  t.regex(queue.stderr, /Expected redis:\/\/HOST\[:PORT\]\/NAME .* for --queue but received 'redis:\/\/host\/'/);
  t.false(existsSync(join(dir, 'o')));
});
