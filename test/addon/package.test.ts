/**
 * What ships and what is committed: the npm package holds no data and stays
 * small, and no tracked file is a copy of a data file from another project
 * (compared by SHA-256 with the manifest and with the data folder's files).
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { dataFolders } from '../../src/data/folder.js';
import { DATA_FILES } from '../../src/data/manifest.js';
import { ROOT } from '../support/helpers.js';

const exec = promisify(execFile);
const DATA_EXT = /\.(png|jpe?g|tiff?|svs|ndpi|mrxs|npy|h5|hdf5|hfpack|pyc)$/i;

test('npm pack lists no data, no compiled tests and no __pycache__, and is under 5 MB', async (t) => {
  const npm = process.env.npm_execpath ?? 'npm';
  const args = ['pack', '--dry-run', '--json', '--ignore-scripts'];
  const r = npm.endsWith('.js') ? await exec(process.execPath, [npm, ...args], { cwd: ROOT, maxBuffer: 64 << 20 })
    : await exec(npm, args, { cwd: ROOT, maxBuffer: 64 << 20 });
  const [pack] = JSON.parse(r.stdout) as Array<{ size: number; unpackedSize: number; files: Array<{ path: string }> }>;
  const paths = pack!.files.map((f) => f.path);
  t.log(`${paths.length} files, ${(pack!.size / 1e6).toFixed(2)} MB packed, ${(pack!.unpackedSize / 1e6).toFixed(2)} MB unpacked`);
  t.deepEqual(paths.filter((p) => DATA_EXT.test(p) || p.includes('__pycache__') || p.startsWith('dist/test/') || p.startsWith('test/')), []);
  t.true(pack!.unpackedSize < 5e6, `unpacked ${pack!.unpackedSize} bytes`);
  t.true(paths.includes('scripts/build-native.mjs') && paths.includes('CMakeLists.txt') && paths.includes('dist/src/index.js'), 'the install needs these');
});

/** The tracked files need git and a checkout (a tarball or a machine without git has neither). */
const git = spawnSync('git', ['rev-parse', '--is-inside-work-tree'], { cwd: ROOT, encoding: 'utf8' });
const WHY_NO_GIT = git.error ? 'git is not installed' : git.status !== 0 ? 'not a git checkout' : '';
(WHY_NO_GIT ? test.skip : test)(`no tracked file is a copy of a data file (by SHA-256: the manifest and the data folder)${WHY_NO_GIT ? ` (skipped: ${WHY_NO_GIT})` : ''}`, async (t) => {
  const tracked = (await exec('git', ['ls-files', '-z'], { cwd: ROOT, maxBuffer: 64 << 20 })).stdout.split('\0').filter(Boolean);
  const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
  const known = new Map(DATA_FILES.map((f) => [f.sha256, f.name]));
  for (const dir of dataFolders().filter(existsSync)) {
    for (const name of readdirSync(dir)) if (DATA_EXT.test(name)) known.set(sha(join(dir, name)), name);
  }
  const copies = tracked.filter((p) => existsSync(join(ROOT, p))).map((p) => [p, known.get(sha(join(ROOT, p)))]).filter(([, n]) => n);
  t.deepEqual(copies, []);
  t.deepEqual(tracked.filter((p) => p.includes('__pycache__') || p.endsWith('.pyc')), []);
});
