// Device side of the window means (the per_window(_scale) values: MONAI's "mean_patch")
// and of the weighted blend of per-window values into maps (MONAI's "gaussian" blending): the
// parameters and the per-element bodies, private to csrc/src/cuda (__host__ __device__, see
// device_support.cuh; blend.cu runs them in 64-bit grid-stride loops).
//
// Both are gathers, one thread per output element, in the CPU's summation order, so that
// they equal the CPU functions bit for bit:
//  * window means: one thread per (input, window) sums the window's box in row-major order
//    (the CPU's run order) in float64;
//  * blend: one thread per map element finds, per axis, the windows [lo, hi] covering it
//    (covering_windows) and sums importance x value and the importance over them in
//    increasing window order (the CPU scatters window after window), in float64, with
//    unfused products. Work per element: the number of windows covering it, O(window
//    volume) per window in all, as the CPU's scatter; no atomics, deterministic.
#pragma once

#include <cstdint>

#include "accumulate_device.cuh"
#include "device_support.cuh"
#include "fill_device.cuh"
#include "fastocclusion/geometry.hpp"

namespace fastocclusion::cuda::detail {

/// Thread s < n * K of the window means: out[s] = mean of input s / K over window s % K
/// (T: float or double; float64 sums).
template <typename Index, typename T>
FASTOCCLUSION_HD void window_mean_element(const BasicFillParams<T>& p, T* out, std::int64_t s) {
  const std::int64_t input = s / p.windows;
  const Box<Index> box = window_box<Index>(p, s - input * p.windows);
  const T* src = p.inputs + input * p.sample;
  double sum = 0.0;
  for (Index t = 0; t < box.volume; ++t) {
    Index at[kMaxAxes] = {};
    sum += static_cast<double>(load_readonly(src + box_element(p, box, t, at)));
  }
  out[s] = static_cast<T>(sum / static_cast<double>(box.volume));
}

/// Everything the blend kernel needs, passed by value (per sample axis d < rank).
struct BlendParams {
  const double* values = nullptr;     ///< n * windows
  const float* importance = nullptr;  ///< row-major over the map axes' window lengths
  float* maps = nullptr;              ///< n * map_size
  std::int64_t n = 0;
  int rank = 0;
  std::int64_t window[kMaxAxes] = {};
  std::int64_t stride[kMaxAxes] = {};
  std::int64_t count[kMaxAxes] = {};
  std::int64_t begin[kMaxAxes] = {};
  std::int64_t end[kMaxAxes] = {};
  std::int64_t last[kMaxAxes] = {};
  std::int64_t map_length[kMaxAxes] = {};       ///< length, or 1 for a collapsed axis
  std::int64_t importance_step[kMaxAxes] = {};  ///< 0 for a collapsed axis
  std::int64_t window_index_step[kMaxAxes] = {};  ///< k = sum of i_d * window_index_step[d]
  std::int64_t map_size = 0;
  std::int64_t windows = 0;  ///< K
};

/// Map element idx < n * map_size of the blend.
FASTOCCLUSION_HD void blend_element(const BlendParams& p, std::int64_t idx) {
  const std::int64_t input = idx / p.map_size;
  std::int64_t rest = idx - input * p.map_size;
  std::int64_t x[kMaxAxes] = {}, lo[kMaxAxes] = {}, hi[kMaxAxes] = {};
  bool covered = true;
  FASTOCCLUSION_UNROLL
  for (int d = kMaxAxes - 1; d >= 0; --d) {
    if (d >= p.rank) continue;
    x[d] = rest % p.map_length[d];  // a collapsed axis: 0, its one window
    rest /= p.map_length[d];
    covered = covering_windows(x[d], p.begin[d], p.end[d], p.window[d], p.stride[d],
                               p.count[d], p.last[d], lo[d], hi[d]) &&
              covered;
  }
  if (!covered) {
    p.maps[idx] = 0.0f;
    return;
  }
  const double* value = p.values + input * p.windows;
  std::int64_t i[kMaxAxes] = {};
  FASTOCCLUSION_UNROLL
  for (int d = 0; d < kMaxAxes; ++d) i[d] = lo[d];
  double weights = 0.0, sum = 0.0;
  for (;;) {
    std::int64_t k = 0, offset = 0;
    FASTOCCLUSION_UNROLL
    for (int d = 0; d < kMaxAxes; ++d) {
      if (d >= p.rank) continue;
      const std::int64_t anchor =
          i[d] == p.count[d] - 1 ? p.last[d] : p.begin[d] + i[d] * p.stride[d];
      k += i[d] * p.window_index_step[d];
      offset += (x[d] - anchor) * p.importance_step[d];
    }
    const double w = static_cast<double>(load_readonly(p.importance + offset));
    weights += w;
    sum += unfused_product(w, load_readonly(value + k));
    int d = p.rank - 1;  // odometer over [lo, hi], last axis fastest: increasing k
    for (; d >= 0; --d) {
      if (++i[d] <= hi[d]) break;
      i[d] = lo[d];
    }
    if (d < 0) break;
  }
  p.maps[idx] = static_cast<float>(sum / weights);
}

}  // namespace fastocclusion::cuda::detail
