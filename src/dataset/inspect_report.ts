/**
 * inspect's HTML report: one self-contained folder (report.html and a PNG
 * contact sheet per finding, opened from disk) with the class balance, the
 * per-class stain fits, and for each finding its rule, its count and up to
 * SHEET_MAX of its patches (near-duplicates side by side).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { writeImage } from '../image.js';
import type { RgbBatch } from '../kernels/types.js';
import { makeDirectory } from '../output.js';
import { COLOUR_OUTLIER_D2, SATURATED_FRACTION } from './findings.js';
import { montage, type InspectResult } from './inspect.js';
import type { PatchSource } from './pack.js';

/** Patches per contact sheet. */
export const SHEET_MAX = 64;

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

interface Finding {
  key: string;
  title: string;
  rule: string;
  count: number;
  /** The patches to show, by name (pairs flattened: a, b, a, b, …). */
  names: string[];
  columns: number;
}

function findings(r: InspectResult): Finding[] {
  const list = (key: string, title: string, rule: string, f: { count: number; names: string[] }): Finding =>
    ({ key, title, rule, count: f.count, names: f.names.slice(0, SHEET_MAX), columns: 8 });
  return [
    { key: 'duplicates', title: 'Exact duplicates', rule: 'identical pixels (SHA-1); each pair: the first copy, then the repeat', count: r.duplicates.count,
      names: r.duplicates.pairs.flat().slice(0, SHEET_MAX), columns: 8 },
    { key: 'near_duplicates', title: 'Near-duplicates', rule: `pHash within ${r.nearDuplicates.bits} of 64 bits under a rotation or flip; pairs side by side`,
      count: r.nearDuplicates.count, names: r.nearDuplicates.pairs.flatMap(([a, b]) => [a, b]).slice(0, SHEET_MAX), columns: 8 },
    list('blank', 'Blank', 'grey standard deviation < 2', r.blank),
    list('background', 'Background', '≥ 90 % of pixels glass-like (grey ≥ 220, max − min ≤ 20)', r.background),
    list('blurry', 'Blurry', 'variance of the Laplacian below the threshold (not background)', r.blurry),
    list('pen', 'Pen marks', 'pen-ink pixels (deephistopath\'s rules) above the fraction', r.pen),
    list('over_saturated', 'Over-saturated', `≥ ${100 * SATURATED_FRACTION} % of pixels with HSV saturation ≥ 0.8 and value ≥ 0.2`, r.overSaturated),
    list('colour_outliers', 'Colour outliers', `mean optical density at a squared Mahalanobis distance > ${COLOUR_OUTLIER_D2} (χ²₃, p = 0.001) from the non-background patches; farthest first`, r.colourOutliers),
  ];
}

/** Loads the named patches from a fresh source (names are unique per source). */
async function loadByName(open: () => Promise<PatchSource>, names: ReadonlySet<string>): Promise<Map<string, RgbBatch>> {
  const out = new Map<string, RgbBatch>();
  if (names.size === 0) return out;
  const source = await open();
  try {
    for (let from = 0; from < source.total && out.size < names.size; from += 1024) {
      for (const it of source.items(from, Math.min(source.total, from + 1024))) {
        if (!names.has(it.name) || out.has(it.name)) continue;
        // A copy: a packed source's views end with its mapping.
        const img = await it.load();
        out.set(it.name, { ...img, data: img.data.slice() });
      }
    }
  } finally {
    source.close();
  }
  return out;
}

/** Writes dir/report.html and dir/<finding>.png; resolves to the report's path. */
export async function writeInspectReport(dir: string, r: InspectResult, open: () => Promise<PatchSource>): Promise<string> {
  await makeDirectory(dir, 'options.reportDir');
  const all = findings(r);
  const patches = await loadByName(open, new Set(all.flatMap((f) => f.names)));
  const sections: string[] = [];
  for (const f of all) {
    const shown = f.names.map((n) => patches.get(n)).filter((p): p is RgbBatch => p !== undefined && p.height === r.height && p.width === r.width);
    let sheet = '';
    if (shown.length) {
      await writeImage(join(dir, `${f.key}.png`), montage(shown, f.columns));
      sheet = `<img src="${f.key}.png" alt="${escape(f.title)}">`;
    }
    const more = f.count > shown.length ? ` (${shown.length} shown)` : '';
    sections.push(`<section><h2>${escape(f.title)}: ${f.count}${more}</h2><p>${escape(f.rule)}</p>${sheet}</section>`);
  }
  const classes = Object.entries(r.classes).map(([c, k]) => `<tr><td>${escape(c)}</td><td>${k}</td><td>${((100 * k) / r.count).toFixed(1)} %</td></tr>`).join('');
  const stains = Object.entries(r.stains).map(([c, s]) => 'error' in s
    ? `<tr><td>${escape(c)}</td><td>${s.patches}</td><td colspan="3">${escape(s.error)}</td></tr>`
    : `<tr><td>${escape(c)}</td><td>${s.patches}</td><td>${s.he.slice(0, 3).map((v) => v.toFixed(3)).join(', ')}</td>` +
      `<td>${s.he.slice(3, 6).map((v) => v.toFixed(3)).join(', ')}</td><td>${s.maxC.map((v) => v.toFixed(3)).join(', ')}</td></tr>`).join('');
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>histoflow inspect: ${escape(r.source)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:72em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}img{image-rendering:pixelated;max-width:100%}</style>
</head><body>
<h1>${escape(r.source)}</h1>
<p>${r.count} patches, ${r.width}x${r.height}; mean RGB ${r.mean.map((v) => v.toFixed(1)).join(', ')}; std ${r.std.map((v) => v.toFixed(1)).join(', ')}; unreadable ${r.unreadable.count}.</p>
<h2>Classes</h2><table><tr><th>label</th><th>patches</th><th>share</th></tr>${classes}</table>
<h2>Stains per class (Macenko, OD space)</h2><table><tr><th>label</th><th>patches fitted</th><th>H vector</th><th>E vector</th><th>max concentrations (99th pct)</th></tr>${stains}</table>
${sections.join('\n')}
</body></html>
`;
  const path = join(dir, 'report.html');
  await writeFile(path, html);
  return path;
}
