/**
 * The one backend chooser (src/backend_choice.ts) on a made-up family, so
 * each rule is checked on its own: `auto`'s order and reasons, pass-over,
 * explicit choices, UnavailableError's fields, and errors that are bugs
 * rather than unavailability.
 */
import test from 'ava';

import { backendStatus, chooseBackend, memoize, type BackendFamily } from '../../src/backend_choice.js';
import { UnavailableError } from '../../src/errors.js';

type Name = 'fast' | 'slow' | 'plain';

function family(unavailable: Partial<Record<Name, string>>, passOver: Partial<Record<Name, string>> = {}): BackendFamily<Name, string> {
  return {
    family: 'demo',
    order: ['fast', 'slow', 'plain'],
    async create(name) {
      if (unavailable[name]) throw new UnavailableError(name, unavailable[name]!);
      return `${name} runner`;
    },
    passOver: (name) => passOver[name],
  };
}

test('auto takes the first backend that works and names each one it passed over, with why', async (t) => {
  const chosen = await chooseBackend(family({ fast: 'no device' }, { slow: 'slower than plain here' }), 'auto');
  t.is(chosen.name, 'plain');
  t.is(chosen.backend, 'plain runner');
  t.deepEqual(chosen.skipped, [{ name: 'fast', reason: 'no device' }, { name: 'slow', reason: 'slower than plain here' }]);
  t.is(chosen.reason, 'plain (auto; passed over: fast: no device; slow: slower than plain here)');
});

test('auto with nothing in its way takes the first and says so plainly', async (t) => {
  const chosen = await chooseBackend(family({}), undefined);
  t.deepEqual([chosen.name, chosen.reason, chosen.skipped], ['fast', 'fast (auto)', []]);
});

test("an explicit choice runs even where auto would pass it over, and an unavailable one throws the family's UnavailableError", async (t) => {
  t.is((await chooseBackend(family({}, { fast: 'passed over' }), 'fast')).reason, 'fast (requested)');
  const err = await t.throwsAsync(chooseBackend(family({ slow: 'not built' }), 'slow'), { instanceOf: UnavailableError });
  t.is(err!.code, 'HISTOFLOW_UNAVAILABLE');
  t.is(err!.backend, 'slow');
  t.is(err!.reason, 'not built');
  t.is(err!.family, 'demo');
  t.is(err!.message, 'the slow backend is unavailable for demo: not built');
});

test('when no backend works, auto throws UnavailableError listing every reason', async (t) => {
  const err = await t.throwsAsync(chooseBackend(family({ fast: 'a', slow: 'b', plain: 'c' }), 'auto'), { instanceOf: UnavailableError });
  t.is(err!.reason, 'no backend works here: fast: a; slow: b; plain: c');
});

test('a name outside the family is a RangeError naming the parameter; a non-string a TypeError', async (t) => {
  await t.throwsAsync(chooseBackend(family({}), 'tpu', 'options.backend'), { instanceOf: RangeError, message: /for options\.backend/ });
  await t.throwsAsync(chooseBackend(family({}), 3), { instanceOf: TypeError, message: /for backend/ });
});

test('an error that is not UnavailableError is a bug: auto does not swallow it', async (t) => {
  const f: BackendFamily<Name, string> = { order: ['fast', 'plain'], create: async (name) => { if (name === 'fast') throw new TypeError('bug'); return name; } };
  await t.throwsAsync(chooseBackend(f, 'auto'), { instanceOf: TypeError, message: 'bug' });
});

test('backendStatus lists every backend in order, with what runs or why not', async (t) => {
  const status = await backendStatus(family({ slow: 'not built' }), (name, b) => `${b} (${name})`);
  t.deepEqual(status, [
    { name: 'fast', available: true, detail: 'fast runner (fast)' },
    { name: 'slow', available: false, detail: 'not built' },
    { name: 'plain', available: true, detail: 'plain runner (plain)' },
  ]);
});

test('memoize makes each backend once, and tries again after a failure', async (t) => {
  let calls = 0;
  let fail = true;
  const create = memoize(async (name: Name) => {
    calls++;
    if (fail) throw new UnavailableError(name, 'not yet');
    return { name };
  });
  await t.throwsAsync(create('fast'), { instanceOf: UnavailableError });
  fail = false;
  const a = await create('fast');
  const b = await create('fast');
  t.is(a, b);
  t.is(calls, 2);
});
