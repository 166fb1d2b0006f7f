/**
 * Where histoflow may write: one check for every output folder or file, one
 * folder creator, the rule that an output never is an input, and the marker
 * that says a folder is histoflow's to delete.
 *
 * Node's recursive mkdir loops forever at 100 % CPU under /proc (mkdir there
 * answers ENOENT for a parent that exists), so folders are created one
 * component at a time and kernel pseudo-filesystems are refused up front.
 */
import { access, constants, mkdir, rm, stat, statfs, writeFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { invalidType } from './errors.js';

/** statfs types of kernel pseudo-filesystems (linux/magic.h): nothing histoflow writes belongs there. */
const PSEUDO_FS: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'], [0x62656572, 'sysfs'], [0x27e0eb, 'cgroup'], [0x63677270, 'cgroup2'], [0x64626720, 'debugfs'],
  [0x73636673, 'securityfs'], [0x74726163, 'tracefs'], [0xcafe4a11, 'bpf'], [0x6e736673, 'nsfs'], [0x42494e4d, 'binfmt_misc'],
]);

/** A file in every folder histoflow created and may therefore delete whole. */
export const OWNED_MARKER = '.histoflow-owned';

/** A path histoflow cannot write to (a RangeError: the value of an output parameter); the message names the flag (or option) and the path. */
export class OutputPathError extends RangeError {
  constructor(name: string, path: string, why: string) {
    super(`Cannot write ${name} ${path}: ${why}`);
    this.name = 'OutputPathError';
  }
}

async function statOrCode(path: string): Promise<Stats | string> {
  try {
    return await stat(path);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
  }
}

/** The deepest existing ancestor of an absolute path (the path itself if it exists), or an error naming the file in the way. */
async function existingAncestor(name: string, abs: string): Promise<{ dir: string; stats: Stats }> {
  let p = abs;
  for (;;) {
    const s = await statOrCode(p);
    if (typeof s !== 'string') {
      if (p !== abs && !s.isDirectory()) throw new OutputPathError(name, abs, `${p} is a file, not a folder`);
      return { dir: p, stats: s };
    }
    if (s !== 'ENOENT' && s !== 'ENOTDIR') throw new OutputPathError(name, abs, `${p} cannot be examined (${s})`);
    const up = dirname(p);
    if (up === p) throw new OutputPathError(name, abs, 'no part of it exists');
    p = up;
  }
}

async function checkWritableFolder(name: string, abs: string, dir: string): Promise<void> {
  const fs = await statfs(dir).catch(() => undefined);
  const pseudo = fs && PSEUDO_FS.get(Number(fs.type));
  if (pseudo) throw new OutputPathError(name, abs, `${dir} is on the kernel's ${pseudo} pseudo-filesystem, not a place for files`);
  try {
    await access(dir, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new OutputPathError(name, abs, code === 'EROFS' ? `${dir} is on a read-only filesystem` : `${dir} is not writable (${code})`);
  }
}

/** Whether anything (file, folder, link target) exists at `path`. */
export async function pathExists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/**
 * Checks, without creating anything, that `path` can be an output `kind`
 * (a folder histoflow fills, or one file): no file in the way, not an existing
 * folder where a file goes (or the reverse), not on /proc or /sys, writable.
 * `name` is the flag or option named in the error. Resolves to the absolute path.
 */
export async function checkOutputPath(name: string, path: unknown, kind: 'folder' | 'file'): Promise<string> {
  if (typeof path !== 'string' || path === '') throw invalidType(name, kind === 'folder' ? 'a folder path' : 'a file path', path);
  const abs = resolve(path);
  const { dir, stats } = await existingAncestor(name, abs);
  if (dir === abs) {
    if (kind === 'folder' && !stats.isDirectory()) throw new OutputPathError(name, abs, 'it is a file, not a folder');
    if (kind === 'file' && stats.isDirectory()) throw new OutputPathError(name, abs, 'it is a folder, not a file');
  }
  await checkWritableFolder(name, abs, dir === abs && kind === 'file' ? dirname(abs) : dir);
  return abs;
}

/**
 * Creates a folder and its missing parents, one component at a time, with
 * errors that name `name` and the path (never a bare EEXIST/ENOTDIR/ENOENT).
 * Resolves to the first folder created, or undefined if it existed.
 */
export async function makeDirectory(path: string, name = 'folder'): Promise<string | undefined> {
  const abs = resolve(path);
  const { dir, stats } = await existingAncestor(name, abs);
  if (dir === abs) {
    if (!stats.isDirectory()) throw new OutputPathError(name, abs, 'it is a file, not a folder');
    return undefined;
  }
  await checkWritableFolder(name, abs, dir);
  const missing: string[] = [];
  for (let p = abs; p !== dir; p = dirname(p)) missing.unshift(p);
  let first: string | undefined;
  for (const p of missing) {
    try {
      await mkdir(p);
      first ??= p;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const s = await statOrCode(p);
      if (code === 'EEXIST' && typeof s !== 'string' && s.isDirectory()) continue; // made meanwhile
      const why = code === 'EEXIST' ? `${p} is a file, not a folder` : code === 'EACCES' || code === 'EPERM' ? `${dirname(p)} is not writable (${code})`
        : code === 'EROFS' ? `${dirname(p)} is on a read-only filesystem` : `cannot create ${p} (${code})`;
      throw new OutputPathError(name, abs, why);
    }
  }
  return first;
}

/** Device and inode, the identity of a file whatever the path that reaches it; undefined if it does not exist. */
async function identity(path: string): Promise<string | undefined> {
  const s = await stat(path).catch(() => undefined);
  return s ? `${s.dev}:${s.ino}` : undefined;
}

/** Refuses an output file that is one of the inputs (same device and inode, whatever the spelling of the path). */
export async function checkNotInput(name: string, output: string, inputs: readonly string[]): Promise<void> {
  const out = await identity(output);
  if (out === undefined) return;
  for (const input of inputs) {
    if ((await identity(input)) === out) {
      throw new OutputPathError(name, output, `it is the input ${input}; histoflow never writes over an input (choose another output)`);
    }
  }
}

/** Creates `dir` (one new component) and marks it as histoflow's; resolves to false if it already existed (then it is not marked). */
export async function makeOwnedDirectory(dir: string, name = 'folder'): Promise<boolean> {
  await makeDirectory(dirname(dir), name);
  try {
    await mkdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      const s = await stat(dir);
      if (!s.isDirectory()) throw new OutputPathError(name, dir, 'it is a file, not a folder');
      return false;
    }
    throw e;
  }
  await writeFile(join(dir, OWNED_MARKER), 'This folder was created by histoflow, which may delete it whole (tile --no-resume).\n');
  return true;
}

/** Whether `dir` holds histoflow's marker. */
export async function isOwnedDirectory(dir: string): Promise<boolean> {
  return stat(join(dir, OWNED_MARKER)).then((s) => s.isFile(), () => false);
}

/**
 * Deletes `dir` whole if histoflow created it (it holds the marker) or does
 * nothing if it is missing; refuses, naming `name` and the folder, otherwise.
 */
export async function removeOwnedDirectory(dir: string, name = 'folder'): Promise<void> {
  if ((await statOrCode(dir)) === 'ENOENT') return;
  if (!(await isOwnedDirectory(dir))) {
    throw new OutputPathError(name, dir, `histoflow did not create it (no ${OWNED_MARKER} in it), so it will not delete it; move it away or choose another output folder`);
  }
  await rm(dir, { recursive: true, force: true });
}
