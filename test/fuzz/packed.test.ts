/**
 * The fuzz suite's 'packed' family (test/support/fuzz_families/packed.ts): mutated .hfpack files (lying headers, broken metadata, truncation) read mapped and in memory, and resumed partial files.
 * Bounded here (DEFAULT_CASES); `node scripts/fuzz.mjs --family packed --long` runs it for hours.
 */
import test from 'ava';

import { fuzzFamilyTest } from '../support/fuzz_test.js';

fuzzFamilyTest(test, 'packed');
