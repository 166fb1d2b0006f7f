/**
 * Fuzz family 'packed': mutated .hfpack files (src/dataset/packed_format.ts):
 * header fields given absurd or consistently lying values, metadata blocks
 * of mutated JSON, truncations and bit flips; read by PackedDataset (mapped
 * and read into memory). And mutated FILE.partial / journal pairs resumed
 * by PackedWriter, which must finish a valid file or refuse.
 */
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { PackedDataset } from '../../../src/dataset/packed.js';
import { PACKED_HEADER_BYTES } from '../../../src/dataset/packed_format.js';
import { PackedWriter } from '../../../src/dataset/packed_writer.js';
import {
  INTERESTING_U32, chain, mutateBytes, mutateJsonText, mutateJsonTree, toJsonText, type FuzzRng, type Mutated,
} from '../fuzz.js';
import { apiVerdict, WrongResult, type CaseContext, type FuzzCase, type FuzzFamily } from '../fuzz_verdict.js';
import { syntheticHE } from '../helpers.js';

/** The header's fields: name, offset, width in bytes (packed_format.ts). */
const FIELDS: Array<[string, number, 4 | 8]> = [
  ['version', 8, 4], ['headerBytes', 12, 4], ['flags', 16, 4], ['channels', 20, 4], ['count', 24, 8], ['height', 32, 4], ['width', 36, 4],
  ['labelDtype', 40, 4], ['pixelOffset', 48, 8], ['pixelBytes', 56, 8], ['labelsOffset', 64, 8], ['labelsBytes', 72, 8],
  ['metaOffset', 80, 8], ['metaBytes', 88, 8],
];

interface PackedSeed {
  name: string;
  height: number;
  width: number;
  labels: 'int32' | 'uint8' | 'none';
  count: number;
}

const SEEDS: PackedSeed[] = [
  { name: 'int32', height: 8, width: 8, labels: 'int32', count: 5 },
  { name: 'uint8', height: 10, width: 12, labels: 'uint8', count: 3 },
  { name: 'none', height: 4, width: 4, labels: 'none', count: 1 },
];

async function writeSeed(path: string, s: PackedSeed, finish: boolean): Promise<void> {
  const w = await PackedWriter.create(path, { height: s.height, width: s.width, labels: s.labels, info: { seed: s.name, note: 'fuzz' }, chunkRecords: 1 });
  const batch = syntheticHE(s.count, s.height, s.width, 7);
  const labels = Array.from({ length: s.count }, (_, i) => (s.labels === 'none' ? null : i % 2));
  await w.append(batch, {
    ...(s.labels === 'none' ? {} : { labels: s.labels === 'int32' ? labels.map((l, i) => (i === 0 ? null : l)) : labels }),
    meta: Array.from({ length: s.count }, (_, i) => ({ id: `tile-${i}`, slide: 'fuzz', level: 0, x: i * s.width, y: 0, tissueFraction: 0.5 })),
  });
  if (finish) await w.finish();
  else {
    await w.flush();
    await w.abort({ discard: false });
  }
}

async function prepare(seeds: string): Promise<void> {
  for (const s of SEEDS) {
    await writeSeed(join(seeds, `${s.name}.hfpack`), s, true);
    await writeSeed(join(seeds, `partial-${s.name}.hfpack`), s, false);
  }
}

function u64Value(rng: FuzzRng, file: Buffer, name: string): bigint {
  const size = BigInt(file.length);
  return rng.pick([0n, 1n, 64n, 128n, size, size + 1n, size - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n,
    name === 'count' ? 1n << 40n : 2n ** 31n - 1n]);
}

/** A header field set to an absurd value, or the count changed with pixelBytes (and the offsets after it) kept consistent. */
function mutateHeader(rng: FuzzRng, file: Buffer): Mutated {
  const out = Buffer.from(file);
  if (out.length < PACKED_HEADER_BYTES) return mutateBytes(rng, file);
  if (rng.chance(0.3)) {
    // A consistent lie: count and pixelBytes agree, but the file does not hold them.
    const count = out.readBigUInt64LE(24), h = BigInt(out.readUInt32LE(32)), w = BigInt(out.readUInt32LE(36));
    const lie = rng.pick([count + 1n, count * 1000n, 0n, 1n << 30n, (1n << 32n) + 1n]);
    out.writeBigUInt64LE(lie, 24);
    out.writeBigUInt64LE((lie * h * w * 3n) & 0xffffffffffffffffn, 56); // wraps like a u64 product in C
    return { bytes: out, what: `count ${count} := ${lie} with pixelBytes to match` };
  }
  const [name, at, width] = rng.pick(FIELDS);
  if (width === 4) {
    const v = rng.pick(INTERESTING_U32);
    out.writeUInt32LE(v >>> 0, at);
    return { bytes: out, what: `${name} := ${v}` };
  }
  const v = u64Value(rng, file, name);
  out.writeBigUInt64LE(v & 0xffffffffffffffffn, at);
  return { bytes: out, what: `${name} := ${v}` };
}

