/**
 * An inference copy of a layers model with each batch norm folded into the
 * convolution before it, and a ReLU after that batch norm made the
 * convolution's activation — what torch.jit.freeze, ONNX Runtime and
 * TensorRT do before inference. In inference a batch norm is an affine map
 * per channel, y = γ·(z − μ)/√(σ² + ε) + β, so with a = γ/√(σ² + ε) a
 * convolution z = x∗w + b followed by it equals x∗w' + b' with
 *   w'[…, o] = w[…, o]·a[o],   b'[o] = β[o] + (b[o] − μ[o])·a[o]
 * (computed in double). Each conv → batch norm → ReLU chain becomes one fused
 * convolution (bias and ReLU in the same kernel: one pass over the output
 * instead of three).
 *
 * Folded: a Conv2D layer (channels last, linear activation, used once) whose
 * output feeds only a BatchNormalization over its last axis (used once), and
 * then a ReLU (ReLU without max value, or Activation 'relu') that is that
 * batch norm's only consumer. Anything else (a branch reading the
 * convolution's raw output, shared layers, other axes) is left as it was.
 *
 * Then, in functional models, a residual block's end: a (folded) linear
 * convolution whose only reader is a two-input Add, and the ReLU after that
 * Add, become one ConvAdd layer: act(x ∗ w + b + shortcut) in one kernel on
 * `native` (oneDNN's binary post-op), the same ops composed elsewhere.
 * The copy is for inference only: training it would not train the original.
 */
import * as tf from '@tensorflow/tfjs';

type Json = Record<string, unknown>;

interface LayerJson {
  name?: string;
  class_name: string;
  config: Json;
  inbound_nodes?: unknown[];
}

/** A reference to a layer's output in inbound_nodes / output_layers: [name, nodeIndex, tensorIndex, kwargs?]. */
type Ref = [string, number, number, ...unknown[]];

function layerName(l: LayerJson): string {
  return (l.name ?? (l.config.name as string | undefined)) as string;
}

function isRef(v: unknown): v is Ref {
  return Array.isArray(v) && typeof v[0] === 'string' && typeof v[1] === 'number' && typeof v[2] === 'number';
}

/** Every output reference inside a layer's inbound nodes (a node is a list of refs). */
function refsOf(l: LayerJson): Ref[] {
  const out: Ref[] = [];
  for (const node of l.inbound_nodes ?? []) {
    if (Array.isArray(node)) for (const r of node) if (isRef(r)) out.push(r);
  }
  return out;
}

function isRelu(l: LayerJson): boolean {
  if (l.class_name === 'ReLU') return l.config.max_value === null || l.config.max_value === undefined;
  return l.class_name === 'Activation' && l.config.activation === 'relu';
}

function isFoldableConv(l: LayerJson): boolean {
  return l.class_name === 'Conv2D' && l.config.data_format === 'channels_last' && l.config.activation === 'linear';
}

function isLastAxisBatchNorm(l: LayerJson): boolean {
  const axis = l.config.axis;
  const a = Array.isArray(axis) && axis.length === 1 ? axis[0] : axis;
  return l.class_name === 'BatchNormalization' && (a === -1 || a === 3);
}

interface Fold {
  conv: string;
  bn: string;
  relu: string | null;
}

