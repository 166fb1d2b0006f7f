/**
 * The fuzz suite's seeded mutator library (the hardening issue): a
 * deterministic generator, and mutations of bytes (truncation, bit flips,
 * interesting values, spliced blocks), of TIFF directories, PNG and JPEG
 * headers, and of JSON trees. Every input a case feeds histoflow is derived
 * from (seed, family, case index) alone, so a failure reproduces with
 * `node scripts/fuzz.mjs --family F --seed S --case I`. The runner is
 * fuzz_runner.ts; the families are fuzz_families/*.ts.
 */

// ---------------------------------------------------------------------------
// The generator

/** mulberry32 over a 32-bit state: fast, deterministic, good enough to choose mutations. */
export class FuzzRng {
  #s: number;

  constructor(seed: number) {
    this.#s = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    this.#s = (this.#s + 0x6d2b79f5) >>> 0;
    let t = this.#s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor(this.float() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.int(items.length)]!;
  }
}

/** FNV-1a of a string, for mixing a family name into a seed. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The generator of one case: a function of (seed, family, index) only. */
export function caseRng(seed: number, family: string, index: number): FuzzRng {
  const mix = new FuzzRng((seed ^ fnv1a(family)) >>> 0);
  const a = mix.u32();
  return new FuzzRng((a ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
}

// ---------------------------------------------------------------------------
// Byte mutations

/** Values that break size arithmetic: zero, one, sign bits, all ones, powers of two ± 1. */
export const INTERESTING_U32 = [
  0, 1, 2, 3, 7, 8, 15, 16, 255, 256, 4095, 4096, 0x7fff, 0x8000, 0xffff, 0x10000,
  0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x40000000, 0x00ffffff, 0x01000000,
];
export const INTERESTING_U16 = [0, 1, 2, 7, 8, 16, 255, 256, 0x7fff, 0x8000, 0xfffe, 0xffff];

/** A mutation's result: the new bytes and what was done, for the failure report. */
export interface Mutated {
  bytes: Buffer;
  what: string;
}

export function truncate(rng: FuzzRng, buf: Buffer): Mutated {
  // Near the start (headers), anywhere, or near the end (trailing directories).
  const at = rng.pick([() => rng.int(Math.min(buf.length, 512)), () => rng.int(buf.length), () => Math.max(0, buf.length - 1 - rng.int(4096))])();
  return { bytes: Buffer.from(buf.subarray(0, at)), what: `truncated to ${at} of ${buf.length} bytes` };
}

export function flipBits(rng: FuzzRng, buf: Buffer, region?: [number, number]): Mutated {
  const out = Buffer.from(buf);
  if (out.length === 0) return { bytes: out, what: 'no bits to flip' };
  const [lo, hi] = region ?? [0, out.length];
  const n = rng.range(1, 8);
  const where: number[] = [];
  for (let k = 0; k < n; k++) {
    const at = Math.min(out.length - 1, lo + rng.int(Math.max(1, hi - lo)));
    out[at]! ^= 1 << rng.int(8);
    where.push(at);
  }
  return { bytes: out, what: `flipped ${n} bits at bytes ${where.join(',')}` };
}

/** Overwrites 1, 2, 4 or 8 bytes at a random place with an interesting value (either byte order). */
export function overwriteInteresting(rng: FuzzRng, buf: Buffer, region?: [number, number]): Mutated {
  const out = Buffer.from(buf);
  const width = rng.pick([1, 2, 4, 8]);
  if (out.length < width) return { bytes: out, what: 'too short to overwrite' };
  const [lo, hi] = region ?? [0, out.length];
  const at = Math.min(out.length - width, lo + rng.int(Math.max(1, hi - lo)));
  const le = rng.chance(0.5);
  let value: bigint;
  if (width === 1) value = BigInt(rng.pick([0, 1, 0x7f, 0x80, 0xff]));
  else if (width === 2) value = BigInt(rng.pick(INTERESTING_U16));
  else if (width === 4) value = BigInt(rng.pick(INTERESTING_U32));
  else value = rng.pick([0n, 1n, 0x7fffffffffffffffn, 0xffffffffffffffffn, 0x8000000000000000n, 0x00000001_00000000n, 2n ** 53n + 1n]);
  for (let k = 0; k < width; k++) {
    const byte = Number((value >> BigInt(8 * k)) & 0xffn);
    out[le ? at + k : at + width - 1 - k] = byte;
  }
  return { bytes: out, what: `wrote ${width}-byte ${le ? 'LE' : 'BE'} 0x${value.toString(16)} at byte ${at}` };
}

/** Copies a random block of the file over another place (duplicated structures, misplaced offsets). */
export function spliceBlock(rng: FuzzRng, buf: Buffer): Mutated {
  const out = Buffer.from(buf);
  if (out.length < 16) return { bytes: out, what: 'too short to splice' };
  const len = rng.range(1, Math.min(256, out.length >> 1));
  const from = rng.int(out.length - len), to = rng.int(out.length - len);
  buf.copy(out, to, from, from + len);
  return { bytes: out, what: `copied ${len} bytes from ${from} to ${to}` };
}

/** One generic mutation: truncation, bit flips, an interesting value, or a spliced block. */
export function mutateBytes(rng: FuzzRng, buf: Buffer): Mutated {
  const r = rng.float();
  if (r < 0.2) return truncate(rng, buf);
  if (r < 0.55) return flipBits(rng, buf, rng.chance(0.5) ? [0, Math.min(buf.length, 1024)] : undefined);
  if (r < 0.9) return overwriteInteresting(rng, buf, rng.chance(0.5) ? [0, Math.min(buf.length, 1024)] : undefined);
  return spliceBlock(rng, buf);
}

/** Several mutations in a row (1..max), their descriptions joined. */
export function chain(rng: FuzzRng, buf: Buffer, max: number, one: (rng: FuzzRng, b: Buffer) => Mutated): Mutated {
  const n = rng.range(1, max);
  let bytes = buf;
  const what: string[] = [];
  for (let k = 0; k < n; k++) {
    const m = one(rng, bytes);
    bytes = m.bytes;
    what.push(m.what);
  }
  return { bytes, what: what.join('; ') };
}

// ---------------------------------------------------------------------------
// TIFF: directory-aware mutations

interface TiffEntryRef {
  /** Byte offset of the entry. */
  at: number;
  tag: number;
  type: number;
  count: number;
}

interface TiffIfdRef {
  at: number;
  entries: TiffEntryRef[];
  /** Where the next-IFD link is stored. */
  nextAt: number;
}

interface TiffLayoutRef {
  little: boolean;
  big: boolean;
  ifds: TiffIfdRef[];
}

/** The IFD chain (and first-level SubIFDs) of a TIFF buffer, as far as it parses; null when it is not TIFF. */
export function tiffLayout(buf: Buffer): TiffLayoutRef | null {
  if (buf.length < 16) return null;
  const little = buf[0] === 0x49 && buf[1] === 0x49;
  if (!little && !(buf[0] === 0x4d && buf[1] === 0x4d)) return null;
  const u16 = (at: number) => (little ? buf.readUInt16LE(at) : buf.readUInt16BE(at));
  const u32 = (at: number) => (little ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const u64 = (at: number) => Number(little ? buf.readBigUInt64LE(at) : buf.readBigUInt64BE(at));
  const magic = u16(2);
  if (magic !== 42 && magic !== 43) return null;
  const big = magic === 43;
  const ifds: TiffIfdRef[] = [];
  const seen = new Set<number>();
  const pending: number[] = [big ? u64(8) : u32(4)];
  while (pending.length > 0 && ifds.length < 64) {
    let at = pending.shift()!;
    while (at > 0 && !seen.has(at) && ifds.length < 64) {
      seen.add(at);
      const countSize = big ? 8 : 2, entrySize = big ? 20 : 12;
      if (at + countSize > buf.length) break;
      const n = big ? u64(at) : u16(at);
      const nextAt = at + countSize + n * entrySize;
      if (n === 0 || n > 4096 || nextAt + (big ? 8 : 4) > buf.length) break;
      const entries: TiffEntryRef[] = [];
      for (let i = 0; i < n; i++) {
        const e = at + countSize + i * entrySize;
        const entry = { at: e, tag: u16(e), type: u16(e + 2), count: big ? u64(e + 4) : u32(e + 4) };
        entries.push(entry);
        if (entry.tag === 330 && entry.count >= 1 && entry.count <= 16) {
          const unit = big ? 8 : 4;
          const inline = entry.count * unit <= (big ? 8 : 4);
          const base = inline ? e + (big ? 12 : 8) : big ? u64(e + 12) : u32(e + 8);
          for (let k = 0; k < entry.count && base + (k + 1) * unit <= buf.length; k++) pending.push(big ? u64(base + k * unit) : u32(base + k * unit));
        }
      }
      ifds.push({ at, entries, nextAt });
      at = big ? u64(nextAt) : u32(nextAt);
    }
  }
  return { little, big, ifds };
}

/** Tags whose values size buffers or point into the file. */
const TIFF_SIZE_TAGS = [256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 322, 323, 324, 325, 330, 338, 347, 254];

/** One structure-aware TIFF mutation; falls back to a byte mutation when the file does not parse. */
export function mutateTiff(rng: FuzzRng, buf: Buffer): Mutated {
  const layout = tiffLayout(buf);
  if (!layout || layout.ifds.length === 0 || rng.chance(0.15)) return mutateBytes(rng, buf);
  const out = Buffer.from(buf);
  const { little, big } = layout;
  const w16 = (at: number, v: number) => (little ? out.writeUInt16LE(v & 0xffff, at) : out.writeUInt16BE(v & 0xffff, at));
  const w32 = (at: number, v: number) => (little ? out.writeUInt32LE(v >>> 0, at) : out.writeUInt32BE(v >>> 0, at));
  const wOff = (at: number, v: number) => (big ? (little ? out.writeBigUInt64LE(BigInt(v), at) : out.writeBigUInt64BE(BigInt(v), at)) : w32(at, v));
  const ifd = rng.pick(layout.ifds);
  const sized = ifd.entries.filter((e) => TIFF_SIZE_TAGS.includes(e.tag));
  const entry = sized.length > 0 && rng.chance(0.8) ? rng.pick(sized) : rng.pick(ifd.entries);
  const valueAt = entry.at + (big ? 12 : 8);
  const absurd = () => rng.pick([...INTERESTING_U32, buf.length, buf.length + 1, ifd.at, 2 ** 24, 2 ** 24 + 1, 2 ** 30]);
  const kind = rng.int(10);
  switch (kind) {
    case 0: {
      // An absurd value of a size or offset tag (inline: the value itself; else the pointer).
      const v = absurd();
      if (entry.type === 3 && entry.count * 2 <= (big ? 8 : 4)) w16(valueAt, v);
      else wOff(valueAt, v);
      return { bytes: out, what: `IFD@${ifd.at} tag ${entry.tag}: value/offset := ${v}` };
    }
    case 1: {
      const v = rng.pick([0, 1, 2, entry.count + 1, entry.count * 2, 0x7fffffff, 0xffffffff, 0x40000000]);
      if (big) little ? out.writeBigUInt64LE(BigInt(v), entry.at + 4) : out.writeBigUInt64BE(BigInt(v), entry.at + 4);
      else w32(entry.at + 4, v);
      return { bytes: out, what: `IFD@${ifd.at} tag ${entry.tag}: count ${entry.count} := ${v}` };
    }
    case 2: {
      const t = rng.pick([0, 1, 2, 3, 4, 5, 7, 11, 12, 13, 16, 17, 18, 19, 0xffff]);
      w16(entry.at + 2, t);
      return { bytes: out, what: `IFD@${ifd.at} tag ${entry.tag}: type ${entry.type} := ${t}` };
    }
    case 3: {
      // The chain loops: to itself, to the first IFD, or into the middle of the file.
      const target = rng.pick([ifd.at, layout.ifds[0]!.at, 8, rng.int(buf.length), buf.length + 16]);
      wOff(ifd.nextAt, target);
      return { bytes: out, what: `IFD@${ifd.at}: next IFD := ${target}` };
    }
    case 4: {
      // A SubIFD loop: an entry becomes SubIFDs (tag 330) pointing at this IFD or the first one.
      const target = rng.pick([ifd.at, layout.ifds[0]!.at]);
      w16(entry.at, 330);
      w16(entry.at + 2, big ? 16 : 4);
      if (big) little ? out.writeBigUInt64LE(1n, entry.at + 4) : out.writeBigUInt64BE(1n, entry.at + 4);
      else w32(entry.at + 4, 1);
      wOff(valueAt, target);
      return { bytes: out, what: `IFD@${ifd.at} tag ${entry.tag} := SubIFDs [${target}] (a SubIFD loop)` };
    }
    case 5: {
      // The number of entries.
      const n = rng.pick([0, 1, 0xffff, ifd.entries.length + 1, ifd.entries.length * 100]);
      if (big) little ? out.writeBigUInt64LE(BigInt(n), ifd.at) : out.writeBigUInt64BE(BigInt(n), ifd.at);
      else w16(ifd.at, n);
      return { bytes: out, what: `IFD@${ifd.at}: entry count ${ifd.entries.length} := ${n}` };
    }
    case 6: {
      // The header's first-IFD offset.
      const target = rng.pick([0, 1, 8, buf.length, 0xffffffff, layout.ifds[layout.ifds.length - 1]!.at]);
      wOff(big ? 8 : 4, target);
      return { bytes: out, what: `header first IFD := ${target}` };
    }
    case 7: {
      // One element of an out-of-line array (tile offsets or byte counts): absurd.
      const arr = ifd.entries.find((e) => (e.tag === 324 || e.tag === 325 || e.tag === 273 || e.tag === 279) && e.count > 1);
      if (!arr) return mutateBytes(rng, buf);
      const unit = arr.type === 16 ? 8 : arr.type === 3 ? 2 : 4;
      const base = big ? Number(little ? out.readBigUInt64LE(arr.at + 12) : out.readBigUInt64BE(arr.at + 12)) : little ? out.readUInt32LE(arr.at + 8) : out.readUInt32BE(arr.at + 8);
      const k = rng.int(arr.count);
      const at = base + k * unit;
      if (at + unit > out.length) return mutateBytes(rng, buf);
      const v = absurd();
      if (unit === 2) w16(at, v);
      else if (unit === 4) w32(at, v);
      else little ? out.writeBigUInt64LE(BigInt(v), at) : out.writeBigUInt64BE(BigInt(v), at);
      return { bytes: out, what: `IFD@${ifd.at} tag ${arr.tag}[${k}] := ${v}` };
    }
    case 8: {
      // Two entries swap tags (unsorted directory, duplicated meanings).
      const a = rng.pick(ifd.entries), b = rng.pick(ifd.entries);
      w16(a.at, b.tag);
      w16(b.at, a.tag);
      return { bytes: out, what: `IFD@${ifd.at}: tags ${a.tag} and ${b.tag} swapped` };
    }
    default:
      return flipBits(rng, buf, [ifd.at, Math.min(buf.length, ifd.nextAt + 8)]);
  }
}

// ---------------------------------------------------------------------------
// PNG and JPEG headers

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309), as PNG chunks use it. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface PngChunkRef {
  at: number;
  length: number;
  type: string;
}

function pngChunks(buf: Buffer): PngChunkRef[] {
  const chunks: PngChunkRef[] = [];
  for (let at = 8; at + 12 <= buf.length && chunks.length < 10_000;) {
    const length = buf.readUInt32BE(at);
    chunks.push({ at, length, type: buf.toString('latin1', at + 4, at + 8) });
    at += 12 + length;
  }
  return chunks;
}

/** One PNG mutation: IHDR fields (CRC fixed, so decoders believe them), chunk lengths and types, IDAT bits. */
export function mutatePng(rng: FuzzRng, buf: Buffer): Mutated {
  const chunks = pngChunks(buf);
  if (chunks.length === 0 || rng.chance(0.2)) return mutateBytes(rng, buf);
  const out = Buffer.from(buf);
  const fixCrc = (c: PngChunkRef) => {
    if (c.at + 12 + c.length <= out.length) out.writeUInt32BE(crc32(out.subarray(c.at + 4, c.at + 8 + c.length)), c.at + 8 + c.length);
  };
  const ihdr = chunks.find((c) => c.type === 'IHDR');
  const kind = rng.int(6);
  if (ihdr && kind <= 2) {
    const field = rng.pick([['width', 8, 4], ['height', 12, 4], ['bit depth', 16, 1], ['colour type', 17, 1], ['compression', 18, 1], ['filter', 19, 1], ['interlace', 20, 1]] as const);
    const at = ihdr.at + field[1];
    const v = field[2] === 4 ? rng.pick([0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 65536, 100_000, 1 << 20]) : rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 255]);
    if (field[2] === 4) out.writeUInt32BE(v, at);
    else out[at] = v;
    const fixed = rng.chance(0.8);
    if (fixed) fixCrc(ihdr);
    return { bytes: out, what: `PNG IHDR ${field[0]} := ${v}${fixed ? ' (CRC fixed)' : ''}` };
  }
  const chunk = rng.pick(chunks);
  if (kind === 3) {
    const v = rng.pick([0, 1, 0x7fffffff, 0xffffffff, chunk.length + 1, chunk.length * 2]);
    out.writeUInt32BE(v >>> 0, chunk.at);
    return { bytes: out, what: `PNG chunk ${chunk.type}@${chunk.at}: length ${chunk.length} := ${v}` };
  }
  if (kind === 4) {
    const type = rng.pick(['IHDR', 'IEND', 'PLTE', 'tRNS', 'IDAT', 'iCCP', 'zzzz']);
    out.write(type, chunk.at + 4, 'latin1');
    fixCrc(chunk);
    return { bytes: out, what: `PNG chunk ${chunk.type}@${chunk.at} renamed ${type}` };
  }
  const idat = chunks.filter((c) => c.type === 'IDAT');
  const target = idat.length > 0 ? rng.pick(idat) : chunk;
  const m = flipBits(rng, out, [target.at + 8, target.at + 8 + Math.max(1, target.length)]);
  fixCrc(target);
  return { bytes: m.bytes, what: `PNG ${target.type}@${target.at}: ${m.what} (CRC fixed)` };
}

