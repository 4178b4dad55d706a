// Device side of the feature-map window kernels (feature_windows.hpp: gather_windows and
// splice_windows): the parameters and the per-element bodies, private to csrc/src/cuda
// (__host__ __device__, see device_support.cuh; feature_windows.cu runs them in 64-bit
// grid-stride loops, one thread per output element).
//
// Both are pure gathers: every output element decides alone where its value comes from
// (the pad value, the slot's patch, or the slot's base map), so one launch writes each
// element exactly once, in any order, and equals the CPU kernel bit for bit (they only copy).
//
// Axes: a map has C channels and 1 to 3 axes; the bodies see every map over 3 axes, the
// given ones last and length 1 before them (the CPU kernels' padded axes). Per-slot values
// (the map index, the window and patch origins) are read from device memory, in the
// caller's layout: count x axes origins, row-major.
#pragma once

#include <cstdint>

#include "device_support.cuh"
#include "fastocclusion/feature_windows.hpp"

namespace fastocclusion::cuda::detail {

/// Everything a feature-window kernel needs, passed by value; T is float or double.
template <typename T>
struct WindowParams {
  const T* maps = nullptr;                   ///< map_count maps of channels x map
  const std::int64_t* map_index = nullptr;   ///< count entries, device
  const std::int64_t* origins = nullptr;     ///< gather: window origins; splice: patch boxes
  const T* patches = nullptr;                ///< count x channels x patch, or null (gather)
  const std::int64_t* patch_origins = nullptr;  ///< gather: patch box origins (count x axes)
  T* out = nullptr;
  T pad = T{};
  int axes = 1;                              ///< the caller's axes (1 to 3)
  std::int64_t channels = 1;
  std::int64_t map[kMaxMapAxes] = {1, 1, 1};     ///< padded map lengths
  std::int64_t window[kMaxMapAxes] = {1, 1, 1};  ///< padded window lengths (gather)
  std::int64_t patch[kMaxMapAxes] = {1, 1, 1};   ///< padded patch box lengths
  std::int64_t count = 0;
};

/// Origin of slot j along padded axis a (0 before the caller's axes).
FASTOCCLUSION_HD std::int64_t padded_origin(const std::int64_t* origins, int axes,
                                            std::int64_t j, int a) {
  const int first = kMaxMapAxes - axes;
  return a < first ? 0 : load_readonly(origins + j * axes + (a - first));
}

/// Whether position `at` lies in slot j's patch box (origins count x axes); its offset in
/// the box (row-major) in `offset` when it does.
template <typename T>
FASTOCCLUSION_HD bool in_patch_box(const WindowParams<T>& p, const std::int64_t* origins,
                                   std::int64_t j, const std::int64_t (&at)[kMaxMapAxes],
                                   std::int64_t& offset) {
  bool inside = true;
  offset = 0;
  FASTOCCLUSION_UNROLL
  for (int a = 0; a < kMaxMapAxes; ++a) {
    const std::int64_t d = at[a] - padded_origin(origins, p.axes, j, a);
    inside = inside && d >= 0 && d < p.patch[a];
    offset = offset * p.patch[a] + d;
  }
  return inside;
}

/// Slot j's patch value at `offset` of channel c.
template <typename T>
FASTOCCLUSION_HD T patch_value(const WindowParams<T>& p, std::int64_t j, std::int64_t c,
                               std::int64_t offset) {
  const std::int64_t patch_volume = p.patch[0] * p.patch[1] * p.patch[2];
  return load_readonly(p.patches + (j * p.channels + c) * patch_volume + offset);
}

/// Output element idx of a slot-major (count, channels, *lengths) array: its slot j,
/// channel c and position `at` (padded axes).
FASTOCCLUSION_HD void unravel_element(std::int64_t idx, std::int64_t channels,
                                      const std::int64_t (&lengths)[kMaxMapAxes],
                                      std::int64_t& j, std::int64_t& c,
                                      std::int64_t (&at)[kMaxMapAxes]) {
  const std::int64_t volume = lengths[0] * lengths[1] * lengths[2];
  const std::int64_t per_slot = channels * volume;
  j = idx / per_slot;
  std::int64_t rest = idx - j * per_slot;
  c = rest / volume;
  rest -= c * volume;
  at[0] = rest / (lengths[1] * lengths[2]);
  at[1] = rest / lengths[2] % lengths[1];
  at[2] = rest % lengths[2];
}

/// Output element idx < count * channels * prod(window) of gather_windows.
template <typename T>
FASTOCCLUSION_HD void gather_element(const WindowParams<T>& p, std::int64_t idx) {
  std::int64_t j, c, q[kMaxMapAxes], at[kMaxMapAxes];
  unravel_element(idx, p.channels, p.window, j, c, q);
  bool inside = true;
  FASTOCCLUSION_UNROLL
  for (int a = 0; a < kMaxMapAxes; ++a) {
    at[a] = padded_origin(p.origins, p.axes, j, a) + q[a];
    inside = inside && at[a] >= 0 && at[a] < p.map[a];
  }
  if (!inside) {
    p.out[idx] = p.pad;
    return;
  }
  std::int64_t offset = 0;
  if (p.patches != nullptr && in_patch_box(p, p.patch_origins, j, at, offset)) {
    p.out[idx] = patch_value(p, j, c, offset);
    return;
  }
  const std::int64_t map_volume = p.map[0] * p.map[1] * p.map[2];
  const std::int64_t map = load_readonly(p.map_index + j);
  p.out[idx] = load_readonly(p.maps + (map * p.channels + c) * map_volume +
                             (at[0] * p.map[1] + at[1]) * p.map[2] + at[2]);
}

/// Output element idx < count * channels * prod(map) of splice_windows: the slot's base
/// map with its patch over its box (p.origins: the patch boxes).
template <typename T>
FASTOCCLUSION_HD void splice_element(const WindowParams<T>& p, std::int64_t idx) {
  std::int64_t j, c, at[kMaxMapAxes];
  unravel_element(idx, p.channels, p.map, j, c, at);
  std::int64_t offset = 0;
  if (in_patch_box(p, p.origins, j, at, offset)) {
    p.out[idx] = patch_value(p, j, c, offset);
    return;
  }
  const std::int64_t per_slot = p.channels * p.map[0] * p.map[1] * p.map[2];
  const std::int64_t map = load_readonly(p.map_index + j);
  p.out[idx] = load_readonly(p.maps + map * per_slot + (idx - j * per_slot));
}

}  // namespace fastocclusion::cuda::detail
