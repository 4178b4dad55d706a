// Device side of the map accumulation: parameters and per-thread bodies, private to
// csrc/src/cuda. __host__ __device__ with explicit indices, like fill_device.cuh, so a host
// program can emulate the grid.
//
// Two passes:
//  1. per input (one block each), the 2-D inclusive prefix sum of its delta grid into the
//     workspace: S[a][b] = sum of deltas[i][j] over i < a, j < b, S of (rows+1) x (cols+1),
//     first row and column 0. Rows first (one thread per grid row), a barrier, then
//     columns (one thread per grid column).
//  2. per pixel, the patches covering (y, x) are rows [i0, i1] x columns [j0, j1] of the
//     grid (anchors i*s, extents min(p, L - i*s) with the pixel inside the axis, so
//     "covers" means i*s <= y < i*s + p), and their sum is a rectangle of S.
#pragma once

#include <cstdint>

#include "fill_device.cuh"  // FASTOCCLUSION_HD

namespace fastocclusion::cuda::detail {

constexpr unsigned kPrefixThreads = 128;
constexpr unsigned kMapThreads = 256;

struct AccumulateParams {
  const double* deltas = nullptr;  ///< n * rows * cols
  float* maps = nullptr;           ///< n * height * width
  double* sums = nullptr;          ///< workspace, n * (rows + 1) * (cols + 1)
  std::int64_t n = 0, height = 0, width = 0, rows = 0, cols = 0;
  std::int64_t patch_h = 0, stride_h = 0, patch_w = 0, stride_w = 0;
  int mean = 0;
};

/// Pass 1a for input i: S[0][*] = 0 and each grid row's running sum into S[a+1][1..].
FASTOCCLUSION_HD void prefix_rows(const AccumulateParams& p, std::int64_t i, unsigned tid,
                                  unsigned threads) {
  const std::int64_t sc = p.cols + 1;
  double* S = p.sums + i * (p.rows + 1) * sc;
  const double* d = p.deltas + i * p.rows * p.cols;
  for (std::int64_t b = tid; b < sc; b += threads) S[b] = 0.0;
  for (std::int64_t a = tid; a < p.rows; a += threads) {
    double* out = S + (a + 1) * sc;
    const double* in = d + a * p.cols;
    double running = 0.0;
    out[0] = 0.0;
    for (std::int64_t b = 0; b < p.cols; ++b) {
      running += in[b];
      out[b + 1] = running;
    }
  }
}

/// Pass 1b for input i (after 1a completed for it): running sums down each column.
FASTOCCLUSION_HD void prefix_cols(const AccumulateParams& p, std::int64_t i, unsigned tid,
                                  unsigned threads) {
  const std::int64_t sc = p.cols + 1;
  double* S = p.sums + i * (p.rows + 1) * sc;
  for (std::int64_t b = 1 + static_cast<std::int64_t>(tid); b < sc; b += threads) {
    double running = 0.0;
    for (std::int64_t a = 1; a <= p.rows; ++a) {
      running += S[a * sc + b];
      S[a * sc + b] = running;
    }
  }
}

/// Patches [lo, hi] of an axis cover position `pos`; empty when lo > hi.
FASTOCCLUSION_HD void covering_range(std::int64_t pos, std::int64_t patch, std::int64_t stride,
                                     std::int64_t count, std::int64_t& lo, std::int64_t& hi) {
  hi = pos / stride;
  if (hi > count - 1) hi = count - 1;
  lo = pos >= patch ? (pos - patch) / stride + 1 : 0;
}

/// Pass 2: map element idx in [0, n*height*width).
FASTOCCLUSION_HD void map_pixel(const AccumulateParams& p, std::int64_t idx) {
  const std::int64_t plane = p.height * p.width;
  const std::int64_t i = idx / plane;
  const std::int64_t rem = idx - i * plane;
  const std::int64_t y = rem / p.width;
  const std::int64_t x = rem - y * p.width;
  std::int64_t i0, i1, j0, j1;
  covering_range(y, p.patch_h, p.stride_h, p.rows, i0, i1);
  covering_range(x, p.patch_w, p.stride_w, p.cols, j0, j1);
  double value = 0.0;
  if (i0 <= i1 && j0 <= j1) {
    const std::int64_t sc = p.cols + 1;
    const double* S = p.sums + i * (p.rows + 1) * sc;
    value = S[(i1 + 1) * sc + (j1 + 1)] - S[i0 * sc + (j1 + 1)] - S[(i1 + 1) * sc + j0] +
            S[i0 * sc + j0];
    // Same operation order as the CPU: sum * (1 / rows covering) * (1 / cols covering).
    if (p.mean) value = value * (1.0 / static_cast<double>(i1 - i0 + 1)) *
                        (1.0 / static_cast<double>(j1 - j0 + 1));
  }
  p.maps[idx] = static_cast<float>(value);
}

}  // namespace fastocclusion::cuda::detail
