/**
 * How a fuzz case's ending is judged: a correct result, a clear error, or one
 * of the endings the hardening issue forbids (an internal error that says
 * nothing, a wrong result; crashes and hangs are seen by the runner).
 */
import { spawn } from 'node:child_process';

import type { FuzzRng } from './fuzz.js';
import type { Outcome } from './fuzz_runner.js';
import { CLI } from './helpers.js';

export interface Verdict {
  outcome: Outcome;
  message?: string;
}

/** Thrown by a case's checks when a call returned but its result is wrong (a length, a range, NaN). */
export class WrongResult extends Error {}

/**
 * Messages of errors that escaped from inside JavaScript or V8 instead of a
 * validation: they name no parameter and tell the user nothing.
 */
const INTERNAL_MESSAGES = [
  /Cannot read properties of/, /Cannot set properties of/, /Cannot destructure/, /[^:]* is not a function/, /[^:]* is not iterable/,
  /[^:]* is not defined/, /[^:]* is not a constructor/, /Cannot convert (undefined|null|a BigInt|a Symbol)/, /Maximum call stack size exceeded/,
  /Invalid (typed )?array length/, /Array buffer allocation failed/, /Invalid string length/, /Reduce of empty array/,
  /out of memory/i, /std::bad_alloc/, /undefined$/, /null$/, /\[object Object\]$/,
];

/**
 * True when the message is one of those internal errors as it was thrown: a
 * message that wraps one in context (which file, which stage) is a clear error.
 */
export function isInternalMessage(message: string): boolean {
  const bare = message.trim().replace(/^histoflow(?: [\w-]+)?: /, '').replace(/^(?:\w*Error|Uncaught \w+): /, '');
  return INTERNAL_MESSAGES.some((re) => new RegExp(`^${re.source}`, re.flags).test(bare));
}

/** A thrown value: a clear error, or 'unclear' (not an Error, no message, an internal message) or 'wrong'. */
export function classifyError(e: unknown): Verdict {
  if (e instanceof WrongResult) return { outcome: 'wrong', message: e.message };
  if (!(e instanceof Error)) return { outcome: 'unclear', message: `threw a non-Error: ${String(e).slice(0, 200)}` };
  const message = e.message.trim();
  if (!message) return { outcome: 'unclear', message: `${e.name} with an empty message` };
  if (isInternalMessage(message)) {
    const where = (e.stack ?? '').split('\n').slice(1, 4).map((l) => l.trim()).join(' ← ');
    return { outcome: 'unclear', message: `${e.name}: ${message.slice(0, 300)} (${where})` };
  }
  return { outcome: 'error', message: `${e.name}: ${message.slice(0, 300)}` };
}

/** Runs an API case: resolving is a correct result (its own checks throw WrongResult otherwise). */
export async function apiVerdict(run: () => Promise<unknown>): Promise<Verdict> {
  try {
    await run();
    return { outcome: 'ok' };
  } catch (e) {
    return classifyError(e);
  }
}

const STACK_LINE = /^\s+at .+(:\d+:\d+\)?|\(native\)|<anonymous>\)?)$/m;

/**
 * Runs `histoflow ARGS…` in `cwd`. Exit 0 is a result (`check` may call it
 * wrong); a non-zero exit must come with a message and no stack trace; a
 * signal is a crash; past `timeoutMs` the process is killed: a hang.
 */
export function cliVerdict(args: string[], cwd: string, check: () => string | null = () => null, timeoutMs = 15_000): Promise<Verdict> {
  return new Promise((resolvePromise) => {
    // In the child's process group, so that a runner that kills a hung child kills this too.
    const proc = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let hung = false;
    proc.stdout.resume();
    proc.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-8000);
    });
    const timer = setTimeout(() => {
      hung = true;
      proc.kill('SIGKILL');
    }, timeoutMs);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      const cmd = `histoflow ${args.join(' ').slice(0, 200)}`;
      const tail = stderr.trim().split('\n').slice(-3).join(' | ').slice(0, 400);
      if (hung) return resolvePromise({ outcome: 'hang', message: `${cmd}: no exit within ${timeoutMs / 1000} s` });
      if (signal) return resolvePromise({ outcome: 'crash', message: `${cmd}: killed by ${signal}: ${tail}` });
      if (code === 0) {
        const wrong = check();
        return resolvePromise(wrong ? { outcome: 'wrong', message: `${cmd}: ${wrong}` } : { outcome: 'ok' });
      }
      const message = stderr.trim();
      if (!message) return resolvePromise({ outcome: 'unclear', message: `${cmd}: exit ${code} with nothing on stderr` });
      if (STACK_LINE.test(message) || isInternalMessage(message)) {
        return resolvePromise({ outcome: 'unclear', message: `${cmd}: exit ${code} with a stack trace or an internal error: ${message.slice(0, 600)}` });
      }
      return resolvePromise({ outcome: 'error', message: `${cmd}: exit ${code}: ${tail}` });
    });
  });
}

/** What a family's case maker gets: its generator, its sandbox folder (with out/ inside) and the prepared seed files. */
export interface CaseContext {
  rng: FuzzRng;
  dir: string;
  seeds: string;
}

/** One generated input and how to run it. */
export interface FuzzCase {
  /** What was mutated, for the failure report. */
  what: string;
  run(): Promise<Verdict>;
}

export interface FuzzFamily {
  /** Writes the family's seed files into `seeds` (once per run). */
  prepare(seeds: string): Promise<void>;
  /** Writes a case's inputs into ctx.dir and says how to run it. */
  make(ctx: CaseContext): Promise<FuzzCase>;
}