interface JpegSegmentRef {
  at: number;
  marker: number;
  length: number;
}

function jpegSegments(buf: Buffer): JpegSegmentRef[] {
  const segs: JpegSegmentRef[] = [];
  for (let at = 2; at + 4 <= buf.length && segs.length < 1000;) {
    if (buf[at] !== 0xff) break;
    const marker = buf[at + 1]!;
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2;
      continue;
    }
    const length = buf.readUInt16BE(at + 2);
    segs.push({ at, marker, length });
    if (marker === 0xda) break; // entropy-coded data follows
    at += 2 + length;
  }
  return segs;
}

/** One JPEG mutation: frame header fields (size, precision, components), segment lengths, tables, scan data. */
export function mutateJpeg(rng: FuzzRng, buf: Buffer): Mutated {
  const segs = jpegSegments(buf);
  if (segs.length === 0 || rng.chance(0.2)) return mutateBytes(rng, buf);
  const out = Buffer.from(buf);
  const sof = segs.find((s) => s.marker >= 0xc0 && s.marker <= 0xcf && s.marker !== 0xc4 && s.marker !== 0xc8 && s.marker !== 0xcc);
  const kind = rng.int(5);
  if (sof && kind <= 1) {
    const field = rng.pick([['precision', 4, 1], ['height', 5, 2], ['width', 7, 2], ['components', 9, 1], ['sampling', 11, 1], ['table', 12, 1]] as const);
    const v = field[2] === 2 ? rng.pick([0, 1, 0x7fff, 0xffff]) : rng.pick([0, 1, 2, 3, 4, 8, 12, 16, 0x11, 0x44, 0xff]);
    if (sof.at + field[1] + field[2] > out.length) return mutateBytes(rng, buf);
    if (field[2] === 2) out.writeUInt16BE(v, sof.at + field[1]);
    else out[sof.at + field[1]] = v;
    return { bytes: out, what: `JPEG SOF ${field[0]} := ${v}` };
  }
  const seg = rng.pick(segs);
  if (kind === 2) {
    const v = rng.pick([0, 1, 2, 0xffff, seg.length + 1, Math.max(0, seg.length - 1)]);
    out.writeUInt16BE(v, seg.at + 2);
    return { bytes: out, what: `JPEG segment 0xff${seg.marker.toString(16)}@${seg.at}: length ${seg.length} := ${v}` };
  }
  if (kind === 3) {
    const m = flipBits(rng, out, [seg.at + 4, seg.at + 2 + seg.length]);
    return { bytes: m.bytes, what: `JPEG segment 0xff${seg.marker.toString(16)}: ${m.what}` };
  }
  const sos = segs.find((s) => s.marker === 0xda);
  const start = sos ? sos.at + 2 + sos.length : buf.length >> 1;
  const m = flipBits(rng, out, [start, buf.length]);
  return { bytes: m.bytes, what: `JPEG scan data: ${m.what}` };
}

