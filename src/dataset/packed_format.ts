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
 *        8    4  u32 version      1, or 2 for a file with label masks
 *       12    4  u32 headerBytes  128 (the header's size; readers reject others)
 *       16    4  u32 flags        bit 0 = complete: set only when the writer
 *                                 finished (FILE.partial has it clear)
 *       20    4  u32 channels     3 (RGB)
 *       24    8  u64 count        records (tiles)
 *       32    4  u32 height       pixels per tile, ≥ 1
 *       36    4  u32 width        pixels per tile, ≥ 1
 *       40    4  u32 labelDtype   0 none, 1 uint8, 2 int32 (−1 = unlabelled)
 *       44    4  u32 maskDtype    version 2: 1 (uint8); version 1: reserved (0)
 *       48    8  u64 pixelOffset  multiple of 64, ≥ 128
 *       56    8  u64 pixelBytes   count·height·width·channels
 *       64    8  u64 labelsOffset multiple of 64, ≥ pixelOffset + pixelBytes
 *       72    8  u64 labelsBytes  count·(0 | 1 | 4) by labelDtype
 *       80    8  u64 metaOffset   ≥ labelsOffset + labelsBytes (+ the masks)
 *       88    8  u64 metaBytes    metaOffset + metaBytes = the file's size
 *       96    8  u64 masksOffset  version 2: multiple of 64, ≥ labelsOffset + labelsBytes
 *      104    8  u64 masksBytes   version 2: count·height·width; version 1: reserved (0)
 *      112   16  reserved         zeros
 *
 * Pixel block: record i's tile at pixelOffset + i·height·width·channels, HWC
 * (NHWC over the block), no padding between records. The 64-byte alignment
 * of the blocks (and a mapping starting on a page) makes Uint8Array and
 * Int32Array views aligned.
 *
 * Labels block: count labels of labelDtype (int32 little-endian).
 *
 * Masks block (version 2 only): record i's label mask at masksOffset +
 * i·height·width, one uint8 class index per pixel (row-major), 0 =
 * background, 1..254 the labels named in the metadata's "masks.labels",
 * 255 = ignore (annotation exclusion regions; src/tiling/masks.ts). A file
 * without masks is written as version 1, byte for byte as before masks
 * existed, so readers that know only version 1 keep reading those; they
 * refuse a version 2 file by its version rather than drop its masks.
 *
 * Metadata block: UTF-8 JSON
 *   { "format": "histoflow-packed", "version": 1,
 *     "info": { …dataset-level, as the writer was given… },
 *     "records": [ { "id"?, "source"?, "slide"?, "level"?, "x"?, "y"?,
 *                    "tissueFraction"?, "labelCoverage"? }, … count entries ],
 *     "masks": { "labels": ["background", …], "ignore": 255 }   (version 2) }
 * A record's label lives only in the labels block (one source of truth);
 * `PackedDataset.record(i)` returns both.
 *
 * A reader checks every field against the others and against the file's size
 * before making a view: a truncated or corrupt file, or one whose header lies
 * about its count, is an Error naming the file and the field, never a read
 * out of bounds.
 */

export const PACKED_MAGIC = Uint8Array.of(0x48, 0x46, 0x50, 0x41, 0x43, 0x4b, 0x00, 0x1a);
/** The version of files without masks; files with masks are PACKED_MASKS_VERSION. */
export const PACKED_VERSION = 1;
export const PACKED_MASKS_VERSION = 2;
export const PACKED_HEADER_BYTES = 128;
export const PACKED_ALIGN = 64;
export const PACKED_CHANNELS = 3;
export const FLAG_COMPLETE = 1;

export const LABEL_DTYPES = ['none', 'uint8', 'int32'] as const;
export type LabelDtype = (typeof LABEL_DTYPES)[number];
/** Bytes per label. */
export const LABEL_BYTES: Record<LabelDtype, number> = { none: 0, uint8: 1, int32: 4 };
export const MASK_DTYPES = ['none', 'uint8'] as const;
export type MaskDtype = (typeof MASK_DTYPES)[number];

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
  /** 'uint8' in version 2 (a masks block), 'none' in version 1. */
  maskDtype: MaskDtype;
  pixelOffset: number;
  pixelBytes: number;
  labelsOffset: number;
  labelsBytes: number;
  /** 0 and 0 without masks. */
  masksOffset: number;
  masksBytes: number;
  metaOffset: number;
  metaBytes: number;
}

