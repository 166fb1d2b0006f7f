/**
 * The fuzz suite's 'addon' family (test/support/fuzz_families/addon.ts): direct addon calls with hostile arguments (wrong kinds, short/detached/shared arrays, NaN, huge numbers, closed handles).
 * Bounded here (DEFAULT_CASES); `node scripts/fuzz.mjs --family addon --long` runs it for hours.
 */
import test from 'ava';

import { fuzzFamilyTest } from '../support/fuzz_test.js';

fuzzFamilyTest(test, 'addon');
