/**
 * A KernelBackend over any PixelMaps: the per-pixel work runs on the maps
 * (plain loops for 'js', gpu.js kernels for 'gpujs'), the host algorithms
 * (Macenko, Vahadane, fixed stains, Reinhard statistics) run here once for
 * both, with reductions and percentiles in double, deciding as the cpu
 * backend does (native/stain/*_cpu.cc).
 */
import {
  angleOfPseudo,
  eigh3,
  lerpNumpy,
  percentileLinear,
  percentileOrderPair,
  splitmix64Unit,
  stainPinv,
} from '../stain/math.js';
import { vahadaneFactorize } from '../stain/vahadane_nmf.js';
import { deconvolutionLogTable, odTable, runsOf, tissueTable, type PixelMaps, type PixelRun } from './pixel_maps.js';
import { FitStatus } from './types.js';
import type {
  KernelBackend,
  KernelBackendName,
  LabStats,
  MacenkoParams,
  OdParams,
  RgbBatch,
  StainFit,
  TissueParams,
  VahadaneParams,
} from './types.js';

function outputArray<T extends Float32Array | Uint8Array>(out: T | undefined, length: number, make: (n: number) => T, name: string): T {
  if (out === undefined) return make(length);
  if (out.length !== length) throw new RangeError(`Expected ${name} of length ${length} but received length ${out.length}`);
  return out;
}

function emptyFit(tissuePixels = 0, status = FitStatus.Ok): StainFit {
  return { he: [0, 0, 0, 0, 0, 0], maxC: [0, 0], tissuePixels, status };
}

/** Tissue mask of every pixel of a run. */
async function tissueOf(maps: PixelMaps, run: PixelRun, tissue: TissueParams, od: OdParams): Promise<Uint8Array> {
  const scores = new Float32Array(run.images * 768);
  const below = new Float32Array(run.images);
  const values = run.pixelsPerImage * 3;
  for (let img = 0; img < run.images; img++) {
    below[img] = tissueTable(run.rgb.subarray(img * values, (img + 1) * values), tissue, od, scores.subarray(img * 768, (img + 1) * 768));
  }
  const mask = new Uint8Array(run.pixels);
  await maps.tissueMask(run, scores, below, mask);
  return mask;
}

/** For fits still Ok: max_c = 99th percentile of the least-squares concentrations over all the image's pixels. */
async function fitMaxC(maps: PixelMaps, run: PixelRun, odTab: Float32Array, fits: StainFit[]): Promise<void> {
  const pinvs = new Float64Array(run.images * 6);
  const active: boolean[] = [];
  for (let img = 0; img < run.images; img++) {
    const fit = fits[run.firstImage + img]!;
    if (fit.status !== FitStatus.Ok) {
      active.push(false);
      continue;
    }
    const pinv = run.pixelsPerImage > 0 ? stainPinv(Float32Array.from(fit.he)) : null;
    if (!pinv) {
      fit.status = FitStatus.Degenerate;
      fit.maxC = [0, 0];
    } else {
      pinvs.set(pinv, img * 6);
    }
    active.push(pinv !== null);
  }
  if (!active.some(Boolean)) return;
  const conc = new Float32Array(run.pixels * 2);
  await maps.concentrations(run, odTab, pinvs, conc);
  const ppi = run.pixelsPerImage;
  const column = new Float32Array(ppi);
  for (let img = 0; img < run.images; img++) {
    if (!active[img]) continue;
    const fit = fits[run.firstImage + img]!;
    for (let s = 0; s < 2; s++) {
      for (let k = 0; k < ppi; k++) column[k] = conc[(img * ppi + k) * 2 + s]!;
      fit.maxC[s] = Math.fround(percentileLinear(column, 99));
    }
    if (!(fit.maxC[0]! > 0 && fit.maxC[1]! > 0 && Number.isFinite(fit.maxC[0]) && Number.isFinite(fit.maxC[1]))) {
      fit.status = FitStatus.Degenerate;
    }
  }
}


