// Preloaded by scripts/gpu-node-bundle.sh (node --import): appends every file
// that Node resolves, ESM and CommonJS, to $HISTOFLOW_RECORD, one path a line,
// so the bundle carries only the node_modules files a run really loads.
import Module, { register } from 'node:module';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const record = process.env.HISTOFLOW_RECORD;
if (record) {
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (...args) {
    const file = resolve.apply(this, args);
    if (file.startsWith('/')) appendFileSync(record, file + '\n');
    return file;
  };
  const hooks = `
    import { appendFileSync } from 'node:fs';
    import { fileURLToPath } from 'node:url';
    export async function resolve(specifier, context, next) {
      const r = await next(specifier, context);
      if (r.url.startsWith('file:')) appendFileSync(${JSON.stringify(record)}, fileURLToPath(r.url) + '\\n');
      return r;
    }`;
  register('data:text/javascript,' + encodeURIComponent(hooks), import.meta.url);
  void fileURLToPath;
}
