/**
 * What the batch tests share: a real redis-server of their own (a free port
 * on 127.0.0.1, no persistence files, a temp folder), synthetic slides, the
 * single-process reference (`histoflow tile` per slide), worker processes,
 * and a byte-for-byte folder comparison. Every process started here is
 * killed by stopAll() (the tests call it in test.after.always).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

import { Redis } from 'ioredis';

import { CLI, histoflow } from '../support/helpers.js';
import { freePort } from '../../src/batch/free_port.js';

const started = new Set<ChildProcess>();
const folders = new Set<string>();

/** Kills every process these helpers started that is still running, and removes redis-server's folders. */
export function stopAll(): void {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  started.clear();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  folders.clear();
}

/** Whether redis-server is installed (.ci/run installs it with apt). */
export function hasRedisServer(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface RedisServer {
  port: number;
  /** A queue address on this server: redis://127.0.0.1:PORT/NAME. */
  url(name: string): string;
  /** Stops it (its data is gone: no persistence). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  /** Redis's own count of commands processed (INFO stats). */
  commands(): Promise<number>;
}

async function waitForPing(port: number, ms = 10000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer: ${(e as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      client.disconnect();
    }
  }
}

/** Starts a redis-server of the test's own: 127.0.0.1, a free port, `--save '' --appendonly no`, in a temp folder removed at stop. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'histoflow-redis-'));
  let child: ChildProcess | undefined;
  const server: RedisServer = {
    port,
    url: (name) => `redis://127.0.0.1:${port}/${name}`,
    async start() {
      child = spawn('redis-server', ['--save', '', '--appendonly', 'no', '--port', String(port), '--bind', '127.0.0.1', '--dir', dir], { stdio: 'ignore' });
      started.add(child);
      await waitForPing(port);
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    },
    async commands() {
      const client = new Redis({ port, host: '127.0.0.1' });
      try {
        return Number(/total_commands_processed:(\d+)/.exec(await client.info('stats'))![1]);
      } finally {
        client.disconnect();
      }
    },
  };
  await server.start();
  folders.add(dir);
  return server;
}

/** Synthetic slides (`histoflow synth slide`), one per seed: `dir/slide-<seed>.tif`. */
export async function synthSlides(dir: string, seeds: readonly number[], size: number): Promise<string[]> {
  const paths: string[] = [];
  for (const seed of seeds) {
    const path = join(dir, `slide-${seed}.tif`);
    const r = await histoflow('synth', 'slide', '--out', path, '--size', String(size), '--seed', String(seed), '--json');
    if (r.code !== 0) throw new Error(`synth slide ${seed}: ${r.stderr}`);
    paths.push(path);
  }
  return paths;
}

/** The single-process reference: `histoflow tile SLIDE --out OUT ARGS…` for each slide, one after the other. */
export async function tileReferences(slides: readonly string[], root: string, argsOf: (slide: string) => string[]): Promise<void> {
  for (const slide of slides) {
    const stem = slide.replace(/^.*\//, '').replace(/\.tif$/, '');
    const r = await histoflow('tile', slide, '--out', join(root, stem), ...argsOf(slide), '--json');
    if (r.code !== 0) throw new Error(`tile ${slide}: ${r.stderr}`);
  }
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** The differences between two folders, file by file and byte for byte (hidden files included); empty when identical. */
export function folderDifferences(a: string, b: string): string[] {
  const fa = listFiles(a), fb = listFiles(b);
  const diffs: string[] = [];
  for (const f of fa) if (!fb.includes(f)) diffs.push(`only in ${a}: ${f}`);
  for (const f of fb) if (!fa.includes(f)) diffs.push(`only in ${b}: ${f}`);
  for (const f of fa) {
    if (!fb.includes(f)) continue;
    if (statSync(join(a, f)).size !== statSync(join(b, f)).size || !readFileSync(join(a, f)).equals(readFileSync(join(b, f)))) diffs.push(`differs: ${f}`);
  }
  return diffs;
}

export interface WorkerProcess {
  child: ChildProcess;
  /** The --json events so far, in order. */
  events: Record<string, unknown>[];
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first event for which `match` holds (now or later). */
  waitFor(match: (e: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
}

/** `histoflow worker --queue URL --json ARGS…` as a child process. */
export function startWorker(url: string, ...args: string[]): WorkerProcess {
  const child = spawn(process.execPath, [CLI, 'worker', '--queue', url, '--json', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  const events: Record<string, unknown>[] = [];
  const waiters: { match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] = [];
  let stderr = '';
  let pending = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    pending += d;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      if (!line.trim()) continue;
      const e = JSON.parse(line) as Record<string, unknown>;
      events.push(e);
      for (const w of [...waiters]) {
        if (w.match(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    child, events, exited,
    stderr: () => stderr,
    waitFor(match, ms = 120000) {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no such worker event within ${ms} ms; events: ${JSON.stringify(events)}; stderr: ${stderr}`)), ms);
        waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      });
    },
  };
}
