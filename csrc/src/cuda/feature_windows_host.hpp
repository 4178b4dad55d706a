// Host side of the feature-map window kernels: the CPU kernels' checks (on the host copies
// of the per-slot values), the parameters and the launcher logic as templates over a
// `Launch` policy (as fill_host.hpp does). Private to csrc/src/cuda, free of CUDA launch
// syntax.
//
// A Launch policy provides (1-D grids of kThreads-thread blocks, 64-bit grid-stride loops)
//   template <class T> static void gather(const WindowParams<T>&, std::int64_t total, std::int64_t blocks, cudaStream_t);
//   template <class T> static void splice(const WindowParams<T>&, std::int64_t total, std::int64_t blocks, cudaStream_t);
#pragma once

#include <cstdint>

#include "accumulate_host.hpp"
#include "fastocclusion/cuda/kernels.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/feature_windows.hpp"
#include "feature_windows_device.cuh"

namespace fastocclusion::cuda::detail {

/// The padded (3-axis) lengths of `size`'s first `axes` entries.
inline void padded_lengths(const AxisSizes& size, int axes, std::int64_t (&out)[kMaxMapAxes]) {
  for (int a = 0; a < kMaxMapAxes; ++a) out[a] = 1;
  for (int a = 0; a < axes; ++a) out[kMaxMapAxes - axes + a] = size[a];
}

inline void require_device_copies(std::int64_t count, std::initializer_list<const void*> device) {
  if (count == 0) return;
  for (const void* pointer : device) {
    FASTOCCLUSION_EXPECTS(pointer != nullptr,
                          "map_index and origins: expected device copies beside the host ones");
  }
}

/// The parameters both kernels share: the maps, the slots' map indices and origins (device
/// copies), the patches and out.
template <typename T>
WindowParams<T> window_params(const T* maps, const MapShape& shape, const DeviceIndices& map_index,
                              const DeviceIndices& origins, const T* patches,
                              const AxisSizes& patch_size, std::int64_t count, T* out) {
  WindowParams<T> p;
  p.maps = maps;
  p.map_index = map_index.device;
  p.origins = origins.device;
  p.patches = patches;
  p.out = out;
  p.axes = shape.axes;
  p.channels = shape.channels;
  p.count = count;
  padded_lengths(shape.size, shape.axes, p.map);
  if (patches != nullptr) padded_lengths(patch_size, shape.axes, p.patch);
  return p;
}

/// gather_windows_async over a Launch policy.
template <typename Launch, typename T>
void run_gather(const T* maps, std::int64_t map_count, const MapShape& shape,
                const DeviceIndices& map_index, const DeviceIndices& window_origins,
                const AxisSizes& window_size, const T* patches,
                const DeviceIndices& patch_origins, const AxisSizes& patch_size, T pad_value,
                std::int64_t count, T* out, cudaStream_t stream) {
  const bool with_patches = patches != nullptr;
  check_gather_arguments(maps, map_count, shape, map_index.host,
                         SlotBoxes{window_origins.host, window_size}, with_patches,
                         SlotBoxes{patch_origins.host, patch_size}, count, out);
  require_device_copies(count, {map_index.device, window_origins.device});
  if (with_patches) require_device_copies(count, {patch_origins.device});
  if (count == 0) return;
  WindowParams<T> p =
      window_params(maps, shape, map_index, window_origins, patches, patch_size, count, out);
  p.patch_origins = with_patches ? patch_origins.device : nullptr;
  p.pad = pad_value;
  padded_lengths(window_size, shape.axes, p.window);
  const std::int64_t total = count * shape.channels * p.window[0] * p.window[1] * p.window[2];
  Launch::gather(p, total, accumulate_blocks(total), stream);
}

/// splice_windows_async over a Launch policy.
template <typename Launch, typename T>
void run_splice(const T* maps, std::int64_t map_count, const MapShape& shape,
                const DeviceIndices& map_index, const T* patches,
                const DeviceIndices& box_origins, const AxisSizes& box_size,
                std::int64_t count, T* out, std::int64_t capacity, cudaStream_t stream) {
  check_splice_arguments(maps, map_count, shape, map_index.host,
                         patches, SlotBoxes{box_origins.host, box_size}, count, out, capacity);
  require_device_copies(count, {map_index.device, box_origins.device});
  if (count == 0) return;
  const WindowParams<T> p =
      window_params(maps, shape, map_index, box_origins, patches, box_size, count, out);
  const std::int64_t total = count * shape.channels * p.map[0] * p.map[1] * p.map[2];
  Launch::splice(p, total, accumulate_blocks(total), stream);
}

}  // namespace fastocclusion::cuda::detail
