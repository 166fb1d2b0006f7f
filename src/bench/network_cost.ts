/**
 * What one image costs a network, counted from its layer shapes: the
 * convolutions' and dense layers' multiply-adds (forward FLOPs = 2·MACs;
 * batch norm, activations, pooling and the optimizer are left out, as
 * FLOP counts of CNNs usually do), and its trainable parameters. The train
 * suite divides these by measured time for GFLOP/s, and compares them with
 * the PyTorch peer's own count of its network (benchmarks/peers/train_torch.py)
 * to assert that both sides built the same one.
 *
 * A training step is counted as 3x the forward pass (forward, gradient with
 * respect to the input, gradient with respect to the weights).
 */
import type * as tf from '@tensorflow/tfjs';

export interface NetworkCost {
  /** 2 · (conv + dense multiply-adds) of one image's forward pass. */
  forwardFlopsPerImage: number;
  trainableParams: number;
  /** Layers counted, by class ('Conv2D': 13, 'Dense': 1). */
  counted: Record<string, number>;
  /**
   * One signature per counted layer, in layer order: 'conv 3x3/2 16→32 @48x48'
   * (kernel/stride, channels in→out, output size), 'dense 128→1'. The PyTorch
   * peer prints the same for its network, so the two can be compared layer by layer.
   */
  layers: string[];
}

/** The training step's FLOPs relative to the forward pass. */
export const TRAIN_FLOPS_PER_FORWARD = 3;

function single(shape: unknown, what: string): number[] {
  // a layer called once has one shape; a list of shapes means several inputs
  if (Array.isArray(shape) && shape.every((d) => d === null || typeof d === 'number')) return (shape as (number | null)[]).map((d) => d ?? 1);
  throw new RangeError(`Expected one ${what} shape for the layer but received ${JSON.stringify(shape)}`);
}

function inputShapeOf(layer: tf.layers.Layer): unknown {
  const input = layer.input;
  return Array.isArray(input) ? input.map((t) => t.shape) : input.shape;
}

export function networkCost(model: tf.LayersModel): NetworkCost {
  let macs = 0;
  const counted: Record<string, number> = {};
  const layers: string[] = [];
  for (const layer of model.layers) {
    const kind = layer.getClassName();
    if (kind === 'Conv2D') {
      const config = layer.getConfig() as { kernelSize: number | number[]; strides: number | number[]; filters: number };
      const [kh, kw] = Array.isArray(config.kernelSize) ? config.kernelSize : [config.kernelSize, config.kernelSize];
      const stride = Array.isArray(config.strides) ? config.strides[0] : config.strides;
      const input = single(inputShapeOf(layer), 'input');
      const output = single(layer.outputShape, 'output');
      macs += output[1]! * output[2]! * config.filters * kh! * kw! * input[3]!;
      layers.push(`conv ${kh}x${kw}/${stride} ${input[3]}→${config.filters} @${output[1]}x${output[2]}`);
    } else if (kind === 'Dense') {
      const config = layer.getConfig() as { units: number };
      const input = single(inputShapeOf(layer), 'input');
      macs += input[input.length - 1]! * config.units;
      layers.push(`dense ${input[input.length - 1]}→${config.units}`);
    } else if (kind === 'DepthwiseConv2D' || kind === 'SeparableConv2D' || kind === 'Conv2DTranspose' || kind === 'Conv3D') {
      throw new RangeError(`Expected a network of Conv2D and Dense layers for its FLOP count but layer '${layer.name}' is ${kind}`);
    } else {
      continue;
    }
    counted[kind] = (counted[kind] ?? 0) + 1;
  }
  const trainableParams = model.trainableWeights.reduce((sum, w) => sum + w.shape.reduce<number>((p, d) => p * (d ?? 1), 1), 0);
  return { forwardFlopsPerImage: 2 * macs, trainableParams, counted, layers };
}
