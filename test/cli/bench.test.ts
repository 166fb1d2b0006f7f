/**
 * The benchmark's output contract (not its speed: speed is shown by
 * `npm run bench`, never asserted by tests).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

import test from 'ava';

import { CLI } from '../support/helpers.js';

const exec = promisify(execFile);

test('histoflow bench stain --quick --json prints one object with env and a result per case and backend', async (t) => {
  const { stdout, stderr } = await exec(process.execPath, [CLI, 'bench', 'stain', '--quick', '--json'], { maxBuffer: 64 << 20 });
  t.is(stderr, '', 'quiet with --json');
  const report = JSON.parse(stdout) as { env: Record<string, unknown>; results: Record<string, unknown>[] };
  t.truthy(report.env);
  t.true(report.results.length > 0);
  for (const r of report.results) {
    t.is(r.suite, 'stain');
    t.is(typeof r.case, 'string');
    t.is(typeof r.backend, 'string');
    t.true(typeof r.value === 'number' && (r.value as number) > 0, JSON.stringify(r));
    t.is(r.unit, 'MP/s');
  }
  const cases = new Set(report.results.filter((r) => r.backend === 'cpu').map((r) => r.case));
  for (const c of ['macenko-96', 'vahadane-96', 'reinhard-96', 'macenko-1024']) t.true(cases.has(c), c);
  t.true(report.results.some((r) => r.backend === 'js'), 'the plain TypeScript reference is measured');
});

test('an unknown benchmark suite is an error naming it and the available ones', async (t) => {
  const err = await t.throwsAsync(() => exec(process.execPath, [CLI, 'bench', 'nonsense']));
  t.regex((err as unknown as { stderr: string }).stderr, /nonsense.*|stain/);
});
