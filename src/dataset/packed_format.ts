/**
 * The packed dataset format: one file of same-size uint8 RGB tiles, their
 * labels and a JSON metadata block, laid out so that a memory-mapped reader
 * can view pixels and labels as typed arrays without a copy. This comment is
 * the specification; `encodeHeader` / `decodeHeader` are its only code.
 *
 * All integers little-endian. Offsets are from the start of the file.
 *
 *   offset size  field
 *        0    8  magic            "HFPACK" 0x00 0x1A
 *        8    4  u32 version      1
 *       12    4  u32 headerBytes  128 (the header's size; readers reject others)
 *       16    4  u32 flags        bit 0 = complete: set only when the writer
 *                                 finished (FILE.partial has it clear)
 *       20    4  u32 channels     3 (RGB)
 *       24    8  u64 count        records (tiles)
 *       32    4  u32 height       pixels per tile, ≥ 1
 *       36    4  u32 width        pixels per tile, ≥ 1
 *       40    4  u32 labelDtype   0 none, 1 uint8, 2 int32 (−1 = unlabelled)
 *       44    4  u32 reserved     0
 *       48    8  u64 pixelOffset  multiple of 64, ≥ 128
 *       56    8  u64 pixelBytes   count·height·width·channels
 *       64    8  u64 labelsOffset multiple of 64, ≥ pixelOffset + pixelBytes
 *       72    8  u64 labelsBytes  count·(0 | 1 | 4) by labelDtype
 *       80    8  u64 metaOffset   ≥ labelsOffset + labelsBytes
 *       88    8  u64 metaBytes    metaOffset + metaBytes = the file's size
 *       96   32  reserved         zeros
 *
 * Pixel block: record i's tile at pixelOffset + i·height·width·channels, HWC
 * (NHWC over the block), no padding between records. The 64-byte alignment
 * of the blocks (and a mapping starting on a page) makes Uint8Array and
 * Int32Array views aligned.
 *
 * Labels block: count labels of labelDtype (int32 little-endian).
 *
 * Metadata block: UTF-8 JSON
 *   { "format": "histoflow-packed", "version": 1,
 *     "info": { …dataset-level, as the writer was given… },
 *     "records": [ { "id"?, "source"?, "slide"?, "level"?, "x"?, "y"?,
 *                    "tissueFraction"?, "labelCoverage"? }, … count entries ] }
 * A record's label lives only in the labels block (one source of truth);
 * `PackedDataset.record(i)` returns both.
 *
 * A reader checks every field against the others and against the file's size
 * before making a view: a truncated or corrupt file, or one whose header lies
 * about its count, is an Error naming the file and the field, never a read
 * out of bounds.
 */

export const PACKED_MAGIC = Uint8Array.of(0x48, 0x46, 0x50, 0x41, 0x43, 0x4b, 0x00, 0x1a);
export const PACKED_VERSION = 1;
export const PACKED_HEADER_BYTES = 128;
export const PACKED_ALIGN = 64;
export const PACKED_CHANNELS = 3;
export const FLAG_COMPLETE = 1;

export const LABEL_DTYPES = ['none', 'uint8', 'int32'] as const;
export type LabelDtype = (typeof LABEL_DTYPES)[number];
/** Bytes per label. */
export const LABEL_BYTES: Record<LabelDtype, number> = { none: 0, uint8: 1, int32: 4 };
/** The label an int32 dataset stores for an unlabelled record. */
export const UNLABELLED = -1;

/** What a record's metadata may say (all optional). */
export interface PackedRecordMeta {
  /** An identifier, e.g. the Kaggle image id. */
  id?: string;
  /** Where the tile came from (a file path or URL). */
  source?: string;
  slide?: string;
  level?: number;
  x?: number;
  y?: number;
  tissueFraction?: number;
  /** Fraction of the tile covered by its label's annotations. */
  labelCoverage?: number;
}

export interface PackedHeader {
  version: number;
  complete: boolean;
  channels: number;
  count: number;
  height: number;
  width: number;
  labelDtype: LabelDtype;
  pixelOffset: number;
  pixelBytes: number;
  labelsOffset: number;
  labelsBytes: number;
  metaOffset: number;
  metaBytes: number;
}

export function alignUp(n: number, a = PACKED_ALIGN): number {
  return Math.ceil(n / a) * a;
}

/** The layout of a complete file of `count` records; metaBytes as given. */
export function packedLayout(count: number, height: number, width: number, labelDtype: LabelDtype, metaBytes: number): PackedHeader {
  const pixelOffset = PACKED_HEADER_BYTES;
  const pixelBytes = count * height * width * PACKED_CHANNELS;
  const labelsOffset = alignUp(pixelOffset + pixelBytes);
  const labelsBytes = count * LABEL_BYTES[labelDtype];
  return {
    version: PACKED_VERSION, complete: true, channels: PACKED_CHANNELS, count, height, width, labelDtype,
    pixelOffset, pixelBytes, labelsOffset, labelsBytes, metaOffset: labelsOffset + labelsBytes, metaBytes,
  };
}