/** The chains to fold, found in the model's topology (Sequential: each layer feeds the next). */
function findFolds(layers: LayerJson[], sequential: boolean, outputs: Ref[]): Fold[] {
  const byName = new Map(layers.map((l) => [layerName(l), l]));
  // consumers[name]: how many references read that layer's output (model outputs included).
  const consumers = new Map<string, string[]>();
  const read = (from: string, by: string) => consumers.set(from, [...(consumers.get(from) ?? []), by]);
  if (sequential) {
    for (let i = 0; i + 1 < layers.length; i++) read(layerName(layers[i]!), layerName(layers[i + 1]!));
  } else {
    for (const l of layers) for (const r of refsOf(l)) read(r[0], layerName(l));
    for (const r of outputs) read(r[0], '(output)');
  }
  const single = (l: LayerJson) => sequential || ((l.inbound_nodes?.length ?? 0) === 1 && refsOf(l).length === 1);
  const only = (name: string): LayerJson | undefined => {
    const c = consumers.get(name) ?? [];
    return c.length === 1 ? byName.get(c[0]!) : undefined;
  };
  const folds: Fold[] = [];
  for (const conv of layers) {
    if (!isFoldableConv(conv) || !single(conv)) continue;
    const bn = only(layerName(conv));
    if (!bn || !isLastAxisBatchNorm(bn) || !single(bn)) continue;
    const next = only(layerName(bn));
    const relu = next && isRelu(next) && single(next) ? layerName(next) : null;
    folds.push({ conv: layerName(conv), bn: layerName(bn), relu });
  }
  return folds;
}

interface Residual {
  conv: string;
  add: string;
  relu: string | null;
  /** The Add's other input. */
  shortcut: Ref;
}

/** Linear convolutions read only by a two-input Add (and that Add's only reader a ReLU): functional models only. */
function findResiduals(layers: LayerJson[], outputs: Ref[]): Residual[] {
  const byName = new Map(layers.map((l) => [layerName(l), l]));
  const consumers = new Map<string, string[]>();
  const read = (from: string, by: string) => consumers.set(from, [...(consumers.get(from) ?? []), by]);
  for (const l of layers) for (const r of refsOf(l)) read(r[0], layerName(l));
  for (const r of outputs) read(r[0], '(output)');
  const single = (l: LayerJson) => (l.inbound_nodes?.length ?? 0) === 1 && refsOf(l).length === 1;
  const only = (name: string): LayerJson | undefined => {
    const c = consumers.get(name) ?? [];
    return c.length === 1 ? byName.get(c[0]!) : undefined;
  };
  const found: Residual[] = [];
  const taken = new Set<string>();
  for (const conv of layers) {
    if (!isFoldableConv(conv) || !single(conv)) continue;
    const add = only(layerName(conv));
    // One convolution per Add: where both inputs are convolutions (a projection shortcut) the first joins it.
    if (!add || add.class_name !== 'Add' || (add.inbound_nodes?.length ?? 0) !== 1 || taken.has(layerName(add))) continue;
    const refs = refsOf(add);
    if (refs.length !== 2 || refs.filter((r) => r[0] === layerName(conv)).length !== 1) continue;
    const shortcut = refs.find((r) => r[0] !== layerName(conv))!;
    taken.add(layerName(add));
    const next = only(layerName(add));
    found.push({ conv: layerName(conv), add: layerName(add), relu: next && isRelu(next) && single(next) ? layerName(next) : null, shortcut: [...shortcut] as Ref });
  }
  return found;
}

interface ConvAddArgs {
  name?: string;
  trainable?: boolean;
  filters: number;
  kernelSize: number | number[];
  strides?: number | number[];
  padding?: 'same' | 'valid';
  dilationRate?: number | number[];
  useBias?: boolean;
  activation?: 'linear' | 'relu';
}

const pair = (v: number | number[] | undefined, fallback: number): [number, number] =>
  v === undefined ? [fallback, fallback] : typeof v === 'number' ? [v, v] : [v[0]!, v[1] ?? v[0]!];

/**
 * act(x ∗ kernel + bias + shortcut) for inputs [x, shortcut]: the end of a
 * residual block as one layer (inference copies made by foldBatchNorm only;
 * never saved).
 */
export class ConvAdd extends tf.layers.Layer {
  static className = 'HistoflowConvAdd';
  readonly filters: number;
  readonly kernelSize: [number, number];
  readonly strides: [number, number];
  readonly padding: 'same' | 'valid';
  readonly dilationRate: [number, number];
  readonly useBias: boolean;
  readonly activation: 'linear' | 'relu';
  private kernel: tf.LayerVariable | null = null;
  private bias: tf.LayerVariable | null = null;

