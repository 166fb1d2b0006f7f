/**
 * One voice for every validation error, after sharp's lib/is.js:
 *   Expected a number between 0 and 100 for alpha but received 101 of type number
 * TypeError for a wrong type, RangeError for a value out of range; always the
 * parameter's name, what was expected and what came.
 */

/** A value as errors show it: bounded whatever it is (a long string is cut, an array is its length). */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}…` : value}' of type string`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${String(value)} of type ${typeof value}`;
  }
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of length ${(value as unknown as { length?: number }).length ?? value.byteLength}`;
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  return `a value of type ${typeof value}`;
}

export function invalidType(name: string, expected: string, value: unknown): TypeError {
  return new TypeError(`Expected ${expected} for ${name} but received ${describeValue(value)}`);
}

export function invalidRange(name: string, expected: string, value: unknown): RangeError {
  return new RangeError(`Expected ${expected} for ${name} but received ${describeValue(value)}`);
}

export function checkNumber(name: string, value: unknown, min = -Infinity, max = Infinity): number {
  if (typeof value !== 'number') throw invalidType(name, 'a number', value);
  if (!Number.isFinite(value) || value < min || value > max) {
    const range = min === -Infinity && max === Infinity ? 'a finite number'
      : max === Infinity ? `a number ≥ ${min}` : min === -Infinity ? `a number ≤ ${max}` : `a number between ${min} and ${max}`;
    throw invalidRange(name, range, value);
  }
  return value;
}

export function checkInteger(name: string, value: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw invalidType(name, 'an integer', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidRange(name, max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer between ${min} and ${max}`, value);
  }
  return value;
}

export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalidType(name, 'a boolean', value);
  return value;
}

export function checkOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string') throw invalidType(name, `one of ${allowed.join(', ')}`, value);
  if (!(allowed as readonly string[]).includes(value)) throw invalidRange(name, `one of ${allowed.join(', ')}`, value);
  return value as T;
}

export function checkObject(name: string, value: unknown): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidType(name, 'an object', value);
  return value as Record<string, unknown>;
}

/** Rejects keys that are not in `known`: a typo must not be silently ignored. */
export function checkKnownKeys(name: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (value[key] !== undefined && !known.includes(key)) {
      throw new RangeError(`Unknown option '${key}' in ${name}; expected one of ${known.join(', ')}`);
    }
  }
}

export function checkNumberArray(name: string, value: unknown, length: number): number[] {
  if (!Array.isArray(value) && !(ArrayBuffer.isView(value) && !(value instanceof DataView))) {
    throw invalidType(name, `an array of ${length} numbers`, value);
  }
  const arr = Array.from(value as ArrayLike<number>);
  if (arr.length !== length) throw invalidRange(name, `an array of ${length} numbers`, value);
  arr.forEach((v, i) => checkNumber(`${name}[${i}]`, v));
  return arr;
}

/**
 * Runs a native call so that its rejection carries the caller's stack (the
 * worker's own stack ends in the event loop), as sharp does.
 */
export async function withCallerStack<T>(promise: () => Promise<T>): Promise<T> {
  const stack = new Error().stack;
  try {
    return await promise();
  } catch (e) {
    if (e instanceof Error && stack) e.stack = `${e.name}: ${e.message}\n${stack.split('\n').slice(2).join('\n')}`;
    throw e;
  }
}

/**
 * A backend that cannot run here (no addon, built without CUDA, no device, no
 * GL context…). `backend` names it, `reason` says why in one line, and the
 * message reads `the cuda backend is unavailable[ for augment]: <reason>`.
 * Callers branch on `code` or `instanceof`, never on the message.
 */
export class UnavailableError extends Error {
  readonly code = 'HISTOFLOW_UNAVAILABLE';
  constructor(
    readonly backend: string,
    readonly reason: string,
    /** The operation family when it is not the kernels' (augment, tissue). */
    readonly family?: string,
  ) {
    super(`the ${backend} backend is unavailable${family ? ` for ${family}` : ''}: ${reason}`);
    this.name = 'UnavailableError';
  }
}

/** The one-line reason of a failed backend: an UnavailableError's own, else the message. */
export function unavailableReason(e: unknown): string {
  if (e instanceof UnavailableError) return e.reason;
  return e instanceof Error ? e.message : String(e);
}
