/**
 * The fuzz suite's 'image' family (test/support/fuzz_families/image.ts): mutated PNG/JPEG/TIFF patches, decoded, stain-normalized and given to the stain and augment commands.
 * Bounded here (DEFAULT_CASES); `node scripts/fuzz.mjs --family image --long` runs it for hours.
 */
import test from 'ava';

import { fuzzFamilyTest } from '../support/fuzz_test.js';

fuzzFamilyTest(test, 'image');
