/**
 * Batches through a real Redis (BullMQ): eight synthetic slides enqueued and
 * run by two worker processes come out byte-identical to `histoflow tile`
 * run on each slide in one process; a worker SIGKILLed mid-job has its job
 * taken over and resumed; a Redis that restarts without its data stops the
 * workers with a clear error, and enqueueing again finishes the batch. The
 * tests start their own redis-server (batch_support.ts) and stop it.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { histoflow, IN_CI } from '../support/helpers.js';
import { folderDifferences, hasRedisServer, startRedis, startWorker, stopAll, synthSlides, tileReferences, type RedisServer } from './batch_support.js';

const HAVE_REDIS = hasRedisServer();
/** Without redis-server the tests skip, saying why; in CI (which installs it) its absence fails them (test.before throws). */
const SKIPPED = !HAVE_REDIS && !IN_CI;
const queueTest = SKIPPED ? test.serial.skip : test.serial;
const because = SKIPPED ? ' (skipped: redis-server is not installed; apt-get install redis-server)' : '';

const dir = mkdtempSync(join(tmpdir(), 'histoflow-batch-queue-'));
let redis: RedisServer | undefined;
/** Seven small slides and a bigger one, tiled with 16-px tiles so its job lasts long enough to be killed in the middle. */
let slides: string[] = [];
const BIG = 'slide-8';
const argsOf = (slide: string) => (slide.includes(BIG) ? ['--size', '16'] : ['--size', '64']);
const references = join(dir, 'reference');

/** A manifest with the per-slide tile size as a column. */
function writeManifest(path: string): string {
  writeFileSync(path, `slide,size\n${slides.map((s) => `${s},${argsOf(s)[1]}`).join('\n')}\n`);
  return path;
}

