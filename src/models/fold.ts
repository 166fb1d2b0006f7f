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
 * The folded inference copy of `model` and how many batch norms were folded;
 * `model` itself when there is nothing to fold. The copy owns its weights
 * (dispose it when done); the original is untouched.
 */
export async function foldBatchNorm(model: tf.LayersModel): Promise<{ model: tf.LayersModel; folded: number }> {
  const json = model.toJSON(null, false) as unknown as { class_name: string; config: Json };
  const sequential = json.class_name === 'Sequential';
  const config = json.config;
  const layers = config.layers as LayerJson[] | undefined;
  if (!Array.isArray(layers)) return { model, folded: 0 };
  const outputs = (Array.isArray(config.output_layers) ? config.output_layers : []).filter(isRef) as Ref[];
  const folds = findFolds(layers, sequential, outputs);
  if (folds.length === 0) return { model, folded: 0 };

  // The topology: folded convolutions get a bias (and the ReLU), the batch norms and ReLUs go, and
  // whatever read them reads the convolution.
  const removed = new Map<string, string>();
  for (const f of folds) {
    removed.set(f.bn, f.conv);
    if (f.relu) removed.set(f.relu, f.conv);
  }
  const foldOf = new Map(folds.map((f) => [f.conv, f]));
  const rename = (r: Ref) => {
    const to = removed.get(r[0]);
    if (to !== undefined) r[0] = to;
  };
  const kept: LayerJson[] = [];
  for (const l of layers) {
    const name = layerName(l);
    if (removed.has(name)) continue;
    const f = foldOf.get(name);
    if (f) {
      l.config.use_bias = true;
      l.config.bias_initializer = { class_name: 'Zeros', config: {} };
      if (f.relu) l.config.activation = 'relu';
    }
    for (const r of refsOf(l)) rename(r);
    kept.push(l);
  }
  config.layers = kept;
  for (const r of outputs) rename(r);

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
  return { model: folded, folded: folds.length };
}
