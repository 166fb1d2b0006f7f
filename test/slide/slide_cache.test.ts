/**
 * The tile cache: bounded by bytes whatever is read, least recently used out
 * first, shared decodes, and region reads that hit it on repeat.
 */
import test from 'ava';

import { openSlide } from '../../src/slide/slide.js';
import { TileCache } from '../../src/slide/tile_cache.js';
import { diff, dataFile } from '../support/helpers.js';
import { PYRAMID, SVS, withOpenSlide } from '../support/slide_support.js';

const tile = (bytes: number) => async () => new Uint8Array(bytes);

test('TileCache evicts the least recently used tile first and never holds more than its capacity', async (t) => {
  const cache = new TileCache(300);
  await cache.get('a', tile(100));
  await cache.get('b', tile(100));
  await cache.get('c', tile(100));
  await cache.get('a', tile(100)); // a is now the most recent: b is the oldest
  await cache.get('d', tile(150)); // needs 150 more: evicts b, then c
  t.deepEqual(cache.stats(), { bytes: 250, capacity: 300, tiles: 2, hits: 1, misses: 4, peakBytes: 300 });
  let reloaded = false;
  await cache.get('b', async () => ((reloaded = true), new Uint8Array(100)));
  t.true(reloaded, 'b was evicted');
  await cache.get('huge', tile(301));
  t.true(cache.stats().bytes <= 300, 'a tile larger than the budget is not kept');
});

test('TileCache shares one decode between concurrent requests and forgets failures', async (t) => {
  const cache = new TileCache(1000);
  let loads = 0;
  const slow = async () => {
    loads++;
    await new Promise((r) => setTimeout(r, 20));
    return new Uint8Array(10);
  };
  const [a, b] = await Promise.all([cache.get('k', slow), cache.get('k', slow)]);
  t.is(loads, 1);
  t.is(a, b);
  await t.throwsAsync(() => cache.get('bad', async () => { throw new Error('decode failed'); }), { message: 'decode failed' });
  t.is(await cache.get('bad', tile(5)).then((x) => x.length), 5, 'a failed load is retried, not cached');
});

for (const [reader, path] of [['sharp', PYRAMID], ['sharp', SVS], ['openslide', SVS]] as const) {
  const [run, title] = reader === 'openslide'
    ? withOpenSlide(`many reads with a 3-tile budget keep the cache within it and return what an unbounded cache returns (${reader}, ${path})`)
    : [test, `many reads with a 3-tile budget keep the cache within it and return what an unbounded cache returns (${reader}, ${path})`] as const;
  run(title, async (t) => {
    const big = await openSlide(dataFile(path), { reader });
    const { tileWidth, tileHeight } = big.levels[0]!;
    const budget = 3 * tileWidth * tileHeight * 3 + 1000;
    const tiny = await openSlide(dataFile(path), { reader, cacheBytes: budget });
    let s = 11;
    const rand = (n: number) => (s = (s * 1103515245 + 12345) >>> 0) % n;
    for (let i = 0; i < 40; i++) {
      const level = rand(big.levels.length);
      const lv = big.levels[level]!;
      const w = 1 + rand(300), h = 1 + rand(300), x = rand(lv.width), y = rand(lv.height);
      const [a, b] = await Promise.all([tiny.readRegion(level, x, y, w, h), big.readRegion(level, x, y, w, h)]);
      t.is(diff(a.data, b.data).max, 0, `L${level} ${x},${y} ${w}x${h}`);
      const stats = tiny.cacheStats();
      if (stats.bytes > budget) return t.fail(`cache holds ${stats.bytes} > ${budget} bytes`);
    }
    const stats = tiny.cacheStats();
    t.true(stats.peakBytes <= budget, `peak ${stats.peakBytes} ≤ ${budget}`);
    t.true(stats.misses > big.cacheStats().misses, 'the tiny cache had to decode again');
    await tiny.close();
    await big.close();
  });
}

test('a repeated region read is served from the cache: hits for every tile, no new decode', async (t) => {
  const slide = await openSlide(dataFile(PYRAMID));
  const first = await slide.readRegion(0, 200, 200, 400, 300); // tiles x 0..2, y 0..1: 6 tiles
  const after = slide.cacheStats();
  t.is(after.misses, 6);
  const again = await slide.readRegion(0, 200, 200, 400, 300);
  const now = slide.cacheStats();
  t.is(now.misses, 6);
  t.is(now.hits - after.hits, 6);
  t.deepEqual(again.data, first.data);
  await slide.close();
});

test('cacheBytes 0 holds nothing and still reads correctly', async (t) => {
  const none = await openSlide(dataFile(PYRAMID), { cacheBytes: 0 });
  const some = await openSlide(dataFile(PYRAMID));
  const a = await none.readRegion(1, 100, 100, 300, 300);
  const b = await some.readRegion(1, 100, 100, 300, 300);
  t.deepEqual(a.data, b.data);
  t.is(none.cacheStats().bytes, 0);
  t.is(none.cacheStats().tiles, 0);
  await none.close();
  await some.close();
});
