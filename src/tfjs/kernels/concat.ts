/**
 * Concat, Slice and SplitV (concat's gradient) in the addon: the skip
 * connections of a UNet join encoder and decoder features along channels, and
 * their gradient splits them again. TF.js computes the geometry (its own
 * parseAxisParam / computeOutShape / parseSliceParams / prepareSplitSize, so
 * negative axes, -1 sizes and their errors are TF.js's); the addon copies
 * contiguous runs. A slice that is one contiguous run of its input stays
 * TF.js cpu's view of it (no copy at all; native_storage.ts then keeps the
 * input out of its pool); every other output is a fresh array.
 */
import { backend_util, slice_util, util, type TensorInfo } from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';

import { allFloat32, allocate, f32, nativeKernel, nn, output } from './common.js';

/** The addon's slices: rank 1 to 8. */
const MAX_RANK = 8;

function slice(backend: MathBackendCPU, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const out = allocate(backend, util.sizeFromShape(size));
  nn().slice(f32(backend, x), x.shape, begin, size, out);
  return output(backend, size, out);
}

export const concatKernels = () => [
  nativeKernel('Concat', ({ inputs, backend, attrs }) => {
    const tensors = Object.values(inputs) as TensorInfo[];
    if (tensors.length === 0 || !tensors.every((t) => t.dtype === 'float32')) return null;
    const axis = util.parseAxisParam(attrs.axis as number | number[], tensors[0]!.shape)[0]!;
    const shapes = tensors.map((t) => t.shape);
    backend_util.assertParamsConsistent(shapes, axis);
    const shape = backend_util.computeOutShape(shapes, axis);
    // Empty inputs add nothing (TF.js cpu drops them too); an empty output is cpu's.
    const parts = tensors.filter((t) => util.sizeFromShape(t.shape) > 0);
    if (util.sizeFromShape(shape) === 0 || parts.length === 0) return null;
    const outer = util.sizeFromShape(shape.slice(0, axis));
    const out = allocate(backend, util.sizeFromShape(shape));
    nn().concat(parts.map((t) => f32(backend, t)), outer, parts.map((t) => util.sizeFromShape(t.shape.slice(axis))), out);
    return output(backend, shape, out);
  }),
  nativeKernel('Slice', ({ inputs: { x }, backend, attrs }) => {
    if (!x || !allFloat32(x) || x.shape.length > MAX_RANK) return null;
    const [begin, size] = slice_util.parseSliceParams(x, attrs.begin as number | number[], attrs.size as number | number[] | undefined);
    slice_util.assertParamsValid(x, begin, size);
    if (util.sizeFromShape(size) === 0 || slice_util.isSliceContinous(x.shape, begin, size)) return null;
    return slice(backend, x, begin, size);
  }),
  nativeKernel('SplitV', ({ inputs: { x }, backend, attrs }) => {
    if (!x || !allFloat32(x) || x.shape.length > MAX_RANK) return null;
    const axis = util.parseAxisParam(attrs.axis as number, x.shape)[0]!;
    // Along the outermost non-unit axis every part is a contiguous run: cpu's views.
    if (util.sizeFromShape(x.shape.slice(0, axis)) === 1) return null;
    const sizes = backend_util.prepareSplitSize(x as Parameters<typeof backend_util.prepareSplitSize>[0], attrs.numOrSizeSplits as number | number[], axis);
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((s) => {
      const size = [...x.shape];
      size[axis] = s;
      // An empty part is an empty tensor, as on cpu.
      const part = s === 0 ? output(backend, size, new Float32Array(0)) : slice(backend, x, [...begin], size);
      begin[axis]! += s;
      return part;
    });
  }),
];
