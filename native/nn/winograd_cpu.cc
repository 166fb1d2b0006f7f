// Winograd F(4×4, 3×3) convolution, forward and both gradients (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", CVPR 2016), for 3×3, stride-1, undilated
// convolutions in NHWC. Each 4×4 block of outputs (a tile) is computed from the
// 6×6 block of input under it as
//   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
// so the 36 products per tile and channel pair replace 144 multiply-adds of the
// direct convolution: summed over input channels, they are 36 independent
// GEMMs of [tiles × in_c] · [in_c × out_c]. The matrices are the paper's, for
// the interpolation points 0, ±1, ±2 and ∞.
//
// The work goes in blocks of tiles sized to stay in L2: the block's input
// tiles transformed (V = Bᵀ d B, vectors across channels), the 36 GEMMs
// against the transformed filter (U = G g Gᵀ, computed once per call, in
// double, packed into panels the register-tile kernel reads), and the inverse
// transform with the bias, the residual addend and the activation applied as
// each output is stored. Threads take blocks; every output is written by one
// thread, so the result is the same for any thread count. The input gradient
// is such a forward; the filter gradient reuses the input transform (below).
//
// Error: the transforms' coefficients (up to 8 and 1/24) round at about 1e-6
// of Σ|x||w| per output (measured in native/tests/test_nn.cc), against ~1e-7 for the direct sum.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <memory>
#include <vector>

#include "core/parallel.h"
#include "core/runtime.h"
#include "nn/activation.h"
#include "nn/conv2d.h"
#include "nn/engine.h"
#include "nn/register_tile.h"

namespace hf::nn {
namespace {

using namespace tile;  // VL, MR, NR (output channels per GEMM panel), vf, vfu

constexpr int kPoints = 36;  // 6×6 transformed values per tile

// Floats of one block's transformed inputs and products: about half of a 2 MiB L2.
constexpr int64_t kBlockFloats = int64_t{1} << 17;

// The filter gradient's GEMMs run over the block's tiles (their K): longer blocks load and
// store each accumulator tile less often.
constexpr int64_t kGradientBlockFloats = kBlockFloats * 4;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

struct Plan {
  int64_t tiles_h, tiles_w, tiles;  // 4×4 output tiles per image row / column / in all
  int64_t ldv;                      // in_c rounded up to a vector
  int64_t ldm;                      // out_c rounded up to a vector
  int64_t panels;                   // panels of NR output channels, the last one vector wide when ldm is odd in vectors
  int64_t block;                    // tiles per block, a multiple of MR
};

Plan plan_for(const Conv2dShape& s, int64_t block_floats = kBlockFloats) {
  Plan p;
  p.tiles_h = (s.out_h + 3) / 4;
  p.tiles_w = (s.out_w + 3) / 4;
  p.tiles = s.n * p.tiles_h * p.tiles_w;
  p.ldv = round_up(s.in_c, VL);
  p.ldm = round_up(s.out_c, VL);
  p.panels = (p.ldm + NR - 1) / NR;
  int64_t fit = block_floats / (kPoints * (p.ldv + p.ldm)) / MR * MR;
  p.block = std::max<int64_t>(MR, std::min<int64_t>(fit, round_up(p.tiles, MR)));
  return p;
}

// 64-byte aligned float scratch that grows and is kept (per thread, or per call).
// get() returns null when the allocation fails: inside a parallel region an
// exception could not leave it (the caller raises it afterwards).
struct Scratch {
  std::unique_ptr<float, decltype(&std::free)> data{nullptr, &std::free};
  int64_t size = 0;
  float* get(int64_t floats) {
    if (floats > size) {
      data.reset(static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(round_up(floats * sizeof(float), 64)))));
      size = data ? floats : 0;
    }
    return data.get();
  }
};

// This thread's buffer for a block's transformed tiles (the passes take turns with it), or
// null after setting `failed` when it cannot grow.
float* thread_block_buffer(int64_t floats, std::atomic<bool>& failed) {
  thread_local Scratch scratch;
  float* p = scratch.get(floats);
  if (!p) failed = true;
  return p;
}

