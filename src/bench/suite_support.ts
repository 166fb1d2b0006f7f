/**
 * What every benchmark suite needs besides the harness: its real inputs, the
 * Python peers' interpreter and a child-process runner for them.
 */
import { spawn } from 'node:child_process';

import { dataPath } from '../data/folder.js';

/** The system Python that has the peers' packages (apt python3-numpy, -opencv, -skimage). */
export const PYTHON = '/usr/bin/python3';

/** A real-data input from the data folder (src/data/folder.ts). */
export { dataPath as dataFile };

export function isNative(backend: string): boolean {
  return backend === 'cpu' || backend === 'cuda';
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
