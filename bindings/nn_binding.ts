/**
 * The `nn` object of histoflow.node (bindings/nn.cc): the kernels of the
 * `native` TF.js backend. Every call is synchronous (TF.js kernel functions
 * are), reads its Float32Arrays in place and writes `out` in place; lengths are
 * re-checked against the shapes given.
 */

/** [n, inH, inW, inC, outH, outW, outC, kH, kW, strideH, strideW, dilH, dilW, padTop, padLeft] */
export type NnConvShape = readonly number[];
/** [batch, batchA, batchB, m, n, k, transA (0|1), transB (0|1)] */
export type NnMatMulShape = readonly number[];
export type NnActivation = 'linear' | 'relu' | 'relu6' | 'elu' | 'sigmoid' | 'leakyrelu';
export type NnUnaryOp = 'neg' | 'square' | 'sqrt' | 'rsqrt' | 'exp' | 'log' | 'abs' | 'relu' | 'relu6' | 'elu' | 'sigmoid' | 'step';
export type NnBinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'squaredDifference' | 'maximum' | 'minimum' | 'eluGrad' | 'reluGrad';
export type NnEngine = 'onednn' | 'builtin';

export interface NnInfo {
  engine: NnEngine;
  onednn: boolean;
  threads: number;
  /** Whether 3×3 stride-1 forwards run as Winograd F(4×4, 3×3) (native/nn/conv2d.h). */
  winograd: boolean;
}

export interface NnHeapStats {
  /** Bytes in the heaps, and in separately mapped blocks. */
  arena: number;
  mmapped: number;
  /** Of the heaps' bytes: in use, free (kept for reuse), and the free top a trim would return. */
  inUse: number;
  free: number;
  releasable: number;
}

export interface NnAddon {
  info(): NnInfo;
  /** native/core/allocator.h: glibc serves and keeps blocks up to `bytes` on the heap (process-wide); false where not applied. */
  retainFreedMemory(bytes: number): boolean;
  /** native/core/allocator.h heap_stats: the C library's heap in bytes; null off glibc. */
  heapStats(): NnHeapStats | null;
  /** Throws (code HISTOFLOW_UNAVAILABLE) for 'onednn' when the addon was built without it. */
  setEngine(engine: NnEngine): void;
  setWinograd(on: boolean): void;
  conv2d(shape: NnConvShape, x: Float32Array, filter: Float32Array, bias: Float32Array | null, activation: NnActivation, alpha: number, y: Float32Array): void;
  /** y = activation(x ∗ filter + bias + addend), addend shaped like y (a residual shortcut). */
  conv2dAdd(shape: NnConvShape, x: Float32Array, filter: Float32Array, bias: Float32Array | null, addend: Float32Array, activation: NnActivation, alpha: number, y: Float32Array): void;
  conv2dBackpropInput(shape: NnConvShape, dy: Float32Array, filter: Float32Array, dx: Float32Array): void;
  conv2dBackpropFilter(shape: NnConvShape, x: Float32Array, dy: Float32Array, dfilter: Float32Array): void;
  depthwiseConv2d(shape: NnConvShape, x: Float32Array, filter: Float32Array, y: Float32Array): void;
  depthwiseConv2dBackpropInput(shape: NnConvShape, dy: Float32Array, filter: Float32Array, dx: Float32Array): void;
  depthwiseConv2dBackpropFilter(shape: NnConvShape, x: Float32Array, dy: Float32Array, dfilter: Float32Array): void;
  maxPool(shape: NnConvShape, x: Float32Array, y: Float32Array): void;
  avgPool(shape: NnConvShape, x: Float32Array, y: Float32Array): void;
  maxPoolGrad(shape: NnConvShape, dy: Float32Array, x: Float32Array, dx: Float32Array): void;
  avgPoolGrad(shape: NnConvShape, dy: Float32Array, dx: Float32Array): void;
  batchMatMul(shape: NnMatMulShape, a: Float32Array, b: Float32Array, bias: Float32Array | null, activation: NnActivation, alpha: number, out: Float32Array): void;
  batchNorm(x: Float32Array, mean: Float32Array, variance: Float32Array, offset: Float32Array | null, scale: Float32Array | null, epsilon: number, y: Float32Array): void;
  /** Training-mode batch norm of x viewed as [rows, channels] (then a ReLU when `relu`): y, and the batch mean and (biased) variance per channel. */
  batchNormTrain(x: Float32Array, channels: number, scale: Float32Array | null, offset: Float32Array | null, epsilon: number, relu: boolean, y: Float32Array, mean: Float32Array, variance: Float32Array): void;
  /** Its gradient (the moments differentiated too; through the fused ReLU when its output reluY is given): dx, and Σdy·x̂ / Σdy per channel where wanted. */
  batchNormTrainGrad(dy: Float32Array, x: Float32Array, channels: number, mean: Float32Array, variance: Float32Array, scale: Float32Array | null, epsilon: number, reluY: Float32Array | null, dx: Float32Array, dscale: Float32Array | null, doffset: Float32Array | null): void;
  unary(op: NnUnaryOp, x: Float32Array, alpha: number, y: Float32Array): void;
  binary(op: NnBinaryOp, a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[], outShape: readonly number[], out: Float32Array): void;
  tile(x: Float32Array, shape: readonly number[], reps: readonly number[], out: Float32Array): void;
  /** x viewed as [outer, reduce, inner] → out [outer, inner]. */
  reduceSum(x: Float32Array, dims: readonly [number, number, number], mean: boolean, out: Float32Array): void;
  /** inputs[i] viewed as [outer, inners[i]] → out [outer, Σ inners], rows joined in order. */
  concat(inputs: readonly Float32Array[], outer: number, inners: readonly number[], out: Float32Array): void;
  /** The box [begin, begin + size) of x (rank ≤ 8) → out. */
  slice(x: Float32Array, shape: readonly number[], begin: readonly number[], size: readonly number[], out: Float32Array): void;
}
