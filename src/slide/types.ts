/** The public shape of an opened slide (see slide.ts for the behaviour). */
import type { RgbBatch } from '../kernels/types.js';
import type { TileCacheStats } from './tile_cache.js';

export type SlideReaderName = 'openslide' | 'sharp';

export interface SlideLevel {
  width: number;
  height: number;
  /** Level-0 pixels per pixel of this level: (w0/w + h0/h)/2, as OpenSlide reports it. */
  downsample: number;
  /** The tile grid reads are aligned to: the file's tiles, or 512 x 512 when the level is stored in strips. */
  tileWidth: number;
  tileHeight: number;
}

/** What a slide says about itself, the same from every reader. */
export interface SlideMetadata {
  /** Which reader opened it. */
  readonly reader: SlideReaderName;
  /** 'aperio', 'generic-tiff', 'ome-tiff', 'tiff', 'png', 'jpeg', … (OpenSlide's vendor name when it opened it). */
  readonly format: string;
  /** Level 0 is full resolution; downsamples increase. */
  readonly levels: readonly SlideLevel[];
  /** Microns per level-0 pixel, when the file says. */
  readonly mpp: { x: number; y: number } | null;
  /** 'thumbnail' | 'label' | 'macro' | … */
  readonly associatedImages: readonly string[];
  readonly properties: Readonly<Record<string, string>>;
  /** What the file got wrong that the reader read around (e.g. an unusable MPP, then `mpp` is null). */
  readonly warnings: readonly string[];
}

export interface Slide extends SlideMetadata {
  readonly path: string;
  /**
   * RGB uint8 (a batch of one). x, y, width, height are in the pixels of
   * `level` itself (not level 0, unlike OpenSlide's read_region). Pixels
   * outside the level are white (255); transparency is composited on white.
   */
  readRegion(level: number, x: number, y: number, width: number, height: number): Promise<RgbBatch>;
  /** An associated image (one of associatedImages) as RGB. */
  readAssociated(name: string): Promise<RgbBatch>;
  /** The whole slide, downsampled so that its longer side is ≤ maxSize, and its downsample w.r.t. level 0. */
  thumbnail(maxSize: number): Promise<{ image: RgbBatch; downsample: number }>;
  /** The level with the largest downsample ≤ d (OpenSlide's rule; level 0 when d < 1). */
  bestLevelForDownsample(d: number): number;
  /** The tile cache's current state. */
  cacheStats(): TileCacheStats;
  /** Frees the reader; later reads reject with an Error. Idempotent. */
  close(): Promise<void>;
}

/**
 * What a reader provides; slide.ts adds validation, the tile grid and cache,
 * thumbnails and level choice on top.
 */
export interface SlideSource extends SlideMetadata {
  /** RGB (over white) of a rectangle that lies entirely inside `level`, in level pixels. */
  readRect(level: number, x: number, y: number, width: number, height: number): Promise<Uint8Array>;
  readAssociated(name: string): Promise<RgbBatch>;
  close(): Promise<void>;
}
