/**
 * One parity table per family: every backend of a family against one
 * reference implementation, written independently of it, case by case and
 * shape by shape (STYLE.md habit 6; the Ginkgo / DALI / cuCIM pattern).
 *
 * A table registers one ava test per backend × case; each test runs the case
 * on every shape and names the shape in each assertion message. A backend
 * (or the reference) that cannot run here is skipped with its family's own
 * reason in the title, and fails instead in CI when CI installs what it needs.
 * Given the family's own list of backends, a table also checks that it leaves
 * none out.
 */
import test, { type ExecutionContext } from 'ava';

import { IN_CI } from './helpers.js';

/** 'exact': every value identical (Object.is); else the largest difference, absolute or relative to the reference's largest magnitude. */
export type Tolerance = 'exact' | { within: number; unit: string; relative?: boolean };

export interface Implementation {
  name: string;
  /** From the family's own status: whether it runs here... */
  available: boolean;
  /** ...and, when not, why (the skip reason). */
  detail: string;
  /** Whether CI installs what it needs: unavailable there is a failure, not a skip. */
  inCi: boolean;
}

export interface Backend<B> extends Implementation {
  /** Shown in brackets in the titles when it runs (e.g. 'gpu.js cpu mode'). */
  tag?: string;
  /** What the cases run on; called only when available. */
  make(): B | Promise<B>;
}

export interface Shape<S> {
  label: string;
  make(): S | Promise<S>;
}

/** What one implementation gives for one shape. */
export interface Outcome {
  /** Compared within the case's tolerance; several arrays are compared name by name. */
  values: ArrayLike<number> | Record<string, ArrayLike<number>>;
  /** What must be identical, not close (flags, thresholds, drawn parameters): deepEqual. */
  same?: unknown;
  /** Claims about the backend's run only, each with its message (e.g. "conv2d ran in the addon"). */
  claims?: [boolean, string][];
}

export interface Case<B, S> {
  label: string;
  /** One for every backend, or per backend (a gpu.js float kernel is not bit-exact where the CPU is). */
  tolerance: Tolerance | ((backend: string) => Tolerance);
  /** The case's own shapes, instead of the table's. */
  shapes?: Shape<S>[];
  run(backend: B, input: S): Promise<Outcome>;
  reference(input: S): Promise<Outcome>;
}

export interface ParityTable<B, S> {
  family: string;
  /** What every backend is compared to, and why it is independent of them. */
  reference: Implementation & { why: string };
  backends: Backend<B>[];
  /** Every case's shapes unless it brings its own. */
  shapes?: Shape<S>[];
  cases: Case<B, S>[];
  /** The family's own list of its backends: the table must compare all of them but the reference. */
  familyOrder?: readonly string[];
  /** Tests that switch global state (TF.js's backend, the nn engine) run one at a time. */
  serial?: boolean;
}

const number = (v: number) => (v !== 0 && Math.abs(v) < 0.01 ? v.toExponential() : String(v));

export function describeTolerance(tol: Tolerance): string {
  if (tol === 'exact') return 'exactly';
  return `within ${number(tol.within)} ${tol.unit}`;
}

/** The largest |got − want|: NaN against a number counts as Infinity, NaN against NaN as equal. */
export function maxAbsDifference(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < want.length; i++) {
    const a = got[i]!, b = want[i]!;
    if (Number.isNaN(a) || Number.isNaN(b)) {
      if (Number.isNaN(a) !== Number.isNaN(b)) return Infinity;
      continue;
    }
    const d = Math.abs(a - b);
    if (d > max) max = d;
  }
  return max;
}

/** max |got − want| / max |want|: the error relative to the reference's scale (absolute when want is all zeros). */
export function relativeDifference(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < want.length; i++) if (Math.abs(want[i]!) > scale) scale = Math.abs(want[i]!);
  const d = maxAbsDifference(got, want);
  return scale === 0 ? d : d / scale;
}

function firstMismatch(got: ArrayLike<number>, want: ArrayLike<number>): number {
  for (let i = 0; i < want.length; i++) if (!Object.is(got[i], want[i])) return i;
  return -1;
}

/** One assertion per compared array: a length mismatch, or the values against the tolerance. */
function compareValues(t: ExecutionContext, got: ArrayLike<number>, want: ArrayLike<number>, tol: Tolerance, where: string): void {
  if (got.length !== want.length) {
    t.is(got.length, want.length, `${where}: length`);
    return;
  }
  if (tol === 'exact') {
    const at = firstMismatch(got, want);
    t.is(at, -1, `${where}: first difference at ${at}: ${got[at]} vs ${want[at]}`);
    return;
  }
  const d = tol.relative ? relativeDifference(got, want) : maxAbsDifference(got, want);
  t.true(d <= tol.within, `${where}: ${tol.relative ? 'relative' : 'max'} difference ${number(d)} ${tol.unit} > ${number(tol.within)}`);
}