/** Per-image L*a*b* statistics (reinhardFit) from the maps' 8-bit LAB. */
async function labStats(maps: PixelMaps, batch: RgbBatch): Promise<LabStats[]> {
  const stats: LabStats[] = [];
  const ppi = batch.height * batch.width;
  for (const run of runsOf(batch, maps.maxPixelsPerRun)) {
    const lab = new Uint8Array(run.pixels * 3);
    await maps.lab8(run.rgb, lab);
    for (let img = 0; img < run.images; img++) {
      // The 8-bit channels take 256 values: a histogram gives exact double sums.
      const hist = new Float64Array(3 * 256);
      for (let i = img * ppi * 3; i < (img + 1) * ppi * 3; i += 3) {
        hist[lab[i]!]++;
        hist[256 + lab[i + 1]!]++;
        hist[512 + lab[i + 2]!]++;
      }
      const mean = [0, 0, 0];
      const std = [0, 0, 0];
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        let sq = 0;
        for (let v = 0; v < 256; v++) {
          const x = c === 0 ? v / 2.55 : v - 128;
          sum += hist[c * 256 + v]! * x;
          sq += hist[c * 256 + v]! * x * x;
        }
        // An empty image keeps the neutral statistics (mean 0, std 1).
        mean[c] = ppi > 0 ? sum / ppi : 0;
        std[c] = ppi > 0 ? Math.sqrt(Math.max(sq / ppi - mean[c]! * mean[c]!, 0)) : 1;
      }
      stats.push({ mean, std, pixels: ppi });
    }
  }
  return stats;
}

/** Macenko's fit of every image of a run into `fits`: covariance, eigenbasis, angle percentiles, max_c. */
async function macenkoRun(maps: PixelMaps, run: PixelRun, p: MacenkoParams, odTab: Float32Array, fits: StainFit[]): Promise<void> {
  const ppi = run.pixelsPerImage;
  const mask = await tissueOf(maps, run, p.tissue, p.od);
  const basis = new Float64Array(run.images * 6);
  const counts: number[] = [];
  for (let img = 0; img < run.images; img++) {
    // Covariance of the tissue ODs (np.cov: centred, ddof 1), in double.
    const s = new Float64Array(9);
    let count = 0;
    for (let k = img * ppi; k < (img + 1) * ppi; k++) {
      if (!mask[k]) continue;
      const r = odTab[run.rgb[k * 3]!]!;
      const g = odTab[run.rgb[k * 3 + 1]!]!;
      const b = odTab[run.rgb[k * 3 + 2]!]!;
      count++;
      s[0] += r;
      s[1] += g;
      s[2] += b;
      s[3] += r * r;
      s[4] += r * g;
      s[5] += r * b;
      s[6] += g * g;
      s[7] += g * b;
      s[8] += b * b;
    }
    counts.push(count);
    const fit = emptyFit(count);
    fits[run.firstImage + img] = fit;
    if (count < 2) {
      fit.status = FitStatus.TooFewTissuePixels;
      continue;
    }
    const m = [s[0]! / count, s[1]! / count, s[2]! / count];
    const c = (i: number, j: number, sij: number) => (sij - count * m[i]! * m[j]!) / (count - 1);
    const cxy = [c(0, 0, s[3]!), c(0, 1, s[4]!), c(0, 2, s[5]!), c(1, 1, s[6]!), c(1, 2, s[7]!), c(2, 2, s[8]!)];
    const { vectors } = eigh3([cxy[0]!, cxy[1]!, cxy[2]!, cxy[1]!, cxy[3]!, cxy[4]!, cxy[2]!, cxy[4]!, cxy[5]!]);
    // φ = atan2(od·e1, od·e2) as HEnorm_python, e1 the principal axis turned so tissue projects positively.
    const e1 = [vectors[2]!, vectors[5]!, vectors[8]!];
    const e2 = [vectors[1]!, vectors[4]!, vectors[7]!];
    const flip = e1[0]! * m[0]! + e1[1]! * m[1]! + e1[2]! * m[2]! < 0 ? -1 : 1;
    for (let k = 0; k < 3; k++) {
      basis[img * 6 + k] = e2[k]!;
      basis[img * 6 + 3 + k] = flip * e1[k]!;
    }
  }
  if (!fits.slice(run.firstImage, run.firstImage + run.images).some((f) => f.status === FitStatus.Ok)) return;
  const phi = new Float32Array(run.pixels);
  await maps.angles(run, odTab, basis, phi);
  for (let img = 0; img < run.images; img++) {
    const fit = fits[run.firstImage + img]!;
    if (fit.status !== FitStatus.Ok) continue;
    const tissuePhi = new Float64Array(counts[img]!);
    let n = 0;
    for (let k = img * ppi; k < (img + 1) * ppi; k++) if (mask[k]) tissuePhi[n++] = phi[k]!;
    const angle = (percent: number) => {
      const { lo, hi, frac } = percentileOrderPair(tissuePhi, percent);
      return lerpNumpy(angleOfPseudo(lo), angleOfPseudo(hi), frac);
    };
    const minPhi = angle(p.alpha);
    const maxPhi = angle(100 - p.alpha);
    const e = basis.subarray(img * 6, img * 6 + 6);
    const v1 = [0, 1, 2].map((k) => e[k]! * Math.cos(minPhi) + e[3 + k]! * Math.sin(minPhi));
    const v2 = [0, 1, 2].map((k) => e[k]! * Math.cos(maxPhi) + e[3 + k]! * Math.sin(maxPhi));
    // Hematoxylin is the vector with the larger red OD.
    const [h, eo] = v1[0]! > v2[0]! ? [v1, v2] : [v2, v1];
    const hNorm = p.unitRows ? Math.sqrt(h[0]! * h[0]! + h[1]! * h[1]! + h[2]! * h[2]!) : 1;
    const eNorm = p.unitRows ? Math.sqrt(eo[0]! * eo[0]! + eo[1]! * eo[1]! + eo[2]! * eo[2]!) : 1;
    if (!(hNorm > 0 && eNorm > 0)) {
      fit.status = FitStatus.Degenerate;
      continue;
    }
    fit.he = [...h.map((x) => Math.fround(x / hNorm)), ...eo.map((x) => Math.fround(x / eNorm))];
  }
  await fitMaxC(maps, run, odTab, fits);
}

