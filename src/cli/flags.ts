/**
 * Every command's options, declared once as a table (name, type, range,
 * default, value placeholder, one-line help): the parser and the `Options:`
 * rows of --help are both made from it, so they cannot disagree.
 *
 * Tokenizing is node:util parseArgs'; every check is here, in the voice of
 * src/errors.ts, always naming the flag and quoting what was typed:
 *   Expected an integer between 1 and 65536 for --batch but received 'abc' of type string
 * All of them are RangeErrors: on a command line every value is a string, so a
 * value that does not read as the flag's type is outside what it accepts.
 */
import { parseArgs } from 'node:util';

import { invalidRange } from '../errors.js';

interface FlagCommon {
  /** A one-letter alias: `h` for -h. */
  readonly short?: string;
  /**
   * The help text. A '\n' starts a continuation line; `{default}` and
   * `{choices}` are filled in from the table.
   */
  readonly help: string;
  /** The value's placeholder in help: `DIR` in `--out DIR`. */
  readonly value?: string;
}

/** A switch: present or not; never takes a value. */
export interface BooleanFlag extends FlagCommon { readonly type: 'boolean' }
/** Any string (paths, patterns the command parses itself). */
export interface StringFlag extends FlagCommon { readonly type: 'string'; readonly default?: string }
/** A decimal integer in [min, max] (max defaults to Number.MAX_SAFE_INTEGER). */
export interface IntFlag extends FlagCommon { readonly type: 'int'; readonly min: number; readonly max?: number; readonly default?: number }
/** A finite number in [min, max] (unbounded where not given). */
export interface NumberFlag extends FlagCommon { readonly type: 'number'; readonly min?: number; readonly max?: number; readonly default?: number }
/** One of a fixed set of words. */
export interface ChoiceFlag extends FlagCommon {
  readonly type: 'choice';
  readonly choices: readonly string[];
  readonly default?: string;
  /** Old names and what they are called now: the error says so. */
  readonly renamed?: Readonly<Record<string, string>>;
}
/** A length of time: 90s, 15m, 1.5h, 1h30m or plain seconds; parses to seconds, > 0 and ≤ max (seconds). */
export interface DurationFlag extends FlagCommon { readonly type: 'duration'; readonly max?: number }
/** Strings collected from every occurrence (and split on `separator` when given, blanks dropped). */
export interface ListFlag extends FlagCommon { readonly type: 'list'; readonly separator?: string }

export type Flag = BooleanFlag | StringFlag | IntFlag | NumberFlag | DurationFlag | ChoiceFlag | ListFlag;
/** A command's options by long name (without the dashes); -h, --help is implicit. */
export type FlagTable = Readonly<Record<string, Flag>>;

type Defaulted<F, V> = F extends { readonly default: unknown } ? V : V | undefined;
/** What a flag parses to: a flag with a default is never undefined. */
export type FlagValue<F> =
  F extends BooleanFlag ? boolean
  : F extends IntFlag | NumberFlag ? Defaulted<F, number>
  : F extends DurationFlag ? number | undefined
  : F extends { readonly type: 'choice'; readonly choices: readonly (infer C)[] } ? Defaulted<F, C>
  : F extends ListFlag ? string[] | undefined
  : Defaulted<F, string>;
export type FlagValues<T extends FlagTable> = { -readonly [K in keyof T]: FlagValue<T[K]> };

export interface ParsedFlags<T extends FlagTable> {
  /** Every flag of the table, checked and typed; the defaults alone when `help` is set. */
  values: FlagValues<T>;
  positionals: string[];
  /** -h or --help was given: print the help and stop (no value was checked). */
  help: boolean;
}

/** Keeps a table's literal types (choices, which flags have defaults) for parseFlags. */
export function defineFlags<const T extends FlagTable>(table: T): T {
  return table;
}

const HELP_FLAG: BooleanFlag = { type: 'boolean', short: 'h', help: 'this help' };

