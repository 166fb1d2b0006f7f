/**
 * The one CSV writer of histoflow: RFC 4180 (fields with a comma, a quote,
 * CR or LF are quoted, inner quotes doubled; rows end in LF), and text that a
 * spreadsheet would run as a formula (starting with = + - @, tab or CR) is
 * neutralized the OWASP way: a leading single quote inside a quoted field.
 * Numbers are written as they are (a negative number is not a formula).
 */

/** Text a spreadsheet reads as a formula (OWASP "CSV Injection"). */
const FORMULA_START = /^[=+\-@\t\r]/;

/** One field: null as empty, a number as String(n), text quoted and neutralized as needed. */
export function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return String(value);
  if (FORMULA_START.test(value)) return `"'${value.replace(/"/g, '""')}"`;
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** A header row and data rows as CSV text, each row ending in LF. */
export function csvText(header: readonly string[], rows: Iterable<readonly (string | number | null | undefined)[]>): string {
  const lines = [header.map(csvField).join(',')];
  for (const row of rows) lines.push(row.map(csvField).join(','));
  return `${lines.join('\n')}\n`;
}
