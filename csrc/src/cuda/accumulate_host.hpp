// Host side of the map accumulation: checks, parameters and the launcher logic as a
// template over a `Launch` policy (as fill_host.hpp does for the fills). Private to
// csrc/src/cuda, free of CUDA launch syntax.
//
// A Launch policy provides (1-D grids of kThreads-thread blocks, grid-stride loops)
//   static void pad(const AccumulateParams&, std::int64_t blocks, cudaStream_t);            // pass 1
//   static void scan(const AccumulateParams&, int axis, std::int64_t blocks, cudaStream_t); // pass 2, per active axis
//   static void maps(const AccumulateParams&, std::int64_t blocks, cudaStream_t);           // pass 3
#pragma once

#include <algorithm>
#include <cstdint>

#include "accumulate_device.cuh"
#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/cuda/kernels.hpp"
#include "fastocclusion/errors.hpp"

namespace fastocclusion::cuda::detail {

/// Most blocks of one accumulation launch (the grid-stride loops cover the rest).
constexpr std::int64_t kMaxAccumulateBlocks = std::int64_t{1} << 20;

/// Blocks for `work` elements, one per thread, capped.
inline std::int64_t accumulate_blocks(std::int64_t work) {
  return std::clamp<std::int64_t>(work / kThreads + (work % kThreads != 0), 1,
                                  kMaxAccumulateBlocks);
}

/// Elements of P per input: prod over the axes with count > 1 of (count + 1); user_error
/// past int64.
inline std::int64_t padded_size(const WindowGrid& grid) {
  std::int64_t size = 1;
  for (int d = 0; d < grid.rank; ++d) {
    if (grid.axes[d].count > 1) {
      FASTOCCLUSION_EXPECTS(checked_multiply(size, grid.axes[d].count + 1, size),
                            "workspace: the padded window grid exceeds int64");
    }
  }
  return size;
}

inline std::size_t workspace_bytes(std::int64_t n, const WindowGrid& grid) {
  FASTOCCLUSION_EXPECTS(n >= 1, "n=" << n << " is invalid, expected >= 1 input");
  check_window_grid(grid);
  std::int64_t bytes = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(n, padded_size(grid), bytes) &&
                            checked_multiply(bytes, std::int64_t{sizeof(double)}, bytes),
                        "workspace: " << n << " inputs of " << padded_size(grid)
                                      << " float64 exceed int64 bytes");
  return static_cast<std::size_t>(bytes);
}

inline AccumulateParams make_accumulate_params(const double* deltas, std::int64_t n,
                                               const WindowGrid& grid,
                                               std::uint32_t collapsed_axes,
                                               Reduction reduction, float* maps,
                                               void* workspace) {
  AccumulateParams p;
  p.deltas = deltas;
  p.maps = maps;
  p.sums = static_cast<double*>(workspace);
  p.n = n;
  p.rank = grid.rank;
  p.mean = reduction == Reduction::mean ? 1 : 0;
  p.windows = grid.num_windows();
  p.map_size = 1;
  std::int64_t delta_step[kMaxAxes] = {};
  std::int64_t step = 1;
  for (int d = grid.rank - 1; d >= 0; --d) {
    delta_step[d] = step;
    step *= grid.axes[d].count;
  }
  for (int d = 0; d < grid.rank; ++d) {
    const AxisGeometry& a = grid.axes[d];
    p.length[d] = a.length;
    p.window[d] = a.window;
    p.stride[d] = a.stride;
    p.count[d] = a.count;
    p.begin[d] = a.begin;
    p.end[d] = a.end;
    p.last[d] = a.last;
    p.map_length[d] = ((collapsed_axes >> d) & 1U) != 0 ? 1 : a.length;
    p.map_size *= p.map_length[d];
    if (a.count > 1) {
      p.padded[p.active] = a.count + 1;
      p.delta_step[p.active] = delta_step[d];
      ++p.active;
    }
  }
  p.padded_size = 1;
  for (int b = p.active - 1; b >= 0; --b) {
    p.padded_step[b] = p.padded_size;
    p.padded_size *= p.padded[b];
  }
  for (int d = 0, b = 0; d < grid.rank; ++d) {
    if (grid.axes[d].count > 1) p.map_step[d] = p.padded_step[b++];
  }
  return p;
}

/// accumulate_window_deltas_async over a Launch policy.
template <typename Launch>
void run_accumulate(const double* deltas, std::int64_t n, const WindowGrid& grid,
                    std::uint32_t collapsed_axes, Reduction reduction, float* maps,
                    void* workspace, std::size_t workspace_bytes_given, cudaStream_t stream) {
  // The CPU accumulation's checks, in its order and with its messages.
  FASTOCCLUSION_EXPECTS(n >= 1, "n=" << n << " is invalid, expected >= 1 input");
  FASTOCCLUSION_EXPECTS(deltas != nullptr && maps != nullptr,
                        "deltas and maps must not be null");
  const std::int64_t size = map_size(grid, collapsed_axes);
  const std::int64_t windows = grid.num_windows();
  std::int64_t total = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(n, size, total) && checked_multiply(n, windows, total),
                        "maps: " << n << " maps of " << size << " values from " << windows
                                 << " windows each overflow int64");
  const std::size_t needed = workspace_bytes(n, grid);
  FASTOCCLUSION_EXPECTS(workspace != nullptr, "workspace must not be null");
  FASTOCCLUSION_EXPECTS(workspace_bytes_given >= needed,
                        "workspace: " << workspace_bytes_given
                                      << " bytes is too small, expected >= " << needed);
  FASTOCCLUSION_EXPECTS(reinterpret_cast<std::uintptr_t>(workspace) % alignof(double) == 0,
                        "workspace: expected 8-byte alignment");
  const AccumulateParams p =
      make_accumulate_params(deltas, n, grid, collapsed_axes, reduction, maps, workspace);
  Launch::pad(p, accumulate_blocks(n * p.padded_size), stream);
  for (int a = 0; a < p.active; ++a) Launch::scan(p, a, accumulate_blocks(scan_lines(p, a)), stream);
  Launch::maps(p, accumulate_blocks(n * p.map_size), stream);
}

}  // namespace fastocclusion::cuda::detail