export function alignUp(n: number, a = PACKED_ALIGN): number {
  return Math.ceil(n / a) * a;
}

/** The layout of a complete file of `count` records; metaBytes as given; with masks, version 2. */
export function packedLayout(
  count: number, height: number, width: number, labelDtype: LabelDtype, metaBytes: number, maskDtype: MaskDtype = 'none',
): PackedHeader {
  const pixelOffset = PACKED_HEADER_BYTES;
  const pixelBytes = count * height * width * PACKED_CHANNELS;
  const labelsOffset = alignUp(pixelOffset + pixelBytes);
  const labelsBytes = count * LABEL_BYTES[labelDtype];
  const masks = maskDtype === 'uint8';
  const masksOffset = masks ? alignUp(labelsOffset + labelsBytes) : 0;
  const masksBytes = masks ? count * height * width : 0;
  return {
    version: masks ? PACKED_MASKS_VERSION : PACKED_VERSION, complete: true, channels: PACKED_CHANNELS, count, height, width, labelDtype, maskDtype,
    pixelOffset, pixelBytes, labelsOffset, labelsBytes, masksOffset, masksBytes,
    metaOffset: masks ? masksOffset + masksBytes : labelsOffset + labelsBytes, metaBytes,
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
  if (h.version >= PACKED_MASKS_VERSION) v.setUint32(44, MASK_DTYPES.indexOf(h.maskDtype), true);
  v.setBigUint64(48, BigInt(h.pixelOffset), true);
  v.setBigUint64(56, BigInt(h.pixelBytes), true);
  v.setBigUint64(64, BigInt(h.labelsOffset), true);
  v.setBigUint64(72, BigInt(h.labelsBytes), true);
  v.setBigUint64(80, BigInt(h.metaOffset), true);
  v.setBigUint64(88, BigInt(h.metaBytes), true);
  if (h.version >= PACKED_MASKS_VERSION) {
    v.setBigUint64(96, BigInt(h.masksOffset), true);
    v.setBigUint64(104, BigInt(h.masksBytes), true);
  }
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
  if (version !== PACKED_VERSION && version !== PACKED_MASKS_VERSION) {
    fail(`version ${version} (this histoflow reads versions ${PACKED_VERSION} and ${PACKED_MASKS_VERSION})`);
  }
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
  // Version 1's bytes 44 and 96.. are reserved: never read, whatever an old writer left there.
  const masked = version === PACKED_MASKS_VERSION;
  const maskCode = masked ? v.getUint32(44, true) : 0;
  if (masked && maskCode !== 1) fail(`maskDtype ${maskCode} in a version 2 header (expected 1, uint8 masks)`);
  const h: PackedHeader = {
    version, complete, channels, count, height, width, labelDtype: labelDtype!, maskDtype: MASK_DTYPES[maskCode]!,
    pixelOffset: u64(48, 'pixelOffset'), pixelBytes: u64(56, 'pixelBytes'),
    labelsOffset: u64(64, 'labelsOffset'), labelsBytes: u64(72, 'labelsBytes'),
    masksOffset: masked ? u64(96, 'masksOffset') : 0, masksBytes: masked ? u64(104, 'masksBytes') : 0,
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
  let blocksEnd = h.labelsOffset + h.labelsBytes;
  if (masked) {
    if (BigInt(h.masksBytes) !== BigInt(count) * BigInt(height) * BigInt(width)) fail(`masksBytes ${h.masksBytes} ≠ count ${count} × ${width}x${height}`);
    if (h.masksOffset % PACKED_ALIGN !== 0 || h.masksOffset < blocksEnd) fail(`masksOffset ${h.masksOffset} overlaps the labels or is unaligned`);
    blocksEnd = h.masksOffset + h.masksBytes;
  }
  if (h.metaOffset < blocksEnd) fail(`metaOffset ${h.metaOffset} overlaps the ${masked ? 'masks' : 'labels'}`);
  if (h.metaOffset + h.metaBytes !== fileSize) {
    const end = h.metaOffset + h.metaBytes;
    fail(end > fileSize
      ? `truncated: the header describes ${end} bytes but the file holds ${fileSize}`
      : `${fileSize - end} unexpected bytes after the metadata block`);
  }
  return h;
}
