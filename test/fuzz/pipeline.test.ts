/**
 * The fuzz suite's 'pipeline' family (test/support/fuzz_families/pipeline.ts): mutated augmentation pipelines (wrong types, absurd values, unknown ops), validated and run, also by the augment command.
 * Bounded here (DEFAULT_CASES); `node scripts/fuzz.mjs --family pipeline --long` runs it for hours.
 */
import test from 'ava';

import { fuzzFamilyTest } from '../support/fuzz_test.js';

fuzzFamilyTest(test, 'pipeline');
