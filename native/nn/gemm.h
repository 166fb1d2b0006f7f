// Single-precision GEMM, row-major: C[M,N] = alpha·op(A)·op(B) + beta·C with
// op(A) = A[M,K] (lda ≥ K) or Aᵀ where A is stored [K,M] (lda ≥ M), likewise B.
// beta = 0 never reads C (it may hold garbage or NaN).
//
// Engine::OneDnn calls dnnl_sgemm; Engine::Builtin is a Goto-style blocked GEMM:
// B packed into KC×NR panels, A into MR×KC panels, an MR×NR register-tile
// micro-kernel written with GCC vector extensions (AVX-512 or AVX2/FMA under
// -march=native), OpenMP threads over blocks of M (or of N when M is small).
#pragma once
#include <cstdint>

namespace hf::nn {

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The built-in GEMM regardless of the engine (the oneDNN path calls it too for
// shapes dnnl_sgemm rejects).
void sgemm_builtin(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                   int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace hf::nn
