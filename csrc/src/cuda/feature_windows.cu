// Launchers of the feature-map window kernels (kernels.hpp): the per-element bodies are in
// feature_windows_device.cuh, the checks and parameters in feature_windows_host.hpp; this
// file instantiates the kernels and launches them.
#include <cstdint>

#include "fastocclusion/cuda/cuda_errors.hpp"
#include "fastocclusion/cuda/kernels.hpp"
#include "feature_windows_device.cuh"
#include "feature_windows_host.hpp"

namespace fastocclusion::cuda {
namespace detail {
namespace {

template <typename T>
__global__ void __launch_bounds__(kThreads)
    gather_kernel(const WindowParams<T> p, std::int64_t total) {
  for (std::int64_t idx = first_index(); idx < total; idx += grid_step()) {
    gather_element(p, idx);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    splice_kernel(const WindowParams<T> p, std::int64_t total) {
  for (std::int64_t idx = first_index(); idx < total; idx += grid_step()) {
    splice_element(p, idx);
  }
}

struct CudaLaunch {
  template <typename T>
  static void gather(const WindowParams<T>& p, std::int64_t total, std::int64_t blocks,
                     cudaStream_t stream) {
    gather_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, total);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }
  template <typename T>
  static void splice(const WindowParams<T>& p, std::int64_t total, std::int64_t blocks,
                     cudaStream_t stream) {
    splice_kernel<T><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(p, total);
    FASTOCCLUSION_CUDA_CHECK_LAUNCH();
  }
};

}  // namespace
}  // namespace detail

template <typename T>
void gather_windows_async(const T* maps, std::int64_t map_count, const MapShape& shape,
                          const DeviceIndices& map_index, const DeviceIndices& window_origins,
                          const AxisSizes& window_size, const T* patches,
                          const DeviceIndices& patch_origins, const AxisSizes& patch_size,
                          T pad_value, std::int64_t count, T* out, cudaStream_t stream) {
  detail::run_gather<detail::CudaLaunch>(maps, map_count, shape, map_index, window_origins,
                                         window_size, patches, patch_origins, patch_size,
                                         pad_value, count, out, stream);
}

template <typename T>
void splice_windows_async(const T* maps, std::int64_t map_count, const MapShape& shape,
                          const DeviceIndices& map_index, const T* patches,
                          const DeviceIndices& box_origins, const AxisSizes& box_size,
                          std::int64_t count, T* out, std::int64_t capacity,
                          cudaStream_t stream) {
  detail::run_splice<detail::CudaLaunch>(maps, map_count, shape, map_index, patches,
                                         box_origins, box_size, count, out, capacity, stream);
}

#define FASTOCCLUSION_CUDA_WINDOW_TYPE(T)                                                     \
  template void gather_windows_async<T>(const T*, std::int64_t, const MapShape&,            \
                                        const DeviceIndices&, const DeviceIndices&,         \
                                        const AxisSizes&, const T*, const DeviceIndices&,   \
                                        const AxisSizes&, T, std::int64_t, T*,              \
                                        cudaStream_t);                                      \
  template void splice_windows_async<T>(const T*, std::int64_t, const MapShape&,            \
                                        const DeviceIndices&, const T*,                     \
                                        const DeviceIndices&, const AxisSizes&,             \
                                        std::int64_t, T*, std::int64_t, cudaStream_t);
FASTOCCLUSION_CUDA_WINDOW_TYPE(float)
FASTOCCLUSION_CUDA_WINDOW_TYPE(double)
#undef FASTOCCLUSION_CUDA_WINDOW_TYPE

}  // namespace fastocclusion::cuda
