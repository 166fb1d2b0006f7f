/**
 * ASAP XML annotations (Camelyon16/17, ASAP, the XML that tiatoolbox and
 * QuPath scripts export for them) → the same labelled polygons as GeoJSON.
 *
 *   <ASAP_Annotations><Annotations>
 *     <Annotation Name="Annotation 0" Type="Polygon" PartOfGroup="_0" Color="#F4FA58">
 *       <Coordinates><Coordinate Order="0" X="12345.6" Y="23456.7" />…</Coordinates>
 *     </Annotation>…
 *   </Annotations><AnnotationGroups><Group Name="_0" …/></AnnotationGroups></ASAP_Annotations>
 *
 * Coordinates are level-0 pixels. Each annotation's label is its group
 * (`PartOfGroup`), with Camelyon's conventions: groups `_0`, `_1`, `Tumor` and
 * `metastases` are 'tumor'; `_2` and `Exclusion` are exclusion regions (normal
 * tissue inside a tumour outline), subtracted from every label's coverage.
 * `Polygon`, `Spline` (its control points, as ASAP stores them) and
 * `Rectangle` have area; `Dot` and `PointSet` do not and are skipped.
 * Parsed with fast-xml-parser (well-formedness checked first, entity expansion
 * and nesting bounded by the parser).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

import { EXCLUSION_LABEL, MAX_COORDINATE, UNNAMED_LABEL, polygonOf, type AnnotationPolygon, type Point } from './annotations.js';

/** ASAP groups that name Camelyon's tumour annotations. */
const TUMOR_GROUPS = new Set(['_0', '_1', 'tumor', 'metastases']);
/** ASAP groups that name Camelyon's exclusion regions. */
const EXCLUSION_GROUPS = new Set(['_2', 'exclusion']);
const AREA_TYPES = new Set(['polygon', 'spline', 'rectangle']);
const POINT_TYPES = new Set(['dot', 'pointset']);

/** The label an ASAP group stands for. */
export function asapLabel(group: string | undefined): string {
  const g = (group ?? '').trim();
  if (TUMOR_GROUPS.has(g.toLowerCase())) return 'tumor';
  if (EXCLUSION_GROUPS.has(g.toLowerCase())) return EXCLUSION_LABEL;
  return g === '' || g.toLowerCase() === 'none' ? UNNAMED_LABEL : g;
}

/** Whether text looks like XML rather than JSON (its first non-blank character). */
export function looksLikeXml(text: string): boolean {
  return /^\s*(\uFEFF)?\s*</.test(text);
}

/**
 * A coordinate attribute: a decimal number, also with a decimal comma (some
 * Camelyon17 centres wrote "12345,6789").
 */
function coordinate(where: string, value: unknown): number {
  const text = typeof value === 'string' ? value.trim() : typeof value === 'number' ? String(value) : '';
  const n = /^[-+]?\d+,\d+$/.test(text) ? Number(text.replace(',', '.')) : text === '' ? NaN : Number(text);
  if (!Number.isFinite(n) || Math.abs(n) > MAX_COORDINATE) {
    throw new RangeError(`Expected a number within ±2^40 for ${where} but received ${JSON.stringify(value)}`);
  }
  return n;
}

interface XmlCoordinate {
  Order?: string;
  X?: unknown;
  Y?: unknown;
}
interface XmlAnnotation {
  Name?: string;
  Type?: string;
  PartOfGroup?: string;
  Coordinates?: { Coordinate?: XmlCoordinate[] } | string;
}

/** ASAP XML text → labelled polygons (`source` names the file in errors). */
export function parseAsapXml(text: string, source = 'annotations'): AnnotationPolygon[] {
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new RangeError(`Expected ASAP XML in ${source} but it is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  }
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: '',
    parseAttributeValue: false,
    processEntities: false,
    isArray: (name) => name === 'Annotation' || name === 'Coordinate',
  });
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new RangeError(`Expected ASAP XML in ${source} but it cannot be parsed: ${e instanceof Error ? e.message : String(e)}`);
  }
  const root = doc.ASAP_Annotations as { Annotations?: { Annotation?: XmlAnnotation[] } | string } | undefined;
  if (root === undefined || root === null || typeof root !== 'object') {
    throw new RangeError(`Expected ASAP XML in ${source} (an <ASAP_Annotations> root) but the root is <${Object.keys(doc).filter((k) => !k.startsWith('?')).join(', ') || 'none'}>`);
  }
  const list = typeof root.Annotations === 'object' && root.Annotations !== null ? root.Annotations.Annotation ?? [] : [];
  const out: AnnotationPolygon[] = [];
  list.forEach((a, i) => {
    const where = `${source}: Annotation ${i}${a.Name ? ` ("${a.Name}")` : ''}`;
    const type = (a.Type ?? 'Polygon').toLowerCase();
    if (POINT_TYPES.has(type)) return;
    if (!AREA_TYPES.has(type)) throw new RangeError(`Expected Type Polygon, Spline, Rectangle, Dot or PointSet for ${where} but received "${a.Type}"`);
    const coords = typeof a.Coordinates === 'object' && a.Coordinates !== null ? a.Coordinates.Coordinate ?? [] : [];
    const points = coords.map((c, k) => ({
      order: c.Order === undefined ? k : coordinate(`${where} Coordinate ${k} Order`, c.Order),
      point: [coordinate(`${where} Coordinate ${k} X`, c.X), coordinate(`${where} Coordinate ${k} Y`, c.Y)] as Point,
    }));
    points.sort((p, q) => p.order - q.order);
    const ring = points.map((p) => p.point);
    // ASAP rings are open; a closing repeat of the first point is dropped.
    const first = ring[0], last = ring[ring.length - 1];
    if (ring.length > 1 && first![0] === last![0] && first![1] === last![1]) ring.pop();
    if (ring.length < 3) throw new RangeError(`Expected at least 3 coordinates for ${where} but received ${ring.length}`);
    out.push(polygonOf(asapLabel(a.PartOfGroup), [ring]));
  });
  return out;
}
