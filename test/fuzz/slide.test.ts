/**
 * The fuzz suite's 'slide' family (test/support/fuzz_families/slide.ts): mutated slides (truncation, bit flips, absurd IFD values, IFD and SubIFD loops), opened with every reader and read.
 * Bounded here (DEFAULT_CASES); `node scripts/fuzz.mjs --family slide --long` runs it for hours.
 */
import test from 'ava';

import { fuzzFamilyTest } from '../support/fuzz_test.js';

fuzzFamilyTest(test, 'slide');
