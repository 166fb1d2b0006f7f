/**
 * Batch norm and ReLU in training as single kernels on the `native` backend.
 *
 * A Keras BatchNormalization layer in training runs tf.moments and then
 * batchNorm; TF.js differentiates that chain op by op: on the baseline CNN
 * (96², batch 64) ~20 element-wise kernels and reductions per layer over
 * tensors of up to 75 MB, about 40 % of a training step (`node
 * dist/src/bench/train_profile.js native 96 64`: Multiply, Step, Add, Sum,
 * Sub, RealDiv, Mean, Square, Tile). PyTorch and oneDNN run it as one forward
 * and one backward primitive. Here too, when the `native` backend is active:
 *
 * - `HistoflowBatchNormTrain` (x, scale, offset → y, mean, variance): the
 *   layer's training branch in one addon call (native/nn/batch_norm.h), with
 *   the moving averages updated exactly as tfjs-layers does;
 * - its gradient, `HistoflowBatchNormTrainGrad`, in two passes: dx with the
 *   batch moments differentiated, dscale, doffset;
 * - a ReLU layer that is a batch norm's only reader runs inside that
 *   kernel (`HistoflowBatchNormReluTrain`), and its gradient inside the
 *   batch norm's: the batch norm's own output is never written, a third of
 *   a conv → BN → ReLU block's bytes saved for the backward pass;
 * - any other ReLU's gradient dy·step(y) from its output y as one kernel
 *   (TF.js runs Step, then Multiply, on the input x: the same values for
 *   every x but NaN), so the batch norm's output is freed after the forward;
 * - a Conv2D layer without bias or activation runs tf.conv2d instead of
 *   tf.fused.conv2d. The same kernel forward, but the fused op's custom
 *   gradient computes the input's gradient even where nothing needs it (the
 *   first layer: the image), where Conv2D's registered gradient is lazy. On
 *   the baseline CNN that is one Conv2DBackpropInput of 36 ms per step saved,
 *   and every other gradient bit-identical.
 *
 * Other backends, inference, layers without both scale and centre, and
 * normalization along any axis but the last keep tfjs-layers' own code. The
 * fused gradient equals TF.js's to float rounding (test/tfjs/fused_training.test.ts);
 * `HISTOFLOW_NN_FUSED_BN=0` opts out.
 */
import * as tf from '@tensorflow/tfjs';
import { util, type KernelConfig, type TensorInfo } from '@tensorflow/tfjs-core';

import { allocate, f32, nn, NATIVE_BACKEND, output, type KernelArgs } from './kernels/common.js';

const BN_TRAIN = 'HistoflowBatchNormTrain';
/** The same with the ReLU layer that reads it folded in (its output saved for the gradient). */
const BN_RELU_TRAIN = 'HistoflowBatchNormReluTrain';
const BN_TRAIN_GRAD = 'HistoflowBatchNormTrainGrad';
const RELU_GRAD = 'HistoflowReluGrad';

function channelsOf(name: string, x: TensorInfo): number {
  const c = x.shape[x.shape.length - 1];
  if (x.dtype !== 'float32' || x.shape.length < 1 || c === undefined || c < 1 || util.sizeFromShape(x.shape) < 1) {
    throw new Error(`${name}: x must be a non-empty float32 tensor with channels last (got ${x.dtype} [${x.shape}])`);
  }
  return c;
}

function perChannel(name: string, param: string, t: TensorInfo | undefined, c: number): void {
  if (t && (t.dtype !== 'float32' || util.sizeFromShape(t.shape) !== c)) {
    throw new Error(`${name}: ${param} must be float32 with one value per channel (${c}), got ${t.dtype} [${t.shape}]`);
  }
}

