/**
 * What every benchmark suite needs besides the harness: its real inputs, the
 * Python peers' interpreter and a child-process runner for them.
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';

import { loadAddon } from '../../bindings/loader.js';
import { dataPath } from '../data/folder.js';

/** The system Python that has the peers' packages (apt python3-numpy, -opencv, -skimage). */
export const PYTHON = '/usr/bin/python3';

/** A real-data input from the data folder (src/data/folder.ts). */
export { dataPath as dataFile };

export function isNative(backend: string): boolean {
  return backend === 'cpu' || backend === 'cuda';
}

/**
 * One timed row of a suite: a kernel backend, and for the native CPU backend a
 * second row pinned to one thread (`cpu:1t`), so that the single-threaded
 * peers have a same-threads counterpart in the same run.
 */
export interface Runner<B extends string> {
  /** The row's backend name in the report. */
  label: string;
  backend: B;
  /** Addon threads for this row; null: the default (all cores). */
  threads: number | null;
}

export function runnersFor<B extends string>(backends: readonly B[]): Runner<B>[] {
  const out: Runner<B>[] = [];
  for (const backend of backends) {
    out.push({ label: backend, backend, threads: null });
    if (backend === 'cpu' && cpus().length > 1) out.push({ label: 'cpu:1t', backend, threads: 1 });
  }
  return out;
}

/**
 * The peers' configurations by process count: the plain single-threaded loop
 * (1) and, on a multi-core machine, the same loop over one forked process per
 * core (benchmarks/peers/worker_pool.py, HISTOFLOW_PEER_WORKERS), what a
 * Python user does to use every core for per-image work.
 */
export function peerWorkerCounts(): number[] {
  return [...new Set([1, Math.max(1, cpus().length)])];
}

/** 'peer:numpy' for the single process, 'peer:numpy:2p' for two worker processes. */
export function peerLabel(base: string, workers: number): string {
  return workers === 1 ? base : `${base}:${workers}p`;
}

/** Runs `fn` with the addon's CPU kernels on `threads` threads (null: unchanged), then restores the count. */
export async function withAddonThreads<T>(threads: number | null, fn: () => Promise<T>): Promise<T> {
  const s = loadAddon();
  if (threads === null || !s.ok) return fn();
  const previous = s.addon.getThreads();
  s.addon.setThreads(threads);
  try {
    return await fn();
  } finally {
    s.addon.setThreads(previous);
  }
}

export function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
