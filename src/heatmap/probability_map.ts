/**
 * The probability map: one cell per stride, covering the whole level.
 *
 * Convention. With tiles of `size` level px laid every `stride` px from the
 * level's origin (src/tiling/grid.ts), cell (i, j) is the stride square at
 * level coordinates [j·stride, (j+1)·stride) × [i·stride, (i+1)·stride). A
 * tile at (x, y) gives its probability to its centre region, the stride
 * square centred on the tile, [x + (size − stride)/2, x + (size + stride)/2)
 * (same in y), and each cell holds the mean of the probabilities that reach
 * it, weighted by the area of their centre region over the cell. So:
 *   - stride = size: one cell per tile, the tile's own square;
 *   - size / stride odd (96/32): each tile's centre region is exactly one cell;
 *   - size / stride even (96/48): it straddles 2 x 2 cells by halves, and a
 *     cell averages the 4 tiles centred around it.
 * Cells no kept tile's centre region reaches (glass, tiles below minTissue,
 * the level's edge strip of (size − stride)/2) hold NaN: no data.
 */
import sharp from 'sharp';

export interface ProbabilityMap {
  /** width·height float32, row major, NaN = no data. */
  data: Float32Array;
  /** Cells across and down: ceil(level size / stride). */
  width: number;
  height: number;
  /** Cell side in level px (the tile grid's step at the level read). */
  stride: number;
  /** Tile side in level px. */
  tileSize: number;
}

export interface PlacedProbability {
  /** Top-left of the tile at the level, in its pixels. */
  x: number;
  y: number;
  probability: number;
}

/** The map of a level `levelWidth` x `levelHeight` from its tiles' probabilities (see the convention above). */
export function probabilityMap(levelWidth: number, levelHeight: number, tileSize: number, stride: number, tiles: readonly PlacedProbability[]): ProbabilityMap {
  const width = Math.ceil(levelWidth / stride), height = Math.ceil(levelHeight / stride);
  const sum = new Float64Array(width * height), weight = new Float64Array(width * height);
  const margin = (tileSize - stride) / 2;
  // Overlap of [a, a + stride) with cell k along one axis, for the cells it touches.
  const spans = (a: number, cells: number): Array<[number, number]> => {
    const out: Array<[number, number]> = [];
    const b = a + stride;
    for (let k = Math.max(0, Math.floor(a / stride)); k < cells && k * stride < b; k++) {
      const w = Math.min(b, (k + 1) * stride) - Math.max(a, k * stride);
      if (w > 1e-9) out.push([k, w / stride]);
    }
    return out;
  };
  for (const t of tiles) {
    const cols = spans(t.x + margin, width), rows = spans(t.y + margin, height);
    for (const [i, wy] of rows) {
      for (const [j, wx] of cols) {
        sum[i * width + j] += wy * wx * t.probability;
        weight[i * width + j] += wy * wx;
      }
    }
  }
  const data = new Float32Array(width * height);
  for (let k = 0; k < data.length; k++) data[k] = weight[k]! > 0 ? sum[k]! / weight[k]! : NaN;
  return { data, width, height, stride, tileSize };
}

/**
 * probability.png: 8-bit grey + alpha, one pixel per cell. Grey = round(255·p);
 * alpha 255 where the cell has data, 0 (and grey 0) where it has none.
 */
export function encodeProbabilityPng(map: ProbabilityMap): Promise<Buffer> {
  const px = Buffer.alloc(map.width * map.height * 2);
  for (let k = 0; k < map.data.length; k++) {
    const p = map.data[k]!;
    if (Number.isNaN(p)) continue;
    px[2 * k] = Math.round(255 * Math.min(1, Math.max(0, p)));
    px[2 * k + 1] = 255;
  }
  return sharp(px, { raw: { width: map.width, height: map.height, channels: 2 } }).toColourspace('b-w').png().toBuffer();
}

/** probability.f32: the map's floats, little-endian whatever the machine. */
export function encodeProbabilityF32(map: ProbabilityMap): Uint8Array {
  const bytes = new Uint8Array(map.data.length * 4);
  const view = new DataView(bytes.buffer);
  map.data.forEach((v, k) => view.setFloat32(4 * k, v, true));
  return bytes;
}

/** Reads probability.f32 back (e.g. in tests and notebooks): width·height little-endian float32. */
export function decodeProbabilityF32(bytes: Uint8Array): Float32Array {
  if (bytes.length % 4 !== 0) throw new RangeError(`Expected a multiple of 4 bytes of float32 but received ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: bytes.length / 4 }, (_, k) => view.getFloat32(4 * k, true));
}
