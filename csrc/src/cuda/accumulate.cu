// Launcher of the device map accumulation (kernels.hpp). The per-thread bodies are in
// accumulate_device.cuh, the checks and launch geometry in accumulate_host.hpp.
#include <cstdint>

#include "accumulate_device.cuh"
#include "accumulate_host.hpp"
#include "fastocclusion/cuda/cuda_errors.hpp"
#include "fastocclusion/cuda/kernels.hpp"

namespace fastocclusion::cuda {
namespace detail {
namespace {

__global__ void __launch_bounds__(kPrefixThreads) prefix_sum_kernel(const AccumulateParams p) {
  for (std::int64_t i = blockIdx.x; i < p.n; i += gridDim.x) {
    prefix_rows(p, i, threadIdx.x, blockDim.x);
    __syncthreads();
    prefix_cols(p, i, threadIdx.x, blockDim.x);
    // Input i's sums are read only by the next kernel: no barrier before the next i.
  }
}

__global__ void __launch_bounds__(kMapThreads) map_kernel(const AccumulateParams p) {
  const std::int64_t total = p.n * p.height * p.width;
  const std::int64_t stride = std::int64_t{gridDim.x} * blockDim.x;
  for (std::int64_t idx = std::int64_t{blockIdx.x} * blockDim.x + threadIdx.x; idx < total;
       idx += stride) {
    map_pixel(p, idx);
  }
}

struct CudaLaunch {
  static void prefix(const AccumulateParams& p, std::int64_t blocks, cudaStream_t stream) {
    prefix_sum_kernel<<<static_cast<unsigned>(blocks), kPrefixThreads, 0, stream>>>(p);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }
  static void maps(const AccumulateParams& p, std::int64_t blocks, cudaStream_t stream) {
    map_kernel<<<static_cast<unsigned>(blocks), kMapThreads, 0, stream>>>(p);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace
}  // namespace detail

std::size_t accumulate_workspace_bytes(std::int64_t n, const PatchGrid& grid) {
  return detail::workspace_bytes(n, grid);
}

void accumulate_patch_deltas_async(const double* deltas, std::int64_t n, const PatchGrid& grid,
                                   Reduction reduction, float* maps, void* workspace,
                                   std::size_t workspace_bytes, cudaStream_t stream) {
  detail::run_accumulate<detail::CudaLaunch>(deltas, n, grid, reduction, maps, workspace,
                                             workspace_bytes, stream);
}

}  // namespace fastocclusion::cuda
