// Host side of the map accumulation: checks, parameters and the launcher logic as a
// template over a `Launch` policy (as fill_host.hpp does for the fills). Private to
// csrc/src/cuda, free of CUDA launch syntax.
//
// A Launch policy provides
//   static void prefix(const AccumulateParams&, std::int64_t blocks, cudaStream_t);  // pass 1
//   static void maps(const AccumulateParams&, std::int64_t blocks, cudaStream_t);    // pass 2
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

#include "accumulate_device.cuh"
#include "fastocclusion/cuda/kernels.hpp"
#include "fastocclusion/errors.hpp"

namespace fastocclusion::cuda::detail {

/// Most blocks of the per-pixel pass (a grid-stride loop covers the rest).
constexpr std::int64_t kMaxMapBlocks = std::int64_t{1} << 20;
/// Most blocks of the prefix pass (one input per block, looping beyond).
constexpr std::int64_t kMaxPrefixBlocks = 65535;

inline std::size_t workspace_bytes(std::int64_t n, const PatchGrid& grid) {
  FASTOCCLUSION_EXPECTS(n >= 1, "n=" << n << " is invalid, expected >= 1 input");
  const std::int64_t per_input = (grid.rows.count + 1) * (grid.cols.count + 1);
  FASTOCCLUSION_EXPECTS(n <= std::numeric_limits<std::int64_t>::max() / 8 / per_input,
                        "n=" << n << " is too large");
  return static_cast<std::size_t>(n * per_input) * sizeof(double);
}

/// accumulate_patch_deltas_async over a Launch policy.
template <typename Launch>
void run_accumulate(const double* deltas, std::int64_t n, const PatchGrid& grid,
                    Reduction reduction, float* maps, void* workspace,
                    std::size_t workspace_bytes_given, cudaStream_t stream) {
  FASTOCCLUSION_EXPECTS(n >= 1, "n=" << n << " is invalid, expected >= 1 input");
  FASTOCCLUSION_EXPECTS(deltas != nullptr && maps != nullptr && workspace != nullptr,
                        "deltas, maps and workspace must not be null");
  FASTOCCLUSION_ASSERT(grid.rows.count >= 1 && grid.cols.count >= 1, "empty patch grid");
  const std::size_t needed = workspace_bytes(n, grid);
  FASTOCCLUSION_EXPECTS(workspace_bytes_given >= needed,
                        "workspace: " << workspace_bytes_given
                                      << " bytes is too small, expected >= " << needed);
  FASTOCCLUSION_EXPECTS(reinterpret_cast<std::uintptr_t>(workspace) % alignof(double) == 0,
                        "workspace: expected 8-byte alignment");
  AccumulateParams p;
  p.deltas = deltas;
  p.maps = maps;
  p.sums = static_cast<double*>(workspace);
  p.n = n;
  p.height = grid.height();
  p.width = grid.width();
  p.rows = grid.rows.count;
  p.cols = grid.cols.count;
  p.patch_h = grid.rows.patch;
  p.stride_h = grid.rows.stride;
  p.patch_w = grid.cols.patch;
  p.stride_w = grid.cols.stride;
  p.mean = reduction == Reduction::mean ? 1 : 0;
  Launch::prefix(p, std::min(n, kMaxPrefixBlocks), stream);
  const std::int64_t pixels = n * grid.height() * grid.width();
  const std::int64_t wanted = (pixels + kMapThreads - 1) / kMapThreads;
  Launch::maps(p, std::min(wanted, kMaxMapBlocks), stream);
}

}  // namespace fastocclusion::cuda::detail
