/**
 * The CPU kernels' default thread count (native/core/runtime.cc), read in a
 * fresh process because it is fixed when the addon loads: OMP_NUM_THREADS
 * when it names a count, else the CPUs of the process's affinity mask (what
 * `taskset` or a cpuset allows), never more threads than allowed cores. The reference is the mask the test sets, and Node's own
 * os.availableParallelism() (libuv reads the same mask).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { loadAddon } from '../../bindings/loader.js';
import { memberThreads } from '../../src/train/ensemble.js';
import { DIST, IN_CI } from '../support/helpers.js';

const exec = promisify(execFile);
const addon = loadAddon();
const LOADER = join(DIST, 'bindings', 'loader.js');
const PROBE = `import(${JSON.stringify(LOADER)}).then((m) => {
  const s = m.loadAddon();
  if (!s.ok) throw new Error(s.reason);
  const os = require('node:os');
  process.stdout.write(JSON.stringify({ threads: s.addon.getThreads(), parallelism: os.availableParallelism() }));
});`;

/** The addon's default thread count and Node's parallelism in a child with `env` (OMP_NUM_THREADS removed unless given), under `prefix` (e.g. taskset). */
async function probe(env: Record<string, string>, prefix: string[] = []): Promise<{ threads: number; parallelism: number }> {
  const base = { ...process.env };
  delete base.OMP_NUM_THREADS;
  const argv = [...prefix, process.execPath, '-e', PROBE];
  const { stdout } = await exec(argv[0]!, argv.slice(1), { env: { ...base, ...env } });
  return JSON.parse(stdout) as { threads: number; parallelism: number };
}

const TASKSET = ['/usr/bin/taskset', '/bin/taskset'].find((p) => existsSync(p));

if (!addon.ok) {
  test(IN_CI ? 'the addon loads (CI builds it)' : 'default threads need the addon', (t) => {
    if (IN_CI) t.fail(addon.reason);
    else t.log(`skipped: ${addon.reason}`);
  });
} else {
  test('default threads: the CPUs this process may run on', async (t) => {
    const plain = await probe({});
    t.is(plain.threads, plain.parallelism, 'no OMP_NUM_THREADS: one thread per allowed CPU');
    t.is(plain.parallelism, availableParallelism());
    if (!TASKSET) {
      t.log('taskset not found (util-linux): the affinity case is not checked');
      return;
    }
    const one = await probe({}, [TASKSET, '-c', '0']);
    t.is(one.parallelism, 1, 'taskset -c 0 allows one CPU');
    t.is(one.threads, 1, 'the kernels take one thread under taskset -c 0, not one per core of the machine');
  });

  test('default threads: OMP_NUM_THREADS when it names a count, ignored otherwise', async (t) => {
    const allowed = availableParallelism();
    t.is((await probe({ OMP_NUM_THREADS: '3' })).threads, 3);
    t.is((await probe({ OMP_NUM_THREADS: '1' })).threads, 1);
    t.is((await probe({ OMP_NUM_THREADS: '5,2' })).threads, 5, 'a nested list: its outer level');
    for (const bad of ['', '0', '-2', 'two', '3x', '99999']) {
      t.is((await probe({ OMP_NUM_THREADS: bad })).threads, allowed, `OMP_NUM_THREADS=${JSON.stringify(bad)} falls back to the allowed CPUs`);
    }
  });

  test("an ensemble's thread share (memberThreads) reads OMP_NUM_THREADS by the addon's rule", async (t) => {
    for (const value of ['3', '5,2', ' 2', '+4', '', '0', '-2', 'two', '3x', '4096', '99999']) {
      const { threads } = await probe({ OMP_NUM_THREADS: value });
      t.is(memberThreads(1, { OMP_NUM_THREADS: value }), threads, `OMP_NUM_THREADS=${JSON.stringify(value)}`);
    }
  });
}
