// The arguments of the feature-map window kernels (gather_windows, splice_windows) as both
// modules read them: shapes of the value arrays (host NumPy arrays for _core, device arrays
// for _cuda) and the host int64 index arrays. Binding code: included only by
// csrc/bindings/*_feature_windows.cpp.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "array_checks.hpp"
#include "common.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/feature_windows.hpp"

namespace fastocclusion::bindings {

/// (M, C, *size) maps over 1 to kMaxMapAxes axes: their shape, M in `map_count`.
/// ValueError naming `maps` otherwise.
inline MapShape map_shape_of(const std::vector<std::int64_t>& shape, std::int64_t& map_count) {
  const auto rank = static_cast<std::int64_t>(shape.size());
  FASTOCCLUSION_EXPECTS(rank >= 3 && rank <= 2 + kMaxMapAxes && shape[0] >= 1,
                        "maps: shape " << shape_string(shape)
                                       << " is invalid, expected (M, C, *size) with M >= 1 and 1 "
                                       << "to " << kMaxMapAxes << " axes in size");
  map_count = shape[0];
  MapShape out{shape[1], static_cast<int>(rank - 2), {}};
  for (int a = 0; a < out.axes; ++a) out.size[a] = shape[2 + a];
  return out;
}

/// A (count,) int64 host index array; returns count.
inline std::int64_t index_count(const pybind11::array& index) {
  require_array<std::int64_t>(index, "map_index", false);
  FASTOCCLUSION_EXPECTS(index.ndim() == 1, "map_index: shape " << shape_string(array_shape(index))
                                                               << " is invalid, expected (count,)");
  return index.shape(0);
}

/// (count, axes) int64 host origins, checked; their first element.
inline const std::int64_t* origins_of(const pybind11::array& origins, std::int64_t count,
                                      int axes, const char* name) {
  require_array<std::int64_t>(origins, name, false);
  const std::vector<std::int64_t> shape = array_shape(origins);
  FASTOCCLUSION_EXPECTS(shape == (std::vector<std::int64_t>{count, axes}),
                        name << ": shape " << shape_string(shape) << " is invalid, expected ("
                             << count << ", " << axes << "): one origin per slot over the map's "
                             << axes << " axes");
  return static_cast<const std::int64_t*>(origins.data());
}

/// The box size of (count, C, *box) patches of shape `s`. ValueError naming `patches`.
inline AxisSizes patch_size_of(const std::vector<std::int64_t>& s, std::int64_t count,
                               const MapShape& shape) {
  FASTOCCLUSION_EXPECTS(static_cast<int>(s.size()) == 2 + shape.axes && s[0] == count &&
                            s[1] == shape.channels,
                        "patches: shape " << shape_string(s) << " is invalid, expected (" << count
                                          << ", " << shape.channels << ") followed by "
                                          << shape.axes << " box sizes");
  AxisSizes size{};
  for (int a = 0; a < shape.axes; ++a) size[a] = s[2 + a];
  return size;
}

/// The window size: one length >= 1 per axis of the maps. ValueError naming `size`.
inline AxisSizes window_size_of(const std::vector<std::int64_t>& size, const MapShape& shape) {
  bool valid = static_cast<int>(size.size()) == shape.axes;
  for (std::int64_t length : size) valid = valid && length >= 1;
  FASTOCCLUSION_EXPECTS(valid, "size: " << shape_string(size) << " is invalid, expected "
                                        << shape.axes << " lengths >= 1 (one per map axis)");
  AxisSizes out{};
  std::copy(size.begin(), size.end(), out.begin());
  return out;
}

/// The shape of a gather's out: (count, C, *size).
inline std::vector<std::int64_t> gather_out_shape(std::int64_t count, const MapShape& shape,
                                                  const std::vector<std::int64_t>& size) {
  std::vector<std::int64_t> out{count, shape.channels};
  out.insert(out.end(), size.begin(), size.end());
  return out;
}

/// ValueError naming `out` unless a gather's out has shape `expected`.
inline void check_gather_out(const std::vector<std::int64_t>& s,
                             const std::vector<std::int64_t>& expected) {
  FASTOCCLUSION_EXPECTS(s == expected, "out: shape " << shape_string(s) << " is invalid, expected "
                                                     << shape_string(expected));
}

/// ValueError naming `out` unless a splice's out (B, C, *map) matches the maps (M, C, *map)
/// with B >= max(1, count).
inline void check_splice_out(const std::vector<std::int64_t>& s,
                             const std::vector<std::int64_t>& maps, std::int64_t count) {
  std::vector<std::int64_t> expected(maps);
  bool valid = s.size() == expected.size() && s[0] >= std::max<std::int64_t>(count, 1);
  for (std::size_t a = 1; valid && a < s.size(); ++a) valid = s[a] == expected[a];
  expected[0] = std::max<std::int64_t>(count, 1);
  FASTOCCLUSION_EXPECTS(valid, "out: shape " << shape_string(s) << " is invalid, expected "
                                             << shape_string(expected)
                                             << " with the first length B >= max(1, count="
                                             << count << ")");
}

}  // namespace fastocclusion::bindings