// out[i·out_step] = G · in[a·step], i < 6, a < 3, for
//   G = [1/4 0 0; −1/6 −1/6 −1/6; −1/6 1/6 −1/6; 1/24 1/12 1/6; 1/24 −1/12 1/6; 0 0 1].
inline void filter_rows(const double* in, int step, double* out, int out_step) {
  const double g0 = in[0], g1 = in[step], g2 = in[2 * step];
  out[0] = g0 / 4;
  out[out_step] = -(g0 + g1 + g2) / 6;
  out[2 * out_step] = -(g0 - g1 + g2) / 6;
  out[3 * out_step] = g0 / 24 + g1 / 12 + g2 / 6;
  out[4 * out_step] = g0 / 24 - g1 / 12 + g2 / 6;
  out[5 * out_step] = g2;
}

// out[r·out_step] = Gᵀ · in[i·step], r < 3, i < 6 (the adjoint of filter_rows).
inline void filter_gradient_rows(const double* in, int step, double* out, int out_step) {
  const double m0 = in[0], m1 = in[step], m2 = in[2 * step], m3 = in[3 * step], m4 = in[4 * step], m5 = in[5 * step];
  out[0] = m0 / 4 - (m1 + m2) / 6 + (m3 + m4) / 24;
  out[out_step] = (m2 - m1) / 6 + (m3 - m4) / 12;
  out[2 * out_step] = (m3 + m4 - m1 - m2) / 6 + m5;
}

// U[k] = in_c × ldm floats in panels: panel q holds U[k][q][c][j] = (G g Gᵀ)[k] of filter
// g = f[·, ·, c, q·NR + j] (0 past out_c), j < the panel's width (NR, or VL for the last of an odd count).
void transform_filter(const Conv2dShape& s, const Plan& p, const float* f, float* u) {
  const int64_t point_stride = s.in_c * p.ldm;
  parallel_for(s.in_c, 4, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t o = 0; o < p.ldm; ++o) {
        double ug[kPoints] = {};
        if (o < s.out_c) {
          double g[9], t[18];
          for (int rq = 0; rq < 9; ++rq) g[rq] = f[(rq * s.in_c + c) * s.out_c + o];
          for (int q = 0; q < 3; ++q) filter_rows(g + q, 3, t + q, 3);       // t[6][3] = G g (columns)
          for (int i = 0; i < 6; ++i) filter_rows(t + i * 3, 1, ug + i * 6, 1);  // ug = t Gᵀ (rows)
        }
        const int64_t panel = o / NR, j = o % NR, width = std::min<int64_t>(NR, p.ldm - panel * NR);
        float* dst = u + panel * NR * s.in_c + c * width + j;
        for (int k = 0; k < kPoints; ++k) dst[k * point_stride] = static_cast<float>(ug[k]);
      }
    }
  });
}

// out[i·step] = Bᵀ · in[i·step], i < 6, for Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0;
//   0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1].
inline void input_rows(const vf* in, int step, vf* out, int out_step) {
  const vf d0 = in[0], d1 = in[step], d2 = in[2 * step], d3 = in[3 * step], d4 = in[4 * step], d5 = in[5 * step];
  const vf four = vf{} + 4.0f, five = vf{} + 5.0f, two = vf{} + 2.0f;
  const vf a = d4 - d2, b = d3 - d1;  // rows 3 and 4: a ± 2b
  out[0] = four * d0 - five * d2 + d4;
  out[out_step] = (d3 + d4) - four * (d1 + d2);
  out[2 * out_step] = (d4 - d3) + four * (d1 - d2);
  out[3 * out_step] = a + two * b;
  out[4 * out_step] = a - two * b;
  out[5 * out_step] = four * d1 - five * d3 + d5;
}

// out[i] = Aᵀ · in[i·step], i < 4, for Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1].
inline void output_rows(const vf* in, int step, vf* out, int out_step) {
  const vf m0 = in[0], m1 = in[step], m2 = in[2 * step], m3 = in[3 * step], m4 = in[4 * step], m5 = in[5 * step];
  const vf sum12 = m1 + m2, dif12 = m1 - m2, sum34 = m3 + m4, dif34 = m3 - m4;
  out[0] = m0 + sum12 + sum34;
  out[out_step] = dif12 + 2.0f * dif34;
  out[2 * out_step] = sum12 + 4.0f * sum34;
  out[3 * out_step] = dif12 + 8.0f * dif34 + m5;
}

