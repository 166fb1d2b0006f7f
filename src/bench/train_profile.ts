/**
 * Per-kernel time of one training step of the baseline CNN on a TF.js
 * backend (tf.profile's kernelTimeMs, summed by kernel name). This is how the
 * native backend's kernel list was chosen: the kernels that dominate a step.
 *
 *   node dist/src/bench/train_profile.js [backend=tfjs-cpu] [inputSize=48] [batch=16]
 */
import * as tf from '@tensorflow/tfjs';

import { baselineCnn } from '../models/baseline_cnn.js';
import { useTrainingBackend } from '../tfjs/backend.js';

async function main(): Promise<void> {
  const [backend = 'tfjs-cpu', sizeArg = '48', batchArg = '16'] = process.argv.slice(2);
  const size = Number(sizeArg);
  const batch = Number(batchArg);
  await useTrainingBackend(backend as 'tfjs-cpu');
  const model = baselineCnn({ inputSize: size });
  const x = tf.randomUniform([batch, size, size, 3], -1, 1, 'float32', 1);
  const y = tf.cast(tf.greater(tf.randomUniform([batch, 1], 0, 1, 'float32', 2), 0.5), 'float32');
  await model.trainOnBatch(x, y); // warm-up: optimizer slots, first-use costs
  const t0 = performance.now();
  const profile = await tf.profile(async () => {
    await model.trainOnBatch(x, y);
  });
  const wall = performance.now() - t0;
  const byName = new Map<string, { ms: number; calls: number }>();
  for (const k of profile.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls += 1;
    byName.set(k.name, e);
  }
  const total = [...byName.values()].reduce((a, e) => a + e.ms, 0);
  const rows = [...byName.entries()].sort((a, b) => b[1].ms - a[1].ms);
  console.log(`backend ${backend}, input ${size}x${size}x3, batch ${batch}: step ${wall.toFixed(0)} ms wall, ${total.toFixed(0)} ms in kernels`);
  console.log('| kernel | calls | ms | % |\n| --- | ---: | ---: | ---: |');
  for (const [name, e] of rows) console.log(`| ${name} | ${e.calls} | ${e.ms.toFixed(1)} | ${((100 * e.ms) / total).toFixed(1)} |`);
}

await main();