export function encodeHeader(h: PackedHeader): Uint8Array {
  const bytes = new Uint8Array(PACKED_HEADER_BYTES);
  const v = new DataView(bytes.buffer);
  bytes.set(PACKED_MAGIC, 0);
  v.setUint32(8, h.version, true);
  v.setUint32(12, PACKED_HEADER_BYTES, true);
  v.setUint32(16, h.complete ? FLAG_COMPLETE : 0, true);
  v.setUint32(20, h.channels, true);
  v.setBigUint64(24, BigInt(h.count), true);
  v.setUint32(32, h.height, true);
  v.setUint32(36, h.width, true);
  v.setUint32(40, LABEL_DTYPES.indexOf(h.labelDtype), true);
  v.setBigUint64(48, BigInt(h.pixelOffset), true);
  v.setBigUint64(56, BigInt(h.pixelBytes), true);
  v.setBigUint64(64, BigInt(h.labelsOffset), true);
  v.setBigUint64(72, BigInt(h.labelsBytes), true);
  v.setBigUint64(80, BigInt(h.metaOffset), true);
  v.setBigUint64(88, BigInt(h.metaBytes), true);
  return bytes;
}

/** A format error: the file is not a (complete, valid) packed dataset. */
export class PackedFormatError extends Error {
  constructor(file: string, why: string) {
    super(`${file} is not a valid histoflow packed dataset: ${why}`);
    this.name = 'PackedFormatError';
  }
}

/**
 * Reads and checks the header of a file of `fileSize` bytes whose first bytes
 * are `bytes`. With `requireComplete` (readers) an unfinished writer's file
 * is rejected; the writer's resume reads its own partial header without it.
 */
export function decodeHeader(file: string, bytes: Uint8Array, fileSize: number, requireComplete = true): PackedHeader {
  const fail = (why: string): never => {
    throw new PackedFormatError(file, why);
  };
  if (fileSize < PACKED_HEADER_BYTES || bytes.length < PACKED_HEADER_BYTES) {
    fail(`it holds ${fileSize} bytes, fewer than the ${PACKED_HEADER_BYTES}-byte header`);
  }
  if (!PACKED_MAGIC.every((b, i) => bytes[i] === b)) fail('wrong magic (expected "HFPACK\\0\\x1a")');
  const v = new DataView(bytes.buffer, bytes.byteOffset, PACKED_HEADER_BYTES);
  const u64 = (offset: number, name: string): number => {
    const x = v.getBigUint64(offset, true);
    if (x > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${name} ${x} is out of range`);
    return Number(x);
  };
  const version = v.getUint32(8, true);
  if (version !== PACKED_VERSION) fail(`version ${version} (this histoflow reads version ${PACKED_VERSION})`);
  const headerBytes = v.getUint32(12, true);
  if (headerBytes !== PACKED_HEADER_BYTES) fail(`headerBytes ${headerBytes} (expected ${PACKED_HEADER_BYTES})`);
  const flags = v.getUint32(16, true);
  const complete = (flags & FLAG_COMPLETE) !== 0;
  if (requireComplete && !complete) fail('the writer did not finish it (complete flag clear)');
  const channels = v.getUint32(20, true);
  if (channels !== PACKED_CHANNELS) fail(`channels ${channels} (expected ${PACKED_CHANNELS})`);
  const count = u64(24, 'count');
  const height = v.getUint32(32, true);
  const width = v.getUint32(36, true);
  if (height < 1 || width < 1) fail(`tile size ${width}x${height}`);
  const dtypeCode = v.getUint32(40, true);
  const labelDtype = LABEL_DTYPES[dtypeCode];
  if (labelDtype === undefined) fail(`labelDtype ${dtypeCode} (expected 0, 1 or 2)`);
  const h: PackedHeader = {
    version, complete, channels, count, height, width, labelDtype: labelDtype!,
    pixelOffset: u64(48, 'pixelOffset'), pixelBytes: u64(56, 'pixelBytes'),
    labelsOffset: u64(64, 'labelsOffset'), labelsBytes: u64(72, 'labelsBytes'),
    metaOffset: u64(80, 'metaOffset'), metaBytes: u64(88, 'metaBytes'),
  };
  if (!requireComplete) return h;
  // Products in BigInt: a lying count must not overflow into a plausible size.
  const recordBytes = BigInt(height) * BigInt(width) * BigInt(channels);
  if (BigInt(h.pixelBytes) !== BigInt(count) * recordBytes) {
    fail(`pixelBytes ${h.pixelBytes} ≠ count ${count} × ${width}x${height}x${channels}`);
  }
  if (h.labelsBytes !== count * LABEL_BYTES[h.labelDtype]) fail(`labelsBytes ${h.labelsBytes} ≠ count ${count} × ${LABEL_BYTES[h.labelDtype]}`);
  if (h.pixelOffset < PACKED_HEADER_BYTES || h.pixelOffset % PACKED_ALIGN !== 0) fail(`pixelOffset ${h.pixelOffset} is not a multiple of 64 after the header`);
  if (h.labelsOffset % PACKED_ALIGN !== 0 || h.labelsOffset < h.pixelOffset + h.pixelBytes) fail(`labelsOffset ${h.labelsOffset} overlaps the pixels or is unaligned`);
  if (h.metaOffset < h.labelsOffset + h.labelsBytes) fail(`metaOffset ${h.metaOffset} overlaps the labels`);
  if (h.metaOffset + h.metaBytes !== fileSize) {
    const end = h.metaOffset + h.metaBytes;
    fail(end > fileSize
      ? `truncated: the header describes ${end} bytes but the file holds ${fileSize}`
      : `${fileSize - end} unexpected bytes after the metadata block`);
  }
  return h;
}