// V[k][t][c0 …] for tile t (image b, tile row ty, column tx) and one vector of channels.
void transform_input_tile(const Conv2dShape& s, const Plan& p, const float* x, int64_t b, int64_t ty, int64_t tx,
                          int64_t c0, float* v_tile, int64_t point_stride) {
  const int64_t count = std::min<int64_t>(VL, s.in_c - c0);
  vf d[kPoints], t[kPoints];
  const int64_t y0 = ty * 4 - s.pad_top, x0 = tx * 4 - s.pad_left;
  if (count == VL && y0 >= 0 && x0 >= 0 && y0 + 6 <= s.in_h && x0 + 6 <= s.in_w) {  // inside the image
    const float* src = x + ((b * s.in_h + y0) * s.in_w + x0) * s.in_c + c0;
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 6; ++j) d[i * 6 + j] = *reinterpret_cast<const vfu*>(src + (i * s.in_w + j) * s.in_c);
  } else {  // zeros outside the image and past in_c
    for (int i = 0; i < 6; ++i) {
      const int64_t iy = y0 + i;
      for (int j = 0; j < 6; ++j) {
        const int64_t ix = x0 + j;
        vf& dst = d[i * 6 + j];
        dst = vf{};
        if (iy < 0 || iy >= s.in_h || ix < 0 || ix >= s.in_w) continue;
        std::memcpy(&dst, x + ((b * s.in_h + iy) * s.in_w + ix) * s.in_c + c0, count * sizeof(float));
      }
    }
  }
  for (int j = 0; j < 6; ++j) input_rows(d + j, 6, t + j, 6);  // t = Bᵀ d (columns)
  for (int i = 0; i < 6; ++i) input_rows(t + i * 6, 1, d + i * 6, 1);  // d = t B (rows)
  for (int k = 0; k < kPoints; ++k) *reinterpret_cast<vfu*>(v_tile + k * point_stride) = d[k];
}

// m[r·ldm + j·VL …] = Σ_c v[r·ldv + c] · u[c·NV·VL + j·VL …] for r < MR, j < NV: one register tile.
template <int NV>
inline void gemm_tile(int64_t in_c, const float* __restrict v, int64_t ldv, const float* __restrict u, float* __restrict m,
                      int64_t ldm) {
  vf acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NV; ++j) acc[r][j] = vf{};
  for (int64_t c = 0; c < in_c; ++c) {
    vf w[NV];
    for (int j = 0; j < NV; ++j) w[j] = *reinterpret_cast<const vf*>(u + (c * NV + j) * VL);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const vf a = vf{} + v[r * ldv + c];
      for (int j = 0; j < NV; ++j) acc[r][j] += a * w[j];
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NV; ++j) *reinterpret_cast<vf*>(m + r * ldm + j * VL) = acc[r][j];
}

struct Epilogue {
  const float* bias;
  const float* addend;
  Activation act;
  float alpha;
};

// The 4×4 outputs of tile t (inside the image) for one vector of output channels, from M[k][t][o0 …].
void transform_output_tile(const Conv2dShape& s, const float* m_tile, int64_t point_stride, int64_t b, int64_t ty,
                           int64_t tx, int64_t o0, const Epilogue& e, float* y) {
  const int64_t count = std::min<int64_t>(VL, s.out_c - o0);
  vf m[kPoints], t[24], out[16];
  for (int k = 0; k < kPoints; ++k) m[k] = *reinterpret_cast<const vf*>(m_tile + k * point_stride);
  for (int j = 0; j < 6; ++j) output_rows(m + j, 6, t + j, 6);        // t[4][6] = Aᵀ m
  for (int i = 0; i < 4; ++i) output_rows(t + i * 6, 1, out + i * 4, 1);  // out[4][4] = t A
  vf bias = vf{};
  if (e.bias) std::memcpy(&bias, e.bias + o0, count * sizeof(float));
  for (int i = 0; i < 4; ++i) {
    const int64_t oy = ty * 4 + i;
    if (oy >= s.out_h) break;
    for (int j = 0; j < 4; ++j) {
      const int64_t ox = tx * 4 + j;
      if (ox >= s.out_w) break;
      const int64_t at = ((b * s.out_h + oy) * s.out_w + ox) * s.out_c + o0;
      vf v = out[i * 4 + j] + bias;
      if (e.addend) {
        vf a = vf{};
        if (count == VL) {
          a = *reinterpret_cast<const vfu*>(e.addend + at);
        } else {
          std::memcpy(&a, e.addend + at, count * sizeof(float));
        }
        v += a;
      }
      if (e.act == Activation::Relu) {
        v = v > vf{} ? v : vf{};
      } else if (e.act != Activation::Linear) {
        for (int l = 0; l < VL; ++l) v[l] = activate(e.act, v[l], e.alpha);
      }
      if (count == VL) {
        *reinterpret_cast<vfu*>(y + at) = v;
      } else {
        std::memcpy(y + at, &v, count * sizeof(float));
      }
    }
  }
}