/** Vahadane's fit of every image of a run into `fits`: sampled tissue ODs, the factorization, max_c. */
async function vahadaneRun(maps: PixelMaps, run: PixelRun, p: VahadaneParams, odTab: Float32Array, fits: StainFit[]): Promise<void> {
  const ppi = run.pixelsPerImage;
  const mask = await tissueOf(maps, run, p.tissue, p.od);
  const u = splitmix64Unit(BigInt(p.seed), 0);
  for (let img = 0; img < run.images; img++) {
    const tissue: number[] = [];
    for (let k = img * ppi; k < (img + 1) * ppi; k++) if (mask[k]) tissue.push(k);
    const fit = emptyFit(tissue.length);
    fits[run.firstImage + img] = fit;
    if (tissue.length < 2) {
      fit.status = FitStatus.TooFewTissuePixels;
      continue;
    }
    let chosen = tissue;
    if (p.maxPixels > 0 && tissue.length > p.maxPixels) {
      const step = tissue.length / p.maxPixels;
      chosen = Array.from({ length: p.maxPixels }, (_, k) => tissue[Math.min(Math.floor((k + u) * step), tissue.length - 1)]!);
    }
    const od = new Float64Array(chosen.length * 3);
    chosen.forEach((k, j) => {
      for (let c = 0; c < 3; c++) od[j * 3 + c] = odTab[run.rgb[k * 3 + c]!]!;
    });
    const w = vahadaneFactorize(od, p.lambda, p.iterations);
    if (!w) {
      fit.status = FitStatus.Degenerate;
      continue;
    }
    fit.he = Array.from(w, (x) => Math.fround(x));
  }
  await fitMaxC(maps, run, odTab, fits);
}

