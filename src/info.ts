/**
 * What this installation can do: what was compiled into the addon and what
 * was found at run time. Capabilities are reported, never guessed.
 */
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { loadAddon, packageRoot, type CpuDispatch } from '../bindings/loader.js';
import { kernelBackendStatus, type BackendStatus } from './kernels/registry.js';
import { loadOnnxRuntime } from './models/onnxruntime.js';
import type { TrainingBackendStatus } from './tfjs/backend.js';

export interface TfjsBackendInfo {
  name: string;
  package: string;
  available: boolean;
  detail: string;
}

export interface HistoflowInfo {
  version: string;
  node: string;
  platform: string;
  cpu: { model: string; cores: number; memoryGiB: number };
  addon:
    | { loaded: true; path: string; cpuLevel: CpuDispatch; features: Record<string, string> | null; simd: string; threads: number; openmp: boolean; compiler: string;
        cuda: { compiled: boolean; version: string; devices: { name: string; memoryGiB: number; computeCapability: string }[]; reason: string };
        openslide: boolean; onednn: boolean; zeroCopyAsync: boolean }
    | { loaded: false; reason: string };
  openslideVersion: string | null;
  onednnVersion: string | null;
  kernelBackends: BackendStatus[];
  gpujsModes: string[];
  tfjsBackends: TfjsBackendInfo[];
  /** TF.js training backends in `auto`'s order (src/tfjs/backend.ts). */
  trainingBackends: TrainingBackendStatus[];
  /** onnxruntime-node for ONNX models: its version and execution providers, or why it is unavailable. */
  onnxruntime: { available: true; version: string; providers: string[] } | { available: false; reason: string };
}

const require = createRequire(import.meta.url);

function packageVersion(name: string): string | null {
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return null;
  }
}

/** Version of a system library from its pkg-config file, if installed. */
async function systemLibraryVersion(pc: string): Promise<string | null> {
  const { readFile } = await import('node:fs/promises');
  for (const dir of ['/usr/lib/x86_64-linux-gnu/pkgconfig', '/usr/lib/aarch64-linux-gnu/pkgconfig', '/usr/lib/pkgconfig', '/usr/local/lib/pkgconfig', '/usr/share/pkgconfig']) {
    try {
      const text = await readFile(join(dir, `${pc}.pc`), 'utf8');
      const m = /^Version:\s*(.+)$/m.exec(text);
      if (m) return m[1]!.trim();
    } catch {
      // not in this folder
    }
  }
  return null;
}

async function onednnVersion(): Promise<string | null> {
  const { readFile } = await import('node:fs/promises');
  try {
    const h = await readFile('/usr/include/oneapi/dnnl/dnnl_version.h', 'utf8');
    const v = ['MAJOR', 'MINOR', 'PATCH'].map((k) => new RegExp(`DNNL_VERSION_${k}\\s+(\\d+)`).exec(h)?.[1] ?? '?');
    return v.join('.');
  } catch {
    return null;
  }
}

async function tfjsBackends(): Promise<TfjsBackendInfo[]> {
  const out: TfjsBackendInfo[] = [];
  for (const [name, pkg] of [['tensorflow (GPU)', '@tensorflow/tfjs-node-gpu'], ['tensorflow', '@tensorflow/tfjs-node']] as const) {
    const version = packageVersion(pkg);
    if (!version) {
      out.push({ name, package: pkg, available: false, detail: 'not installed (optional: its install downloads libtensorflow)' });
      continue;
    }
    try {
      await import(pkg);
      out.push({ name, package: pkg, available: true, detail: `version ${version}` });
    } catch (e) {
      const why = e instanceof Error ? e.message.split('\n')[0]! : String(e);
      out.push({ name, package: pkg, available: false, detail: `installed (${version}) but fails to load: ${why}` });
    }
  }
  const core = packageVersion('@tensorflow/tfjs-core') ?? packageVersion('@tensorflow/tfjs');
  out.push({
    name: 'cpu (plain TF.js)',
    package: '@tensorflow/tfjs',
    available: core !== null,
    detail: core ? `version ${core}` : 'not installed',
  });
  return out;
}

/** What configure found, with the reason for each feature that is off (build/histoflow-features.json, written by CMakeLists.txt). */
function buildFeatures(addonPath: string): Record<string, string> | null {
  try {
    return JSON.parse(readFileSync(join(dirname(addonPath), '..', 'histoflow-features.json'), 'utf8')) as Record<string, string>;
  } catch {
    return null;
  }
}