void run(const Conv2dShape& s, const float* x, const float* filter, const Epilogue& e, float* y) {
  const Plan p = plan_for(s);
  Scratch u_buffer;
  float* u = u_buffer.get(kPoints * s.in_c * p.ldm);
  if (!u) throw std::bad_alloc();
  transform_filter(s, p, filter, u);
  std::atomic<bool> out_of_memory{false};
  const int64_t blocks = (p.tiles + p.block - 1) / p.block, per_image = p.tiles_h * p.tiles_w;
  const int64_t v_point = p.block * p.ldv, m_point = p.block * p.ldm;  // floats between transformed points
  parallel_for(blocks, 1, [&](int64_t blk0, int64_t blk1) {
    float* v = thread_block_buffer(kPoints * (v_point + m_point), out_of_memory);
    if (!v) return;
    float* m = v + kPoints * v_point;
    for (int64_t blk = blk0; blk < blk1; ++blk) {
      const int64_t t0 = blk * p.block, count = std::min(p.block, p.tiles - t0), rows = round_up(count, MR);
      for (int64_t t = 0; t < count; ++t) {
        const int64_t tile = t0 + t, b = tile / per_image, ty = (tile % per_image) / p.tiles_w, tx = tile % p.tiles_w;
        for (int64_t c0 = 0; c0 < s.in_c; c0 += VL) transform_input_tile(s, p, x, b, ty, tx, c0, v + t * p.ldv + c0, v_point);
      }
      // The last register tile's rows past the block's tiles: zeros, not whatever the buffer held.
      for (int k = 0; k < kPoints; ++k) std::fill(v + k * v_point + count * p.ldv, v + k * v_point + rows * p.ldv, 0.0f);
      for (int k = 0; k < kPoints; ++k) {
        const float* vk = v + k * v_point;
        float* mk = m + k * m_point;
        for (int64_t panel = 0; panel < p.panels; ++panel) {
          const float* uk = u + (k * p.ldm + panel * NR) * s.in_c;
          float* mp = mk + panel * NR;
          if (p.ldm - panel * NR >= NR) {
            for (int64_t r = 0; r < rows; r += MR) gemm_tile<2>(s.in_c, vk + r * p.ldv, p.ldv, uk, mp + r * p.ldm, p.ldm);
          } else {
            for (int64_t r = 0; r < rows; r += MR) gemm_tile<1>(s.in_c, vk + r * p.ldv, p.ldv, uk, mp + r * p.ldm, p.ldm);
          }
        }
      }
      for (int64_t t = 0; t < count; ++t) {
        const int64_t tile = t0 + t, b = tile / per_image, ty = (tile % per_image) / p.tiles_w, tx = tile % p.tiles_w;
        for (int64_t o0 = 0; o0 < s.out_c; o0 += VL) transform_output_tile(s, m + t * p.ldm + o0, m_point, b, ty, tx, o0, e, y);
      }
    }
  });
  if (out_of_memory) throw std::bad_alloc();
}

// Filter gradient. The forward is Y_t = Aᵀ[(G g Gᵀ) ⊙ V_t]A for every tile t, exactly (the
// algorithm is exact in real arithmetic), so for a loss with gradient dy,
//   dL/dg = Gᵀ [ Σ_t (A dy_t Aᵀ) ⊙ V_t ] G
// (dy_t the tile's 4×4 output gradient, zero past the output's edge): the input tiles'
// transform V as in the forward, dy's tiles transformed by A, 36 GEMMs of [in_c × tiles] ·
// [tiles × out_c] accumulated over the batch, and Gᵀ M G per channel pair at the end.

// Rows of a filter-gradient register tile (input channels): a divisor of VL, so the rows
// read from V never pass its padded width.
constexpr int MRW = VL % MR == 0 ? MR : VL / 2;

// out[i·out_step] = A · in[a·step], i < 6, a < 4 (A = (Aᵀ)ᵀ, Aᵀ as in output_rows).
inline void gradient_rows(const vf* in, int step, vf* out, int out_step) {
  const vf d0 = in[0], d1 = in[step], d2 = in[2 * step], d3 = in[3 * step];
  const vf even = d0 + d2, odd = d1 + d3, even4 = d0 + 4.0f * d2, odd2 = 2.0f * d1 + 8.0f * d3;
  out[0] = d0;
  out[out_step] = even + odd;
  out[2 * out_step] = even - odd;
  out[3 * out_step] = even4 + odd2;
  out[4 * out_step] = even4 - odd2;
  out[5 * out_step] = d3;
}

