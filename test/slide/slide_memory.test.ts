/**
 * Memory stays bounded by the tiles a read touches, not the level's size: a
 * region of a generated 12,000² tiled TIFF (432 MB if decoded whole) must not
 * grow the process by more than a fraction of that.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { openSlide } from '../../src/slide/slide.js';
import { dataFile } from '../support/helpers.js';
import { SVS } from '../support/slide_support.js';

const SIDE = 12_000;
const WHOLE_LEVEL_BYTES = SIDE * SIDE * 3;

test.serial('reading small regions of a 12,000² tiled level decodes only their tiles (RSS grows < 1/4 of the level)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hf-slide-mem-'));
  try {
    const path = join(dir, 'big.tif');
    const tissue = await sharp(dataFile(SVS), { page: 0 }).extract({ left: 900, top: 900, width: 700, height: 700 }).png().toBuffer();
    await sharp({ create: { width: SIDE, height: SIDE, channels: 3, background: '#ffffff' }, limitInputPixels: false })
      .composite([{ input: tissue, tile: true }])
      .tiff({ tile: true, tileWidth: 256, tileHeight: 256, compression: 'jpeg', quality: 70 })
      .toFile(path);
    const slide = await openSlide(path, { reader: 'sharp', cacheBytes: 16 << 20 });
    t.deepEqual(slide.levels.map((l) => [l.width, l.height]), [[SIDE, SIDE]]);
    sharp.cache(false); // libvips' operation cache would otherwise keep decoded pixels of its own
    const before = process.memoryUsage().rss;
    let peak = before;
    for (const [x, y] of [[100, 100], [6000, 6000], [11_800, 11_850], [3000, 9000]] as const) {
      const r = await slide.readRegion(0, x, y, 200, 150);
      t.is(r.data.length, 200 * 150 * 3);
      peak = Math.max(peak, process.memoryUsage().rss);
    }
    const grown = peak - before;
    t.log(`RSS grew ${(grown / 2 ** 20).toFixed(1)} MiB; the whole level is ${(WHOLE_LEVEL_BYTES / 2 ** 20).toFixed(0)} MiB`);
    t.true(grown < WHOLE_LEVEL_BYTES / 4, `RSS grew ${grown} bytes`);
    t.true(slide.cacheStats().misses <= 4 * 4, 'each region touches at most 4 tiles');
    await slide.close();
  } finally {
    sharp.cache(true);
    await rm(dir, { recursive: true, force: true });
  }
});
