/**
 * A backward pass that lets go of what it has used, for the `native` backend.
 *
 * TF.js's engine.gradients (tfjs-core 4.x: engine.ts `gradients`, tape.ts
 * `backpropagateGradients`) keeps every gradient it computes, and every tensor
 * the forward pass saved for the backward pass, until the whole backward pass
 * has ended. On the zoo's baseline CNN (96², batch 64) that is ~2.2 GB of
 * gradients on top of ~1.3 GB of saved tensors: a 3.5 GB peak of live tensors
 * for a network whose layer outputs take 0.8 GB, where PyTorch's autograd
 * frees each saved tensor and each incoming gradient as soon as the node that
 * reads them has run.
 *
 * `leanGradients` is engine.gradients with that one difference: once a tape
 * node's gradient has run, the gradients that flowed into it (its outputs' dy,
 * and partial sums already added up) and the tensors it saved are disposed —
 * nothing reads them again. The same kernels run in the same order on the
 * same values, so the gradients are bit-identical to TF.js's own. Disposed are
 * only tensors the backward pass created itself and the engine's own saved
 * clones, never a tensor of the caller's (a custom gradient may return one).
 * Higher-order gradients (a gradient taken inside another) keep TF.js's path:
 * they need the tape after the backward pass.
 */
import * as tf from '@tensorflow/tfjs-core';

/** A recorded kernel call (tfjs-core tape.ts TapeNode). */
interface TapeNode {
  id: number;
  kernelName: string;
  outputs: tf.Tensor[];
  inputs: Record<string, tf.Tensor>;
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

type Gradients = (f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean) => { value: tf.Tensor; grads: tf.Tensor[] };

/** What of tfjs-core's Engine this relies on (present through 4.x). */
interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  backendName: string;
  gradients: Gradients;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(name: string, fn: () => T): T;
  tidy<T extends tf.TensorContainer>(fn: () => T): T;
  nextTensorId(): number;
}

function internals(engine: unknown): EngineInternals | null {
  const e = engine as Partial<EngineInternals> | null;
  if (!e || typeof e !== 'object' || !e.state || typeof e.state.gradientDepth !== 'number') return null;
  for (const m of ['gradients', 'scopedRun', 'startTape', 'endTape', 'tidy', 'nextTensorId'] as const) {
    if (typeof e[m] !== 'function') return null;
  }
  return e as EngineInternals;
}

/**
 * The tape nodes on a path from `xs` to `y`, each with only the inputs that
 * depend on `xs` (tfjs-core tape.ts getFilteredNodesXToY, same result).
 */
export function nodesFromXsToY(tape: readonly TapeNode[], xs: readonly tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((input) => fromX.has(input.id))) {
      for (const o of node.outputs) fromX.add(o.id);
      nodesFromX.add(node.id);
    }
  }
  const toY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    if (node.outputs.some((o) => toY.has(o.id))) {
      for (const input of Object.values(node.inputs)) toY.add(input.id);
      nodesToY.add(node.id);
    }
  }
  const filtered: TapeNode[] = [];
  for (const node of tape) {
    if (!nodesFromX.has(node.id) || !nodesToY.has(node.id)) continue;
    const inputs: Record<string, tf.Tensor> = {};
    for (const [name, input] of Object.entries(node.inputs)) if (fromX.has(input.id)) inputs[name] = input;
    filtered.push({ ...node, inputs, outputs: node.outputs });
  }
  return filtered;
}

/**
 * tape.ts backpropagateGradients, disposing as it goes: see the file comment.
 * `mine(t)`: whether the backward pass created `t` and no one kept it (only those are disposed).
 */
