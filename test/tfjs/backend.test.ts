/** Choosing the TF.js training backend: tensorflow → native → tfjs-cpu, overridable, every skip explained. */
import test from 'ava';
import * as tf from '@tensorflow/tfjs';

import { UnavailableError } from '../../src/errors.js';
import { checkTrainingBackend, selectTrainingBackend, trainingBackendStatus, useTrainingBackend } from '../../src/tfjs/backend.js';
import { nativeKernelNames } from '../../src/tfjs/native_backend.js';
import { histoflow } from '../support/helpers.js';
import { nativeAvailable } from '../support/tfjs_support.js';

test.serial('auto takes the first available backend and says why it passed over the ones before', async (t) => {
  const status = await trainingBackendStatus();
  t.deepEqual(status.map((s) => s.name), ['tensorflow', 'native', 'tfjs-cpu']);
  const first = status.find((s) => s.available)!;
  const chosen = await selectTrainingBackend('auto');
  t.is(chosen.backend, first.name);
  t.deepEqual(chosen.skipped.map((s) => s.name), status.slice(0, status.indexOf(first)).map((s) => s.name));
  for (const s of chosen.skipped) t.true(s.reason.length > 0);
});

const tensorflowInstalled = (await trainingBackendStatus())[0]!.available;
(tensorflowInstalled ? test.skip : test.serial)(`an unavailable explicit choice is an error that gives the reason${tensorflowInstalled ? ' (skipped: tfjs-node is installed here)' : ''}`, async (t) => {
  const err = await t.throwsAsync(selectTrainingBackend('tensorflow'));
  t.true(err instanceof UnavailableError);
  t.regex(err!.message, /tensorflow backend is unavailable for training: .*tfjs-node/);
});

test.serial('an unknown backend name is a RangeError naming the parameter', async (t) => {
  await t.throwsAsync(selectTrainingBackend('gpu' as 'tfjs-cpu'), { instanceOf: RangeError, message: /backend/ });
});

test.serial("TF.js's own name 'cpu' is refused with the name to use, in training and in inference", async (t) => {
  await t.throwsAsync(selectTrainingBackend('cpu' as 'tfjs-cpu'), { instanceOf: RangeError, message: /for backend.*'tfjs-cpu'|'tfjs-cpu'.*for backend/ });
  t.throws(() => checkTrainingBackend('options.backend', 'cpu'), { instanceOf: RangeError, message: /for options\.backend/ });
  t.is(checkTrainingBackend('backend', 'tfjs-cpu'), 'tfjs-cpu');
  for (const command of ['train', 'predict', 'evaluate', 'predict-slide']) {
    const r = await histoflow(command, '--backend', 'cpu');
    t.is(r.code, 1, command);
    t.regex(r.stderr, /for --backend .*'cpu' is now 'tfjs-cpu'/, command);
  }
});

(nativeAvailable ? test.serial : test.skip)('useTrainingBackend("native") makes native TF.js\'s backend, with the hot kernels in the addon', async (t) => {
  const chosen = await useTrainingBackend('native');
  t.is(chosen.backend, 'native');
  t.is(tf.getBackend(), 'native');
  const names = nativeKernelNames();
  for (const k of ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'DepthwiseConv2dNative',
    'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter', 'MaxPool', 'MaxPoolGrad', 'AvgPool',
    'AvgPoolGrad', 'BatchMatMul', '_FusedMatMul', 'FusedBatchNorm', 'Relu', 'Relu6', 'Elu', 'EluGrad', 'Sigmoid', 'Step',
    'Multiply', 'Add', 'Sub', 'RealDiv', 'Sum', 'Mean', 'Tile', 'Square', 'Sqrt']) {
    t.true(names.includes(k), `${k} is not replaced`);
    t.truthy(tf.getKernel(k, 'native'), `${k} is not registered for native`);
  }
  // every cpu kernel exists on native too
  const missing = tf.getKernelsForBackend('cpu').filter((k) => !tf.getKernel(k.kernelName, 'native')).map((k) => k.kernelName);
  t.deepEqual(missing, []);
  await tf.setBackend('cpu');
});