// ---------------------------------------------------------------------------
// JSON: tree mutations, serialized by hand so that raw tokens (1e999, deep nesting) survive

/** Text written into the JSON as it is (numbers JSON.stringify cannot write, very deep nesting). */
export class RawJson {
  constructor(readonly text: string) {}
}

export function toJsonText(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(toJsonText).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${toJsonText(v)}`).join(',')}}`;
  }
  if (typeof value === 'number' && !Number.isFinite(value)) return Number.isNaN(value) ? '"NaN"' : value > 0 ? '1e999' : '-1e999';
  return JSON.stringify(value) ?? 'null';
}

/** Values that are wrong in type or size for almost any field. */
export function interestingJsonValue(rng: FuzzRng): unknown {
  return rng.pick<() => unknown>([
    () => null, () => true, () => false, () => 0, () => -1, () => -0.5, () => 0.5, () => 1,
    () => 2 ** 31 - 1, () => 2 ** 32 - 1, () => 2 ** 32, () => -(2 ** 31), () => 2 ** 53 + 2, () => 1e308, () => -1e308,
    () => new RawJson('1e999'), () => new RawJson('-1e999'), () => 5e-324,
    () => '', () => 'NaN', () => 'Infinity', () => '-1', () => '96', () => 'x'.repeat(rng.pick([1, 1000, 100_000])),
    () => [], () => {}, () => ({}), () => [[[]]], () => [1, 2], () => [0, 0, 0], () => [1e308, -1e308, 0],
    () => new RawJson('{"__proto__":{"polluted":1}}'), () => ({ constructor: 1, toString: 'x' }),
    () => new RawJson(`${'['.repeat(2000)}${']'.repeat(2000)}`),
  ])();
}

