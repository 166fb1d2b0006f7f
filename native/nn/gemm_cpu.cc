#include <algorithm>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "core/runtime.h"
#include "nn/engine.h"
#include "nn/gemm.h"
#include "nn/register_tile.h"

#ifdef HISTOFLOW_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

namespace hf::nn {
namespace {

using namespace tile;  // VL, MR, NR, vf, vfu (nn/register_tile.h)

// Cache blocking: a KC×NR panel of B stays in L1, an MC×KC block of A in L2.
constexpr int64_t KC = 256;
constexpr int64_t MC = MR * 16;
constexpr int64_t NC = 4096;
// Columns of one threaded task (a multiple of NR).
constexpr int64_t NB = NR * 8;

struct Operand {
  const float* p;
  int64_t ld;
  bool trans;
  // Element (row, col) of op(X).
  float at(int64_t r, int64_t c) const { return trans ? p[c * ld + r] : p[r * ld + c]; }
};

// A rows [i0, i0+mc) × cols [p0, p0+kc) → MR-row panels, p-major, zero padded.
void pack_a(const Operand& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
  for (int64_t ir = 0; ir < mc; ir += MR) {
    int rows = static_cast<int>(std::min<int64_t>(MR, mc - ir));
    if (a.trans && rows == MR) {
      // Aᵀ stored [K, M]: each k holds the panel's MR values side by side.
      for (int64_t p = 0; p < kc; ++p, dst += MR) std::memcpy(dst, a.p + (p0 + p) * a.ld + i0 + ir, MR * sizeof(float));
      continue;
    }
    if (!a.trans && rows == MR) {
      // A stored [M, K]: read each row contiguously, interleave into the panel.
      for (int r = 0; r < MR; ++r) {
        const float* src = a.p + (i0 + ir + r) * a.ld + p0;
        for (int64_t p = 0; p < kc; ++p) dst[p * MR + r] = src[p];
      }
      dst += kc * MR;
      continue;
    }
    for (int64_t p = 0; p < kc; ++p) {
      for (int r = 0; r < MR; ++r) *dst++ = r < rows ? a.at(i0 + ir + r, p0 + p) : 0.0f;
    }
  }
}

// B rows [p0, p0+kc) × cols [j0+jr, +NR) → one KC×NR panel, zero padded.
void pack_b_panel(const Operand& b, int64_t p0, int64_t kc, int64_t j, int64_t nc_end, float* dst) {
  int cols = static_cast<int>(std::min<int64_t>(NR, nc_end - j));
  for (int64_t p = 0; p < kc; ++p) {
    if (!b.trans && cols == NR) {
      std::memcpy(dst, b.p + (p0 + p) * b.ld + j, NR * sizeof(float));
    } else {
      for (int c = 0; c < NR; ++c) dst[c] = c < cols ? b.at(p0 + p, j + c) : 0.0f;
    }
    dst += NR;
  }
}

// C[mr×nr] += alpha · (packed A panel)·(packed B panel).
void micro_kernel(int64_t kc, const float* __restrict pa, const float* __restrict pb, float* c, int64_t ldc, int mr,
                  int nr, float alpha) {
  vf acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = vf{};
  for (int64_t p = 0; p < kc; ++p) {
    vf b0 = *reinterpret_cast<const vf*>(pb);
    vf b1 = *reinterpret_cast<const vf*>(pb + VL);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      vf av = vf{} + pa[r];
      acc[r][0] += av * b0;
      acc[r][1] += av * b1;
    }
    pa += MR;
    pb += NR;
  }
  if (mr == MR && nr == NR) {
    for (int r = 0; r < MR; ++r) {
      vfu* row = reinterpret_cast<vfu*>(c + r * ldc);
      row[0] += acc[r][0] * alpha;
      row[1] += acc[r][1] * alpha;
    }
    return;
  }
  alignas(64) float tile[MR][NR];
  for (int r = 0; r < MR; ++r) {
    *reinterpret_cast<vf*>(&tile[r][0]) = acc[r][0] * alpha;
    *reinterpret_cast<vf*>(&tile[r][VL]) = acc[r][1] * alpha;
  }
  for (int r = 0; r < mr; ++r)
    for (int j = 0; j < nr; ++j) c[r * ldc + j] += tile[r][j];
}

void scale_c(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  if (beta == 1.0f) return;
  parallel_for(m, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      float* row = c + i * ldc;
      if (beta == 0.0f) {
        std::fill(row, row + n, 0.0f);
      } else {
        for (int64_t j = 0; j < n; ++j) row[j] *= beta;
      }
    }
  });
}