// D[k][t][o0 …] = (A dy_t Aᵀ)[k] for one vector of output channels.
void transform_gradient_tile(const Conv2dShape& s, const float* dy, int64_t b, int64_t ty, int64_t tx, int64_t o0,
                             float* d_tile, int64_t point_stride) {
  const int64_t count = std::min<int64_t>(VL, s.out_c - o0);
  vf g[16], t[24], out[kPoints];
  for (int i = 0; i < 4; ++i) {
    const int64_t oy = ty * 4 + i;
    for (int j = 0; j < 4; ++j) {
      const int64_t ox = tx * 4 + j;
      vf& dst = g[i * 4 + j];
      dst = vf{};
      if (oy >= s.out_h || ox >= s.out_w) continue;
      const float* src = dy + ((b * s.out_h + oy) * s.out_w + ox) * s.out_c + o0;
      if (count == VL) {
        dst = *reinterpret_cast<const vfu*>(src);
      } else {
        std::memcpy(&dst, src, count * sizeof(float));
      }
    }
  }
  for (int j = 0; j < 4; ++j) gradient_rows(g + j, 4, t + j, 4);          // t[6][4] = A g (columns)
  for (int i = 0; i < 6; ++i) gradient_rows(t + i * 4, 1, out + i * 6, 1);  // out[6][6] = t Aᵀ (rows)
  for (int k = 0; k < kPoints; ++k) *reinterpret_cast<vf*>(d_tile + k * point_stride) = out[k];
}

// m[r·ldm + j·VL …] += Σ_{t < tiles} v[t·ldv + r] · d[t·ldm + j·VL …] for r < MRW, j < NV.
template <int NV>
inline void gradient_tile(int64_t tiles, const float* __restrict v, int64_t ldv, const float* __restrict d, int64_t ldm,
                          float* __restrict m) {
  vf acc[MRW][NV];
  for (int r = 0; r < MRW; ++r)
    for (int j = 0; j < NV; ++j) acc[r][j] = *reinterpret_cast<const vf*>(m + r * ldm + j * VL);
  for (int64_t t = 0; t < tiles; ++t) {
    vf w[NV];
    for (int j = 0; j < NV; ++j) w[j] = *reinterpret_cast<const vf*>(d + t * ldm + j * VL);
#pragma GCC unroll 8
    for (int r = 0; r < MRW; ++r) {
      const vf a = vf{} + v[t * ldv + r];
      for (int j = 0; j < NV; ++j) acc[r][j] += a * w[j];
    }
  }
  for (int r = 0; r < MRW; ++r)
    for (int j = 0; j < NV; ++j) *reinterpret_cast<vf*>(m + r * ldm + j * VL) = acc[r][j];
}

}  // namespace

bool winograd_applies(const Conv2dShape& s) {
  return winograd_enabled() && s.k_h == 3 && s.k_w == 3 && s.stride_h == 1 && s.stride_w == 1 && s.dil_h == 1 &&
         s.dil_w == 1 && s.in_c >= kWinogradMinChannels && s.out_c >= kWinogradMinChannels && s.out_h >= 4 && s.out_w >= 4;
}

void conv2d_forward_winograd(const Conv2dShape& s, const float* x, const float* filter, const float* bias,
                             const float* addend, Activation act, float alpha, float* y) {
  run(s, x, filter, Epilogue{bias, addend, act, alpha}, y);
}

// dx[u] = Σ_r dy[u + pad − r]·f[r] (per axis) = Σ_r' dy[u − (2 − pad) + r']·f[2 − r']: the forward
// of dy with the filter turned 180° and its channels swapped, padded 2 − pad.
Conv2dShape backprop_input_shape(const Conv2dShape& s) {
  return Conv2dShape{s.n, s.out_h, s.out_w, s.out_c, s.in_h, s.in_w, s.in_c, 3, 3, 1, 1, 1, 1, 2 - s.pad_top, 2 - s.pad_left};
}

bool winograd_applies_backprop_input(const Conv2dShape& s) {
  return winograd_applies(s) && s.pad_top <= 2 && s.pad_left <= 2 && winograd_applies(backprop_input_shape(s));
}