/** Every path to a node of a JSON tree (bounded). */
function jsonPaths(value: unknown, limit = 5000): Array<Array<string | number>> {
  const paths: Array<Array<string | number>> = [[]];
  const walk = (v: unknown, path: Array<string | number>, depth: number) => {
    if (paths.length >= limit || depth > 40) return;
    if (Array.isArray(v)) {
      const step = Math.max(1, Math.floor(v.length / 50)); // sample long arrays
      for (let i = 0; i < v.length; i += step) {
        paths.push([...path, i]);
        walk(v[i], [...path, i], depth + 1);
      }
    } else if (v !== null && typeof v === 'object' && !(v instanceof RawJson)) {
      for (const [k, x] of Object.entries(v)) {
        paths.push([...path, k]);
        walk(x, [...path, k], depth + 1);
      }
    }
  };
  walk(value, [], 0);
  return paths;
}

function getAt(root: unknown, path: Array<string | number>): unknown {
  let v = root;
  for (const k of path) v = (v as Record<string | number, unknown>)[k];
  return v;
}

/** A deep copy of plain JSON data (RawJson kept). */
export function cloneJson<T>(value: T): T {
  if (value instanceof RawJson) return value;
  if (Array.isArray(value)) return value.map(cloneJson) as T;
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cloneJson(v)])) as T;
  return value;
}