void gemm_blocked(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Few output blocks but a long K (a filter gradient: K = every output pixel of
// the batch): threads take slices of K into private C's, summed in a fixed
// order afterwards (deterministic for a given thread count).
bool gemm_split_k(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int64_t threads = cpu_threads();
  const int64_t tasks = ((m + MC - 1) / MC) * ((std::min(n, NC) + NB - 1) / NB);
  if (threads < 2 || tasks >= threads || k < 8 * KC) return false;
  const int64_t parts = threads;
  std::vector<float> partial(parts * m * n);
  parallel_for(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t part = p0; part < p1; ++part) {
      int64_t k0 = k * part / parts, k1 = k * (part + 1) / parts;
      const float* ak = trans_a ? a + k0 * lda : a + k0;
      const float* bk = trans_b ? b + k0 : b + k0 * ldb;
      // Runs inside a parallel region: its own parallel_for stays on this thread.
      gemm_blocked(trans_a, trans_b, m, n, k1 - k0, alpha, ak, lda, bk, ldb, 0.0f, partial.data() + part * m * n, n);
    }
  });
  parallel_for(m, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = 0; j < n; ++j) {
        float sum = 0.0f;
        for (int64_t part = 0; part < parts; ++part) sum += partial[(part * m + i) * n + j];
        float& out = c[i * ldc + j];
        out = beta == 0.0f ? sum : beta * out + sum;
      }
  });
  return true;
}

}  // namespace

void sgemm_builtin(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                   int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  if (k > 0 && alpha != 0.0f && gemm_split_k(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
  gemm_blocked(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

namespace {

void gemm_blocked(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  scale_c(m, n, beta, c, ldc);
  if (k <= 0 || alpha == 0.0f) return;
  const Operand A{a, lda, trans_a}, B{b, ldb, trans_b};
  std::vector<float, std::allocator<float>> b_pack;
  for (int64_t jc = 0; jc < n; jc += NC) {
    int64_t nc = std::min(NC, n - jc);
    int64_t panels = (nc + NR - 1) / NR;
    for (int64_t pc = 0; pc < k; pc += KC) {
      int64_t kc = std::min(KC, k - pc);
      // One 64-byte-aligned region for the packed B block.
      b_pack.resize(panels * kc * NR + 16);
      float* pb = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(b_pack.data()) + 63) & ~uintptr_t{63});
      parallel_for(panels, 4, [&](int64_t p0, int64_t p1) {
        for (int64_t jp = p0; jp < p1; ++jp) pack_b_panel(B, pc, kc, jc + jp * NR, jc + nc, pb + jp * kc * NR);
      });
      int64_t m_blocks = (m + MC - 1) / MC, n_blocks = (nc + NB - 1) / NB;
      parallel_for(m_blocks * n_blocks, 1, [&](int64_t t0, int64_t t1) {
        alignas(64) static thread_local float a_pack[MC * KC];
        int64_t packed_block = -1;
        for (int64_t t = t0; t < t1; ++t) {
          int64_t ib = t / n_blocks, jb = t % n_blocks;
          int64_t ic = ib * MC, mc = std::min(MC, m - ic);
          if (packed_block != ib) {
            pack_a(A, ic, mc, pc, kc, a_pack);
            packed_block = ib;
          }
          int64_t j_end = std::min(nc, (jb + 1) * NB);
          for (int64_t jr = jb * NB; jr < j_end; jr += NR) {
            int nr = static_cast<int>(std::min<int64_t>(NR, nc - jr));
            const float* pb_panel = pb + (jr / NR) * kc * NR;
            for (int64_t ir = 0; ir < mc; ir += MR) {
              int mr = static_cast<int>(std::min<int64_t>(MR, mc - ir));
              micro_kernel(kc, a_pack + ir * kc, pb_panel, c + (ic + ir) * ldc + jc + jr, ldc, mr, nr, alpha);
            }
          }
        }
      });
    }
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
#ifdef HISTOFLOW_WITH_ONEDNN
  if (engine() == Engine::OneDnn && m > 0 && n > 0 && k > 0) {
    // dnnl_sgemm is row-major (C = alpha·op(A)·op(B) + beta·C).
    if (dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) ==
        dnnl_success)
      return;
  }
#endif
  sgemm_builtin(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace hf::nn
