/**
 * `histoflow ARGS…` in a child process that reports its own peak resident
 * memory (process.resourceUsage().maxRSS, read in an 'exit' hook preloaded
 * with --require), so a test can assert that a refused run never grew.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import sharp from 'sharp';

import { CLI } from './helpers.js';

const exec = promisify(execFile);
const MARK = 'HISTOFLOW_TEST_MAXRSS_KB';

let hook: string | undefined;
function exitHook(): string {
  if (!hook) {
    hook = join(mkdtempSync(join(tmpdir(), 'hf-rss-')), 'maxrss.cjs');
    writeFileSync(hook, `process.on('exit', () => require('node:fs').writeSync(2, '\\n${MARK} ' + process.resourceUsage().maxRSS + '\\n'));\n`);
  }
  return hook;
}

export interface MeasuredRun {
  code: number;
  stdout: string;
  /** stderr without the peak-RSS line. */
  stderr: string;
  /** Peak resident set of the child, in bytes. */
  maxRssBytes: number;
}

/** Runs the compiled CLI with extra environment variables; never throws on a non-zero exit. */
export async function histoflowMeasured(args: string[], env: Record<string, string> = {}): Promise<MeasuredRun> {
  let r: { code: number; stdout: string; stderr: string };
  try {
    const ok = await exec(process.execPath, ['--require', exitHook(), CLI, ...args], { maxBuffer: 64 << 20, env: { ...process.env, ...env } });
    r = { code: 0, stdout: ok.stdout, stderr: ok.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    r = { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
  const m = new RegExp(`\\n${MARK} (\\d+)\\n`).exec(r.stderr);
  if (!m) throw new Error(`the child reported no peak RSS; stderr: ${r.stderr}`);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr.replace(m[0], ''), maxRssBytes: Number(m[1]) * 1024 };
}

/**
 * A side x side RGB PNG of one colour: a few hundred kB on disk for 20000²
 * (compression level 9), 1.2 GB once decoded.
 */
export async function solidPng(path: string, side: number, rgb = { r: 225, g: 170, b: 205 }): Promise<string> {
  await sharp({ create: { width: side, height: side, channels: 3, background: rgb }, limitInputPixels: false })
    .png({ compressionLevel: 9 })
    .toFile(path);
  return path;
}

export const MiB = 2 ** 20;
