/**
 * Vahadane's sparse non-negative factorization of tissue optical densities,
 * in double, as native/stain/vahadane.h specifies it: the host step of the
 * 'js' and 'gpujs' backends' vahadaneFit.
 */

/**
 * Vahadane's alternating minimization, exactly as native/stain/vahadane.h
 * step 3-5 specify, in double. od: pixels·3. Returns W (rows H, E) or null
 * when it degenerates.
 */
export function vahadaneFactorize(od: Float64Array, lambda: number, iterations: number): Float64Array | null {
  const w = new Float64Array([0.65, 0.7, 0.29, 0.07, 0.99, 0.11]);
  for (let r = 0; r < 2; r++) {
    const n = Math.sqrt(w[r * 3]! * w[r * 3]! + w[r * 3 + 1]! * w[r * 3 + 1]! + w[r * 3 + 2]! * w[r * 3 + 2]!);
    for (let k = 0; k < 3; k++) w[r * 3 + k] = w[r * 3 + k]! / n;
  }
  const pixels = od.length / 3;
  for (let it = 0; it < iterations; it++) {
    const g00 = w[0]! * w[0]! + w[1]! * w[1]! + w[2]! * w[2]!;
    const g11 = w[3]! * w[3]! + w[4]! * w[4]! + w[5]! * w[5]!;
    const g01 = w[0]! * w[3]! + w[1]! * w[4]! + w[2]! * w[5]!;
    const detG = g00 * g11 - g01 * g01;
    if (!(detG > 1e-12 * (g00 + g11) * (g00 + g11))) return null;
    let a00 = 0;
    let a01 = 0;
    let a11 = 0;
    const cod = new Float64Array(6);
    for (let j = 0; j < pixels; j++) {
      const o0 = od[j * 3]!;
      const o1 = od[j * 3 + 1]!;
      const o2 = od[j * 3 + 2]!;
      const b0 = w[0]! * o0 + w[1]! * o1 + w[2]! * o2;
      const b1 = w[3]! * o0 + w[4]! * o1 + w[5]! * o2;
      // Exact minimizer of ½‖od − c·W‖² + λ(c0 + c1) over c ≥ 0.
      let c0 = (g11 * (b0 - lambda) - g01 * (b1 - lambda)) / detG;
      let c1 = (g00 * (b1 - lambda) - g01 * (b0 - lambda)) / detG;
      if (!(c0 >= 0 && c1 >= 0)) {
        const ca = Math.max(0, (b0 - lambda) / g00);
        const cb = Math.max(0, (b1 - lambda) / g11);
        // Objectives without the common ½‖od‖² term.
        const fa = 0.5 * ca * ca * g00 - ca * b0 + lambda * ca;
        const fb = 0.5 * cb * cb * g11 - cb * b1 + lambda * cb;
        if (fa <= fb) {
          c0 = ca;
          c1 = 0;
        } else {
          c0 = 0;
          c1 = cb;
        }
      }
      a00 += c0 * c0;
      a01 += c0 * c1;
      a11 += c1 * c1;
      cod[0] += c0 * o0;
      cod[1] += c0 * o1;
      cod[2] += c0 * o2;
      cod[3] += c1 * o0;
      cod[4] += c1 * o1;
      cod[5] += c1 * o2;
    }
    // Dictionary update of Mairal et al. 2010 (SPAMS, scikit-learn) with
    // A = CᵀC, B = CᵀOD: each row in turn, using the rows already updated,
    // clipped at 0 and scaled into the unit ball.
    const a = [a00, a01, a01, a11];
    for (let j = 0; j < 2; j++) {
      const ajj = a[j * 2 + j]!;
      if (!(ajj > 1e-12)) continue;
      for (let k = 0; k < 3; k++) {
        const aw = a[j * 2]! * w[k]! + a[j * 2 + 1]! * w[3 + k]!;
        w[j * 3 + k] = Math.max(0, w[j * 3 + k]! + (cod[j * 3 + k]! - aw) / ajj);
      }
      const n = Math.sqrt(w[j * 3]! * w[j * 3]! + w[j * 3 + 1]! * w[j * 3 + 1]! + w[j * 3 + 2]! * w[j * 3 + 2]!);
      const scale = Math.max(n, 1);
      for (let k = 0; k < 3; k++) w[j * 3 + k] = w[j * 3 + k]! / scale;
    }
  }
  // Unit rows; a zero row or collinear rows are degenerate.
  for (let r = 0; r < 2; r++) {
    const n = Math.sqrt(w[r * 3]! * w[r * 3]! + w[r * 3 + 1]! * w[r * 3 + 1]! + w[r * 3 + 2]! * w[r * 3 + 2]!);
    if (!(n > 0) || !Number.isFinite(n)) return null;
    for (let k = 0; k < 3; k++) w[r * 3 + k] = w[r * 3 + k]! / n;
  }
  if (Math.abs(w[0]! * w[3]! + w[1]! * w[4]! + w[2]! * w[5]!) > 1 - 1e-6) return null;
  if (w[3]! > w[0]!) {
    for (let k = 0; k < 3; k++) {
      const t = w[k]!;
      w[k] = w[3 + k]!;
      w[3 + k] = t;
    }
  }
  return w;
}
