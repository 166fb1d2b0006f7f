/**
 * The `native` backend's tensor storage: MathBackendCPU plus a pool of the
 * large Float32Arrays its addon kernels write. A training step allocates
 * dozens of activation-sized outputs (75 MB each at 96x96, batch 64, 32
 * channels); fresh ones cost the kernel's zero-filled page faults and V8
 * garbage collections, which profiling showed to outweigh the arithmetic of
 * the element-wise ops. Recycled arrays are always fully overwritten by the
 * kernel that takes them.
 *
 * An array goes back to the pool only if nobody else can still see it: it was
 * allocated here, its tensor's last reference was disposed, and it was never
 * handed out — read / readSync (dataSync, data, moving to another backend)
 * and any tensor written over the same ArrayBuffer (a cpu kernel's subarray
 * view, e.g. a simple slice) mark it as shared for good.
 */
import type { DataId, DataType, backend_util } from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { totalmem } from 'node:os';

/** Arrays below this many elements are cheap to allocate: not pooled. */
const MIN_POOLED = 1 << 14;
/**
 * The pool never holds more than this many bytes of idle arrays: 40% of RAM
 * up to 8 GiB (one 96x96 batch-64 step of the baseline CNN cycles ~3 GiB of
 * outputs; a first touch of fresh memory costs a page fault per 4 KiB, which
 * on virtual machines made a large element-wise op ~5x slower than its
 * arithmetic). HISTOFLOW_NN_POOL_MB overrides it (0 turns pooling off).
 */
const POOL_MB = process.env.HISTOFLOW_NN_POOL_MB;
const EXPLICIT_POOL = POOL_MB !== undefined && /^\d+$/.test(POOL_MB);
const MAX_POOL_BYTES = EXPLICIT_POOL ? Number(POOL_MB) * 2 ** 20 : Math.min(totalmem() * 0.4, 8 * 2 ** 30);
/**
 * Without HISTOFLOW_NN_POOL_MB the pool also holds no more than what the
 * work has needed of each array length at once, summed over the lengths (at
 * least 256 MiB): Σ_L (most arrays of length L outstanding at one time)·L.
 * A repeated step then finds every array it asks for in the pool, and nothing
 * beyond. Capping at the most bytes live at once instead (which is less: the
 * lengths peak at different times) dropped ~300 MiB of arrays a step on the
 * baseline CNN, allocated again the next: calloc's zeroing, and 576 MiB of
 * freed heap kept by the C library, half of the RSS growth over the first 100
 * steps (src/bench/train_memory.ts, 96², batch 64).
 */
const MIN_ADAPTIVE_POOL_BYTES = 256 * 2 ** 20;

export class NativeStorageBackend extends MathBackendCPU {
  private readonly free = new Map<number, Float32Array[]>();
  private poolBytes = 0;
  /** Bytes of arrays allocated fresh (not from the pool), and of freed ones the pool had no room for, ever. */
  private freshBytes = 0;
  private droppedBytes = 0;
  /** ArrayBuffer → the pooled-kind array over it, while nobody else has seen it. */
  private readonly owned = new WeakMap<ArrayBufferLike, Float32Array>();