/** What a flag accepts, as errors say it: "an integer between 1 and 65536". */
function expected(flag: Flag): string {
  switch (flag.type) {
    case 'int': {
      const max = flag.max ?? Number.MAX_SAFE_INTEGER;
      return max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${flag.min}` : `an integer between ${flag.min} and ${max}`;
    }
    case 'number': {
      const min = flag.min ?? -Infinity, max = flag.max ?? Infinity;
      if (min === -Infinity && max === Infinity) return 'a number';
      if (max === Infinity) return `a number ≥ ${min}`;
      return min === -Infinity ? `a number ≤ ${max}` : `a number between ${min} and ${max}`;
    }
    case 'choice':
      return `one of ${flag.choices.join(', ')}`;
    case 'duration':
      return `a duration such as 90s, 15m, 1.5h or 1h30m${flag.max === undefined ? '' : ` (at most ${flag.max} s)`}`;
    case 'boolean':
      return 'no value';
    default:
      return flag.value ? `a value (${flag.value})` : 'a value';
  }
}

/** The one voice of every flag error: what the flag expects, and what was typed (or that nothing was). */
export function flagError(name: string, flag: Flag, received: string | undefined, note = ''): RangeError {
  const e = received === undefined
    ? new RangeError(`Expected ${expected(flag)} for ${name} but received nothing`)
    : invalidRange(name, expected(flag), received);
  if (note) e.message += ` ${note}`;
  return e;
}

/** A number as people type it in decimal: 12, -0.5, .25, 1e-3 (never 0x10, 0b1, 0o7 or ' 1'). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A value for a numeric flag may start with '-' (a negative number); any other such value is a forgotten one. */
const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

const DURATION_UNITS: Record<string, number> = { h: 3600, m: 60, s: 1 };

/** '1h30m' → 5400, '15m' → 900, '1.5h' → 5400, '90' → 90 (seconds); NaN for anything else. */
export function parseDuration(text: string): number {
  if (DECIMAL.test(text)) return Number(text);
  const parts = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(text);
  if (!parts || text === '') return NaN;
  return ['h', 'm', 's'].reduce((sum, unit, i) => sum + Number(parts[i + 1] ?? 0) * DURATION_UNITS[unit]!, 0);
}

/** One flag's string (or strings) as its type, or an error naming it. */
function convert(name: string, flag: Flag, raw: string | string[] | true): unknown {
  switch (flag.type) {
    case 'boolean':
      return true;
    case 'list': {
      const all = raw as string[];
      return flag.separator === undefined ? all : all.flatMap((v) => v.split(flag.separator!).map((s) => s.trim()).filter(Boolean));
    }
    case 'string':
      return raw;
    case 'choice': {
      if (flag.choices.includes(raw as string)) return raw;
      const now = flag.renamed && Object.hasOwn(flag.renamed, raw as string) ? flag.renamed[raw as string] : undefined;
      throw flagError(name, flag, raw as string, now ? `('${raw as string}' is now '${now}')` : '');
    }
    case 'int': {
      const v = Number(raw);
      if (!/^[+-]?[0-9]+$/.test(raw as string) || v < flag.min || v > (flag.max ?? Number.MAX_SAFE_INTEGER)) throw flagError(name, flag, raw as string);
      return v;
    }
    case 'duration': {
      const v = parseDuration(raw as string);
      if (!(v > 0) || v > (flag.max ?? Infinity)) throw flagError(name, flag, raw as string);
      return v;
    }
    case 'number': {
      const v = Number(raw);
      // Decimal notation only: Number() would also read '0x10', '0b1', '0o7' and padded spaces.
      if (!DECIMAL.test(raw as string) || !Number.isFinite(v) || v < (flag.min ?? -Infinity) || v > (flag.max ?? Infinity)) {
        throw flagError(name, flag, raw as string);
      }
      return v;
    }
  }
}

/**
 * `histoflow COMMAND argv…` against its table: unknown options, missing or
 * stray values, positionals where none are taken and every value out of its
 * type or range are RangeErrors naming the flag. With -h/--help, only the
 * options' names and stray positionals are checked, not their values.
 */
export function parseFlags<const T extends FlagTable>(
  command: string,
  table: T,
  argv: readonly string[],
  options: { positionals?: boolean } = {},
): ParsedFlags<T> {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, flag] of Object.entries(table)) {
    config[name] = { type: flag.type === 'boolean' ? 'boolean' : 'string', ...(flag.short ? { short: flag.short } : {}), ...(flag.type === 'list' ? { multiple: true } : {}) };
  }
  config.help = { type: 'boolean', short: 'h' };
  // Not strict: the checks below say what went wrong in the flag's own terms.
  const { tokens } = parseArgs({ args: [...argv], options: config, strict: false, allowPositionals: true, tokens: true });

  const raw: Record<string, string | string[] | true> = {};
  const positionals: string[] = [];
  let help = false;
  for (const token of tokens) {
    if (token.kind === 'positional') positionals.push(token.value);
    if (token.kind !== 'option') continue;
    if (token.name === 'help') {
      if (token.value !== undefined) throw flagError(token.rawName, HELP_FLAG, token.value);
      help = true;
      continue;
    }
    const flag = Object.hasOwn(table, token.name) ? table[token.name]! : undefined;
    if (!flag) {
      const known = [...Object.keys(table).map((n) => `--${n}`), '--help'];
      throw new RangeError(`Unknown option '${token.rawName}' for histoflow ${command}; expected one of ${known.join(', ')}`);
    }
    const name = `--${token.name}`;
    if (flag.type === 'boolean') {
      if (token.value !== undefined) throw flagError(name, flag, token.value);
      raw[token.name] = true;
      continue;
    }
    const value = token.value;
    if (value === undefined) throw flagError(name, flag, undefined);
    const numeric = flag.type === 'int' || flag.type === 'number';
    if (!token.inlineValue && value.length > 1 && value.startsWith('-') && !(numeric && NEGATIVE_NUMBER.test(value))) {
      throw flagError(name, flag, undefined, `('${value}' after it is an option; for a value that starts with '-', write ${name}=VALUE)`);
    }
    if (flag.type === 'list') raw[token.name] = [...((raw[token.name] as string[] | undefined) ?? []), value];
    else raw[token.name] = value;
  }
  if (!options.positionals && positionals.length) {
    throw new RangeError(`Expected no positional arguments for histoflow ${command} but received '${positionals.join(' ')}'`);
  }

  const values: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(table)) {
    const given = help ? undefined : raw[name];
    if (given !== undefined) values[name] = convert(`--${name}`, flag, given);
    else values[name] = flag.type === 'boolean' ? false : 'default' in flag ? flag.default : undefined;
  }
  return { values: values as FlagValues<T>, positionals, help };
}

/** A flag's help with `{default}` and `{choices}` filled in. */
function helpText(flag: Flag): string {
  return flag.help
    .replaceAll('{default}', 'default' in flag ? String(flag.default) : '')
    .replaceAll('{choices}', flag.type === 'choice' ? flag.choices.join(' | ') : '');
}

/**
 * The `Options:` section of a command's help: one row per flag in table order,
 * then -h, --help; the help column starts two spaces after the longest name.
 */
export function optionsHelp(table: FlagTable): string {
  const rows = [...Object.entries(table), ['help', HELP_FLAG] as const].map(([name, flag]) => {
    const left = `${flag.short ? `-${flag.short}, ` : ''}--${name}${flag.value ? ` ${flag.value}` : ''}`;
    return { left, lines: helpText(flag).split('\n') };
  });
  const width = Math.max(...rows.map((r) => r.left.length)) + 2;
  const text = rows.flatMap((r) => [`  ${r.left.padEnd(width)}${r.lines[0]}`, ...r.lines.slice(1).map((l) => `  ${' '.repeat(width)}${l}`)]);
  return `Options:\n${text.join('\n')}\n`;
}
