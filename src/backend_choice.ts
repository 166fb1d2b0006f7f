/**
 * The one backend chooser. Every family (stain and colour kernels, augment,
 * tissue, training) lists its backends in `auto`'s order and says how to make
 * each; a backend that cannot run here throws UnavailableError. An explicit
 * choice runs that backend or rethrows its UnavailableError; `auto` takes the
 * first that works and says why the ones before it were passed over.
 */
import { UnavailableError, checkOneOf, unavailableReason } from './errors.js';

export interface BackendFamily<Name extends string, Backend> {
  /** Names the family in UnavailableError (undefined for the kernels themselves). */
  readonly family?: string;
  /** Every backend, in `auto`'s order. */
  readonly order: readonly Name[];
  /** Makes (or returns the cached) backend, or throws UnavailableError. */
  create(name: Name): Promise<Backend>;
  /**
   * Why `auto` should pass over a backend that works (gpu.js in CPU mode is
   * slower than plain TypeScript), or undefined to take it.
   */
  passOver?(name: Name, backend: Backend): string | undefined;
  /** What a working backend runs on, for the reason line (e.g. 'gpu.js webgl mode'). */
  detail?(name: Name, backend: Backend): string | undefined;
}

export interface Chosen<Name extends string, Backend> {
  name: Name;
  backend: Backend;
  /** One line: which backend runs and why the ones before it did not. */
  reason: string;
  /** The backends `auto` passed over before it, each with why (empty for an explicit choice). */
  skipped: { name: Name; reason: string }[];
}

/** Makes `create` memoized per name; a failure is not remembered (a later call tries again). */
export function memoize<Name extends string, Backend>(create: (name: Name) => Promise<Backend>): (name: Name) => Promise<Backend> {
  const cache = new Map<Name, Promise<Backend>>();
  return (name) => {
    let p = cache.get(name);
    if (!p) {
      p = create(name);
      cache.set(name, p);
      p.catch(() => cache.delete(name));
    }
    return p;
  };
}

/** Rethrows anything that is not an UnavailableError, else names the backend and the family. */
function asUnavailable(family: string | undefined, name: string, e: unknown): UnavailableError {
  if (e instanceof UnavailableError) return e.family === family ? e : new UnavailableError(name, e.reason, family);
  throw e;
}

const list = (skipped: { name: string; reason: string }[]) => skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');

/** The backend for a `backend` option (`parameter` names it in errors): a name, or 'auto'. */
export async function chooseBackend<Name extends string, Backend>(
  f: BackendFamily<Name, Backend>,
  choice: unknown = 'auto',
  parameter = 'backend',
): Promise<Chosen<Name, Backend>> {
  const wanted = checkOneOf(parameter, choice, ['auto', ...f.order] as const);
  const describe = (name: Name, backend: Backend, how: string) => {
    const detail = f.detail?.(name, backend);
    return detail ? `${how}; ${detail}` : how;
  };
  if (wanted !== 'auto') {
    const name = wanted as Name;
    let backend: Backend;
    try {
      backend = await f.create(name);
    } catch (e) {
      throw asUnavailable(f.family, name, e);
    }
    return { name, backend, reason: `${name} (${describe(name, backend, 'requested')})`, skipped: [] };
  }
  const skipped: { name: Name; reason: string }[] = [];
  for (const name of f.order) {
    let backend: Backend;
    try {
      backend = await f.create(name);
    } catch (e) {
      skipped.push({ name, reason: asUnavailable(f.family, name, e).reason });
      continue;
    }
    const why = f.passOver?.(name, backend);
    if (why !== undefined) {
      skipped.push({ name, reason: why });
      continue;
    }
    const passed = skipped.length ? `; passed over: ${list(skipped)}` : '';
    return { name, backend, reason: `${name} (${describe(name, backend, 'auto')}${passed})`, skipped };
  }
  throw new UnavailableError('auto', `no backend works here: ${list(skipped)}`, f.family);
}

export interface BackendStatus<Name extends string = string> {
  name: Name;
  available: boolean;
  /** What it runs on, or why it is unavailable. */
  detail: string;
}

/** Every backend of a family with whether it works here and, when not, why. */
export async function backendStatus<Name extends string, Backend>(
  f: BackendFamily<Name, Backend>,
  detail: (name: Name, backend: Backend) => string,
): Promise<BackendStatus<Name>[]> {
  const out: BackendStatus<Name>[] = [];
  for (const name of f.order) {
    try {
      const backend = await f.create(name);
      out.push({ name, available: true, detail: detail(name, backend) });
    } catch (e) {
      out.push({ name, available: false, detail: unavailableReason(asUnavailable(f.family, name, e)) });
    }
  }
  return out;
}
