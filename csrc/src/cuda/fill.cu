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
__global__ void __launch_bounds__(kThreads) copy_kernel(const FillParams p, std::int64_t count) {
  copy_thread<V, Index>(p, count, blockIdx.x, blockIdx.y, gridDim.x, gridDim.y, threadIdx.x);
}

template <typename Index>
__global__ void __launch_bounds__(kThreads) box_kernel(const FillParams p, std::int64_t count) {
  box_thread<Index>(p, count, blockIdx.x, blockIdx.y, gridDim.x, gridDim.y, threadIdx.x);
}

template <int V, typename Index>
__global__ void __launch_bounds__(kThreads)
    plan_copy_kernel(const FillParams p, const __grid_constant__ IncrementalPlan plan) {
  plan_copy_thread<V, Index>(p, plan, blockIdx.x, threadIdx.x);
}

template <typename Index>
__global__ void __launch_bounds__(kThreads)
    plan_box_kernel(const FillParams p, const __grid_constant__ IncrementalPlan plan) {
  plan_box_thread<Index>(p, plan, blockIdx.x, threadIdx.x);
}

struct CudaLaunch {
  template <int V, typename Index>
  static void copy(const FillParams& p, GridSize grid, std::int64_t count, cudaStream_t stream) {
    const dim3 blocks(static_cast<unsigned>(grid.x), static_cast<unsigned>(grid.y));
    copy_kernel<V, Index><<<blocks, kThreads, 0, stream>>>(p, count);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }

  template <typename Index>
  static void box(const FillParams& p, GridSize grid, std::int64_t count, cudaStream_t stream) {
    const dim3 blocks(static_cast<unsigned>(grid.x), static_cast<unsigned>(grid.y));
    box_kernel<Index><<<blocks, kThreads, 0, stream>>>(p, count);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }

  template <int V, typename Index>
  static void plan_copy(const FillParams& p, const IncrementalPlan& plan, std::int64_t blocks,
                        cudaStream_t stream) {
    plan_copy_kernel<V, Index><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, plan);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }

  template <typename Index>
  static void plan_box(const FillParams& p, const IncrementalPlan& plan, std::int64_t blocks,
                       cudaStream_t stream) {
    plan_box_kernel<Index><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, plan);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace
}  // namespace detail

void fill_occluded_batch_async(const float* inputs, std::int64_t n, const WindowGrid& grid,
                               const DeviceBaseline& baseline, std::int64_t start,
                               std::int64_t count, float* batch, std::int64_t stride,
                               cudaStream_t stream) {
  detail::run_fill<detail::CudaLaunch>(inputs, n, grid, baseline, start, count, batch, stride,
                                       stream);
}

void fill_occluded_batch_incremental_async(const float* inputs, std::int64_t n,
                                           const WindowGrid& grid, const DeviceBaseline& baseline,
                                           std::int64_t start, std::int64_t count, float* batch,
                                           std::int64_t capacity, IncrementalFillState& state,
                                           std::int64_t stride, cudaStream_t stream) {
  detail::run_incremental_fill<detail::CudaLaunch>(inputs, n, grid, baseline, start, count,
                                                   batch, capacity, state, stride, stream);
}

}  // namespace fastocclusion::cuda
