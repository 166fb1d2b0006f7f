/**
 * `npm run fetch-data`: downloads the public originals of the data files
 * (manifest.ts) into a folder, the cache by default. Each file is streamed to
 * a hidden partial file while its SHA-256 is computed, checked against the
 * manifest (size and hash) and only then renamed into place, so the folder
 * never holds a truncated or wrong file under a real name. Dropped connections,
 * time-outs and 5xx answers are retried; a 404 or a checksum mismatch is not
 * (the same request would get the same bytes). Derived files are made locally
 * from their source once it is present.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import sharp from 'sharp';

import { cacheFolder } from './folder.js';
import { DATA_FILES, DERIVED_FILES, type DataFile, type DerivedFile } from './manifest.js';
import { makeDirectory } from '../output.js';

export interface FetchOptions {
  /** Destination folder (default: the cache, see folder.ts). */
  to?: string;
  /** Only these names (default: every file). */
  only?: string[];
  /** A mirror's base URL: files are fetched as MIRROR/NAME instead of from their origins. */
  mirror?: string;
  /** Retries after a dropped connection, a time-out or a 5xx answer (default 2). */
  retries?: number;
  /** A request that sends nothing for this long is dropped (default 30 s). */
  idleTimeoutMs?: number;
  /** Called as bytes arrive and as each file ends. */
  onProgress?: (e: FetchProgress) => void;
}

export interface FetchProgress {
  name: string;
  /** Bytes of this file so far, and its size. */
  received: number;
  total: number;
  /** Files finished so far, and in all. */
  done: number;
  files: number;
}

export interface FetchResult {
  name: string;
  status: 'present' | 'fetched' | 'derived' | 'failed';
  path: string;
  error?: string;
}

/** A failure that a retry cannot fix. */
class FinalError extends Error {}

async function sha256Of(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function isGood(path: string, f: DataFile): Promise<boolean> {
  try {
    const s = await stat(path);
    return s.size === f.bytes && (await sha256Of(path)) === f.sha256;
  } catch {
    return false;
  }
}

/** One download attempt into `partial`: resolves when size and hash match, throws otherwise. */
async function downloadOnce(url: string, partial: string, f: DataFile, idleTimeoutMs: number, progress: (n: number) => void): Promise<void> {
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(), idleTimeoutMs);
  const poke = () => {
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(), idleTimeoutMs);
  };
  const out = await open(partial, 'w');
  try {
    const res = await fetch(url, { signal: abort.signal, redirect: 'follow' });
    if (!res.ok || !res.body) {
      const err = `HTTP ${res.status} ${res.statusText} from ${url}`;
      throw res.status >= 500 || res.status === 429 ? new Error(err) : new FinalError(err);
    }
    const h = createHash('sha256');
    let received = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      poke();
      received += chunk.length;
      if (received > f.bytes) throw new FinalError(`${url} sent more than the ${f.bytes} bytes expected`);
      h.update(chunk);
      await out.write(chunk);
      progress(received);
    }
    if (received !== f.bytes) throw new Error(`${url}: the connection ended after ${received} of ${f.bytes} bytes`);
    const got = h.digest('hex');
    if (got !== f.sha256) throw new FinalError(`checksum mismatch for ${f.name} from ${url}: expected SHA-256 ${f.sha256}, got ${got}`);
    await out.sync();
  } catch (e) {
    if (abort.signal.aborted) throw new Error(`${url}: no data for ${idleTimeoutMs / 1000} s`);
    if (e instanceof FinalError) throw e;
    const cause = (e as { cause?: { message?: string } }).cause?.message;
    throw new Error(`${url}: ${(e as Error).message}${cause ? ` (${cause})` : ''}`);
  } finally {
    clearTimeout(timer);
    await out.close();
  }
}