function backpropagate(
  grads: Map<number, tf.Tensor>, tape: readonly TapeNode[], tidy: (f: () => tf.Tensor) => tf.Tensor, keep: ReadonlySet<number>,
  mine: (t: tf.Tensor) => boolean,
): void {
  // A gradient may pass a dy through unchanged, so one tensor can stand for
  // several entries: it is released with its last.
  const entries = new Map<tf.Tensor, number>();
  for (const t of grads.values()) entries.set(t, (entries.get(t) ?? 0) + 1);
  const put = (id: number, t: tf.Tensor) => {
    grads.set(id, t);
    entries.set(t, (entries.get(t) ?? 0) + 1);
  };
  const drop = (id: number) => {
    const t = grads.get(id);
    if (t === undefined) return;
    grads.delete(id);
    const n = entries.get(t)! - 1;
    if (n > 0) {
      entries.set(t, n);
    } else {
      entries.delete(t);
      if (mine(t)) t.dispose();
    }
  };
  // A custom gradient's value may be a tensor another node made (its input,
  // say): that tensor's gradient is read by its first maker on the tape.
  const maker = new Map<number, number>();
  for (let i = tape.length - 1; i >= 0; i--) for (const o of tape[i]!.outputs) maker.set(o.id, i);
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    const dys = node.outputs.map((o) => grads.get(o.id) ?? null);
    if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
    const inputGradients = node.gradient(dys);
    // Added-up parts, let go once the node is done: a custom gradient may hand
    // the same tensor to several inputs.
    const added: tf.Tensor[] = [];
    for (const inputName in node.inputs) {
      if (!(inputName in inputGradients)) {
        throw new Error(`Cannot backprop through input ${inputName}. Available gradients found: ${Object.keys(inputGradients)}.`);
      }
      const dx = tidy(() => inputGradients[inputName]!());
      if (dx.dtype !== 'float32') {
        throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input ${inputName} must have 'float32' dtype, but has '${dx.dtype}'`);
      }
      const x = node.inputs[inputName]!;
      if (!tf.util.arraysEqual(dx.shape, x.shape)) {
        throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input '${inputName}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`);
      }
      const sum = grads.get(x.id);
      if (sum === undefined) {
        put(x.id, dx);
      } else {
        const total = tf.add(sum, dx);
        drop(x.id);
        put(x.id, total);
        added.push(dx);
      }
    }
    for (const dx of added) if (!entries.has(dx) && mine(dx)) dx.dispose();
    // Nothing reads this node's dys or saved tensors again.
    for (const o of node.outputs) if (!keep.has(o.id) && maker.get(o.id) === i) drop(o.id);
    for (const t of node.saved ?? []) if (!entries.has(t)) t.dispose();
  }
}

function leanGradientsOf(engine: EngineInternals, stock: Gradients): Gradients {
  return function gradients(f, xs, dy, allowNoGradients = false) {
    // Higher-order gradients need the tape kept: TF.js's own path.
    if (engine.state.gradientDepth !== 0) return stock.call(engine, f, xs, dy, allowNoGradients);
    tf.util.assert(xs.length > 0, () => 'gradients() received an empty list of xs.');
    if (dy != null && dy.dtype !== 'float32') throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
    const y = engine.scopedRun(() => engine.startTape(), () => engine.endTape(), () => engine.tidy('forward', f));
    tf.util.assert(y instanceof tf.Tensor, () => 'The result y returned by f() must be a tensor.');
    const tape = engine.state.activeTape ?? [];
    const filtered = nodesFromXsToY(tape, xs, y);
    if (!allowNoGradients && filtered.length === 0 && xs.length > 0) {
      throw new Error('Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all operations that lead from x to y.');
    }
    return engine.tidy('backward', () => {
      // Tensor ids only grow: everything from here on is the backward pass's own.
      const firstId = engine.nextTensorId() + 1;
      const grads = new Map<number, tf.Tensor>([[y.id, dy ?? tf.ones(y.shape)]]);
      const keep = new Set(xs.map((x) => x.id));
      backpropagate(grads, filtered, (g) => engine.tidy(g), keep, (t) => t.id >= firstId && t !== dy && !t.kept);
      const result = xs.map((x) => grads.get(x.id)!);
      for (const node of tape) for (const t of node.saved ?? []) t.dispose();
      engine.state.activeTape = null;
      return { value: y, grads: result } as unknown as tf.TensorContainer;
    }) as unknown as { value: tf.Tensor; grads: tf.Tensor[] };
  };
}

let stockGradients: Gradients | null = null;
let enabled = true;

/**
 * Makes TF.js's engine take the lean backward pass whenever the `native`
 * backend is the active one (other backends keep TF.js's own). Idempotent.
 * False when this tfjs-core's engine lacks the internals it needs (it then
 * stays as it was).
 */
export function installLeanGradients(backendName: string): boolean {
  const engine = internals(tf.engine());
  if (!engine) return false;
  if (stockGradients) return true;
  const stock = engine.gradients;
  const lean = leanGradientsOf(engine, stock);
  stockGradients = stock;
  engine.gradients = function gradients(f, xs, dy, allowNoGradients) {
    const use = enabled && engine.backendName === backendName;
    return (use ? lean : stock).call(engine, f, xs, dy, allowNoGradients);
  };
  return true;
}

/** Turns the lean backward pass off (TF.js's own) or back on: for comparisons and tests. */
export function setLeanGradients(on: boolean): void {
  enabled = on;
}

/** Whether the lean backward pass is installed and on. */
export function leanGradientsActive(): boolean {
  return stockGradients !== null && enabled;
}
