/**
 * The fuzz suite's 'dataset' family (test/support/fuzz_families/dataset.ts): Kaggle-layout folders with mutated
 * train_labels.csv and patches, listed, packed and inspected. Bounded here (DEFAULT_CASES);
 * `node scripts/fuzz.mjs --family dataset --long` runs it for hours.
 */
import test from 'ava';

import { fuzzFamilyTest } from '../support/fuzz_test.js';

fuzzFamilyTest(test, 'dataset');
