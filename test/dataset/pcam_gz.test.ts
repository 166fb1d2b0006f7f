/**
 * PatchCamelyon as distributed, gzipped (camelyonpatch_level_2_split_*_{x,y}.h5.gz),
 * reads without a manual gunzip and gives the same images and labels as the
 * .h5 files; a corrupt or truncated gzip, or one larger than the limit, is an
 * error naming the file, and no decompressed copy is left behind.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';

import test from 'ava';

import { packDataset } from '../../src/dataset/pack.js';
import { PackedDataset } from '../../src/dataset/packed.js';
import { PcamReader, pcamFiles } from '../../src/dataset/pcam.js';
import { openScoringData } from '../../src/inference/data.js';
import { writePcam } from '../support/pcam_support.js';

const root = mkdtempSync(join(tmpdir(), 'hf-pcam-gz-'));
// Decompressed copies go to os.tmpdir(): a private one, to check that none is left.
const scratch = join(root, 'tmp');
mkdirSync(scratch);
process.env.TMPDIR = scratch;
test.after.always(() => rmSync(root, { recursive: true, force: true }));

const N = 12;
let files: Promise<{ plain: { x: string; y: string }; gz: { x: string; y: string } }> | undefined;
/** A PCam valid split written by the test support, and the same files gzipped in another folder. */
function pcam() {
  files ??= (async () => {
    await mkdir(join(root, 'plain'));
    await mkdir(join(root, 'gz'));
    const plain = await writePcam(join(root, 'plain'), 'valid', N, 7);
    for (const f of [plain.x, plain.y]) await writeFile(join(root, 'gz', `${basename(f)}.gz`), gzipSync(await readFile(f)));
    return { plain, gz: pcamFiles(join(root, 'gz'), 'valid') };
  })();
  return files;
}

test.serial('a gzipped x and y read the same images and labels as the .h5 files, and leave no copy behind', async (t) => {
  const { plain, gz } = await pcam();
  t.regex(gz.x, /_valid_x\.h5\.gz$/);
  t.regex(gz.y, /_valid_y\.h5\.gz$/);
  const a = await PcamReader.open(plain.x, plain.y);
  const b = await PcamReader.open(gz.x, gz.y);
  try {
    t.deepEqual([b.count, b.height, b.width, b.hasLabels], [a.count, a.height, a.width, a.hasLabels]);
    const ra = a.read(0, N), rb = b.read(0, N);
    t.deepEqual(Buffer.from(rb.batch.data), Buffer.from(ra.batch.data));
    t.deepEqual(rb.labels, ra.labels);
    t.true(new Set(ra.labels).size === 2, 'both classes');
    t.is(readdirSync(scratch).length, 2, 'one decompressed copy per open file while the reader is open');
  } finally {
    a.close();
    b.close();
  }
  t.deepEqual(readdirSync(scratch), [], 'close removes the decompressed copies');
});

test.serial('predict/evaluate data: a folder of .h5.gz and an ..._x.h5.gz file read like the .h5 ones, labels from the _y.h5.gz beside', async (t) => {
  const { plain, gz } = await pcam();
  const want = await openScoringData(plain.x);
  const expected = await want.read(0, N);
  want.close();
  for (const data of [join(root, 'gz'), gz.x]) {
    const d = await openScoringData(data, { split: 'valid' });
    try {
      t.is(d.kind, 'pcam');
      t.true(d.hasLabels, `${data}: labels from the y file`);
      const got = await d.read(0, N);
      t.deepEqual(Buffer.from(got.batch!.data), Buffer.from(expected.batch!.data));
      t.deepEqual(d.labels, want.labels);
    } finally {
      d.close();
    }
  }
  t.deepEqual(readdirSync(scratch), []);
});

test.serial('pack takes one ..._x.h5.gz file (labels from the _y.h5.gz beside) as it takes the .h5', async (t) => {
  const { plain, gz } = await pcam();
  const a = await packDataset(plain.x, join(root, 'plain.hfpack'));
  const b = await packDataset(gz.x, join(root, 'gz.hfpack'));
  t.is(b.written, a.written);
  const pa = await PackedDataset.open(join(root, 'plain.hfpack')), pb = await PackedDataset.open(join(root, 'gz.hfpack'));
  try {
    t.deepEqual(pb.labels, pa.labels);
    t.deepEqual(Buffer.from(pb.read([0, N - 1]).batch.data), Buffer.from(pa.read([0, N - 1]).batch.data));
  } finally {
    pa.close();
    pb.close();
  }
  t.deepEqual(readdirSync(scratch), []);
});

test.serial('a corrupt or truncated gzip is an error naming the file, and leaves no copy behind', async (t) => {
  const { gz } = await pcam();
  const bytes = await readFile(gz.x);
  const dir = join(root, 'bad');
  await mkdir(dir, { recursive: true });
  const truncated = join(dir, 'camelyonpatch_level_2_split_test_x.h5.gz');
  await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await t.throwsAsync(PcamReader.open(truncated), { message: `cannot decompress ${truncated}: unexpected end of file (a corrupt or truncated gzip file)` });
  const corrupt = join(dir, 'corrupt_x.h5.gz');
  const flipped = Buffer.from(bytes);
  for (let i = 40; i < flipped.length - 16; i += 97) flipped[i] ^= 0x5a;
  await writeFile(corrupt, flipped);
  await t.throwsAsync(PcamReader.open(corrupt), { message: new RegExp(`^cannot decompress ${corrupt}: .* \\(a corrupt or truncated gzip file\\)$`) });
  const notHdf5 = join(dir, 'text_x.h5.gz');
  await writeFile(notHdf5, gzipSync('id,label\n0,1\n'));
  await t.throwsAsync(PcamReader.open(notHdf5), { message: `cannot open ${notHdf5} as HDF5: no HDF5 signature (not an HDF5 file, or truncated) once decompressed` });
  t.deepEqual(readdirSync(scratch), []);
});

test.serial('a gzip that decompresses past maxGunzipBytes is refused, naming the file and the limit', async (t) => {
  const { gz } = await pcam();
  const copy = join(root, 'limit_x.h5.gz');
  await copyFile(gz.x, copy);
  await t.throwsAsync(PcamReader.open(copy, undefined, { maxGunzipBytes: 4096 }), {
    message: `cannot decompress ${copy}: it decompresses to more than 4096 bytes (maxGunzipBytes)`,
  });
  t.deepEqual(readdirSync(scratch), []);
});
