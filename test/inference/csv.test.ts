/** Issue 14: every CSV histoflow writes is RFC 4180 and safe to open in a spreadsheet, whatever the ids. */
import test from 'ava';

import { csvField, csvText } from '../../src/csv.js';
import { manifestCsv, type ManifestRow } from '../../src/dataset/tile_folder.js';
import { submissionCsv } from '../../src/inference/submission.js';

/** A strict RFC 4180 parser: quoted fields may hold anything (quotes doubled), unquoted ones no quote, comma or CR/LF; LF or CRLF ends a record. */
function parseRfc4180(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [], i = 0;
  const field = (): string => {
    if (text[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= text.length) throw new Error('unterminated quoted field');
        if (text[i] === '"') {
          if (text[i + 1] === '"') { v += '"'; i += 2; continue; }
          i++;
          if (i < text.length && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') throw new Error(`text after a closing quote at ${i}`);
          return v;
        }
        v += text[i++];
      }
    }
    const start = i;
    while (i < text.length && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
      if (text[i] === '"') throw new Error(`a quote in an unquoted field at ${i}`);
      i++;
    }
    return text.slice(start, i);
  };
  while (i < text.length) {
    row.push(field());
    if (text[i] === ',') { i++; continue; }
    if (text[i] === '\r') { if (text[i + 1] !== '\n') throw new Error('a bare CR ends no record'); i++; }
    if (text[i] === '\n') i++;
    rows.push(row);
    row = [];
  }
  return rows;
}

const HOSTILE = [
  'plain', 'a,b', 'say "hi"', '"', '""', 'line\nbreak', 'cr\rhere', 'crlf\r\nx', ',', ' spaced ',
  '=HYPERLINK("http://evil","x")', '+1', '-2+3', '@SUM(A1)', '\tTAB', '\rCR', "'quoted", '',
];
/** What a spreadsheet-safe id reads back as: formulas carry a leading single quote. */
const expected = (id: string) => (/^[=+\-@\t\r]/.test(id) ? `'${id}` : id);

test('submissionCsv round-trips hostile ids through a strict RFC 4180 parser, formulas neutralized', (t) => {
  const scores = HOSTILE.map((_, i) => i / HOSTILE.length);
  const rows = parseRfc4180(submissionCsv(HOSTILE, scores));
  t.deepEqual(rows[0], ['id', 'label']);
  t.is(rows.length, HOSTILE.length + 1);
  HOSTILE.forEach((id, i) => {
    t.is(rows[i + 1]![0], expected(id), JSON.stringify(id));
    t.is(Math.fround(Number(rows[i + 1]![1])), Math.fround(scores[i]!));
  });
});

test('no field of a CSV starts with a formula character once parsed, except behind the single quote', (t) => {
  const rows = parseRfc4180(csvText(['id', 'score'], HOSTILE.map((id) => [id, -0.5])));
  for (const r of rows.slice(1)) t.false(/^[=+\-@\t\r]/.test(r[0]!), JSON.stringify(r[0]));
  t.true(rows.slice(1).every((r) => r[1] === '-0.5'), 'a negative number stays a number');
});

test('csvField quotes commas, quotes and line breaks and doubles inner quotes', (t) => {
  t.is(csvField('a,b'), '"a,b"');
  t.is(csvField('say "hi"'), '"say ""hi"""');
  t.is(csvField('x\ny'), '"x\ny"');
  t.is(csvField('=1+1'), `"'=1+1"`);
  t.is(csvField(null), '');
  t.is(csvField(3.5), '3.5');
});

test('manifest.csv round-trips hostile slide names through the same parser', (t) => {
  const rows: ManifestRow[] = HOSTILE.map((slide, i) => ({
    slide, level: 0, x: i, y: 0, size: 8, tissue_fraction: 1, label: null, label_coverage: null, file: `tiles/${i}.png`,
  } as unknown as ManifestRow));
  const parsed = parseRfc4180(manifestCsv(rows));
  t.is(parsed.length, HOSTILE.length + 1);
  HOSTILE.forEach((slide, i) => t.is(parsed[i + 1]![0], expected(slide)));
});
