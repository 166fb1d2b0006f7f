/**
 * Fuzz family 'selftest': the runner's own check. Case i ends the (i mod 6)-th
 * way: a correct result, a clear error, an internal error, a signal, a hang,
 * a file written beside out/. test/fuzz/runner.test.ts expects each counted as such.
 */
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { apiVerdict, type CaseContext, type FuzzCase, type FuzzFamily } from '../fuzz_verdict.js';

const ENDINGS = ['ok', 'error', 'unclear', 'crash', 'hang', 'destroy'] as const;

async function make({ dir }: CaseContext): Promise<FuzzCase> {
  const index = Number(/case-(\d+)$/.exec(dir)?.[1] ?? 0);
  const ending = ENDINGS[index % ENDINGS.length]!;
  return {
    what: `ends as ${ending}`,
    run: () => apiVerdict(async () => {
      if (ending === 'error') throw new RangeError('Expected a clear error for selftest but received this one');
      if (ending === 'unclear') return (undefined as unknown as { x: { y: number } }).x.y;
      if (ending === 'crash') process.kill(process.pid, 'SIGSEGV');
      if (ending === 'hang') await new Promise(() => setInterval(() => undefined, 1000));
      if (ending === 'destroy') {
        await appendFile(join(dir, 'sentinel.txt'), 'overwritten\n');
        await writeFile(join(dir, 'beside-out.txt'), 'x');
      }
      await writeFile(join(dir, 'out', 'result.txt'), 'inside out/ is allowed');
      return undefined;
    }),
  };
}

export const selftestFamily: FuzzFamily = { prepare: async () => undefined, make };
