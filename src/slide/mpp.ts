/**
 * One MPP rule for both readers. An MPP the file states that is not a finite
 * positive number of µm/px (9e999, NaN, 0, −0.5) is treated as absent, as a
 * pathology user expects of a slide whose scale is unknown, and said so in
 * the slide's `warnings`, rather than one reader failing and the other
 * tiling at infinite microns.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface MppReading {
  mpp: { x: number; y: number } | null;
  warnings: string[];
}

/** The MPP a file states as text (`y` defaults to `x`), or null when it states none. */
export function statedMpp(x: string | undefined, y: string | undefined = x): MppReading | null {
  if (x === undefined && y === undefined) return null;
  const mx = Number(x ?? y), my = Number(y ?? x);
  if (Number.isFinite(mx) && mx > 0 && Number.isFinite(my) && my > 0) return { mpp: { x: mx, y: my }, warnings: [] };
  const shown = x === y || y === undefined ? `'${x}'` : `'${x}' x '${y}'`;
  return { mpp: null, warnings: [`the file states an MPP of ${shown}, not a positive finite number of µm/px: treated as unknown (mpp is null)`] };
}

/** µm per OME length unit (OME's UnitsLength; µm when PhysicalSizeXUnit is absent). */
const OME_UNITS: Record<string, number> = { pm: 1e-6, nm: 1e-3, 'µm': 1, 'μm': 1, um: 1, mm: 1e3, cm: 1e4, m: 1e6 };

/**
 * The MPP an OME-XML ImageDescription states: PhysicalSizeX/Y of the first
 * Image's Pixels, in their PhysicalSizeX/YUnit (default µm). Null when the
 * description is not OME-XML or states no physical size; a stated size that
 * is not usable (unknown unit, not a positive finite number) gives mpp null
 * and a warning, as statedMpp does.
 */
export function omeMpp(description: string): MppReading | null {
  if (!description.includes('<OME')) return null;
  let pixels: Record<string, unknown> | undefined;
  try {
    if (XMLValidator.validate(description) !== true) throw new Error('not well-formed');
    const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', processEntities: false, removeNSPrefix: true });
    const doc = parser.parse(description) as { OME?: { Image?: unknown } };
    const images = doc.OME?.Image;
    const first = (Array.isArray(images) ? images[0] : images) as { Pixels?: Record<string, unknown> } | undefined;
    pixels = first?.Pixels;
  } catch {
    return { mpp: null, warnings: ['the OME-XML description cannot be parsed: its physical pixel size is unknown (mpp is null)'] };
  }
  if (!pixels || (pixels.PhysicalSizeX === undefined && pixels.PhysicalSizeY === undefined)) return null;
  const size = (axis: 'X' | 'Y'): number => {
    const value = pixels![`PhysicalSize${axis}`] ?? pixels![`PhysicalSize${axis === 'X' ? 'Y' : 'X'}`];
    const unit = String(pixels![`PhysicalSize${axis}Unit`] ?? 'µm');
    const scale = OME_UNITS[unit];
    return scale === undefined ? NaN : Number(value) * scale;
  };
  const x = size('X'), y = size('Y');
  if (Number.isFinite(x) && x > 0 && Number.isFinite(y) && y > 0) return { mpp: { x, y }, warnings: [] };
  return {
    mpp: null,
    warnings: [`the OME-XML states a physical pixel size of ${String(pixels.PhysicalSizeX)} ${String(pixels.PhysicalSizeXUnit ?? 'µm')} x ` +
      `${String(pixels.PhysicalSizeY)} ${String(pixels.PhysicalSizeYUnit ?? 'µm')}, not a positive finite length: treated as unknown (mpp is null)`],
  };
}