  constructor(args: ConvAddArgs) {
    super(args);
    this.filters = args.filters;
    this.kernelSize = pair(args.kernelSize, 1);
    this.strides = pair(args.strides, 1);
    this.padding = args.padding ?? 'valid';
    this.dilationRate = pair(args.dilationRate, 1);
    this.useBias = args.useBias ?? true;
    this.activation = args.activation ?? 'linear';
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const x = (inputShape as tf.Shape[])[0]!;
    const zeros = tf.initializers.zeros();
    this.kernel = this.addWeight('kernel', [...this.kernelSize, x[3]!, this.filters], 'float32', zeros);
    if (this.useBias) this.bias = this.addWeight('bias', [this.filters], 'float32', zeros);
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    return (inputShape as tf.Shape[])[1]!;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const [x, shortcut] = inputs as tf.Tensor[];
      const filter = this.kernel!.read();
      const bias = this.bias ? this.bias.read() : undefined;
      if (tf.getBackend() === 'native') {
        return tf.engine().runKernel('HistoflowConv2DAdd', { x: x!, filter, addend: shortcut!, ...(bias ? { bias } : {}) },
          { strides: this.strides, pad: this.padding, dilations: this.dilationRate, dataFormat: 'NHWC', activation: this.activation }) as tf.Tensor;
      }
      const y = tf.add(tf.fused.conv2d({ x: x as tf.Tensor4D, filter: filter as tf.Tensor4D, strides: this.strides, pad: this.padding, dilations: this.dilationRate, ...(bias ? { bias } : {}) }), shortcut!);
      return this.activation === 'relu' ? tf.relu(y) : y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), filters: this.filters, kernelSize: this.kernelSize, strides: this.strides, padding: this.padding,
      dilationRate: this.dilationRate, useBias: this.useBias, activation: this.activation };
  }
}
tf.serialization.registerClass(ConvAdd);

/**
 * The layers without those in `into` (a removed layer → the layer that takes
 * its place), each kept one rewritten by `rewrite`, then every reference to a
 * removed layer (inbound nodes, the model's outputs) pointed at its stand-in.
 */
function merge(layers: LayerJson[], outputs: Ref[], into: Map<string, string>, rewrite: (l: LayerJson) => void): LayerJson[] {
  const point = (r: Ref) => {
    const to = into.get(r[0]);
    if (to !== undefined) r[0] = to;
  };
  const kept: LayerJson[] = [];
  for (const l of layers) {
    if (into.has(layerName(l))) continue;
    rewrite(l);
    for (const r of refsOf(l)) point(r);
    kept.push(l);
  }
  for (const r of outputs) point(r);
  return kept;
}

/** The folded kernel and bias of a convolution followed by a batch norm (see the file comment). */
export function foldWeights(
  kernel: Float32Array, bias: Float32Array | null, bn: { gamma: Float32Array | null; beta: Float32Array | null; mean: Float32Array; variance: Float32Array; epsilon: number },
): { kernel: Float32Array; bias: Float32Array } {
  const c = bn.mean.length;
  if (kernel.length % c !== 0 || bn.variance.length !== c) throw new RangeError(`foldWeights: a kernel of ${kernel.length} values does not end in ${c} channels`);
  const a = new Float64Array(c);
  const b = new Float32Array(c);
  for (let o = 0; o < c; o++) {
    a[o] = (bn.gamma ? bn.gamma[o]! : 1) / Math.sqrt(bn.variance[o]! + bn.epsilon);
    b[o] = (bn.beta ? bn.beta[o]! : 0) + ((bias ? bias[o]! : 0) - bn.mean[o]!) * a[o]!;
  }
  const k = new Float32Array(kernel.length);
  for (let i = 0; i < kernel.length; i++) k[i] = kernel[i]! * a[i % c]!;
  return { kernel: k, bias: b };
}

/**
 * The folded inference copy of `model`, how many batch norms were folded and
 * how many residual ends joined; `model` itself when there is nothing to do. The copy owns its weights
 * (dispose it when done); the original is untouched.
 */
