/**
 * What the fuzz suite found, kept as plain tests: each names the case that
 * found it (`node scripts/fuzz.mjs --family F --seed S --case I`).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { PackedDataset } from '../../src/dataset/packed.js';
import { PackedWriter } from '../../src/dataset/packed_writer.js';
import { MAX_COORDINATE, labelTile, parseAnnotations } from '../../src/tiling/annotations.js';
import { syntheticHE } from '../support/helpers.js';

const triangle = (r: number) => ({
  type: 'Polygon',
  coordinates: [[[r, 0], [-r / 2, 0.866 * r], [-r / 2, -0.866 * r], [r, 0]]],
});

// geojson, seed 20261205, cases 16 and 110: a 3-gon of radius 1e300 gave a tile the coverage NaN.
test('GeoJSON positions beyond ±2^40 px are refused, naming the position', (t) => {
  const e = t.throws(() => parseAnnotations(triangle(1e300)), { instanceOf: RangeError });
  t.regex(e!.message, /geometry\.coordinates\[0\]\[0\]\[0\].*1e\+300/);
  t.throws(() => parseAnnotations(triangle(MAX_COORDINATE * 2)), { instanceOf: RangeError });
});

test('a polygon at the coordinate limit still gives every tile a coverage in [0, 1]', (t) => {
  const polygons = parseAnnotations(triangle(MAX_COORDINATE));
  for (const rect of [{ x: 0, y: 0, width: 256, height: 256 }, { x: -MAX_COORDINATE, y: -MAX_COORDINATE, width: MAX_COORDINATE, height: MAX_COORDINATE }]) {
    const { coverages } = labelTile(polygons, rect);
    t.true(Object.values(coverages).every((c) => c >= 0 && c <= 1), JSON.stringify(coverages));
  }
});

// packed, seed 4242, cases 609 and 770: a journal line `null` (TypeError "Cannot read properties of null")
// and one whose metadata nests 5000 arrays deep ("Maximum call stack size exceeded") stopped a resume.
for (const [what, line] of [
  ['null', 'null'],
  ['metadata nested 5000 arrays deep', `{"label":1,"meta":{"tissueFraction":${'['.repeat(5000)}0${']'.repeat(5000)}}}`],
  ['a label outside int32', '{"label":1e300,"meta":{"id":"b"}}'],
]) {
  test(`a resumed PackedWriter keeps the records before a journal line holding ${what}, as before a torn tail`, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'histoflow-regression-'));
    try {
      const path = join(dir, 'tiles.hfpack');
      const options = { height: 2, width: 2, labels: 'int32' as const, chunkRecords: 1 };
      const first = await PackedWriter.create(path, options);
      await first.append(syntheticHE(3, 2, 2), { labels: [0, 1, 0], meta: [{ id: 'a' }, { id: 'b' }, { id: 'c' }] });
      await first.flush();
      await first.abort({ discard: false });
      const journal = `${path}.partial.journal`;
      const lines = (await readFile(journal, 'utf8')).split('\n');
      lines[2] = line; // record 'b'
      await writeFile(journal, lines.join('\n'));
      const resumed = await PackedWriter.create(path, options);
      t.is(resumed.resumed, 1);
      await resumed.append(syntheticHE(2, 2, 2), { labels: [1, 0], meta: [{ id: 'b' }, { id: 'c' }] });
      await resumed.finish();
      const ds = await PackedDataset.open(path, { mmap: false });
      t.deepEqual(ds.metadata.records.map((r) => r.id), ['a', 'b', 'c']);
      t.deepEqual([...ds.labels!], [0, 1, 0]);
      ds.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
