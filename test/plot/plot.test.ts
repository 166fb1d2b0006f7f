/**
 * src/plot/chart.ts: tick values by formula, and a rendered chart puts a
 * series' pixels where the axis mapping says (a diagonal line from the
 * bottom-left to the top-right corner of the plot area).
 */
import test from 'ava';
import sharp from 'sharp';

import { lineChartPng, niceTicks } from '../../src/plot/chart.js';

test('niceTicks gives round steps covering the range', (t) => {
  t.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  t.deepEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
  t.deepEqual(niceTicks(0.13, 0.71), [0.2, 0.4, 0.6]);
  t.deepEqual(niceTicks(0.13, 0.71, 10), [0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
  t.deepEqual(niceTicks(3, 3), [3]);
});

test('a series is drawn where the axes map it', async (t) => {
  const png = await lineChartPng({
    width: 400, height: 300, xRange: [0, 1], yRange: [0, 1],
    series: [{ name: 'roc', x: [0, 1], y: [0, 1], color: '#ff0000' }],
  });
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  t.is(info.width, 400);
  t.is(info.height, 300);
  // Plot area: left 64, right 16, top 16 + 18 (legend row), bottom 48 → (64..384) x (34..252).
  const red = (x: number, y: number) => {
    for (let dy = -2; dy <= 2; dy++) {
      const i = ((y + dy) * info.width + x) * 3;
      if (data[i]! > 200 && data[i + 1]! < 80 && data[i + 2]! < 80) return true;
    }
    return false;
  };
  const at = (f: number) => [Math.round(64 + f * 320), Math.round(252 - f * 218)] as const;
  for (const f of [0.2, 0.5, 0.8]) t.true(red(...at(f)), `red at the diagonal, fraction ${f}`);
  t.false(red(Math.round(64 + 0.8 * 320), Math.round(252 - 0.2 * 218)), 'no red off the line');
});