function stems(): string[] {
  return slides.map((s) => s.replace(/^.*\//, '').replace(/\.tif$/, ''));
}

function record(root: string, stem: string): { summary: { tiles: number; written: number; skipped: number } } {
  return JSON.parse(readFileSync(join(root, '.histoflow-batch', `${stem}.json`), 'utf8')) as { summary: { tiles: number; written: number; skipped: number } };
}

test.before(async () => {
  if (SKIPPED) return;
  if (!HAVE_REDIS) throw new Error('redis-server is missing: .ci/run installs it (apt-get install redis-server), and CI=true requires it');
  redis = await startRedis();
  slides = [...(await synthSlides(dir, [1, 2, 3, 4, 5, 6, 7], 512)), ...(await synthSlides(dir, [8], 2048))];
  await tileReferences(slides, references, argsOf);
});

test.after.always(() => {
  stopAll();
  rmSync(dir, { recursive: true, force: true });
});

queueTest(`eight slides through batch --queue and two workers come out byte-identical to histoflow tile on each${because}`, async (t) => {
  const url = redis!.url('identical');
  const root = join(dir, 'identical');
  const enqueue = await histoflow('batch', writeManifest(join(dir, 'identical.csv')), '--job', 'tile', '--out', root, '--queue', url, '--json');
  t.is(enqueue.code, 0, enqueue.stderr);
  t.like(JSON.parse(enqueue.stdout), { jobs: 8, enqueued: 8, alreadyQueued: 0, alreadyDone: 0 });
  const workers = [startWorker(url, '--until-empty'), startWorker(url, '--until-empty')];
  const ends = await Promise.all(workers.map((w) => w.exited));
  for (const [k, end] of ends.entries()) t.deepEqual(end, { code: 0, signal: null }, workers[k]!.stderr());
  for (const stem of stems()) t.deepEqual(folderDifferences(join(references, stem), join(root, stem)), [], stem);
  const done = workers.flatMap((w) => w.events.filter((e) => e.event === 'done').map((e) => e.stem));
  t.deepEqual([...done].sort(), stems().sort(), 'each slide done once, by one of the two workers');
  const status = await histoflow('queue', 'status', '--queue', url, '--json');
  t.like(JSON.parse(status.stdout), { counts: { completed: 8, failed: 0, waiting: 0, active: 0 }, unfinished: 0 });
});

queueTest(`enqueueing a finished batch again adds nothing, and its slides are not redone${because}`, async (t) => {
  const url = redis!.url('identical');
  const root = join(dir, 'identical');
  const again = await histoflow('batch', join(dir, 'identical.csv'), '--job', 'tile', '--out', root, '--queue', url, '--json');
  t.is(again.code, 0, again.stderr);
  t.like(JSON.parse(again.stdout), { jobs: 8, enqueued: 0, alreadyDone: 8 });
});

queueTest(`a worker SIGKILLed in the middle of a job has it taken over and resumed: all eight finish identical, no tile written twice${because}`, async (t) => {
  const url = redis!.url('killed');
  const root = join(dir, 'killed');
  const enqueue = await histoflow('batch', writeManifest(join(dir, 'killed.csv')), '--job', 'tile', '--out', root, '--queue', url, '--json');
  t.is(enqueue.code, 0, enqueue.stderr);
  const workers = [startWorker(url, '--until-empty', '--lock', '2s'), startWorker(url, '--until-empty', '--lock', '2s')];
  const start = await Promise.race(workers.map((w, k) => w.waitFor((e) => e.event === 'start' && e.stem === BIG).then(() => k)));
  const victim = workers[start]!, survivor = workers[1 - start]!;
  // Kill once the job has journalled some of its tiles, before it ends.
  const journal = join(root, BIG, '.tiles-journal');
  let rowsAtKill = 0;
  for (let i = 0; i < 3000 && rowsAtKill < 2; i++) {
    await new Promise((r) => setTimeout(r, 5));
    rowsAtKill = existsSync(journal) ? readFileSync(journal, 'utf8').split('\n').filter(Boolean).length - 1 : 0;
  }
  victim.child.kill('SIGKILL');
  t.true(rowsAtKill >= 2, `the big job had journalled tiles when its worker was killed (${rowsAtKill})`);
  t.false(existsSync(join(root, '.histoflow-batch', `${BIG}.json`)), 'and had not finished');
  t.is((await victim.exited).signal, 'SIGKILL');
  const end = await survivor.exited;
  t.deepEqual(end, { code: 0, signal: null }, survivor.stderr());
  for (const stem of stems()) t.deepEqual(folderDifferences(join(references, stem), join(root, stem)), [], stem);
  const big = record(root, BIG).summary;
  t.true(big.skipped > 0, `the taken-over job resumed from the dead worker's tiles (skipped ${big.skipped} of ${big.tiles})`);
  t.is(big.written + big.skipped, big.tiles, 'and wrote only the tiles missing');
  t.true(survivor.events.some((e) => e.event === 'done' && e.stem === BIG), 'the survivor finished the big job');
  t.false(victim.events.some((e) => e.event === 'done' && e.stem === BIG));
  const doneByAll = [...victim.events, ...survivor.events].filter((e) => e.event === 'done').map((e) => e.stem as string);
  t.deepEqual(doneByAll.sort(), stems().sort(), 'every slide done exactly once');
  const status = JSON.parse((await histoflow('queue', 'status', '--queue', url, '--json')).stdout) as { counts: Record<string, number> };
  t.like(status.counts, { completed: 8, failed: 0, active: 0 });
});

queueTest(`a Redis restarted without its data stops the workers with a clear error, and enqueueing again finishes the batch identical${because}`, async (t) => {
  const url = redis!.url('restarted');
  const root = join(dir, 'restarted');
  const manifest = writeManifest(join(dir, 'restarted.csv'));
  t.is((await histoflow('batch', manifest, '--job', 'tile', '--out', root, '--queue', url, '--json')).code, 0);
  const worker = startWorker(url, '--until-empty');
  await worker.waitFor((e) => e.event === 'done');
  await redis!.stop();
  await redis!.start();
  const end = await worker.exited;
  t.is(end.code, 2, 'the worker fails instead of reporting an empty queue as a finished batch');
  t.regex(worker.stderr(), /restarted without its data.*Enqueue them again/s);
  const finished = stems().filter((s) => existsSync(join(root, '.histoflow-batch', `${s}.json`)));
  t.true(finished.length >= 1 && finished.length < 8, `${finished.length} slides finished before the restart`);
  const again = await histoflow('batch', manifest, '--job', 'tile', '--out', root, '--queue', url, '--json');
  t.is(again.code, 0, again.stderr);
  t.like(JSON.parse(again.stdout), { jobs: 8, enqueued: 8 - finished.length, alreadyDone: finished.length });
  const second = startWorker(url, '--until-empty');
  t.deepEqual(await second.exited, { code: 0, signal: null }, second.stderr());
  for (const stem of stems()) t.deepEqual(folderDifferences(join(references, stem), join(root, stem)), [], stem);
});

queueTest(`a slide that fails every attempt is retried with backoff, keeps its reason in queue status, and queue retry puts it back${because}`, async (t) => {
  const url = redis!.url('failing');
  const junk = join(dir, 'junk', 'broken.tif');
  mkdirSync(join(dir, 'junk'), { recursive: true });
  writeFileSync(junk, Buffer.alloc(4096, 7));
  const manifest = join(dir, 'failing.csv');
  writeFileSync(manifest, `slide\n${slides[0]}\n${junk}\n`);
  const enqueue = await histoflow('batch', manifest, '--job', 'tile', '--out', join(dir, 'failing'), '--queue', url, '--attempts', '2', '--backoff', '0.2s', '--json');
  t.is(enqueue.code, 0, enqueue.stderr);
  const worker = startWorker(url, '--until-empty');
  t.deepEqual(await worker.exited, { code: 0, signal: null }, 'an empty queue, failures included, ends the worker');
  const tries = worker.events.filter((e) => e.event === 'failed');
  t.deepEqual(tries.map((e) => e.final), [false, true], 'a retry, then the final failure');
  const status = JSON.parse((await histoflow('queue', 'status', '--queue', url, '--json')).stdout) as { counts: Record<string, number>; failed: { slide: string; reason: string; attempts: number }[] };
  t.like(status.counts, { completed: 1, failed: 1 });
  t.is(status.failed[0]!.slide, junk);
  t.is(status.failed[0]!.attempts, 2);
  t.regex(status.failed[0]!.reason, /cannot open slide .*broken\.tif/);
  const retry = await histoflow('queue', 'retry', '--queue', url, '--json');
  t.like(JSON.parse(retry.stdout), { retried: 1 });
  const after = JSON.parse((await histoflow('queue', 'status', '--queue', url, '--json')).stdout) as { counts: Record<string, number> };
  t.like(after.counts, { waiting: 1, failed: 0 });
  const drain = await histoflow('queue', 'drain', '--queue', url, '--json');
  t.like(JSON.parse(drain.stdout), { removed: 1 });
});
