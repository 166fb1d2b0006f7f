/**
 * One MPP rule for both readers. An MPP the file states that is not a finite
 * positive number of µm/px (9e999, NaN, 0, −0.5) is treated as absent, as a
 * pathology user expects of a slide whose scale is unknown, and said so in
 * the slide's `warnings`, rather than one reader failing and the other
 * tiling at infinite microns.
 */
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
