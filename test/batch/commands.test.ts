/**
 * `histoflow worker` and `histoflow queue`: what they need, said clearly, and
 * an unreachable Redis reported before anything starts (no Redis needed here).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { histoflow } from '../support/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'histoflow-batch-commands-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('histoflow batch --queue with an unreachable Redis is a clear error before anything is enqueued or written', async (t) => {
  writeFileSync(join(dir, 'a.tif'), 'x');
  const root = join(dir, 'out');
  const r = await histoflow('batch', join(dir, 'a.tif'), '--job', 'tile', '--out', root, '--queue', 'redis://127.0.0.1:1/nowhere');
  t.is(r.code, 1);
  t.regex(r.stderr, /Cannot reach Redis at redis:\/\/127\.0\.0\.1:1\/nowhere \(given by --queue\): connect ECONNREFUSED/);
  t.false(existsSync(root));
});

test('histoflow worker without --queue says what it needs', async (t) => {
  const r = await histoflow('worker');
  t.is(r.code, 1);
  t.regex(r.stderr, /Expected --queue redis:\/\/HOST:PORT\/NAME for histoflow worker but received nothing/);
});

test('histoflow worker refuses a queue address that is not redis://HOST:PORT/NAME, naming --queue', async (t) => {
  const r = await histoflow('worker', '--queue', 'localhost:6379');
  t.is(r.code, 1);
  t.regex(r.stderr, /Expected redis:\/\/HOST\[:PORT\]\/NAME .* for --queue but received 'localhost:6379'/);
});

test('histoflow worker with an unreachable Redis fails at once with the reason', async (t) => {
  const r = await histoflow('worker', '--queue', 'redis://127.0.0.1:1/q', '--until-empty');
  t.is(r.code, 1);
  t.regex(r.stderr, /Cannot reach Redis at redis:\/\/127\.0\.0\.1:1\/q \(given by --queue\): connect ECONNREFUSED/);
});

test('histoflow worker checks its options: --concurrency in range, --lock a duration', async (t) => {
  const c = await histoflow('worker', '--queue', 'redis://127.0.0.1:1/q', '--concurrency', '0');
  t.regex(c.stderr, /Expected an integer between 1 and 64 for --concurrency but received '0'/);
  const l = await histoflow('worker', '--queue', 'redis://127.0.0.1:1/q', '--lock', 'soon');
  t.regex(l.stderr, /Expected a duration such as 90s, 15m, 1\.5h or 1h30m \(at most 3600 s\) for --lock but received 'soon'/);
});

test('histoflow queue takes one of status, retry, drain', async (t) => {
  const r = await histoflow('queue', 'clear', '--queue', 'redis://127.0.0.1:1/q');
  t.is(r.code, 1);
  t.regex(r.stderr, /Expected one of status, retry, drain for histoflow queue but received 'clear'/);
  const down = await histoflow('queue', 'status', '--queue', 'redis://127.0.0.1:1/q');
  t.regex(down.stderr, /Cannot reach Redis at redis:\/\/127\.0\.0\.1:1\/q/);
});
