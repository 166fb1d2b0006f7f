/** Issue 14: a model.json cannot make histoflow read a file outside the model's folder. */
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { loadModel } from '../../src/models/io.js';

function modelWith(paths: string[]): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hf-model-'));
  const file = join(dir, 'model.json');
  writeFileSync(file, JSON.stringify({
    format: 'layers-model', modelTopology: { class_name: 'Sequential', config: { layers: [] } },
    weightsManifest: [{ paths, weights: [] }],
  }));
  return { dir, file };
}

for (const [what, path] of [['a ../ path', '../../../../../../etc/passwd'], ['an absolute path', '/etc/passwd']] as const) {
  test(`a weightsManifest path that is ${what} is refused, naming model.json and the path`, async (t) => {
    const { dir, file } = modelWith([path]);
    const e = await t.throwsAsync(loadModel(dir));
    t.true(e!.message.includes(file), e!.message);
    t.true(e!.message.includes(JSON.stringify(path)), e!.message);
    t.regex(e!.message, /Refusing the weights path/);
  });
}

test('a weightsManifest path that is a link leading out of the folder is refused', async (t) => {
  const { dir } = modelWith(['weights.bin']);
  symlinkSync('/etc/passwd', join(dir, 'weights.bin'));
  await t.throwsAsync(loadModel(dir), { message: /Refusing the weights path "weights\.bin" .*link to \/etc\/passwd/ });
});
