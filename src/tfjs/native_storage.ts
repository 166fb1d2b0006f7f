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
 * Without HISTOFLOW_NN_POOL_MB the pool also holds no more than the most
 * bytes this backend's tensors have held at once (at least 256 MiB): a step
 * never needs more idle arrays than it keeps alive at its peak. Measured on the
 * baseline CNN (96², batch 64, native, 2 cores; src/bench/train_memory.ts):
 * the pool at 40 % of RAM held 3.0 GB idle for a step whose tensors peak at
 * 1.37 GB (peak RSS 3.45 GB, 1.68 s/step); capped at 1.4 GB, 2.89 GB and
 * 1.72 s/step; no pool, 2.34 GB and 2.89 s/step.
 */
const MIN_ADAPTIVE_POOL_BYTES = 256 * 2 ** 20;

export class NativeStorageBackend extends MathBackendCPU {
  private readonly free = new Map<number, Float32Array[]>();
  private poolBytes = 0;
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

  /** An output array for an addon kernel (contents undefined: the kernel overwrites all of it). */
  allocate(length: number): Float32Array {
    if (length < MIN_POOLED) return new Float32Array(length);
    const list = this.free.get(length);
    const reused = list?.pop();
    if (reused) {
      this.poolBytes -= reused.byteLength;
      this.owned.set(reused.buffer, reused);
      return reused;
    }
    const fresh = new Float32Array(length);
    this.owned.set(fresh.buffer, fresh);
    return fresh;
  }

  private share(values: unknown): void {
    if (ArrayBuffer.isView(values)) this.owned.delete(values.buffer);
  }

  /** ArrayBuffer → how many data ids hold values over it. */
  private readonly holders = new Map<ArrayBufferLike, number>();
  private liveBytes = 0;
  private peakLiveBytes = 0;
  /** The most live bytes ever (peakLiveBytes without resetPeak): bounds the pool. */
  private mostLiveBytes = 0;

  private hold(values: unknown): void {
    if (!ArrayBuffer.isView(values)) return;
    const n = this.holders.get(values.buffer) ?? 0;
    this.holders.set(values.buffer, n + 1);
    if (n > 0) return;
    this.liveBytes += values.buffer.byteLength;
    if (this.liveBytes > this.peakLiveBytes) this.peakLiveBytes = this.liveBytes;
    if (this.liveBytes > this.mostLiveBytes) this.mostLiveBytes = this.liveBytes;
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

  override readSync(dataId: DataId): backend_util.BackendValues {
    const v = super.readSync(dataId);
    this.share(v);
    return v;
  }

  override async read(dataId: DataId): Promise<backend_util.BackendValues> {
    const v = await super.read(dataId);
    this.share(v);
    return v;
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const gone = super.disposeData(dataId, force);
    if (gone && values !== undefined) this.unhold(values);
    if (gone && values instanceof Float32Array && this.owned.get(values.buffer) === values) {
      this.owned.delete(values.buffer);
      this.written.delete(values.buffer);
      const cap = EXPLICIT_POOL ? MAX_POOL_BYTES : Math.min(MAX_POOL_BYTES, Math.max(MIN_ADAPTIVE_POOL_BYTES, this.mostLiveBytes));
      if (this.poolBytes + values.byteLength <= cap) {
        const list = this.free.get(values.length) ?? [];
        list.push(values);
        this.free.set(values.length, list);
        this.poolBytes += values.byteLength;
      }
    }
    return gone;
  }

  /**
   * What this backend's tensors occupy: `liveBytes`, the ArrayBuffers behind
   * live tensors (each counted once, however many tensors share it: TF.js's
   * own tf.memory().numBytes counts every tensor, so the clones autograd
   * saves and every reshape count again); `peakLiveBytes`, the most since the
   * last resetPeak(); and the pool's idle arrays.
   */
  memoryStats(): { liveBytes: number; peakLiveBytes: number; poolBytes: number; poolArrays: number } {
    let poolArrays = 0;
    for (const list of this.free.values()) poolArrays += list.length;
    return { liveBytes: this.liveBytes, peakLiveBytes: this.peakLiveBytes, poolBytes: this.poolBytes, poolArrays };
  }

  /** Starts a new peak of live bytes (memoryStats) from the current ones. */
  resetPeak(): void {
    this.peakLiveBytes = this.liveBytes;
  }

  override dispose(): void {
    this.free.clear();
    this.poolBytes = 0;
    this.holders.clear();
    this.liveBytes = 0;
    super.dispose();
  }
}