const isArray = (v: Outcome['values']): v is ArrayLike<number> => ArrayBuffer.isView(v) || Array.isArray(v);

function compare(t: ExecutionContext, got: Outcome, want: Outcome, tol: Tolerance, shape: string): void {
  for (const [ok, message] of got.claims ?? []) t.true(ok, `${shape}: ${message}`);
  if (isArray(got.values) || isArray(want.values)) {
    if (!isArray(got.values) || !isArray(want.values)) return void t.fail(`${shape}: one outcome has named values, the other not`);
    compareValues(t, got.values, want.values, tol, shape);
  } else {
    const names = Object.keys(want.values);
    const w = want.values;
    const g = got.values;
    t.deepEqual(Object.keys(g), names, `${shape}: the outputs`);
    for (const name of names) if (g[name]) compareValues(t, g[name], w[name]!, tol, `${shape}, ${name}`);
  }
  if (want.same !== undefined || got.same !== undefined) t.deepEqual(got.same, want.same, `${shape}: identical parts`);
}

/** A case that brings its own shapes, of its own input type (a table whose cases take different inputs). */
export function ownShapes<B, S>(c: Case<B, S> & { shapes: Shape<S>[] }): Case<B, unknown> {
  return c as unknown as Case<B, unknown>;
}

/** Memoizes by key: a shape's input and a case's reference outcome are made once per file, whichever backend asks first. */
function once<K, T>(cache: Map<K, Promise<T>>, key: K, make: () => T | Promise<T>): Promise<T> {
  let p = cache.get(key);
  if (!p) {
    p = Promise.resolve().then(make);
    cache.set(key, p);
  }
  return p;
}

/** Registers the table's tests. */
export function parityTable<B, S>(table: ParityTable<B, S>): void {
  const { family, reference } = table;
  const register = table.serial ? test.serial : test;
  const inputs = new Map<Shape<S>, Promise<S>>();
  const references = new Map<Case<B, S>, Map<Shape<S>, Promise<Outcome>>>();

  if (table.familyOrder) {
    const order = table.familyOrder;
    test(`${family}: the parity table compares every backend the family lists (${order.join(', ')}) with ${reference.name}`, (t) => {
      const covered = [reference.name, ...table.backends.map((b) => b.name)].sort();
      t.deepEqual(covered, [...order].sort());
    });
  }

  for (const backend of table.backends) {
    // An unavailable backend or reference: skipped with the reason, or failed in CI where CI installs it.
    const missing = [
      ...(reference.available ? [] : [{ who: `reference ${reference.name}`, it: reference }]),
      ...(backend.available ? [] : [{ who: backend.name, it: backend as Implementation }]),
    ];
    const failInCi = IN_CI && missing.some((m) => m.it.inCi);
    const why = missing.map((m) => `${m.who}: ${m.it.detail}`).join('; ');
    const suffix = missing.length === 0 ? '' : failInCi ? ` (fails: CI installs it, yet ${why})` : ` (skipped: ${why})`;
    const name = backend.available && backend.tag ? `${backend.name} [${backend.tag}]` : backend.name;
    let made: Promise<B> | undefined;

    for (const c of table.cases) {
      const tol = typeof c.tolerance === 'function' ? c.tolerance(backend.name) : c.tolerance;
      const shapes = c.shapes ?? table.shapes;
      if (!shapes?.length) throw new Error(`${family} parity: case '${c.label}' has no shapes`);
      const on = shapes.length === 1 ? `1 shape: ${shapes[0]!.label}` : `${shapes.length} shapes`;
      const title = `${name} agrees with ${reference.name} on ${c.label} ${describeTolerance(tol)} (${on})${suffix}`;
      if (missing.length > 0) {
        if (failInCi) test(title, (t) => t.fail(why));
        else test.skip(title, () => {});
        continue;
      }
      register(title, async (t) => {
        made ??= Promise.resolve(backend.make());
        const b = await made;
        for (const shape of shapes) {
          const input = await once(inputs, shape, shape.make);
          const want = await once(references.get(c) ?? references.set(c, new Map()).get(c)!, shape, () => c.reference(input));
          const got = await c.run(b, input);
          compare(t, got, want, tol, shape.label);
        }
      });
    }
  }
}

/** An implementation's availability from a family's status list (src/backend_choice.ts backendStatus and its kin). */
export function fromStatus(status: readonly { name: string; available: boolean; detail: string }[], name: string, inCi: boolean): Implementation {
  const s = status.find((b) => b.name === name);
  if (!s) throw new Error(`no backend '${name}' in the family's status (${status.map((b) => b.name).join(', ')})`);
  return { name, available: s.available, detail: s.detail, inCi };
}