/** The metadata block replaced by mutated JSON, the header's metaBytes fixed to the new size (so the file still checks). */
function mutateMetadata(rng: FuzzRng, file: Buffer): Mutated {
  const metaOffset = Number(file.readBigUInt64LE(80));
  const doc = JSON.parse(file.subarray(metaOffset).toString('utf8')) as unknown;
  const m = rng.chance(0.85) ? ((t) => ({ text: toJsonText(t.value), what: t.what }))(mutateJsonTree(rng, doc)) : mutateJsonText(rng, JSON.stringify(doc));
  const meta = Buffer.from(m.text, 'utf8');
  const out = Buffer.concat([file.subarray(0, metaOffset), meta]);
  out.writeBigUInt64LE(BigInt(meta.length), 88);
  return { bytes: out, what: `metadata: ${m.what}` };
}

async function make({ rng, dir, seeds }: CaseContext): Promise<FuzzCase> {
  const seed = rng.pick(SEEDS);
  if (rng.chance(0.2)) return makeResume(rng, dir, seeds, seed);
  const file = await readFile(join(seeds, `${seed.name}.hfpack`));
  const r = rng.float();
  const m = r < 0.45 ? chain(rng, file, 2, mutateHeader) : r < 0.7 ? mutateMetadata(rng, file) : chain(rng, file, 3, mutateBytes);
  const path = join(dir, 'tiles.hfpack');
  await writeFile(path, m.bytes);
  const mmap = rng.chance(0.6);
  return {
    what: `${seed.name}.hfpack (mmap ${mmap}): ${m.what}`,
    run: () => apiVerdict(async () => {
      const ds = await PackedDataset.open(path, { mmap });
      try {
        const rb = ds.height * ds.width * 3;
        if (ds.count > 0) {
          const all = ds.batch(0, ds.count);
          if (all.data.length !== ds.count * rb) throw new WrongResult(`batch(0, ${ds.count}) holds ${all.data.length} bytes, expected ${ds.count * rb}`);
          const g = ds.gather([ds.count - 1, 0]);
          if (g.data.length !== 2 * rb) throw new WrongResult(`gather of 2 holds ${g.data.length} bytes`);
          let seen = 0;
          for await (const b of ds.batches({ batchSize: 2, shuffle: true, seed: 3 })) {
            seen += b.batch.n;
            if (b.labels && b.labels.length !== b.batch.n) throw new WrongResult(`a batch of ${b.batch.n} with ${b.labels.length} labels`);
          }
          if (seen !== ds.count) throw new WrongResult(`batches() gave ${seen} records of ${ds.count}`);
        }
        if (ds.labels && ds.labels.length !== ds.count) throw new WrongResult(`${ds.labels.length} labels for ${ds.count} records`);
        const meta = ds.metadata;
        for (let i = 0; i < Math.min(ds.count, 3); i++) {
          const rec = ds.record(i);
          if (rec.index !== i) throw new WrongResult(`record(${i}).index is ${rec.index}`);
        }
        if (meta.records.length !== ds.count) throw new WrongResult('metadata records differ from count');
      } finally {
        ds.close();
      }
    }),
  };
}

/** A mutated FILE.partial or journal in out/, resumed by PackedWriter.create, appended to and finished. */
async function makeResume(rng: FuzzRng, dir: string, seeds: string, seed: PackedSeed): Promise<FuzzCase> {
  const path = join(dir, 'out', 'tiles.hfpack');
  const partial = await readFile(join(seeds, `partial-${seed.name}.hfpack.partial`));
  const journal = await readFile(join(seeds, `partial-${seed.name}.hfpack.partial.journal`), 'utf8');
  let what: string;
  if (rng.chance(0.5)) {
    const m = chain(rng, partial, 2, (r, b) => (r.chance(0.5) ? mutateHeader(r, b) : mutateBytes(r, b)));
    await writeFile(`${path}.partial`, m.bytes);
    await writeFile(`${path}.partial.journal`, journal);
    what = `resume: .partial ${m.what}`;
  } else {
    const lines = journal.split('\n');
    const k = rng.int(Math.max(1, lines.length - 1));
    let line = lines[k]!, how: string;
    if (line && rng.chance(0.7)) {
      const m = mutateJsonTree(rng, JSON.parse(line));
      line = toJsonText(m.value).replace(/\n/g, ' ');
      how = m.what;
    } else {
      const m = mutateJsonText(rng, line);
      line = m.text;
      how = m.what;
    }
    lines[k] = line;
    await copyFile(join(seeds, `partial-${seed.name}.hfpack.partial`), `${path}.partial`);
    await writeFile(`${path}.partial.journal`, lines.join('\n'));
    what = `resume: journal line ${k}: ${how}`;
  }
  return {
    what: `${seed.name} ${what}`,
    run: () => apiVerdict(async () => {
      const w = await PackedWriter.create(path, { height: seed.height, width: seed.width, labels: seed.labels, info: { seed: seed.name, note: 'fuzz' }, chunkRecords: 1 });
      const extra = syntheticHE(2, seed.height, seed.width, 11);
      await w.append(extra, {
        ...(seed.labels === 'none' ? {} : { labels: [1, 0] }),
        meta: [{ id: 'new-0' }, { id: 'new-1' }],
      });
      const done = await w.finish();
      const ds = await PackedDataset.open(path, { mmap: false });
      try {
        if (ds.count !== w.completed || ds.count < 2) throw new WrongResult(`the resumed file holds ${ds.count} records, the writer says ${w.completed} (${JSON.stringify(done)})`);
        if (ds.metadata.records.length !== ds.count) throw new WrongResult('the resumed file\'s metadata and count differ');
      } finally {
        ds.close();
      }
    }),
  };
}

export const packedFamily: FuzzFamily = { prepare, make };