export async function foldBatchNorm(model: tf.LayersModel): Promise<{ model: tf.LayersModel; folded: number; residuals: number }> {
  const json = model.toJSON(null, false) as unknown as { class_name: string; config: Json };
  const sequential = json.class_name === 'Sequential';
  const config = json.config;
  const layers = config.layers as LayerJson[] | undefined;
  if (!Array.isArray(layers)) return { model, folded: 0, residuals: 0 };
  const outputs = (Array.isArray(config.output_layers) ? config.output_layers : []).filter(isRef) as Ref[];
  const folds = findFolds(layers, sequential, outputs);

  // The topology: folded convolutions get a bias (and the ReLU), the batch norms and ReLUs go, and
  // whatever read them reads the convolution.
  const removed = new Map<string, string>();
  for (const f of folds) {
    removed.set(f.bn, f.conv);
    if (f.relu) removed.set(f.relu, f.conv);
  }
  const foldOf = new Map(folds.map((f) => [f.conv, f]));
  const kept = merge(layers, outputs, removed, (l) => {
    const f = foldOf.get(layerName(l));
    if (!f) return;
    l.config.use_bias = true;
    l.config.bias_initializer = { class_name: 'Zeros', config: {} };
    if (f.relu) l.config.activation = 'relu';
  });

  // Residual ends: conv → Add (→ ReLU) as one ConvAdd layer reading [x, shortcut].
  const residuals = sequential || process.env.HISTOFLOW_FOLD_RESIDUAL === '0' ? [] : findResiduals(kept, outputs);
  if (folds.length === 0 && residuals.length === 0) return { model, folded: 0, residuals: 0 };
  const joined = new Map<string, string>();
  for (const r of residuals) {
    joined.set(r.add, r.conv);
    if (r.relu) joined.set(r.relu, r.conv);
  }
  const residualOf = new Map(residuals.map((r) => [r.conv, r]));
  config.layers = merge(kept, outputs, joined, (l) => {
    const r = residualOf.get(layerName(l));
    if (!r) return;
    const c = l.config;
    l.class_name = ConvAdd.className;
    l.config = { name: c.name, trainable: c.trainable, filters: c.filters, kernel_size: c.kernel_size, strides: c.strides, padding: c.padding,
      dilation_rate: c.dilation_rate, use_bias: c.use_bias, activation: r.relu ? 'relu' : 'linear' };
    l.inbound_nodes = [[refsOf(l)[0]!, r.shortcut]];
  });

  const folded = await tf.models.modelFromJSON(json as unknown as Parameters<typeof tf.models.modelFromJSON>[0]);
  const original = new Map(model.layers.map((l) => [l.name, l]));
  for (const layer of folded.layers) {
    const source = original.get(layer.name);
    if (!source) throw new Error(`foldBatchNorm: layer '${layer.name}' of the folded copy is not in the model`);
    const f = foldOf.get(layer.name);
    const weights = source.getWeights();
    if (!f) {
      if (weights.length > 0) layer.setWeights(weights);
      continue;
    }
    const bnLayer = original.get(f.bn)!;
    const bnConfig = bnLayer.getConfig() as { center?: boolean; scale?: boolean; epsilon?: number };
    const bnWeights = bnLayer.getWeights().map((w) => w.dataSync() as Float32Array);
    let i = 0;
    const gamma = bnConfig.scale === false ? null : bnWeights[i++]!;
    const beta = bnConfig.center === false ? null : bnWeights[i++]!;
    const [mean, variance] = [bnWeights[i++]!, bnWeights[i++]!];
    const kernel = weights[0]!;
    const { kernel: k, bias: b } = foldWeights(kernel.dataSync() as Float32Array, weights[1] ? (weights[1].dataSync() as Float32Array) : null,
      { gamma, beta, mean, variance, epsilon: bnConfig.epsilon ?? 1e-3 });
    const kt = tf.tensor(k, kernel.shape), bt = tf.tensor1d(b);
    layer.setWeights([kt, bt]);
    tf.dispose([kt, bt]);
  }
  return { model: folded, folded: folds.length, residuals: residuals.length };
}
