/**
 * `histoflow stain IN... --method M [--preset P] [--target T.png ...] --out DIR`
 * Normalizes each input image to one target and writes a PNG per input under
 * its own name in DIR. With --json, prints the fitted target and per-image fits.
 * Alpha: transparent pixels (alpha < 128) are not tissue, so they stay out of
 * every fit (inputs' and targets'); the output keeps the input's alpha channel.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';

import { checkNotInput, checkOutputPath } from '../output.js';
import { opaqueMask, pixelsWhere, readImageHeader, readImageWithAlpha, writeImage, type ImageHeader } from '../image.js';
import { checkMemory, formatBytes, memoryLimit, type MemoryLimit } from '../memory_budget.js';
import { KERNEL_BACKENDS } from '../kernels/registry.js';
import { STAIN_METHODS, fitStainTarget, normalizeStain, type StainMethod } from '../stain/normalize.js';
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
  'max-memory': { type: 'string', value: 'SIZE', help: 'refuse images that need more memory (e.g. 512M, 8G; default $HISTOFLOW_MAX_MEMORY, else 2G)' },
});

export const STAIN_HELP = `Usage: histoflow stain IN... --out DIR [options]

Normalize the stain of H&E images to one target; writes DIR/<name>.png per input.
Transparent pixels (alpha < 128) are not tissue: they stay out of every fit,
and each output keeps its input's alpha channel. An image of one colour, or
without tissue, is written unchanged and reported as such.

${optionsHelp(STAIN_FLAGS)}`;

/**
 * Bytes per pixel a normalization holds: the decoded image and its output
 * (3 + 3), the single-stain images (3 + 3), for the stain-matrix methods the
 * fit's per-pixel float scratch (3 × 4) and tissue mask (1), and with alpha
 * the RGBA decode and encode (4 + 4), the alpha plane and fit mask (1 + 1)
 * and the opaque pixels gathered for the fit (3).
 */
function bytesPerPixel(method: StainMethod, singleStains: boolean, alpha: boolean): number {
  return 6 + (singleStains ? 6 : 0) + (method === 'reinhard' ? 0 : 13) + (alpha ? 13 : 0);
}

/**
 * What a run holds at once, from the headers alone: the target images (kept
 * for the whole run, pooled when several, and fitted) plus the largest input
 * being normalized. Refused over the limit, before anything is decoded.
 */
export function checkStainMemory(
  inputs: readonly { path: string; header: ImageHeader }[],
  targets: readonly { path: string; header: ImageHeader }[],
  method: StainMethod,
  singleStains: boolean,
  limit: MemoryLimit,
): void {
  const pixels = (h: ImageHeader) => h.width * h.height;
  const targetPixels = targets.reduce((s, t) => s + pixels(t.header), 0);
  const targetBytes = targets.reduce((s, t) => s + pixels(t.header) * (t.header.hasAlpha ? 9 : 3), 0)
    + targetPixels * ((targets.length > 1 ? 3 : 0) + (method === 'reinhard' ? 0 : 13));
  const cost = (h: ImageHeader) => pixels(h) * bytesPerPixel(method, singleStains, h.hasAlpha);
  const largest = inputs.reduce((a, b) => (cost(b.header) > cost(a.header) ? b : a));
  const inputBytes = cost(largest.header);
  const what = `stain --method ${method} of ${largest.path} ` +
    `(${largest.header.width}x${largest.header.height} px × ${bytesPerPixel(method, singleStains, largest.header.hasAlpha)} bytes)` +
    (targets.length ? ` with ${targets.length} target image(s) of ${targetPixels} pixels (${formatBytes(targetBytes)})` : '');
  checkMemory(what, targetBytes + inputBytes, limit);
}

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

  const limit = memoryLimit(values['max-memory']);
  const headerOf = async (path: string) => ({ path, header: await readImageHeader(path) });
  checkStainMemory(
    await Promise.all(positionals.map(headerOf)),
    await Promise.all((values.target ?? []).map(headerOf)),
    method,
    values['single-stains'],
    limit,
  );

  const quiet = values.json;
  const common = { method, preset, backend, seed };
  // Transparent target pixels are not tissue: only the opaque ones are fitted.
  const targetPixels = await Promise.all((values.target ?? []).map(async (path) => {
    const { image, alpha } = await readImageWithAlpha(path);
    if (!alpha) return image;
    const opaque = pixelsWhere(image, opaqueMask(alpha));
    if (opaque.width === 0) throw new RangeError(`Expected a target image with opaque pixels but every pixel of ${path} is transparent (alpha < 128)`);
    return opaque;
  }));
  const target = targetPixels.length ? await fitStainTarget(targetPixels, common) : undefined;

  const progress = new Progress(`stain ${method}`, positionals.length, { quiet });
  const images: Record<string, unknown>[] = [];
  let backendUsed = '';
  for (let i = 0; i < positionals.length; i++) {
    const input = positionals[i]!;
    const { image: img, alpha } = await readImageWithAlpha(input);
    const r = await normalizeStain(img, {
      ...common,
      ...(target ? { target } : {}),
      ...(alpha ? { fitMask: opaqueMask(alpha) } : {}),
      singleStains: values['single-stains'],
    });
    backendUsed = r.backend;
    const output = join(values.out, `${names[i]}.png`);
    await writeImage(output, { data: r.data, n: 1, height: img.height, width: img.width }, 0, { alpha });
    const unchanged = r.unchanged[0];
    if (r.hematoxylin && r.eosin && !unchanged) {
      await writeImage(join(values.out, `${names[i]}_H.png`), { data: r.hematoxylin, n: 1, height: img.height, width: img.width }, 0, { alpha });
      await writeImage(join(values.out, `${names[i]}_E.png`), { data: r.eosin, n: 1, height: img.height, width: img.width }, 0, { alpha });
    }
    images.push({
      input,
      output,
      width: img.width,
      height: img.height,
      alpha: alpha !== null,
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
