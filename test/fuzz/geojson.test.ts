/**
 * The fuzz suite's 'geojson' family (test/support/fuzz_families/geojson.ts): mutated GeoJSON annotations (hostile coordinates, deep nesting, wrong types, giant polygons), parsed and used to label tiles.
 * Bounded here (DEFAULT_CASES); `node scripts/fuzz.mjs --family geojson --long` runs it for hours.
 */
import test from 'ava';

import { fuzzFamilyTest } from '../support/fuzz_test.js';

fuzzFamilyTest(test, 'geojson');
