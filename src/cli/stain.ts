/**
 * `histoflow stain IN... --method M [--preset P] [--target T.png ...] --out DIR`
 * Normalizes each input image to one target and writes a PNG per input under
 * its own name in DIR. With --json, prints the fitted target and per-image fits.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';

import { checkNotInput, checkOutputPath } from '../output.js';
import { readImage, writeImage } from '../image.js';
import { KERNEL_BACKENDS } from '../kernels/registry.js';
import { STAIN_METHODS, fitStainTarget, normalizeStain } from '../stain/normalize.js';
import { STAIN_PRESETS } from '../stain/presets.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';
import { Progress, status } from './progress.js';

export const STAIN_FLAGS = defineFlags({
  method: { type: 'choice', value: 'M', choices: STAIN_METHODS, default: 'macenko', help: '{choices} (default {default})' },
  preset: {
    type: 'choice', value: 'P', choices: STAIN_PRESETS, default: 'canonical',
    help: '{choices} (default {default}: HEnorm_python\'s Io 240, beta 0.15;\nwithout --target, Macenko/Vahadane/Ruifrok map to its reference H&E)',
  },
  target: { type: 'list', value: 'T', help: 'target image (repeat for several: their pixels are pooled); required for reinhard' },
  out: { type: 'string', value: 'DIR', help: 'output folder (created)' },
  backend: { type: 'choice', value: 'B', choices: KERNEL_BACKENDS, default: 'auto', help: '{choices} (default {default})' },
  seed: { type: 'int', value: 'S', min: 0, default: 0, help: 'Vahadane\'s seed (default {default})' },
  'single-stains': { type: 'boolean', help: 'also write <name>_H.png and <name>_E.png (stain-matrix methods)' },
  json: { type: 'boolean', help: 'print the fitted target and per-image fits as JSON, no progress' },
});

export const STAIN_HELP = `Usage: histoflow stain IN... --out DIR [options]

Normalize the stain of H&E images to one target; writes DIR/<name>.png per input.

${optionsHelp(STAIN_FLAGS)}`;

export async function stainCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseFlags('stain', STAIN_FLAGS, argv, { positionals: true });
  if (help) {
    process.stdout.write(STAIN_HELP);
    return 0;
  }
  const { method, preset, backend, seed } = values;
  if (positionals.length === 0) throw new RangeError('Expected at least one input image (histoflow stain IN... --out DIR)');
  if (!values.out) throw new RangeError('Expected --out DIR');
  for (const p of [...positionals, ...(values.target ?? [])]) {
    if (!existsSync(p) || !statSync(p).isFile()) throw new RangeError(`Expected an image file but ${p} does not exist`);
  }
  const names = positionals.map((p) => basename(p, extname(p)));
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new RangeError(`Expected inputs with distinct names but '${dup}' appears twice (outputs are named after inputs)`);
  await checkOutputPath('--out', values.out, 'folder');
  const inputs = [...positionals, ...(values.target ?? [])];
  for (const n of names) {
    for (const suffix of ['', '_H', '_E']) await checkNotInput('--out', join(values.out, `${n}${suffix}.png`), inputs);
  }

  const quiet = values.json;
  const common = { method, preset, backend, seed };
  const targetImages = await Promise.all((values.target ?? []).map((t) => readImage(t)));
  const target = targetImages.length ? await fitStainTarget(targetImages, common) : undefined;

  const progress = new Progress(`stain ${method}`, positionals.length, { quiet });
  const images: Record<string, unknown>[] = [];
  let backendUsed = '';
  for (let i = 0; i < positionals.length; i++) {
    const input = positionals[i]!;
    const img = await readImage(input);
    const r = await normalizeStain(img, { ...common, ...(target ? { target } : {}), singleStains: values['single-stains'] });
    backendUsed = r.backend;
    const output = join(values.out, `${names[i]}.png`);
    await writeImage(output, { data: r.data, n: 1, height: img.height, width: img.width });
    const unchanged = r.unchanged[0];
    if (r.hematoxylin && r.eosin && !unchanged) {
      await writeImage(join(values.out, `${names[i]}_H.png`), { data: r.hematoxylin, n: 1, height: img.height, width: img.width });
      await writeImage(join(values.out, `${names[i]}_E.png`), { data: r.eosin, n: 1, height: img.height, width: img.width });
    }
    images.push({
      input,
      output,
      width: img.width,
      height: img.height,
      status: unchanged ? 'unchanged' : 'normalized',
      ...(unchanged ? { reason: unchanged.reason } : {}),
      ...(r.fits ? { fit: r.fits[0] } : {}),
      ...(r.lab ? { lab: r.lab[0] } : {}),
    });
    if (unchanged) status(quiet, `\n${input}: left unchanged (${unchanged.reason})`);
    progress.tick();
    if (i === positionals.length - 1) {
      const summary = { method, preset, backend: backendUsed, target: r.target, images };
      progress.end();
      if (values.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      else status(false, `wrote ${positionals.length} image(s) to ${values.out} (backend ${backendUsed})`);
    }
  }
  return 0;
}