export async function info(): Promise<HistoflowInfo> {
  const s = loadAddon();
  const c = cpus();
  const root = packageRoot();
  const version = (require(join(root, 'package.json')) as { version: string }).version;
  let addon: HistoflowInfo['addon'];
  if (s.ok) {
    const b = s.addon.buildInfo();
    const cuda = s.addon.cudaDevices();
    addon = {
      loaded: true,
      path: s.path,
      cpuLevel: s.cpu,
      features: buildFeatures(s.path),
      simd: b.simd,
      threads: s.addon.getThreads(),
      openmp: b.openmp,
      compiler: b.compiler,
      cuda: {
        compiled: b.cuda,
        version: b.cudaVersion,
        devices: cuda.devices.map((d) => ({ name: d.name, memoryGiB: +(d.totalMemory / 2 ** 30).toFixed(1), computeCapability: d.computeCapability })),
        reason: cuda.reason,
      },
      openslide: b.openslide,
      onednn: b.onednn,
      // async kernels hold V8 backing stores (else they stage copies)
      zeroCopyAsync: b.v8BackingStores === true,
    };
  } else {
    addon = { loaded: false, reason: s.reason };
  }
  const backends = await kernelBackendStatus();
  const { gpujsModes } = await import('./kernels/gpujs_backend.js');
  return {
    version,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: { model: c[0]?.model ?? 'unknown', cores: c.length, memoryGiB: +(totalmem() / 2 ** 30).toFixed(1) },
    addon,
    openslideVersion: await systemLibraryVersion('openslide'),
    onednnVersion: await onednnVersion(),
    kernelBackends: backends,
    gpujsModes: await gpujsModes().catch(() => []),
    tfjsBackends: await tfjsBackends(),
    // loaded on demand: it brings in TF.js
    trainingBackends: await (await import('./tfjs/backend.js')).trainingBackendStatus(),
    onnxruntime: await onnxRuntimeStatus(),
  };
}

async function onnxRuntimeStatus(): Promise<HistoflowInfo['onnxruntime']> {
  try {
    const ort = await loadOnnxRuntime();
    // cuda and tensorrt are not bundled: they work only where their provider libraries were installed.
    return { available: true, version: ort.version, providers: ort.listSupportedBackends().map((b) => (b.bundled ? b.name : `${b.name} (needs its provider libraries)`)) };
  } catch (e) {
    return { available: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

/** The human-readable form of info(). */
export function formatInfo(i: HistoflowInfo): string {
  const lines: string[] = [];
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  lines.push(`histoflow ${i.version}  (node ${i.node}, ${i.platform})`);
  lines.push(`cpu        ${i.cpu.model}, ${i.cpu.cores} cores, ${i.cpu.memoryGiB} GiB`);
  if (i.addon.loaded) {
    const a = i.addon;
    lines.push(`addon      loaded from ${a.path}`);
    lines.push(`  cpu level ${a.cpuLevel.level}: ${a.cpuLevel.why}`);
    lines.push(`  simd     ${a.simd}; threads ${a.threads}; openmp ${yes(a.openmp)}; ${a.compiler}`);
    lines.push(`  cuda     compiled ${yes(a.cuda.compiled)}${a.cuda.version ? ` (runtime ${a.cuda.version})` : ''}`);
    if (a.cuda.devices.length) {
      for (const d of a.cuda.devices) lines.push(`           ${d.name}, ${d.memoryGiB} GiB, compute ${d.computeCapability}`);
    } else {
      lines.push(`           no devices: ${a.cuda.reason}`);
    }
    lines.push(`  openslide linked ${yes(a.openslide)}${i.openslideVersion ? ` (system ${i.openslideVersion})` : ''}`);
    lines.push(`  oneDNN   linked ${yes(a.onednn)}${i.onednnVersion ? ` (system ${i.onednnVersion})` : ''}`);
    lines.push(`  arrays   ${a.zeroCopyAsync ? 'zero-copy in async kernels (V8 backing stores held)' : 'staged copies in async kernels (built without Node\'s v8.h)'}`);
    const off = Object.entries(a.features ?? {}).filter(([k, v]) => k !== 'levels' && v.startsWith('OFF'));
    for (const [k, v] of off) lines.push(`  ${k} off at build time: ${v.replace(/^OFF \((.*)\)$/, '$1')}`);
  } else {
    lines.push(`addon      NOT loaded: ${i.addon.reason}`);
  }
  lines.push('kernel backends (auto picks the first available):');
  for (const b of i.kernelBackends) lines.push(`  ${b.available ? '✓' : '✗'} ${b.name.padEnd(6)} ${b.detail}`);
  lines.push(`gpu.js modes: ${i.gpujsModes.length ? i.gpujsModes.join(', ') : 'none (gpu.js not installed)'}`);
  lines.push('TF.js backends:');
  for (const t of i.tfjsBackends) lines.push(`  ${t.available ? '✓' : '✗'} ${t.name.padEnd(18)} ${t.package}: ${t.detail}`);
  lines.push('training backends (TF.js; auto picks the first available):');
  for (const b of i.trainingBackends) lines.push(`  ${b.available ? '✓' : '✗'} ${b.name.padEnd(10)} ${b.detail}`);
  const o = i.onnxruntime;
  lines.push(o.available ? `onnxruntime ${o.version} (ONNX models): providers ${o.providers.join(', ')}` : `onnxruntime NOT available (ONNX models): ${o.reason}`);
  return lines.join('\n');
}
