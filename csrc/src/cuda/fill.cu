// Launchers of the device batch fills (kernels.hpp). The per-thread bodies are in
// fill_device.cuh; the checks, launch geometry and planning in fill_host.hpp; this file
// instantiates the kernels and launches them.
#include <cstdint>

#include "fastocclusion/cuda/cuda_errors.hpp"
#include "fastocclusion/cuda/kernels.hpp"
#include "fill_device.cuh"
#include "fill_host.hpp"

namespace fastocclusion::cuda {
namespace detail {
namespace {

// Kernel parameters live in the 4 KB parameter space; the plan is read from it directly
// (__grid_constant__), never copied to local memory.
static_assert(sizeof(FillParams) + sizeof(IncrementalPlan) <= 4000,
              "incremental launch parameters exceed the 4 KB kernel parameter limit");

template <int V, typename Index>
__global__ void __launch_bounds__(kFillThreads)
    fill_full_kernel(const FillParams p, std::int64_t count) {
  fill_full_thread<V, Index>(p, count, blockIdx.x, blockIdx.y, gridDim.x, gridDim.y, threadIdx.x);
}

template <int V, typename Index>
__global__ void __launch_bounds__(kFillThreads)
    fill_incremental_kernel(const FillParams p, const __grid_constant__ IncrementalPlan plan) {
  fill_incremental_thread<V, Index>(p, plan, blockIdx.x, threadIdx.x);
}

struct CudaLaunch {
  template <int V, typename Index>
  static void full(const FillParams& p, GridSize grid, std::int64_t count, cudaStream_t stream) {
    const dim3 blocks(static_cast<unsigned>(grid.x), static_cast<unsigned>(grid.y));
    fill_full_kernel<V, Index><<<blocks, kFillThreads, 0, stream>>>(p, count);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }

  template <int V, typename Index>
  static void incremental(const FillParams& p, const IncrementalPlan& plan, std::int64_t blocks,
                          cudaStream_t stream) {
    fill_incremental_kernel<V, Index>
        <<<static_cast<unsigned>(blocks), kFillThreads, 0, stream>>>(p, plan);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace
}  // namespace detail

void fill_occluded_batch_async(const float* inputs, const InputShape& shape, const PatchGrid& grid,
                               const DeviceBaseline& baseline, std::int64_t start,
                               std::int64_t count, float* batch, cudaStream_t stream) {
  detail::run_fill<detail::CudaLaunch>(inputs, shape, grid, baseline, start, count, batch, stream);
}

void fill_occluded_batch_incremental_async(const float* inputs, const InputShape& shape,
                                           const PatchGrid& grid, const DeviceBaseline& baseline,
                                           std::int64_t start, std::int64_t count, float* batch,
                                           std::int64_t capacity, IncrementalFillState& state,
                                           cudaStream_t stream) {
  detail::run_incremental_fill<detail::CudaLaunch>(inputs, shape, grid, baseline, start, count,
                                                   batch, capacity, state, stream);
}

}  // namespace fastocclusion::cuda