export function fusedTrainingKernels(): KernelConfig[] {
  const bnTrain = (relu: boolean) => ({ inputs: { x, scale, offset }, backend, attrs }: KernelArgs): TensorInfo[] => {
    const name = relu ? BN_RELU_TRAIN : BN_TRAIN;
    const c = channelsOf(name, x!);
    perChannel(name, 'scale', scale, c);
    perChannel(name, 'offset', offset, c);
    const y = allocate(backend, util.sizeFromShape(x!.shape));
    const mean = new Float32Array(c), variance = new Float32Array(c);
    nn().batchNormTrain(f32(backend, x!), c, scale ? f32(backend, scale) : null, offset ? f32(backend, offset) : null,
      attrs.epsilon as number, relu, y, mean, variance);
    return [output(backend, x!.shape, y), output(backend, [c], mean), output(backend, [c], variance)];
  };
  const bnTrainGrad = ({ inputs: { dy, x, mean, variance, scale, reluY }, backend, attrs }: KernelArgs): TensorInfo[] => {
    const c = channelsOf(BN_TRAIN_GRAD, x!);
    if (!dy || !util.arraysEqual(dy.shape, x!.shape) || dy.dtype !== 'float32') {
      throw new Error(`${BN_TRAIN_GRAD}: dy must be float32 shaped like x [${x!.shape}]`);
    }
    perChannel(BN_TRAIN_GRAD, 'mean', mean, c);
    perChannel(BN_TRAIN_GRAD, 'variance', variance, c);
    perChannel(BN_TRAIN_GRAD, 'scale', scale, c);
    if (reluY && (reluY.dtype !== 'float32' || !util.arraysEqual(reluY.shape, x!.shape))) {
      throw new Error(`${BN_TRAIN_GRAD}: reluY must be float32 shaped like x [${x!.shape}]`);
    }
    const dx = allocate(backend, util.sizeFromShape(x!.shape));
    const dscale = new Float32Array(c), doffset = new Float32Array(c);
    nn().batchNormTrainGrad(f32(backend, dy), f32(backend, x!), c, f32(backend, mean!), f32(backend, variance!),
      scale ? f32(backend, scale) : null, attrs.epsilon as number, reluY ? f32(backend, reluY) : null, dx, dscale, doffset);
    return [output(backend, x!.shape, dx), output(backend, [c], dscale), output(backend, [c], doffset)];
  };
  const reluGrad = ({ inputs: { dy, x }, backend }: KernelArgs): TensorInfo => {
    if (!dy || !x || dy.dtype !== 'float32' || x.dtype !== 'float32' || !util.arraysEqual(dy.shape, x.shape)) {
      throw new Error(`${RELU_GRAD}: dy and x must be float32 tensors of one shape`);
    }
    const out = allocate(backend, util.sizeFromShape(x.shape));
    nn().binary('reluGrad', f32(backend, dy), dy.shape, f32(backend, x), x.shape, x.shape, out);
    return output(backend, x.shape, out);
  };
  const config = (kernelName: string, f: (args: KernelArgs) => TensorInfo | TensorInfo[]): KernelConfig =>
    ({ kernelName, backendName: NATIVE_BACKEND, kernelFunc: f as unknown as KernelConfig['kernelFunc'] });
  return [config(BN_TRAIN, bnTrain(false)), config(BN_RELU_TRAIN, bnTrain(true)), config(BN_TRAIN_GRAD, bnTrainGrad), config(RELU_GRAD, reluGrad)];
}

let enabled = process.env.HISTOFLOW_NN_FUSED_BN !== '0';
let installed = false;

/** Whether the fused kernels run now: installed, switched on, and `native` the active backend. */
function active(): boolean {
  return installed && enabled && tf.getBackend() === NATIVE_BACKEND;
}

function isZero(t: tf.Tensor): boolean {
  return (t.dataSync() as Float32Array).every((v) => v === 0);
}

/** The gradients of the two kernels that have one (the kernels themselves are registered with the backend's). */
function registerGradients(): void {
  const bnGradient = (relu: boolean) => ({
    kernelName: relu ? BN_RELU_TRAIN : BN_TRAIN,
    inputsToSave: ['x', 'scale'],
    outputsToSave: [relu, true, true],
    gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs?: unknown) => {
      const [dy, dmean, dvariance] = dys as tf.Tensor[];
      const [x, scale, ...outs] = saved;
      const [reluY, mean, variance] = relu ? outs : [undefined, ...outs];
      const epsilon = (attrs as { epsilon: number }).epsilon;
      // Run here, not in the closures: a backward pass calls each closure inside
      // its own tidy, which would dispose the other two results.
      let [dx, dscale, doffset] = tf.engine().runKernel(BN_TRAIN_GRAD,
        { dy: dy!, x: x!, mean: mean!, variance: variance!, scale: scale!, ...(reluY ? { reluY } : {}) }, { epsilon }) as tf.Tensor[];
      // The layer reads mean and variance only for its moving averages (no
      // gradient flows back through them); anything else that does is honoured
      // (for the batch norm alone: a fused ReLU sits after the moments).
      if (!isZero(dmean!) || !isZero(dvariance!)) {
        const n = x!.size / x!.shape[x!.shape.length - 1]!;
        const grad = dx!;
        dx = tf.tidy(() => tf.add(grad, tf.add(tf.div(dmean!, n), tf.mul(tf.sub(x!, mean!), tf.mul(dvariance!, 2 / n)))));
        grad.dispose();
      }
      return { x: () => dx!, scale: () => dscale!, offset: () => doffset! };
    },
  });
  tf.registerGradient(bnGradient(false));
  tf.registerGradient(bnGradient(true));
  // The ReLU gradient is registered for every backend (TF.js has one table).
  // It reads the ReLU's output instead of its input (step(relu(x)) = step(x)
  // for every x but NaN): the output is kept anyway by whatever reads it next
  // (a convolution, a pooling), so the batch norm's output no longer has to
  // outlive the forward pass — a third of a conv → BN → ReLU block's saved
  // bytes. On `native` one kernel; elsewhere TF.js's own ops.
  tf.registerGradient({
    kernelName: 'Relu',
    outputsToSave: [true],
    gradFunc: (dy, saved) => {
      const [y] = saved as tf.Tensor[];
      const d = dy as tf.Tensor;
      return {
        x: () => active() && d.dtype === 'float32' && y!.dtype === 'float32'
          ? (tf.engine().runKernel(RELU_GRAD, { dy: d, x: y! }) as tf.Tensor)
          : tf.mul(d, tf.cast(tf.step(y!), 'float32')),
      };
    },
  });
}

