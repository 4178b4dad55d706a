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
static_assert(sizeof(BasicFillParams<double>) + sizeof(IncrementalPlan) <= 4000,
              "incremental launch parameters exceed the 4 KB kernel parameter limit");

template <int V, typename Index, typename T>
__global__ void __launch_bounds__(kThreads)
    copy_kernel(const BasicFillParams<T> p, std::int64_t count) {
  copy_thread<V, Index>(p, count, blockIdx.x, blockIdx.y, gridDim.x, gridDim.y, threadIdx.x);
}

template <typename Index, typename T>
__global__ void __launch_bounds__(kThreads)
    box_kernel(const BasicFillParams<T> p, std::int64_t count) {
  box_thread<Index>(p, count, blockIdx.x, blockIdx.y, gridDim.x, gridDim.y, threadIdx.x);
}

template <int V, typename Index, typename T>
__global__ void __launch_bounds__(kThreads)
    plan_copy_kernel(const BasicFillParams<T> p, const __grid_constant__ IncrementalPlan plan) {
  plan_copy_thread<V, Index>(p, plan, blockIdx.x, threadIdx.x);
}

template <typename Index, typename T>
__global__ void __launch_bounds__(kThreads)
    plan_box_kernel(const BasicFillParams<T> p, const __grid_constant__ IncrementalPlan plan) {
  plan_box_thread<Index>(p, plan, blockIdx.x, threadIdx.x);
}

struct CudaLaunch {
  template <int V, typename Index, typename T>
  static void copy(const BasicFillParams<T>& p, GridSize grid, std::int64_t count,
                   cudaStream_t stream) {
    const dim3 blocks(static_cast<unsigned>(grid.x), static_cast<unsigned>(grid.y));
    copy_kernel<V, Index, T><<<blocks, kThreads, 0, stream>>>(p, count);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }

  template <typename Index, typename T>
  static void box(const BasicFillParams<T>& p, GridSize grid, std::int64_t count,
                  cudaStream_t stream) {
    const dim3 blocks(static_cast<unsigned>(grid.x), static_cast<unsigned>(grid.y));
    box_kernel<Index, T><<<blocks, kThreads, 0, stream>>>(p, count);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }

  template <int V, typename Index, typename T>
  static void plan_copy(const BasicFillParams<T>& p, const IncrementalPlan& plan,
                        std::int64_t blocks, cudaStream_t stream) {
    plan_copy_kernel<V, Index, T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, plan);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }

  template <typename Index, typename T>
  static void plan_box(const BasicFillParams<T>& p, const IncrementalPlan& plan,
                       std::int64_t blocks, cudaStream_t stream) {
    plan_box_kernel<Index, T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, plan);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace
}  // namespace detail

template <typename T>
void fill_occluded_batch_async(const T* inputs, std::int64_t n, const WindowGrid& grid,
                               const BasicDeviceBaseline<T>& baseline, std::int64_t start,
                               std::int64_t count, T* batch, std::int64_t stride,
                               cudaStream_t stream, const DevicePairs& pairs) {
  detail::run_fill<detail::CudaLaunch>(inputs, n, grid, baseline, start, count, batch, stride,
                                       stream, pairs);
}

template <typename T>
void fill_occluded_batch_incremental_async(const T* inputs, std::int64_t n,
                                           const WindowGrid& grid,
                                           const BasicDeviceBaseline<T>& baseline,
                                           std::int64_t start, std::int64_t count, T* batch,
                                           std::int64_t capacity, IncrementalFillState& state,
                                           std::int64_t stride, cudaStream_t stream,
                                           const DevicePairs& pairs) {
  detail::run_incremental_fill<detail::CudaLaunch>(inputs, n, grid, baseline, start, count,
                                                   batch, capacity, state, stride, stream,
                                                   pairs);
}

// The element types of the fills (kernels.hpp; fill.hpp, "Element types").
#define FASTOCCLUSION_CUDA_FILL_TYPE(T)                                                      \
  template void fill_occluded_batch_async<T>(const T*, std::int64_t, const WindowGrid&,      \
                                             const BasicDeviceBaseline<T>&, std::int64_t,    \
                                             std::int64_t, T*, std::int64_t, cudaStream_t,   \
                                             const DevicePairs&);                            \
  template void fill_occluded_batch_incremental_async<T>(                                    \
      const T*, std::int64_t, const WindowGrid&, const BasicDeviceBaseline<T>&, std::int64_t, \
      std::int64_t, T*, std::int64_t, IncrementalFillState&, std::int64_t, cudaStream_t,     \
      const DevicePairs&);
FASTOCCLUSION_CUDA_FILL_TYPE(float)
FASTOCCLUSION_CUDA_FILL_TYPE(double)
FASTOCCLUSION_CUDA_FILL_TYPE(std::uint8_t)
FASTOCCLUSION_CUDA_FILL_TYPE(std::uint16_t)
FASTOCCLUSION_CUDA_FILL_TYPE(std::uint32_t)
FASTOCCLUSION_CUDA_FILL_TYPE(std::uint64_t)
#undef FASTOCCLUSION_CUDA_FILL_TYPE

}  // namespace fastocclusion::cuda
