// Launchers of the device map accumulation (kernels.hpp). The per-element bodies are in
// accumulate_device.cuh, the checks and launch geometry in accumulate_host.hpp.
#include <cstdint>

#include "accumulate_device.cuh"
#include "accumulate_host.hpp"
#include "fastocclusion/cuda/cuda_errors.hpp"
#include "fastocclusion/cuda/kernels.hpp"

namespace fastocclusion::cuda {
namespace detail {
namespace {


__global__ void __launch_bounds__(kThreads) pad_kernel(const AccumulateParams p) {
  const std::int64_t total = p.n * p.padded_size;
  for (std::int64_t idx = first_index(); idx < total; idx += grid_step()) pad_element(p, idx);
}

__global__ void __launch_bounds__(kThreads) scan_kernel(const AccumulateParams p, int axis) {
  const std::int64_t lines = scan_lines(p, axis);
  for (std::int64_t line = first_index(); line < lines; line += grid_step()) {
    scan_line(p, axis, line);
  }
}

__global__ void __launch_bounds__(kThreads) map_kernel(const AccumulateParams p) {
  const std::int64_t total = p.n * p.map_size;
  for (std::int64_t idx = first_index(); idx < total; idx += grid_step()) map_element(p, idx);
}

struct CudaLaunch {
  static void pad(const AccumulateParams& p, std::int64_t blocks, cudaStream_t stream) {
    pad_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }
  static void scan(const AccumulateParams& p, int axis, std::int64_t blocks, cudaStream_t stream) {
    scan_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, axis);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }
  static void maps(const AccumulateParams& p, std::int64_t blocks, cudaStream_t stream) {
    map_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace
}  // namespace detail

std::size_t accumulate_workspace_bytes(std::int64_t n, const WindowGrid& grid) {
  return detail::workspace_bytes(n, grid);
}

void accumulate_window_deltas_async(const double* deltas, std::int64_t n, const WindowGrid& grid,
                                    std::uint32_t collapsed_axes, Reduction reduction,
                                    float* maps, void* workspace, std::size_t workspace_bytes,
                                    cudaStream_t stream) {
  detail::run_accumulate<detail::CudaLaunch>(deltas, n, grid, collapsed_axes, reduction, maps,
                                             workspace, workspace_bytes, stream);
}

}  // namespace fastocclusion::cuda
