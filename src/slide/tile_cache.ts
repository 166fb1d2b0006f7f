/**
 * Decoded slide tiles, least recently used first out, bounded by bytes.
 *
 * Design: a slide is read as a grid of tiles per level (the file's own tile
 * grid, or 512 x 512 when the level is stored in strips), so a region read
 * decodes each stored tile at most once while it stays in this cache, and
 * memory stays bounded by `capacity` whatever the slide's size. A Map keeps
 * insertion order, so re-inserting on every hit makes its first key the least
 * recently used. Concurrent requests for one tile share one decode. A tile
 * larger than the whole budget is returned but not kept.
 */
export interface TileCacheStats {
  /** Bytes of decoded tiles held now (never above capacity). */
  readonly bytes: number;
  readonly capacity: number;
  readonly tiles: number;
  readonly hits: number;
  readonly misses: number;
  /** The largest `bytes` ever held. */
  readonly peakBytes: number;
}

export class TileCache {
  private readonly entries = new Map<string, Uint8Array>();
  private readonly pending = new Map<string, Promise<Uint8Array>>();
  private held = 0;
  private peak = 0;
  private hitCount = 0;
  private missCount = 0;

  constructor(readonly capacity: number) {}

  /** The tile under `key`, decoding it with `load` when it is not held. */
  async get(key: string, load: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const cached = this.entries.get(key);
    if (cached) {
      this.hitCount++;
      this.entries.delete(key);
      this.entries.set(key, cached);
      return cached;
    }
    const inFlight = this.pending.get(key);
    if (inFlight) {
      this.hitCount++;
      return inFlight;
    }
    this.missCount++;
    const promise = load().then(
      (tile) => {
        this.pending.delete(key);
        this.insert(key, tile);
        return tile;
      },
      (e: unknown) => {
        this.pending.delete(key);
        throw e;
      },
    );
    this.pending.set(key, promise);
    return promise;
  }

  private insert(key: string, tile: Uint8Array): void {
    if (tile.byteLength > this.capacity) return;
    while (this.held + tile.byteLength > this.capacity) {
      const oldest = this.entries.keys().next().value as string;
      this.held -= this.entries.get(oldest)!.byteLength;
      this.entries.delete(oldest);
    }
    this.entries.set(key, tile);
    this.held += tile.byteLength;
    this.peak = Math.max(this.peak, this.held);
  }

  clear(): void {
    this.entries.clear();
    this.held = 0;
  }

  stats(): TileCacheStats {
    return { bytes: this.held, capacity: this.capacity, tiles: this.entries.size, hits: this.hitCount, misses: this.missCount, peakBytes: this.peak };
  }
}
