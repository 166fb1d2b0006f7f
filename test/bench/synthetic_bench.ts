/**
 * `histoflow bench` over synthetic suites, as a process of its own (the
 * harness tests spawn it to see the exit status a user's shell would see):
 *
 *   node synthetic_bench.js SUITE... [bench flags]
 *
 * Each suite records one row and then does one thing the harness must catch:
 * an output beyond its stated tolerance, one exactly at it, a case that
 * throws, a suite that throws before recording anything.
 */
import { benchCommand } from '../../src/cli/bench.js';
import type { Suite } from '../../src/bench/index.js';
import { BEST_PEER } from '../../src/bench/harness.js';

function rowThen(name: string, then: (ctx: Parameters<Suite['run']>[0]) => void | Promise<void>): Suite {
  return {
    name,
    description: `synthetic: ${name}`,
    async run(ctx) {
      ctx.record('synthetic-case', 'cpu', 100, 'MP/s', { median_s: 0.01, first_s: 0.02, repeats: 1 });
      ctx.record('synthetic-case', 'peer:fake', 50, 'MP/s', { median_s: 0.02, first_s: 0.02, repeats: 1 });
      await then(ctx);
    },
  };
}

export const SYNTHETIC_SUITES: Suite[] = [
  // 3 levels apart where the case states 2
  rowThen('beyond-tolerance', (ctx) => void ctx.check('synthetic-case', 'cpu', 'peer:fake', 'max |Δ| (8-bit levels)', 3, 2)),
  // exactly at the bound: passes
  rowThen('at-tolerance', (ctx) => void ctx.check('synthetic-case', 'cpu', 'peer:fake', 'max |Δ| (8-bit levels)', 2, 2)),
  // a comparison that produced no number (NaN) is not a pass
  rowThen('nan-difference', (ctx) => void ctx.check('synthetic-case', 'cpu', 'peer:fake', 'mean |Δ|', Number.NaN, 1)),
  // a backend that throws, caught by its suite as every suite does
  rowThen('case-throws', async (ctx) => {
    try {
      await Promise.reject(new Error('synthetic kernel exploded'));
    } catch (e) {
      ctx.fail('synthetic-case', 'cuda', e);
    }
  }),
  // a speed target missed against the best of two peer configurations: reported, not an exit status
  rowThen('missed-target', (ctx) => {
    ctx.record('synthetic-case', 'peer:fake-fast', 80, 'MP/s', { median_s: 0.0125, first_s: 0.02, repeats: 1 });
    ctx.target('synthetic-case', 'cpu', BEST_PEER, 1.5);
  }),
  // a suite that throws outright (cannot even prepare its inputs)
  {
    name: 'suite-throws',
    description: 'synthetic: suite-throws',
    async run() {
      throw new Error('synthetic inputs missing');
    },
  },
];

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'))) {
  benchCommand(process.argv.slice(2), { suites: SYNTHETIC_SUITES }).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 2;
    },
  );
}
