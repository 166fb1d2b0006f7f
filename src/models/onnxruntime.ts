/**
 * The part of onnxruntime-node histoflow uses, typed by hand (as
 * onnxruntime-node types its own addon in lib/binding.ts), and its loader.
 * onnxruntime-node is an optional dependency: it is imported on first use,
 * so histoflow builds and runs without it, and a missing or broken install
 * is an UnavailableError that names the package and how to install it.
 */
import { UnavailableError } from '../errors.js';

export const ONNXRUNTIME_PACKAGE = 'onnxruntime-node';

/** Execution providers histoflow offers: onnxruntime's CPU provider, and its CUDA provider where the user has it. */
export const ONNX_PROVIDERS = ['cpu', 'cuda'] as const;
export type OnnxProvider = (typeof ONNX_PROVIDERS)[number];

export interface OrtTensor {
  readonly dims: readonly number[];
  readonly type: string;
  readonly data: unknown;
}

export type OrtValueMetadata =
  | { readonly name: string; readonly isTensor: false }
  | { readonly name: string; readonly isTensor: true; readonly type: string; readonly shape: ReadonlyArray<number | string> };

export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** onnxruntime ≥ 1.22; older versions leave it undefined. */
  readonly inputMetadata?: readonly OrtValueMetadata[];
  readonly outputMetadata?: readonly OrtValueMetadata[];
  run(feeds: Record<string, OrtTensor>, fetches?: readonly string[]): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface OnnxRuntime {
  readonly version: string;
  InferenceSession: {
    create(path: string, options?: { executionProviders?: readonly string[]; graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all' }): Promise<OrtSession>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
  listSupportedBackends(): Array<{ name: string; bundled: boolean }>;
}

let loading: Promise<OnnxRuntime> | undefined;

/** Imports onnxruntime-node once per process (its failure too); an UnavailableError (backend 'onnxruntime') when it is missing or fails to load. */
export function loadOnnxRuntime(): Promise<OnnxRuntime> {
  loading ??= (async () => {
    let mod: Record<string, unknown>;
    try {
      // A variable specifier: the package is optional, so the compiler must not require it.
      const pkg: string = ONNXRUNTIME_PACKAGE;
      mod = (await import(pkg)) as Record<string, unknown>;
    } catch (e) {
      const code = (e as { code?: string }).code;
      const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
      throw new UnavailableError(
        'onnxruntime',
        `${missing ? `${ONNXRUNTIME_PACKAGE} is not installed` : `${ONNXRUNTIME_PACKAGE} fails to load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`}; ` +
          `ONNX models need it: npm install ${ONNXRUNTIME_PACKAGE} (an optional dependency of histoflow)`,
        'ONNX models',
      );
    }
    // A CommonJS package: its exports are the namespace's default, and its named exports when Node detects them.
    const ort = ((mod.InferenceSession ? mod : mod.default) ?? mod) as Record<string, unknown>;
    if (typeof (ort.InferenceSession as { create?: unknown } | undefined)?.create !== 'function' || typeof ort.Tensor !== 'function') {
      throw new UnavailableError('onnxruntime', `${ONNXRUNTIME_PACKAGE} loaded but has no InferenceSession.create or Tensor (an unsupported version?)`, 'ONNX models');
    }
    const env = ort.env as { versions?: { node?: string; common?: string } } | undefined;
    return {
      version: env?.versions?.node ?? env?.versions?.common ?? 'unknown',
      InferenceSession: ort.InferenceSession as OnnxRuntime['InferenceSession'],
      Tensor: ort.Tensor as OnnxRuntime['Tensor'],
      listSupportedBackends: typeof ort.listSupportedBackends === 'function'
        ? (ort.listSupportedBackends as OnnxRuntime['listSupportedBackends'])
        : () => [{ name: 'cpu', bundled: true }],
    };
  })();
  return loading;
}
