/**
 * The fuzz suite's 'model' family (test/support/fuzz_families/model.ts): mutated model.json files (shapes, dtypes, weight paths, layer configs, missing fields) and weights, loaded and run.
 * Bounded here (DEFAULT_CASES); `node scripts/fuzz.mjs --family model --long` runs it for hours.
 */
import test from 'ava';

import { fuzzFamilyTest } from '../support/fuzz_test.js';

fuzzFamilyTest(test, 'model');
