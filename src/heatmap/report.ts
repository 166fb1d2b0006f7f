/**
 * report.html: a page that opens from disk, with no request beyond its own
 * folder: a zoomable viewer (OpenSeadragon over the Deep Zoom images in
 * report_files/, see deep_zoom.ts: the slide with the map on top and an
 * opacity slider), then the overlay and the thumbnail (base64 data URIs, so
 * they show even without report_files/), the summary figures and the table of
 * regions. The page marks its state on <body> for headless browsers:
 * `data-overlay="loaded"` (and the title) when the overlay image decoded;
 * `data-viewer` "open" once OpenSeadragon opened both images ("unavailable"
 * without its script, "error" on a failed open), and `data-slide-tiles` /
 * `data-overlay-tiles` count the tiles drawn from each.
 */
import { VIEWER_FOLDER, type ViewerImages } from './deep_zoom.js';
import type { RegionFeature } from './regions.js';

export interface HeatmapSummary {
  slide: string;
  path: string;
  reader: string;
  /** Level-0 size in px. */
  width: number;
  height: number;
  /** µm per level-0 px, or null when the slide does not say. */
  mpp: number | null;
  level: number;
  downsample: number;
  /** µm per pixel of the tiles the model saw (null when unknown). */
  tileMpp: number | null;
  tileSize: number;
  stride: number;
  /** Map size in cells. */
  mapWidth: number;
  mapHeight: number;
  tiles: number;
  gridPositions: number;
  /** Tissue (thumbnail mask) and tumour (cells ≥ threshold) areas: level-0 px², and mm² when mpp is known. */
  tissueAreaPx: number;
  tissueAreaMm2: number | null;
  tumourAreaPx: number;
  tumourAreaMm2: number | null;
  /** Tumour cells / cells with data: the fraction of the analysed tissue called tumour. */
  tumourFraction: number;
  maxProbability: number;
  meanProbability: number;
  threshold: number;
  regions: number;
  model: string;
  tta: boolean;
  /** overlay.tif: level-0 px per px, and its size (ceil(width / d) x ceil(height / d)). */
  overlayDownsample: number;
  overlayWidth: number;
  overlayHeight: number;
  /** The report viewer's Deep Zoom images: size and level-0 px per px (the mean of both axes). */
  reportWidth: number;
  reportHeight: number;
  reportDownsample: number;
  /** Features in detections.geojson, or null when it was not asked for. */
  detections: number | null;
  seconds: number;
  /** Only for a pixel map (a segmentation model's): 'pixels', its level px per map pixel and µm per map pixel (null when unknown). */
  mapKind?: 'pixels';
  mapDownsample?: number;
  mapMpp?: number | null;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const fmt = (v: number | null, digits = 3): string => (v === null ? '—' : Number.isInteger(v) ? String(v) : v.toFixed(digits));

function area(px: number, mm2: number | null): string {
  return mm2 === null ? `${fmt(px, 0)} px² (level 0)` : `${fmt(mm2, 4)} mm²`;
}

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.images{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure{margin:0}figcaption{color:#555;font-size:12px}
img{max-width:100%;max-height:75vh;border:1px solid #ccc}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
#viewer{width:100%;height:70vh;background:#222;border:1px solid #ccc}`;

/** The viewer: both Deep Zoom images in one world (same size, so aligned), the overlay's opacity on a slider. */
function viewerSection(v: ViewerImages): string {
  // JSON inside <script>: escape '<' so no string can close the element.
  const sources = JSON.stringify({ slide: v.slide, overlay: v.overlay }).replace(/</g, '\\u003c');
  return `<h2>Zoomable viewer</h2>
<p>The slide at ${fmt(v.downsample, 2)}× downsample (${v.width} × ${v.height} px) with the probability map; scroll to zoom, drag to pan.
<label>Map opacity <input id="opacity" type="range" min="0" max="1" step="0.05" value="0.5"></label></p>
<div id="viewer"></div>
<script src="${VIEWER_FOLDER}/openseadragon.min.js"></script>
<script>
(function () {
  var body = document.body, counts = { slide: 0, overlay: 0 };
  if (typeof OpenSeadragon === 'undefined') { body.dataset.viewer = 'unavailable'; return; }
  var src = ${sources};
  var viewer = OpenSeadragon({
    id: 'viewer', prefixUrl: '${VIEWER_FOLDER}/images/', drawer: 'canvas', showNavigator: true, maxZoomPixelRatio: 4,
    tileSources: [{ tileSource: src.slide }, { tileSource: src.overlay, opacity: 0.5 }]
  });
  var opened = 0;
  viewer.world.addHandler('add-item', function () { if (++opened === 2) body.dataset.viewer = 'open'; });
  viewer.addHandler('open-failed', function () { body.dataset.viewer = 'error'; });
  viewer.addHandler('tile-loaded', function (e) {
    var which = e.tiledImage === viewer.world.getItemAt(0) ? 'slide' : 'overlay';
    counts[which]++;
    body.dataset[which + 'Tiles'] = String(counts[which]);
  });
  document.getElementById('opacity').addEventListener('input', function (e) {
    var overlay = viewer.world.getItemAt(1);
    if (overlay) overlay.setOpacity(Number(e.target.value));
  });
})();
</script>`;
}

/** The report page. `overlayPng` and `thumbnailPng` are the PNG files' bytes; `viewer` the Deep Zoom images in report_files/ (none: no viewer). */
export function reportHtml(summary: HeatmapSummary, regions: readonly RegionFeature[], overlayPng: Uint8Array, thumbnailPng: Uint8Array, viewer?: ViewerImages): string {
  const s = summary;
  const uri = (png: Uint8Array) => `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
  const figures: Array<[string, string]> = [
    ['Slide', escapeHtml(s.slide)],
    ['Dimensions (level 0)', `${s.width} × ${s.height} px`],
    ['µm/px (level 0)', s.mpp === null ? 'unknown' : fmt(s.mpp, 4)],
    ['Level read, downsample', `${s.level}, ${fmt(s.downsample, 3)}`],
    ...(s.mapKind === 'pixels' ? [
      ['Window size, stride', `${s.tileSize} px, ${s.stride} px${s.tileMpp === null ? '' : ` at ${fmt(s.tileMpp, 3)} µm/px`}`],
      ['Windows predicted', `${s.tiles} of ${s.gridPositions} window positions`],
      ['Pixel map', `${s.mapWidth} × ${s.mapHeight} px, ${s.mapDownsample} level px per map px${s.mapMpp === null || s.mapMpp === undefined ? '' : `, ${fmt(s.mapMpp, 3)} µm/px`}`],
    ] as Array<[string, string]> : [
      ['Tile size, stride', `${s.tileSize} px, ${s.stride} px${s.tileMpp === null ? '' : ` at ${fmt(s.tileMpp, 3)} µm/px`}`],
      ['Tiles predicted', `${s.tiles} of ${s.gridPositions} grid positions`],
    ] as Array<[string, string]>),
    ['Tissue area', area(s.tissueAreaPx, s.tissueAreaMm2)],
    ['Tumour area', area(s.tumourAreaPx, s.tumourAreaMm2)],
    ['Tumour fraction of analysed tissue', `${(100 * s.tumourFraction).toFixed(1)} %`],
    ['Max probability', fmt(s.maxProbability)],
    ['Threshold', fmt(s.threshold)],
    ['Regions', String(s.regions)],
    ['Model', escapeHtml(s.model)],
    ['Test-time augmentation', s.tta ? 'yes (8 dihedral views)' : 'no'],
    ['Seconds', fmt(s.seconds, 1)],
  ];
  const rows = regions.map((r) => {
    const p = r.properties;
    return `<tr><td>${p.id}</td><td>${p.area_um2 === null ? fmt(p.area_px, 0) + ' px²' : fmt(p.area_um2 / 1e6, 4) + ' mm²'}</td>` +
      `<td>${fmt(p.max_probability)}</td><td>${fmt(p.mean_probability)}</td><td>${p.bbox.map((v) => fmt(v, 0)).join(', ')}</td></tr>`;
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>histoflow heatmap: ${escapeHtml(s.slide)}</title>
<style>${CSS}</style></head>
<body data-overlay="pending" data-viewer="${viewer ? 'pending' : 'none'}">
<h1>Tumour heatmap: ${escapeHtml(s.slide)}</h1>
<p>Model <b>${escapeHtml(s.model)}</b>; ${s.mapKind === 'pixels'
    ? `pixel map of probabilities (${s.mapDownsample === 1 ? 'one map pixel per pixel' : `one map pixel per ${s.mapDownsample} × ${s.mapDownsample} pixels`} of level ${s.level}${s.mapMpp === null || s.mapMpp === undefined ? '' : `, ${fmt(s.mapMpp, 3)} µm/px`}), blended from overlapping ${s.tileSize}-px windows, in viridis (0 dark purple, 1 yellow), glass and pixels below the tissue threshold transparent.`
    : `probability per ${s.stride}-px cell in viridis (0 dark purple, 1 yellow), glass and tiles below the tissue threshold transparent.`}</p>
${viewer ? viewerSection(viewer) : ''}
<div class="images">
<figure><img id="overlay" alt="probability overlay" src="${uri(overlayPng)}" onload="document.body.dataset.overlay='loaded';document.title+=' (overlay loaded)'" onerror="document.body.dataset.overlay='error'"><figcaption>Probability overlay</figcaption></figure>
<figure><img id="thumbnail" alt="slide thumbnail" src="${uri(thumbnailPng)}"><figcaption>Thumbnail</figcaption></figure>
</div>
<h2>Summary</h2>
<table id="summary">${figures.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('')}</table>
<h2>Regions at threshold ${fmt(s.threshold)}</h2>
${rows.length ? `<table id="regions"><tr><th>#</th><th>Area</th><th>Max p</th><th>Mean p</th><th>BBox (level-0 px)</th></tr>${rows.join('')}</table>` : '<p>None.</p>'}
</body></html>
`;
}