async function fetchOne(f: DataFile, dir: string, opts: Required<Pick<FetchOptions, 'retries' | 'idleTimeoutMs'>> & FetchOptions,
  progress: (n: number) => void): Promise<FetchResult> {
  const path = join(dir, f.name);
  if (await isGood(path, f)) return { name: f.name, status: 'present', path };
  const url = opts.mirror ? `${opts.mirror.replace(/\/+$/, '')}/${encodeURIComponent(f.name)}` : f.url;
  const partial = join(dir, `.${f.name}.partial-${process.pid}`);
  let last = '';
  for (let attempt = 0; attempt <= opts.retries; attempt++) {
    try {
      await downloadOnce(url, partial, f, opts.idleTimeoutMs, progress);
      await rename(partial, path);
      return { name: f.name, status: 'fetched', path };
    } catch (e) {
      last = (e as Error).message;
      await rm(partial, { force: true });
      if (e instanceof FinalError) break;
      if (attempt < opts.retries) await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
  return { name: f.name, status: 'failed', path, error: last };
}

/** Makes a derived file from its source (present in `dir`). */
async function derive(d: DerivedFile, dir: string): Promise<FetchResult> {
  const path = join(dir, d.name);
  const partial = join(dir, `.${d.name}.partial-${process.pid}`);
  try {
    if ((await stat(path).catch(() => null))?.isFile()) return { name: d.name, status: 'present', path };
    // 'tiled-pyramid-jpeg': the slide re-saved by libvips as a generic tiled
    // pyramidal TIFF: 256 px JPEG tiles, levels halved down to one tile, the
    // slide's 0.499 µm/px as px/cm. (The shared copy was made the same way; a
    // local one is not byte-identical, only equivalent.)
    await sharp(join(dir, d.from), { limitInputPixels: false }).removeAlpha()
      .tiff({ compression: 'jpeg', quality: 75, tile: true, tileWidth: 256, tileHeight: 256, pyramid: true,
        xres: 1000 / 0.499, yres: 1000 / 0.499, resolutionUnit: 'cm' })
      .toFile(partial);
    await rename(partial, path);
    return { name: d.name, status: 'derived', path };
  } catch (e) {
    await rm(partial, { force: true });
    return { name: d.name, status: 'failed', path, error: `could not derive it from ${d.from}: ${(e as Error).message}` };
  }
}

/** Fetches (or finds present) every file asked for; never throws for one file's failure: see each result. */
export async function fetchData(options: FetchOptions = {}): Promise<FetchResult[]> {
  const dir = resolve(options.to ?? cacheFolder());
  const known = new Set([...DATA_FILES, ...DERIVED_FILES].map((f) => f.name));
  const unknown = (options.only ?? []).filter((n) => !known.has(n));
  if (unknown.length) throw new RangeError(`Expected names from the data manifest for only but received ${unknown.join(', ')}`);
  if (options.mirror !== undefined && !/^https?:\/\/[^/]/.test(options.mirror)) {
    throw new RangeError(`Expected an http:// or https:// URL for mirror but received '${options.mirror}'`);
  }
  const wanted = (n: string) => !options.only || options.only.includes(n);
  const derived = DERIVED_FILES.filter((d) => wanted(d.name));
  const files = DATA_FILES.filter((f) => wanted(f.name) || derived.some((d) => d.from === f.name));
  const opts = { retries: 2, idleTimeoutMs: 30_000, ...options };
  await makeDirectory(dir, 'dir');
  const results: FetchResult[] = [];
  const total = files.length + derived.length;
  for (const f of files) {
    const r = await fetchOne(f, dir, opts, (received) =>
      options.onProgress?.({ name: f.name, received, total: f.bytes, done: results.length, files: total }));
    results.push(r);
    options.onProgress?.({ name: f.name, received: f.bytes, total: f.bytes, done: results.length, files: total });
  }
  for (const d of derived) {
    const source = results.find((r) => r.name === d.from);
    results.push(source && source.status !== 'failed'
      ? await derive(d, dir)
      : { name: d.name, status: 'failed', path: join(dir, d.name), error: `its source ${d.from} is missing` });
  }
  return results;
}