interface LayerVariableLike { read(): tf.Tensor; write(v: tf.Tensor): void }

interface LayerLike {
  getClassName(): string;
  inboundNodes: unknown[];
  outboundNodes: { outboundLayer: LayerLike }[];
  maxValue?: number | null;
}

interface BatchNormalizationLike extends LayerLike {
  axis: number;
  momentum: number;
  epsilon: number;
  gamma: LayerVariableLike | null;
  beta: LayerVariableLike | null;
  movingMean: LayerVariableLike;
  movingVariance: LayerVariableLike;
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
}

/** Routes tfjs-layers' BatchNormalization.call in training through the fused kernel while `native` is active. */
function patchBatchNormalization(): void {
  const proto = Object.getPrototypeOf(tf.layers.batchNormalization({})) as BatchNormalizationLike;
  const stock = proto.call;
  proto.call = function call(this: BatchNormalizationLike, inputs, kwargs) {
    const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
    const axis = input ? (this.axis >= 0 ? this.axis : this.axis + input.rank) : -1;
    if (!active() || kwargs?.training !== true || !input || input.dtype !== 'float32' || input.size === 0 ||
      axis !== input.rank - 1 || !this.gamma || !this.beta) {
      return stock.call(this, inputs, kwargs);
    }
    // A ReLU layer that is this layer's only reader, and reads nothing else, runs inside its kernel.
    const next = this.outboundNodes.length === 1 ? this.outboundNodes[0]!.outboundLayer : null;
    const relu = next !== null && next.getClassName() === 'ReLU' && next.maxValue == null && next.inboundNodes.length === 1;
    const y = tf.tidy(() => {
      const [y, mean, variance] = tf.engine().runKernel(relu ? BN_RELU_TRAIN : BN_TRAIN,
        { x: input, scale: this.gamma!.read(), offset: this.beta!.read() }, { epsilon: this.epsilon }) as tf.Tensor[];
      // tfjs-layers' doMovingAverage, op for op.
      const average = (variable: LayerVariableLike, value: tf.Tensor) => tf.tidy(() => {
        const decay = 1 - this.momentum;
        const orig = variable.read();
        variable.write(tf.sub(orig, tf.mul(tf.sub(orig, value), decay)));
      });
      average(this.movingMean, mean!);
      average(this.movingVariance, variance!);
      return y!;
    });
    if (relu) reluApplied.add(y);
    return y;
  };
}

/** Outputs of batch norms that ran their ReLU layer's ReLU already: that layer passes them on. */
const reluApplied = new WeakSet<tf.Tensor>();

/** The ReLU layer after a fused batch norm returns its input (tfjs-layers' apply hands on a clone). */
function patchReLU(): void {
  const proto = Object.getPrototypeOf(tf.layers.reLU()) as { call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] };
  const stock = proto.call;
  proto.call = function call(inputs, kwargs) {
    const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
    if (input && reluApplied.has(input)) return input;
    return stock.call(this, inputs, kwargs);
  };
}

interface ConvLike {
  rank: number;
  bias: LayerVariableLike | null;
  kernel: LayerVariableLike;
  activation: { getClassName(): string } | null;
  dataFormat: string;
  padding: string;
  strides: number[];
  dilationRate: number | number[];
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
}

/** Routes tfjs-layers' Conv2D.call without bias or activation through tf.conv2d while `native` is active. */
function patchConv2D(): void {
  const proto = Object.getPrototypeOf(tf.layers.conv2d({ filters: 1, kernelSize: 1 })) as ConvLike;
  const stock = proto.call;
  proto.call = function call(this: ConvLike, inputs, kwargs) {
    const input = Array.isArray(inputs) ? (inputs.length === 1 ? inputs[0] : undefined) : inputs;
    if (!active() || !input || input.rank !== 4 || input.dtype !== 'float32' || this.rank !== 2 || this.bias ||
      (this.activation && this.activation.getClassName() !== 'linear') || this.dataFormat !== 'channelsLast' ||
      (this.padding !== 'same' && this.padding !== 'valid')) {
      return stock.call(this, inputs, kwargs);
    }
    return tf.conv2d(input as tf.Tensor4D, this.kernel.read() as tf.Tensor4D, this.strides as [number, number], this.padding,
      'NHWC', this.dilationRate as [number, number]);
  };
}

/** Installs the gradients and the layer's training branch once (the kernels come with the backend's). */
export function installFusedTraining(): void {
  if (installed) return;
  registerGradients();
  patchBatchNormalization();
  patchReLU();
  patchConv2D();
  installed = true;
}

/** Turns the fused kernels off (TF.js's own composition) or back on: for comparisons and tests. */
export function setFusedTraining(on: boolean): void {
  enabled = on;
}

/** Whether the fused kernels are installed and on (they run when `native` is also the active backend). */
export function fusedTrainingEnabled(): boolean {
  return installed && enabled;
}