/** A KernelBackend whose per-pixel work runs on `maps` and whose reductions run here. */
export function pixelMapBackend(name: KernelBackendName, maps: PixelMaps): KernelBackend {
  const runs = (batch: RgbBatch) => runsOf(batch, maps.maxPixelsPerRun);
  return {
    name,

    async rgbToOd(batch, p, out) {
      const result = outputArray(out, batch.data.length, (n) => new Float32Array(n), 'out');
      const table = odTable(p);
      for (const run of runs(batch)) {
        const at = run.firstImage * run.pixelsPerImage * 3;
        await maps.lookup(run.rgb, table, result.subarray(at, at + run.rgb.length));
      }
      return result;
    },

    async odToRgb(od, pixels, p, out) {
      if (od.length !== pixels * 3) throw new RangeError(`Expected od of length ${pixels * 3} but received length ${od.length}`);
      const result = outputArray(out, pixels * 3, (n) => new Uint8Array(n), 'out');
      for (let at = 0; at < pixels * 3; at += maps.maxPixelsPerRun * 3) {
        const end = Math.min(at + maps.maxPixelsPerRun * 3, pixels * 3);
        await maps.odToRgb(od.subarray(at, end), p, result.subarray(at, end));
      }
      return result;
    },

    async deconvolve(batch, stainFromRgb, out) {
      const result = outputArray(out, batch.data.length, (n) => new Float32Array(n), 'out');
      const table = deconvolutionLogTable();
      const m = Float32Array.from(stainFromRgb);
      for (const run of runs(batch)) {
        const at = run.firstImage * run.pixelsPerImage * 3;
        await maps.deconvolve(run.rgb, table, m, result.subarray(at, at + run.rgb.length));
      }
      return result;
    },

    async reconvolve(stains, pixels, rgbFromStain, out) {
      if (stains.length !== pixels * 3) throw new RangeError(`Expected stains of length ${pixels * 3} but received length ${stains.length}`);
      const result = outputArray(out, pixels * 3, (n) => new Uint8Array(n), 'out');
      const m = Float32Array.from(rgbFromStain);
      for (let at = 0; at < pixels * 3; at += maps.maxPixelsPerRun * 3) {
        const end = Math.min(at + maps.maxPixelsPerRun * 3, pixels * 3);
        await maps.reconvolve(stains.subarray(at, end), m, result.subarray(at, end));
      }
      return result;
    },

    reinhardFit: (batch) => labStats(maps, batch),

    async reinhardTransform(batch, target, out) {
      const result = outputArray(out, batch.data.length, (n) => new Uint8Array(n), 'out');
      const own = await labStats(maps, batch);
      for (const run of runs(batch)) {
        // Per image and channel, the transfer of every 8-bit level, in double:
        // y = (x − μ)·σt/σ + μt back to 8-bit scaling, clipped, truncated (astype uint8).
        const tables = new Uint8Array(run.images * 768);
        for (let img = 0; img < run.images; img++) {
          const s = own[run.firstImage + img]!;
          for (let c = 0; c < 3; c++) {
            // A flat channel is shifted only, never divided by ~0.
            const gain = s.std[c]! < 1e-6 ? 1 : target.std[c]! / s.std[c]!;
            for (let v = 0; v < 256; v++) {
              const y = ((c === 0 ? v / 2.55 : v - 128) - s.mean[c]!) * gain + target.mean[c]!;
              const scaled = c === 0 ? y * 2.55 : y + 128;
              tables[img * 768 + c * 256 + v] = Math.min(Math.max(scaled, 0), 255);
            }
          }
        }
        const at = run.firstImage * run.pixelsPerImage * 3;
        await maps.reinhard(run, tables, result.subarray(at, at + run.rgb.length));
      }
      return result;
    },

    async macenkoFit(batch, p) {
      const fits: StainFit[] = [];
      const table = odTable(p.od);
      for (const run of runs(batch)) await macenkoRun(maps, run, p, table, fits);
      return fits;
    },

    async vahadaneFit(batch, p) {
      const fits: StainFit[] = [];
      const table = odTable(p.od);
      for (const run of runs(batch)) await vahadaneRun(maps, run, p, table, fits);
      return fits;
    },

    async stainFitFixed(batch, he, od) {
      const ppi = batch.height * batch.width;
      const fits: StainFit[] = Array.from({ length: batch.n }, () => ({ ...emptyFit(ppi), he: Array.from(Float32Array.from(he)) }));
      if (batch.n > 0 && ppi === 0) fits.forEach((f) => (f.status = FitStatus.Degenerate));
      const table = odTable(od);
      for (const run of runs(batch)) await fitMaxC(maps, run, table, fits);
      return fits;
    },

    async stainTransform(batch, fits, p, out, hOnly, eOnly) {
      if (fits.length !== batch.n) throw new RangeError(`Expected ${batch.n} fits but received ${fits.length}`);
      const length = batch.data.length;
      const result = outputArray(out, length, (n) => new Uint8Array(n), 'out');
      outputArray(hOnly, length, (n) => new Uint8Array(n), 'hOnly');
      outputArray(eOnly, length, (n) => new Uint8Array(n), 'eOnly');
      const table = odTable(p.od);
      const targets: [Uint8Array | undefined, boolean, boolean][] = [
        [result, true, true],
        [hOnly, true, false],
        [eOnly, false, true],
      ];
      for (const run of runs(batch)) {
        const at = run.firstImage * run.pixelsPerImage * 3;
        const values = run.pixelsPerImage * 3;
        const pinvs: (Float64Array | null)[] = [];
        for (let img = 0; img < run.images; img++) {
          const fit = fits[run.firstImage + img]!;
          const ok = fit.status === FitStatus.Ok && fit.maxC[0]! > 0 && fit.maxC[1]! > 0;
          pinvs.push(ok ? stainPinv(Float32Array.from(fit.he)) : null);
        }
        for (const [target, useH, useE] of targets) {
          if (!target) continue;
          const view = target.subarray(at, at + run.rgb.length);
          // Per image M = HE_targetᵀ·diag(max_c target / max_c)·pinv: concentrations, scaling and re-rendering in one matrix.
          const matrices = new Float32Array(run.images * 9);
          pinvs.forEach((pinv, img) => {
            if (!pinv) return;
            const fit = fits[run.firstImage + img]!;
            const scale = [Math.fround(p.targetMaxC[0]!) / Math.fround(fit.maxC[0]!), Math.fround(p.targetMaxC[1]!) / Math.fround(fit.maxC[1]!)];
            for (let j = 0; j < 3; j++) {
              for (let c = 0; c < 3; c++) {
                let v = 0;
                if (useH) v += Math.fround(p.targetHe[j]!) * scale[0]! * pinv[c]!;
                if (useE) v += Math.fround(p.targetHe[3 + j]!) * scale[1]! * pinv[3 + c]!;
                matrices[img * 9 + j * 3 + c] = v;
              }
            }
          });
          if (pinvs.some((x) => x !== null)) await maps.render(run, table, matrices, Math.fround(p.od.io), p.overflowValue, view);
          // Refused fits leave the image (and its single-stain views) as it was.
          pinvs.forEach((pinv, img) => {
            if (!pinv) view.set(run.rgb.subarray(img * values, (img + 1) * values), img * values);
          });
        }
      }
      return result;
    },

    async stainConcentrations(batch, fits, od, out) {
      if (fits.length !== batch.n) throw new RangeError(`Expected ${batch.n} fits but received ${fits.length}`);
      const result = outputArray(out, batch.n * batch.height * batch.width * 2, (n) => new Float32Array(n), 'out');
      const table = odTable(od);
      for (const run of runs(batch)) {
        const pinvs = new Float64Array(run.images * 6);
        for (let img = 0; img < run.images; img++) {
          // Any non-singular matrix is usable here, whatever the fit status; a singular one gives zeros.
          const pinv = stainPinv(Float32Array.from(fits[run.firstImage + img]!.he));
          if (pinv) pinvs.set(pinv, img * 6);
        }
        const at = run.firstImage * run.pixelsPerImage * 2;
        await maps.concentrations(run, table, pinvs, result.subarray(at, at + run.pixels * 2));
      }
      return result;
    },
  };
}
