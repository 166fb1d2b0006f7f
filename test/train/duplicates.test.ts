/**
 * Identical images and the split (issue 15): they never straddle it (grouped
 * with any groupBy groups), `dedupe` keeps one of each, and a fixed valid
 * split holds no copy of a training image. Kaggle folders and packed files.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import sharp from 'sharp';

import { PackedWriter } from '../../src/dataset/packed_writer.js';
import { synthPatch } from '../../src/synth/patches.js';
import { openTrainingData, type TrainingData } from '../../src/train/data.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'histoflow-dups-'));
/** 30 distinct patches; ids d0..d5 repeat the pixels of p0..p5. */
const N = 30, COPIES = 6;
const pixelsOf = (i: number, seed = 11) => synthPatch(seed, i % N, { size: 48 }).image;

async function kaggle(withValid: boolean): Promise<string> {
  const dir = tmp();
  mkdirSync(join(dir, 'train'));
  const rows = ['id,label'];
  const write = async (folder: string, id: string, i: number, seed = 11) => {
    const img = pixelsOf(i, seed);
    await sharp(Buffer.from(img.data), { raw: { width: 48, height: 48, channels: 3 } }).png().toFile(join(dir, folder, `${id}.png`));
  };
  for (let i = 0; i < N; i++) { await write('train', `p${i}`, i); rows.push(`p${i},${i % 2}`); }
  for (let i = 0; i < COPIES; i++) { await write('train', `d${i}`, i); rows.push(`d${i},${i % 2}`); }
  writeFileSync(join(dir, 'train_labels.csv'), `${rows.join('\n')}\n`);
  if (withValid) {
    mkdirSync(join(dir, 'valid'));
    await write('valid', 'v0', 3); // a copy of p3
    await write('valid', 'v1', 0, 12); // other patches
    await write('valid', 'v2', 1, 12);
    writeFileSync(join(dir, 'valid_labels.csv'), 'id,label\nv0,1\nv1,0\nv2,1\n');
  }
  return dir;
}

/** Every duplicate pair (p_i, d_i) on one side. */
function sidesOf(data: TrainingData): Map<string, 'train' | 'validation'> {
  const side = new Map<string, 'train' | 'validation'>();
  for (const id of data.trainIds) side.set(id, 'train');
  for (const id of data.validationIds) side.set(id, 'validation');
  return side;
}

test('identical images never straddle a drawn split, for any seed (Kaggle folder and packed file)', async (t) => {
  const dir = await kaggle(false);
  const packed = join(tmp(), 'd.hfpack');
  const w = await PackedWriter.create(packed, { height: 48, width: 48 });
  for (let i = 0; i < N + COPIES; i++) await w.append(pixelsOf(i), { labels: [(i % N) % 2], meta: [{ id: i < N ? `p${i}` : `d${i - N}` }] });
  await w.finish();
  for (const path of [dir, packed]) {
    for (let seed = 0; seed < 8; seed++) {
      const data = await openTrainingData(path, { validation: 0.3, seed });
      try {
        const side = sidesOf(data);
        t.is(side.size, N + COPIES);
        for (let i = 0; i < COPIES; i++) t.is(side.get(`d${i}`), side.get(`p${i}`), `${path} seed ${seed}: d${i} with p${i}`);
        t.true(data.validationIds.length >= 8 && data.validationIds.length <= 14, `${data.validationIds.length} in validation`);
      } finally {
        data.close();
      }
    }
  }
});

test('dedupe keeps the first of each group and skips the others naming it', async (t) => {
  const data = await openTrainingData(await kaggle(false), { validation: 0.3, seed: 1, dedupe: true });
  try {
    const ids = [...data.trainIds, ...data.validationIds];
    t.is(ids.length, N);
    t.false(ids.some((id) => id.startsWith('d')));
    const reasons = data.skipped.map((s) => `${s.id}: ${s.reason}`).sort();
    t.deepEqual(reasons, Array.from({ length: COPIES }, (_, i) => `d${i}: same pixels as p${i} (dedupe)`).sort());
    // The kept images are distinct.
    const chunk = await data.train.read(data.trainIds.map((_, i) => i));
    const hashes = new Set(Array.from({ length: chunk.batch.n }, (_, i) => createHash('sha1').update(chunk.batch.data.subarray(i * 6912, (i + 1) * 6912)).digest('hex')));
    t.is(hashes.size, data.trainIds.length);
  } finally {
    data.close();
  }
});

test('a fixed valid split holds no copy of a training image', async (t) => {
  const data = await openTrainingData(await kaggle(true), {});
  try {
    t.is(data.split, 'kaggle-valid');
    t.deepEqual(data.validationIds, ['v1', 'v2']);
    t.true(data.skipped.some((s) => s.id === 'v0' && /same pixels as training image p3/.test(s.reason)), JSON.stringify(data.skipped));
  } finally {
    data.close();
  }
});
