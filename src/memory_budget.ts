/**
 * One memory limit for every command that decodes or allocates in proportion
 * to its input: what a run will hold is computed from image headers and the
 * options *before* anything is decoded, allocated or written, and a run over
 * the limit stops with an error that names the limit, the computed size and
 * how to raise it:
 *
 *   augment --grid 8x8 on a 4096x4096 image (64 input copies 3 GiB, …) needs 17.4 GiB,
 *   over the memory limit of 2 GiB (the default); raise it with --max-memory 18G or HISTOFLOW_MAX_MEMORY=18G
 *
 * The limit is, first found: the command's --max-memory SIZE (an API's
 * `maxMemory` in bytes), the HISTOFLOW_MAX_MEMORY environment variable, or
 * DEFAULT_MAX_MEMORY. SIZE is bytes, or a number with K, M, G or T (powers of 1024).
 */
import { invalidRange } from './errors.js';

export const MAX_MEMORY_ENV = 'HISTOFLOW_MAX_MEMORY';
/** 2 GiB: the largest run of any command stays within a laptop's memory unless asked for more. */
export const DEFAULT_MAX_MEMORY = 2 ** 31;

export interface MemoryLimit {
  bytes: number;
  /** Where it came from, as the error says it: '--max-memory', 'HISTOFLOW_MAX_MEMORY' or 'the default'. */
  source: string;
}

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** '512M' → 536870912, '2G', '1.5g', '1048576', '4GiB'; anything else is a RangeError naming `name`. */
export function parseByteSize(name: string, value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(value);
  const bytes = m ? Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!) : NaN;
  if (!(bytes >= 1 && Number.isSafeInteger(bytes))) {
    throw invalidRange(name, 'a size in bytes, or with K, M, G or T (e.g. 512M, 4G)', value);
  }
  return bytes;
}

/**
 * The limit in force: `given` (a --max-memory string, or bytes from an API
 * option named `name`), else HISTOFLOW_MAX_MEMORY, else the default.
 */
export function memoryLimit(given?: string | number, name = '--max-memory'): MemoryLimit {
  if (typeof given === 'number') {
    if (!(Number.isSafeInteger(given) && given >= 1)) throw invalidRange(name, 'a size in bytes, an integer ≥ 1', given);
    return { bytes: given, source: name };
  }
  if (given !== undefined) return { bytes: parseByteSize(name, given), source: name };
  const env = process.env[MAX_MEMORY_ENV];
  if (env !== undefined && env !== '') return { bytes: parseByteSize(MAX_MEMORY_ENV, env), source: MAX_MEMORY_ENV };
  return { bytes: DEFAULT_MAX_MEMORY, source: 'the default' };
}

/** 3221225472 → '3 GiB', 1500 → '1.5 KiB': binary units, at most one decimal. */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${bytes} bytes` : `${Number(v.toFixed(1))} ${units[u]}`;
}

/** The smallest whole SIZE (in G, or M under 1 GiB) that covers `bytes`, for the error's suggestion. */
function suggestion(bytes: number): string {
  return bytes < 2 ** 30 ? `${Math.ceil(bytes / 2 ** 20)}M` : `${Math.ceil(bytes / 2 ** 30)}G`;
}

/** A run that would hold more memory than the limit allows. Callers branch on `code` or `instanceof`. */
export class MemoryLimitError extends RangeError {
  readonly code = 'HISTOFLOW_MEMORY_LIMIT';
  constructor(
    /** What would be held, in words (the operation and its sizes). */
    readonly what: string,
    readonly bytes: number,
    readonly limit: MemoryLimit,
  ) {
    const size = suggestion(bytes);
    super(
      `${what} needs ${formatBytes(bytes)}, over the memory limit of ${formatBytes(limit.bytes)} (${limit.source}); ` +
        `raise it with --max-memory ${size} or ${MAX_MEMORY_ENV}=${size}`,
    );
    this.name = 'MemoryLimitError';
  }
}

/** Throws a MemoryLimitError when `bytes` (what `what` will allocate) is over the limit. */
export function checkMemory(what: string, bytes: number, limit: MemoryLimit): void {
  if (!(bytes <= limit.bytes)) throw new MemoryLimitError(what, bytes, limit);
}
