/** `histoflow info [--json]` */
import { formatInfo, info } from '../info.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';

export const INFO_FLAGS = defineFlags({
  json: { type: 'boolean', help: 'print the report as JSON' },
});

export const INFO_HELP = `Usage: histoflow info [--json]

What was compiled into the addon (CUDA, OpenSlide, oneDNN, SIMD)
and what this machine offers (CUDA devices, kernel backends, gpu.js modes, TF.js backends).

${optionsHelp(INFO_FLAGS)}`;

export async function infoCommand(argv: string[]): Promise<number> {
  const { values, help } = parseFlags('info', INFO_FLAGS, argv);
  if (help) {
    process.stdout.write(INFO_HELP);
    return 0;
  }
  const i = await info();
  process.stdout.write(values.json ? `${JSON.stringify(i, null, 2)}\n` : `${formatInfo(i)}\n`);
  return 0;
}
