/**
 * The seams run one way: bindings/ (the addon's contract and loader) imports
 * nothing from src/; src/ imports nothing from test/ or from outside the
 * package's own folders. Read from the TypeScript sources, so a new import
 * that crosses a seam fails here before it ships.
 */
import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';

import { ROOT } from '../support/helpers.js';

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(path)));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Every relative module a file imports or re-exports (static and dynamic), as a path from the repository root. */
async function relativeImports(file: string): Promise<string[]> {
  const text = await readFile(join(ROOT, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)));
}

async function crossings(dir: string, forbidden: (target: string) => boolean): Promise<string[]> {
  const found: string[] = [];
  for (const file of await sources(dir)) {
    for (const target of await relativeImports(file)) if (forbidden(target)) found.push(`${file} → ${target}`);
  }
  return found;
}

test('bindings/ imports nothing from src/', async (t) => {
  t.deepEqual(await crossings('bindings', (target) => !target.startsWith('bindings/')), []);
});

test('src/ imports only src/ and bindings/ (never test/ or benchmarks/)', async (t) => {
  t.deepEqual(await crossings('src', (target) => !target.startsWith('src/') && !target.startsWith('bindings/')), []);
});

test('the import scan sees imports (it finds the ones src/ is known to make)', async (t) => {
  const found = await relativeImports('src/kernels/registry.ts');
  t.true(found.includes('bindings/loader.js'));
  t.true(found.includes('src/backend_choice.js'));
});