void conv2d_backprop_input_winograd(const Conv2dShape& s, const float* dy, const float* filter, float* dx) {
  const Conv2dShape t = backprop_input_shape(s);
  std::vector<float> turned(s.filter_size());  // [r'][q'][o][c] = f[2 − r'][2 − q'][c][o]
  parallel_for(9 * s.out_c, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t rq = i / s.out_c, o = i % s.out_c;
      const float* src = filter + (8 - rq) * s.in_c * s.out_c + o;
      float* dst = turned.data() + (rq * s.out_c + o) * s.in_c;
      for (int64_t c = 0; c < s.in_c; ++c) dst[c] = src[c * s.out_c];
    }
  });
  run(t, dy, turned.data(), Epilogue{nullptr, nullptr, Activation::Linear, 0.0f}, dx);
}

void conv2d_backprop_filter_winograd(const Conv2dShape& s, const float* x, const float* dy, float* dfilter) {
  const Plan p = plan_for(s, kGradientBlockFloats);
  const int64_t rows = round_up(s.in_c, MRW);  // ≤ p.ldv: MRW divides VL
  const int64_t m_size = kPoints * rows * p.ldm;
  const int64_t blocks = (p.tiles + p.block - 1) / p.block, per_image = p.tiles_h * p.tiles_w;
  const int64_t v_point = p.block * p.ldv, d_point = p.block * p.ldm;
  // One partial sum per chunk of blocks, added in chunk order: the same bits for a given thread count.
  const int64_t chunks = std::min<int64_t>(cpu_threads(), blocks);
  Scratch partial_buffer;
  float* partial = partial_buffer.get(chunks * m_size);
  if (!partial) throw std::bad_alloc();
  std::fill(partial, partial + chunks * m_size, 0.0f);
  std::atomic<bool> out_of_memory{false};
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    float* v = thread_block_buffer(kPoints * (v_point + d_point), out_of_memory);
    if (!v) return;
    float* d = v + kPoints * v_point;
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      float* m = partial + chunk * m_size;
      for (int64_t blk = blocks * chunk / chunks; blk < blocks * (chunk + 1) / chunks; ++blk) {
        const int64_t t0 = blk * p.block, count = std::min(p.block, p.tiles - t0);
        for (int64_t t = 0; t < count; ++t) {
          const int64_t tile = t0 + t, b = tile / per_image, ty = (tile % per_image) / p.tiles_w, tx = tile % p.tiles_w;
          for (int64_t i0 = 0; i0 < s.in_c; i0 += VL) transform_input_tile(s, p, x, b, ty, tx, i0, v + t * p.ldv + i0, v_point);
          for (int64_t o0 = 0; o0 < p.ldm; o0 += VL) transform_gradient_tile(s, dy, b, ty, tx, o0, d + t * p.ldm + o0, d_point);
        }
        for (int k = 0; k < kPoints; ++k) {
          const float* vk = v + k * v_point;
          const float* dk = d + k * d_point;
          float* mk = m + k * rows * p.ldm;
          for (int64_t r = 0; r < rows; r += MRW) {
            int64_t o = 0;
            for (; o + NR <= p.ldm; o += NR) gradient_tile<2>(count, vk + r, p.ldv, dk + o, p.ldm, mk + r * p.ldm + o);
            if (o < p.ldm) gradient_tile<1>(count, vk + r, p.ldv, dk + o, p.ldm, mk + r * p.ldm + o);
          }
        }
      }
    }
  });
  if (out_of_memory) throw std::bad_alloc();
  // dfilter[r][q][c][o] = (Gᵀ M G)[r][q] of M = Σ_chunks partial[·][c][o], in double.
  parallel_for(s.in_c, 4, [&](int64_t i0, int64_t i1) {
    for (int64_t c = i0; c < i1; ++c)
      for (int64_t o = 0; o < s.out_c; ++o) {
        double m[kPoints], t[18], out[9];
        for (int k = 0; k < kPoints; ++k) {
          double sum = 0;
          for (int64_t chunk = 0; chunk < chunks; ++chunk) sum += partial[chunk * m_size + (k * rows + c) * p.ldm + o];
          m[k] = sum;
        }
        for (int j = 0; j < 6; ++j) filter_gradient_rows(m + j, 6, t + j, 6);      // t[3][6] = Gᵀ M (columns)
        for (int r = 0; r < 3; ++r) filter_gradient_rows(t + r * 6, 1, out + r * 3, 1);  // out[3][3] = t G (rows)
        for (int rq = 0; rq < 9; ++rq) dfilter[(rq * s.in_c + c) * s.out_c + o] = static_cast<float>(out[rq]);
      }
  });
}

}  // namespace hf::nn
