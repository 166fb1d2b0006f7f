/**
 * detections.geojson (predict-slide --detections): one QuPath detection per
 * tile predicted, what QuPath users get from a tile classifier. Each is the
 * square the tile gives its probability to on the map (its centre stride
 * square, see probability_map.ts; the tile itself when stride = size, the
 * default), in level-0 px, so the squares tile the tissue without overlap.
 * `measurements.probability` is the tile's probability; tiles ≥ threshold are
 * classified as QuPath's Tumor, the others left unclassified.
 */
import { TUMOUR_CLASS, type QuPathClassification } from './regions.js';

export interface DetectionProperties {
  objectType: 'detection';
  /** Present only for tiles ≥ threshold. */
  classification?: QuPathClassification;
  measurements: { probability: number; tissue_fraction: number };
  /** The tile read: top-left and side in level-0 px. */
  tile: { x: number; y: number; size: number };
}

export interface DetectionFeature {
  type: 'Feature';
  geometry: { type: 'Polygon'; coordinates: number[][][] };
  properties: DetectionProperties;
}

export interface DetectionCollection {
  type: 'FeatureCollection';
  features: DetectionFeature[];
}

export interface DetectedTile {
  /** Top-left in level-0 px. */
  x0: number;
  y0: number;
  tissue: number;
  probability: number;
}

export interface DetectionGeometry {
  /** Tile side and step at the level read, in its px, and the level's downsample. */
  readSize: number;
  readStride: number;
  downsample: number;
  threshold: number;
}

/** One detection per tile (see above), in the tiles' order. */
export function tileDetections(tiles: readonly DetectedTile[], g: DetectionGeometry): DetectionCollection {
  const side = g.readStride * g.downsample, margin = ((g.readSize - g.readStride) / 2) * g.downsample;
  const features = tiles.map((t): DetectionFeature => {
    const x = t.x0 + margin, y = t.y0 + margin;
    // Counter-clockwise in raw (x, y), as the regions' exterior rings.
    const ring = [[x, y], [x, y + side], [x + side, y + side], [x + side, y], [x, y]];
    return {
      type: 'Feature',
      geometry: { type: 'Polygon', coordinates: [ring] },
      properties: {
        objectType: 'detection',
        ...(t.probability >= g.threshold ? { classification: { ...TUMOUR_CLASS, color: [...TUMOUR_CLASS.color] } } : {}),
        measurements: { probability: t.probability, tissue_fraction: t.tissue },
        tile: { x: t.x0, y: t.y0, size: g.readSize * g.downsample },
      },
    };
  });
  return { type: 'FeatureCollection', features };
}
