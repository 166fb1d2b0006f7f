/**
 * A batch manifest: which slides a batch runs, and what each one overrides.
 *
 *   slide,roi,annotations          a CSV with a `slide` column (paths relative
 *   a.svs,,a.geojson               to the CSV's folder) and optional per-slide
 *   b.svs,0,0,4096,4096,           columns named after the job's options
 *
 *   'slides/*.svs'                 or a glob (relative to the working folder),
 *                                  or one slide
 *
 * Everything a manifest can get wrong is found here, before any job exists:
 * an unreadable CSV (with csv-parse's line), a missing `slide` column or cell,
 * a column that is not an option of the job, a slide that is not there, the
 * same slide twice, and two slides whose outputs would share a folder (same
 * stem). Errors name the manifest and the row.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';

import { parse } from 'csv-parse/sync';
import fg from 'fast-glob';

/** One row of a manifest: the slide (absolute), its output folder's name, and its own option cells. */
export interface ManifestRow {
  /** The CSV line of the row (1 = the header), or the glob match's position from 1. */
  line: number;
  slide: string;
  /** ROOT/<stem>/ holds the slide's outputs: the file name without its last extension. */
  stem: string;
  /** Non-empty cells other than `slide`, by column; paths relative to the manifest's folder. */
  cells: Readonly<Record<string, string>>;
}

export interface Manifest {
  /** What the user gave (a CSV path or a glob). */
  source: string;
  /** csv: a .csv file; slide: one slide's path; glob: the paths matching a pattern. */
  kind: 'csv' | 'slide' | 'glob';
  /** Relative paths in cells are resolved against this folder. */
  base: string;
  rows: ManifestRow[];
}

export interface ManifestOptions {
  /** The columns a row may set besides `slide` (the job's options). */
  columns: readonly string[];
  /** What a slide must be: a file (slides) or a file or folder (pack sources). */
  slideKind: 'file' | 'file-or-folder';
}

const GLOB_CHARS = /[*?[\]{}]/;

/** The folder name of a slide's outputs: its base name without the last extension (a folder keeps its name). */
export function slideStem(path: string): string {
  const name = basename(path);
  const ext = extname(name);
  return ext && ext !== name ? name.slice(0, -ext.length) : name;
}

function rowError(source: string, line: number, message: string): RangeError {
  return new RangeError(`Manifest ${source} row ${line}: ${message}`);
}

async function checkSlide(source: string, line: number, path: string, kind: ManifestOptions['slideKind']): Promise<void> {
  const s = await stat(path).catch((e: NodeJS.ErrnoException) => e.code ?? 'EUNKNOWN');
  if (typeof s === 'string') {
    throw rowError(source, line, s === 'ENOENT' ? `slide ${path} does not exist` : `slide ${path} cannot be read (${s})`);
  }
  if (kind === 'file' && !s.isFile()) throw rowError(source, line, `slide ${path} is not a file`);
  if (kind === 'file-or-folder' && !s.isFile() && !s.isDirectory()) throw rowError(source, line, `slide ${path} is not a file or folder`);
}

async function csvRows(path: string, options: ManifestOptions): Promise<ManifestRow[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new RangeError(`Expected a readable CSV file or a glob for MANIFEST but received '${path}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text, { bom: true, trim: true, skip_empty_lines: true, info: true }) as unknown as { record: string[]; info: { lines: number } }[];
  } catch (e) {
    throw new RangeError(`Manifest ${path} cannot be read as CSV: ${(e as Error).message}`);
  }
  if (records.length === 0) throw new RangeError(`Manifest ${path} is empty; expected a header with a 'slide' column and one row per slide`);
  const header = records[0]!.record;
  const slideColumn = header.indexOf('slide');
  if (slideColumn < 0) throw new RangeError(`Manifest ${path} has no 'slide' column (header: ${header.join(',')})`);
  const seen = new Set<string>();
  for (const name of header) {
    if (name !== 'slide' && !options.columns.includes(name)) {
      throw new RangeError(`Manifest ${path} has a column '${name}' that is not an option of the job; expected slide or one of ${options.columns.join(', ')}`);
    }
    if (seen.has(name)) throw new RangeError(`Manifest ${path} has the column '${name}' twice`);
    seen.add(name);
  }
  if (records.length === 1) throw new RangeError(`Manifest ${path} lists no slides (a header and no rows)`);
  const base = dirname(resolve(path));
  return records.slice(1).map(({ record, info }) => {
    const line = info.lines;
    const cell = record[slideColumn]!;
    if (!cell) throw rowError(path, line, "the 'slide' cell is empty");
    const cells: Record<string, string> = {};
    header.forEach((name, k) => {
      if (k !== slideColumn && record[k] !== '') cells[name] = record[k]!;
    });
    const slide = resolve(base, cell);
    return { line, slide, stem: slideStem(slide), cells };
  });
}

async function globRows(pattern: string, options: ManifestOptions): Promise<ManifestRow[]> {
  const matches = await fg(pattern, { absolute: true, onlyFiles: options.slideKind === 'file', dot: false, unique: true });
  if (matches.length === 0) throw new RangeError(`Expected a glob matching at least one slide for MANIFEST but '${pattern}' matches nothing`);
  return matches.sort().map((slide, i) => ({ line: i + 1, slide: resolve(slide), stem: slideStem(slide), cells: {} }));
}

/**
 * Reads a manifest — a .csv file; or one slide (any other existing path); or
 * a glob (* ? [ ] { }) — and checks every row; throws a RangeError naming the
 * manifest and row at the first problem.
 */
export async function readManifest(source: string, options: ManifestOptions): Promise<Manifest> {
  if (typeof source !== 'string' || source === '') throw new RangeError('Expected a manifest (a CSV with a slide column, or a glob) for MANIFEST but received nothing');
  const there = await stat(source).then((s) => s.isFile() || s.isDirectory(), () => false);
  let kind: Manifest['kind'];
  let rows: ManifestRow[];
  if (there && /\.csv$/i.test(source)) {
    kind = 'csv';
    rows = await csvRows(source, options);
  } else if (there) {
    kind = 'slide';
    rows = [{ line: 1, slide: resolve(source), stem: slideStem(resolve(source)), cells: {} }];
  } else if (GLOB_CHARS.test(source)) {
    kind = 'glob';
    rows = await globRows(source, options);
  } else {
    throw new RangeError(`Expected a CSV file, a slide or a glob for MANIFEST but received '${source}' (no such file)`);
  }
  const bySlide = new Map<string, number>();
  const byStem = new Map<string, ManifestRow>();
  for (const row of rows) {
    const earlier = bySlide.get(row.slide);
    if (earlier !== undefined) throw rowError(source, row.line, `slide ${row.slide} is listed twice (also row ${earlier})`);
    bySlide.set(row.slide, row.line);
    const twin = byStem.get(row.stem);
    if (twin) {
      throw rowError(source, row.line, `slides ${twin.slide} (row ${twin.line}) and ${row.slide} would share the output folder '${row.stem}'; rename one`);
    }
    if (row.stem.startsWith('.')) throw rowError(source, row.line, `slide ${row.slide} has a hidden name ('${row.stem}'); its output folder would be hidden`);
    byStem.set(row.stem, row);
  }
  for (const row of rows) await checkSlide(source, row.line, row.slide, options.slideKind);
  return { source, kind, base: kind === 'csv' ? dirname(resolve(source)) : process.cwd(), rows };
}