  constructor() {
    super();
    // MathBackendCPU warns on first write, in Node, to install tfjs-node "to
    // speed things up": this backend is the addon's fast path (and tfjs-node
    // is the 'tensorflow' backend, which `auto` prefers when it loads), so the
    // banner would only mislead, and it breaks `--json` runs' quiet stderr.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /**
   * An output array for an addon kernel (contents undefined: the kernel
   * overwrites all of it): an idle array of this length, else a view of the
   * shortest idle array up to twice as long (a batch's ragged last one reuses
   * the full batches' arrays instead of doubling the pool), else a fresh one.
   */
  allocate(length: number): Float32Array {
    if (length < MIN_POOLED) return new Float32Array(length);
    let full = this.free.get(length)?.pop();
    if (!full) {
      let best = 0;
      for (const [n, list] of this.free) if (n > length && n <= 2 * length && list.length > 0 && (best === 0 || n < best)) best = n;
      if (best > 0) full = this.free.get(best)!.pop();
    }
    if (full) {
      this.poolBytes -= full.byteLength;
    } else {
      full = new Float32Array(length);
      this.freshBytes += full.byteLength;
    }
    const array = full.length === length ? full : full.subarray(0, length);
    this.owned.set(array.buffer, array);
    const count = this.outstanding.get(full.length) ?? { now: 0, most: 0 };
    if (++count.now > count.most) {
      count.most = count.now;
      this.neededBytes += full.byteLength;
    }
    this.outstanding.set(full.length, count);
    this.counted.add(array.buffer);
    return array;
  }

  /** An array of ours no tensor holds any more (pooled or not): it no longer counts as outstanding. */
  private release(values: unknown): void {
    if (!ArrayBuffer.isView(values) || !this.counted.delete(values.buffer)) return;
    const count = this.outstanding.get(values.buffer.byteLength / 4);  // keyed by the whole array's length
    if (count) count.now--;
  }

  private share(values: unknown): void {
    if (ArrayBuffer.isView(values)) this.owned.delete(values.buffer);
  }

  /** ArrayBuffer → how many data ids hold values over it. */
  private readonly holders = new Map<ArrayBufferLike, number>();
  private liveBytes = 0;
  private peakLiveBytes = 0;
  /** Array length → arrays of it handed out and not yet released, and the most at once. */
  private readonly outstanding = new Map<number, { now: number; most: number }>();
  /** Σ over lengths of (most outstanding)·bytes: the pool's bound. */
  private neededBytes = 0;
  /** Buffers of arrays this pool handed out that are still counted in `outstanding`. */
  private readonly counted = new WeakSet<ArrayBufferLike>();

  private hold(values: unknown): void {
    if (!ArrayBuffer.isView(values)) return;
    const n = this.holders.get(values.buffer) ?? 0;
    this.holders.set(values.buffer, n + 1);
    if (n > 0) return;
    this.liveBytes += values.buffer.byteLength;
    if (this.liveBytes > this.peakLiveBytes) this.peakLiveBytes = this.liveBytes;
  }

  private unhold(values: unknown): void {
    if (!ArrayBuffer.isView(values)) return;
    const n = this.holders.get(values.buffer);
    if (n === undefined) return;
    if (n > 1) {
      this.holders.set(values.buffer, n - 1);
      return;
    }
    this.holders.delete(values.buffer);
    this.liveBytes -= values.buffer.byteLength;
    this.release(values);
  }

  /** Buffers already behind a tensor (an array may back exactly one tensor to stay poolable). */
  private readonly written = new WeakSet<ArrayBufferLike>();

  override write(values: backend_util.BackendValues, shape: number[], dtype: DataType): DataId {
    if (ArrayBuffer.isView(values)) {
      const buffer = values.buffer;
      if (this.owned.get(buffer) === values && !this.written.has(buffer)) this.written.add(buffer);
      else this.owned.delete(buffer); // a view of ours, or a second tensor over it: shared from now on
    }
    this.hold(values);
    return super.write(values, shape, dtype);
  }

  override move(dataId: DataId, values: backend_util.BackendValues, shape: number[], dtype: DataType, refCount: number): void {
    if (this.data.has(dataId)) this.unhold(this.data.get(dataId).values);
    this.hold(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  /**
   * What a reader gets: a copy of a pooled view that is shorter than its
   * buffer (readers such as Tensor.bytes() take the whole `.buffer`), and the
   * array itself otherwise, which from then on is shared (never pooled).
   */
  private handOut(v: backend_util.BackendValues): backend_util.BackendValues {
    if (v instanceof Float32Array && v.length * 4 !== v.buffer.byteLength && this.owned.get(v.buffer) === v) return v.slice();
    this.share(v);
    return v;
  }

  override readSync(dataId: DataId): backend_util.BackendValues {
    return this.handOut(super.readSync(dataId));
  }

  override async read(dataId: DataId): Promise<backend_util.BackendValues> {
    return this.handOut(await super.read(dataId));
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const gone = super.disposeData(dataId, force);
    if (gone && values !== undefined) this.unhold(values);
    if (gone && values instanceof Float32Array && this.owned.get(values.buffer) === values) {
      this.owned.delete(values.buffer);
      this.written.delete(values.buffer);
      const cap = EXPLICIT_POOL ? MAX_POOL_BYTES : Math.min(MAX_POOL_BYTES, Math.max(MIN_ADAPTIVE_POOL_BYTES, this.neededBytes));
      const full = values.length * 4 === values.buffer.byteLength ? values : new Float32Array(values.buffer);
      if (this.poolBytes + full.byteLength <= cap) {
        const list = this.free.get(full.length) ?? [];
        list.push(full);
        this.free.set(full.length, list);
        this.poolBytes += full.byteLength;
      } else {
        this.droppedBytes += full.byteLength;
      }
    }
    return gone;
  }

  /**
   * What this backend's tensors occupy: `liveBytes`, the ArrayBuffers behind
   * live tensors (each counted once, however many tensors share it: TF.js's
   * own tf.memory().numBytes counts every tensor, so the clones autograd
   * saves and every reshape count again); `peakLiveBytes`, the most since the
   * last resetPeak(); the pool's idle arrays; and, counted from the start,
   * the bytes of output arrays allocated fresh and of freed ones the pool
   * dropped for want of room (each drop is a fresh allocation later: heap churn).
   */
  memoryStats(): { liveBytes: number; peakLiveBytes: number; poolBytes: number; poolArrays: number; freshBytes: number; droppedBytes: number } {
    let poolArrays = 0;
    for (const list of this.free.values()) poolArrays += list.length;
    return {
      liveBytes: this.liveBytes, peakLiveBytes: this.peakLiveBytes, poolBytes: this.poolBytes, poolArrays,
      freshBytes: this.freshBytes, droppedBytes: this.droppedBytes,
    };
  }

  /** Starts a new peak of live bytes (memoryStats) from the current ones. */
  resetPeak(): void {
    this.peakLiveBytes = this.liveBytes;
  }

  override dispose(): void {
    this.free.clear();
    this.poolBytes = 0;
    this.outstanding.clear();
    this.neededBytes = 0;
    this.holders.clear();
    this.liveBytes = 0;
    super.dispose();
  }
}