/** Replaces the node at `path` (the root when empty) by `f(old)`; returns the new root. */
export function replaceAt(root: unknown, path: Array<string | number>, f: (old: unknown) => unknown): unknown {
  if (path.length === 0) return f(root);
  const parent = getAt(root, path.slice(0, -1)) as Record<string | number, unknown>;
  parent[path[path.length - 1]!] = f(parent[path[path.length - 1]!]);
  return root;
}

/**
 * One generic tree mutation of parsed JSON: a node replaced by an interesting
 * value, deleted, given an unknown key, retyped, repeated into a giant array,
 * or buried under deep nesting. Returns a new tree.
 */
export function mutateJsonTree(rng: FuzzRng, value: unknown): { value: unknown; what: string } {
  const root = cloneJson(value);
  const paths = jsonPaths(root);
  const path = rng.pick(paths);
  const where = path.length ? path.join('.') : '(root)';
  const kind = rng.int(8);
  if (kind <= 2) {
    const v = interestingJsonValue(rng);
    return { value: replaceAt(root, path, () => v), what: `${where} := ${toJsonText(v).slice(0, 60)}` };
  }
  if (kind === 3 && path.length > 0) {
    const parent = getAt(root, path.slice(0, -1));
    const key = path[path.length - 1]!;
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete (parent as Record<string, unknown>)[key as string];
    return { value: root, what: `${where} deleted` };
  }
  if (kind === 4) {
    const target = getAt(root, path);
    if (target !== null && typeof target === 'object' && !Array.isArray(target) && !(target instanceof RawJson)) {
      const key = rng.pick(['unknown', '__proto__', 'constructor', 'type', '', 'x'.repeat(300)]);
      (target as Record<string, unknown>)[key] = interestingJsonValue(rng);
      return { value: root, what: `${where}: added key ${JSON.stringify(key.slice(0, 20))}` };
    }
  }
  if (kind === 5) {
    const n = rng.pick([1000, 100_000]);
    return { value: replaceAt(root, path, (old) => Array.from({ length: n }, () => cloneJson(old))), what: `${where} := [${n} copies of it]` };
  }
  if (kind === 6) {
    const depth = rng.pick([100, 5000, 100_000]);
    return {
      value: replaceAt(root, path, (old) => new RawJson(`${'['.repeat(depth)}${toJsonText(old)}${']'.repeat(depth)}`)),
      what: `${where} nested ${depth} arrays deep`,
    };
  }
  // Retype: number ↔ string, array ↔ object.
  return {
    value: replaceAt(root, path, (old) => {
      if (typeof old === 'number') return String(old);
      if (typeof old === 'string') return Number(old) || old.length;
      if (Array.isArray(old)) return Object.fromEntries(old.map((x, i) => [String(i), x]));
      if (old !== null && typeof old === 'object') return Object.values(old);
      return [old];
    }),
    what: `${where} retyped`,
  };
}

/** Text-level damage to a JSON document: truncation or flipped bytes. */
export function mutateJsonText(rng: FuzzRng, text: string): { text: string; what: string } {
  const m = rng.chance(0.5) ? truncate(rng, Buffer.from(text)) : flipBits(rng, Buffer.from(text));
  return { text: m.bytes.toString('latin1'), what: m.what };
}
