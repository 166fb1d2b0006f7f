/** `histoflow info [--json]` */
import { parseArgs } from 'node:util';

import { formatInfo, info } from '../info.js';

export async function infoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help) {
    process.stdout.write('Usage: histoflow info [--json]\n\nWhat was compiled into the addon (CUDA, OpenSlide, oneDNN, SIMD)\nand what this machine offers (CUDA devices, kernel backends, gpu.js modes, TF.js backends).\n');
    return 0;
  }
  const i = await info();
  process.stdout.write(values.json ? `${JSON.stringify(i, null, 2)}\n` : `${formatInfo(i)}\n`);
  return 0;
}
