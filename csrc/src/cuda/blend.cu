// Launchers of the device window means and weighted blend (kernels.hpp). The per-element
// bodies are in blend_device.cuh, the checks and launch geometry in blend_host.hpp.
#include <cstdint>

#include "blend_device.cuh"
#include "blend_host.hpp"
#include "fastocclusion/cuda/cuda_errors.hpp"
#include "fastocclusion/cuda/kernels.hpp"

namespace fastocclusion::cuda {
namespace detail {
namespace {


template <typename Index, typename T>
__global__ void __launch_bounds__(kThreads)
    means_kernel(const BasicFillParams<T> p, T* out, std::int64_t total) {
  for (std::int64_t s = first_index(); s < total; s += grid_step()) {
    window_mean_element<Index>(p, out, s);
  }
}

__global__ void __launch_bounds__(kThreads) blend_kernel(const BlendParams p) {
  const std::int64_t total = p.n * p.map_size;
  for (std::int64_t idx = first_index(); idx < total; idx += grid_step()) blend_element(p, idx);
}

struct CudaLaunch {
  template <typename Index, typename T>
  static void means(const BasicFillParams<T>& p, T* out, std::int64_t total, std::int64_t blocks,
                    cudaStream_t stream) {
    means_kernel<Index, T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, out, total);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }
  static void blend(const BlendParams& p, std::int64_t blocks, cudaStream_t stream) {
    blend_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace
}  // namespace detail

template <typename T>
void window_means_async(const T* inputs, std::int64_t n, const WindowGrid& grid, T* out,
                        cudaStream_t stream) {
  detail::run_window_means<detail::CudaLaunch>(inputs, n, grid, out, stream);
}

template void window_means_async<float>(const float*, std::int64_t, const WindowGrid&, float*,
                                        cudaStream_t);
template void window_means_async<double>(const double*, std::int64_t, const WindowGrid&,
                                         double*, cudaStream_t);

void blend_window_values_async(const double* values, std::int64_t n, const WindowGrid& grid,
                               std::uint32_t collapsed_axes, const float* importance,
                               float* maps, cudaStream_t stream) {
  detail::run_blend<detail::CudaLaunch>(values, n, grid, collapsed_axes, importance, maps,
                                        stream);
}

}  // namespace fastocclusion::cuda
