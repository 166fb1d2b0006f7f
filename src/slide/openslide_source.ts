/**
 * The OpenSlide reader: the addon's native/slide/openslide_reader (vendor
 * formats: SVS incl. JPEG 2000, NDPI, MRXS, SCN, …). Reads run on libuv
 * threads; OpenSlide's read_region is thread-safe, so the tiles of one region
 * are decoded in parallel.
 */
import type { NativeAddon, NativeSlideHandle } from '../../bindings/binding.js';
import { loadAddon, requireAddon } from '../../bindings/loader.js';
import { withCallerStack } from '../errors.js';
import type { RgbBatch } from '../kernels/types.js';
import { omeMpp, statedMpp, type MppReading } from './mpp.js';
import { micronsPerPixel } from './tiff.js';
import type { SlideLevel, SlideSource } from './types.js';

/** Untiled levels (OpenSlide reports no tile size) are read on this grid. */
const UNTILED_GRID = 512;

/** The vendor OpenSlide recognises the file as, or '' (also when the addon or OpenSlide is missing). */
export async function openslideVendor(path: string): Promise<string> {
  const s = loadAddon();
  if (!s.ok || !s.addon.buildInfo().openslide) return '';
  return s.addon.openslideDetect(path);
}

/**
 * openslide.mpp-x/y, else aperio.MPP (OpenSlide drops an unparsable one, e.g. 9e999, but it is still
 * stated), else an OME-XML description's PhysicalSizeX/Y, else tiff.X/YResolution with tiff.ResolutionUnit (OpenSlide 3.4 leaves generic TIFF's mpp unset).
 * An unusable stated value is treated as absent, with a warning (mpp.ts), as the sharp reader does.
 */
export function openslideMpp(props: Record<string, string>): MppReading {
  const stated = statedMpp(props['openslide.mpp-x'], props['openslide.mpp-y']);
  if (stated?.mpp) return stated;
  const aperio = statedMpp(props['aperio.MPP']);
  if (aperio || stated) return aperio ?? stated!;
  const ome = omeMpp(props['tiff.ImageDescription'] ?? '');
  if (ome) return ome;
  const unit = { centimeter: 3, inch: 2 }[props['tiff.ResolutionUnit'] ?? ''] ?? 1;
  const rx = micronsPerPixel(Number(props['tiff.XResolution']), unit);
  const ry = micronsPerPixel(Number(props['tiff.YResolution'] ?? props['tiff.XResolution']), unit);
  return { mpp: rx && ry ? { x: rx, y: ry } : null, warnings: [] };
}

class OpenSlideSource implements SlideSource {
  readonly reader = 'openslide' as const;

  constructor(
    private readonly addon: NativeAddon,
    private readonly handle: NativeSlideHandle,
    readonly format: string,
    readonly levels: readonly SlideLevel[],
    readonly properties: Readonly<Record<string, string>>,
    readonly associatedImages: readonly string[],
    readonly mpp: { x: number; y: number } | null,
    readonly warnings: readonly string[],
  ) {}

  async readRect(level: number, x: number, y: number, width: number, height: number): Promise<Uint8Array> {
    const out = new Uint8Array(width * height * 3);
    await withCallerStack(() => this.addon.openslideReadRegion(this.handle, level, x, y, width, height, out));
    return out;
  }

  async readAssociated(name: string): Promise<RgbBatch> {
    const { data, width, height } = await withCallerStack(() => this.addon.openslideReadAssociated(this.handle, name));
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), n: 1, height, width };
  }

  async close(): Promise<void> {
    this.addon.openslideClose(this.handle);
  }
}

export async function openWithOpenSlide(path: string): Promise<SlideSource> {
  const addon = requireAddon();
  if (!addon.buildInfo().openslide) {
    throw new Error('histoflow was built without OpenSlide: install libopenslide-dev (apt install libopenslide-dev) and rebuild (npm run build)');
  }
  const opened = await withCallerStack(() => addon.openslideOpen(path));
  const vendor = opened.properties['openslide.vendor'] ?? 'unknown';
  const levels = opened.levels.map((l) => Object.freeze({
    width: l.width,
    height: l.height,
    downsample: l.downsample,
    tileWidth: l.tileWidth > 0 ? l.tileWidth : UNTILED_GRID,
    tileHeight: l.tileHeight > 0 ? l.tileHeight : UNTILED_GRID,
  }));
  const { mpp, warnings } = openslideMpp(opened.properties);
  return new OpenSlideSource(addon, opened.handle, vendor, Object.freeze(levels), Object.freeze({ ...opened.properties }),
    Object.freeze([...opened.associated].sort()), mpp, Object.freeze(warnings));
}
