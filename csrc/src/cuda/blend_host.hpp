// Host side of the window means and the weighted blend: checks, parameters and the launcher
// logic as templates over a `Launch` policy (as fill_host.hpp and accumulate_host.hpp do).
// Private to csrc/src/cuda, free of CUDA launch syntax.
//
// A Launch policy provides (1-D grids of kThreads-thread blocks, grid-stride loops)
//   template <class Index, class T> static void means(const BasicFillParams<T>&, T* out, std::int64_t total, std::int64_t blocks, cudaStream_t);
//   static void blend(const BlendParams&, std::int64_t blocks, cudaStream_t);
#pragma once

#include <cstdint>
#include <type_traits>

#include "accumulate_host.hpp"
#include "blend_device.cuh"
#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "fill_host.hpp"

namespace fastocclusion::cuda::detail {

/// window_means_async over a Launch policy: the CPU window_means' checks, then one launch.
template <typename Launch, typename T>
void run_window_means(const T* inputs, std::int64_t n, const WindowGrid& grid, T* out,
                      cudaStream_t stream) {
  static_assert(std::is_floating_point_v<T>, "window means are float or double");
  FASTOCCLUSION_EXPECTS(n >= 1, "inputs: n=" << n << " is invalid, expected >= 1 input");
  FASTOCCLUSION_EXPECTS(inputs != nullptr && out != nullptr, "inputs and out must not be null");
  check_window_grid(grid);
  std::int64_t total = 0, values = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(n, grid.num_windows(), total) &&
                            checked_multiply(n, grid.sample_size(), values),
                        "inputs: " << n << " inputs of " << grid.num_windows()
                                   << " windows overflow int64");
  const BasicFillParams<T> p =
      make_fill_params<T>(inputs, grid, BasicDeviceBaseline<T>{}, 0, 1, nullptr);
  const std::int64_t blocks = accumulate_blocks(total);
  if (use_32bit_index(p)) {
    Launch::template means<std::uint32_t>(p, out, total, blocks, stream);
  } else {
    Launch::template means<std::uint64_t>(p, out, total, blocks, stream);
  }
}

inline BlendParams make_blend_params(const double* values, std::int64_t n,
                                     const WindowGrid& grid, std::uint32_t collapsed_axes,
                                     const float* importance, float* maps) {
  BlendParams p;
  p.values = values;
  p.importance = importance;
  p.maps = maps;
  p.n = n;
  p.rank = grid.rank;
  p.windows = grid.num_windows();
  p.map_size = 1;
  std::int64_t k_step = 1, importance_step = 1;
  for (int d = grid.rank - 1; d >= 0; --d) {
    const AxisGeometry& a = grid.axes[d];
    const bool collapsed = ((collapsed_axes >> d) & 1U) != 0;
    p.window[d] = a.window;
    p.stride[d] = a.stride;
    p.count[d] = a.count;
    p.begin[d] = a.begin;
    p.end[d] = a.end;
    p.last[d] = a.last;
    p.map_length[d] = collapsed ? 1 : a.length;
    p.map_size *= p.map_length[d];
    p.window_index_step[d] = k_step;
    k_step *= a.count;
    p.importance_step[d] = collapsed ? 0 : importance_step;
    if (!collapsed) importance_step *= a.window;
  }
  return p;
}

/// blend_window_values_async over a Launch policy: the CPU's checks (the importance's
/// values aside: they live on the device), then one launch.
template <typename Launch>
void run_blend(const double* values, std::int64_t n, const WindowGrid& grid,
               std::uint32_t collapsed_axes, const float* importance, float* maps,
               cudaStream_t stream) {
  FASTOCCLUSION_EXPECTS(n >= 1, "n=" << n << " is invalid, expected >= 1 input");
  FASTOCCLUSION_EXPECTS(values != nullptr && importance != nullptr && maps != nullptr,
                        "values, importance and maps must not be null");
  const std::int64_t size = map_size(grid, collapsed_axes);
  const std::int64_t windows = grid.num_windows();
  std::int64_t total = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(n, size, total) && checked_multiply(n, windows, total),
                        "maps: " << n << " maps of " << size << " values from " << windows
                                 << " windows each overflow int64");
  const BlendParams p =
      make_blend_params(values, n, grid, collapsed_axes, importance, maps);
  Launch::blend(p, accumulate_blocks(n * p.map_size), stream);
}

}  // namespace fastocclusion::cuda::detail
