/** Every kernel the `native` backend runs in the addon (the others are TF.js cpu's). */
import type { KernelConfig } from '@tensorflow/tfjs-core';

import { concatKernels } from './kernels/concat.js';
import { convKernels } from './kernels/conv.js';
import { denseKernels } from './kernels/dense.js';
import { elementwiseKernels } from './kernels/elementwise.js';

export function nativeKernelConfigs(): KernelConfig[] {
  return [...convKernels(), ...denseKernels(), ...elementwiseKernels(), ...concatKernels()];
}
