// fastocclusion._core's feature-map window kernels (exact incremental inference, design §8):
// gather_windows, splice_windows and SpliceState. float32 or float64 maps (the dtype of
// `maps` decides; every other value array must have it too).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "array_checks.hpp"
#include "common.hpp"
#include "core_module.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/feature_windows.hpp"

namespace py = pybind11;
namespace fo = fastocclusion;

namespace fastocclusion::bindings {
namespace {

using LockedSplice = LockedState<fo::SpliceState>;

// (M, C, *size) maps over 1 to kMaxMapAxes axes: their shape and M.
fo::MapShape map_shape_of(const py::array& maps, std::int64_t& map_count) {
  const std::vector<std::int64_t> shape = array_shape(maps);
  const auto rank = static_cast<std::int64_t>(shape.size());
  FASTOCCLUSION_EXPECTS(rank >= 3 && rank <= 2 + fo::kMaxMapAxes && shape[0] >= 1,
                        "maps: shape " << shape_string(shape)
                                       << " is invalid, expected (M, C, *size) with M >= 1 and 1 "
                                       << "to " << fo::kMaxMapAxes << " axes in size");
  map_count = shape[0];
  fo::MapShape out{shape[1], static_cast<int>(rank - 2), {}};
  for (int a = 0; a < out.axes; ++a) out.size[a] = shape[2 + a];
  return out;
}

// A (count,) int64 index array; returns count.
std::int64_t index_count(const py::array& index) {
  require_array<std::int64_t>(index, "map_index", false);
  FASTOCCLUSION_EXPECTS(index.ndim() == 1, "map_index: shape " << shape_string(array_shape(index))
                                                               << " is invalid, expected (count,)");
  return index.shape(0);
}

// (count, axes) int64 origins, checked.
const std::int64_t* origins_of(const py::array& origins, std::int64_t count, int axes,
                               const char* name) {
  require_array<std::int64_t>(origins, name, false);
  const std::vector<std::int64_t> shape = array_shape(origins);
  FASTOCCLUSION_EXPECTS(shape == (std::vector<std::int64_t>{count, axes}),
                        name << ": shape " << shape_string(shape) << " is invalid, expected ("
                             << count << ", " << axes << "): one origin per slot over the map's "
                             << axes << " axes");
  return static_cast<const std::int64_t*>(origins.data());
}

// (count, C, *size) patches of the maps' dtype; returns their size.
template <typename T>
fo::AxisSizes patch_size_of(const py::array& patches, std::int64_t count,
                            const fo::MapShape& shape) {
  require_array<T>(patches, "patches", false);
  const std::vector<std::int64_t> s = array_shape(patches);
  FASTOCCLUSION_EXPECTS(static_cast<int>(s.size()) == 2 + shape.axes && s[0] == count &&
                            s[1] == shape.channels,
                        "patches: shape " << shape_string(s) << " is invalid, expected (" << count
                                          << ", " << shape.channels << ") followed by "
                                          << shape.axes << " box sizes");
  fo::AxisSizes size{};
  for (int a = 0; a < shape.axes; ++a) size[a] = s[2 + a];
  return size;
}

// The window size: one length >= 1 per axis of the maps.
fo::AxisSizes window_size_of(const std::vector<std::int64_t>& size, const fo::MapShape& shape) {
  bool valid = static_cast<int>(size.size()) == shape.axes;
  for (std::int64_t length : size) valid = valid && length >= 1;
  FASTOCCLUSION_EXPECTS(valid, "size: " << shape_string(size) << " is invalid, expected "
                                        << shape.axes << " lengths >= 1 (one per map axis)");
  fo::AxisSizes out{};
  std::copy(size.begin(), size.end(), out.begin());
  return out;
}

template <typename T>
py::array gather_typed(const py::array& maps, const py::array& map_index, const py::array& origins,
                       const std::vector<std::int64_t>& size, std::optional<py::array> out,
                       const std::optional<py::array>& patches,
                       const std::optional<py::array>& patch_origins, double pad_value) {
  std::int64_t map_count = 0;
  const fo::MapShape shape = map_shape_of(maps, map_count);
  const std::int64_t count = index_count(map_index);
  const fo::SlotBoxes windows{origins_of(origins, count, shape.axes, "origins"),
                              window_size_of(size, shape)};
  FASTOCCLUSION_EXPECTS(patches.has_value() == patch_origins.has_value(),
                        "patches and patch_origins: give both or neither");
  fo::SlotBoxes patch_boxes{};
  const T* patch_values = nullptr;
  if (patches) {
    patch_boxes = {origins_of(*patch_origins, count, shape.axes, "patch_origins"),
                   patch_size_of<T>(*patches, count, shape)};
    patch_values = static_cast<const T*>(patches->data());
  }
  std::vector<std::int64_t> out_shape{count, shape.channels};
  out_shape.insert(out_shape.end(), size.begin(), size.end());
  py::array result = out ? *out : py::array_t<T>(std::vector<py::ssize_t>(out_shape.begin(), out_shape.end()));
  require_array<T>(result, "out", true);
  FASTOCCLUSION_EXPECTS(array_shape(result) == out_shape,
                        "out: shape " << shape_string(array_shape(result)) << " is invalid, expected "
                                      << shape_string(out_shape));
  FASTOCCLUSION_EXPECTS(!overlaps(result, maps) && !(patches && overlaps(result, *patches)),
                        "out: must not share memory with maps or patches");
  const auto* m = static_cast<const T*>(maps.data());
  const auto* idx = static_cast<const std::int64_t*>(map_index.data());
  auto* o = static_cast<T*>(result.mutable_data());
  {
    py::gil_scoped_release release;
    fo::gather_windows<T>(m, map_count, shape, idx, windows, patch_values, patch_boxes,
                          static_cast<T>(pad_value), count, o);
  }
  return result;
}

py::array gather_binding(const py::array& maps, const py::array& map_index,
                         const py::array& origins, const std::vector<std::int64_t>& size,
                         std::optional<py::array> out, std::optional<py::array> patches,
                         std::optional<py::array> patch_origins, double pad_value) {
  if (py::isinstance<py::array_t<double>>(maps)) {
    return gather_typed<double>(maps, map_index, origins, size, out, patches, patch_origins,
                                pad_value);
  }
  require_array<float>(maps, "maps", false);
  return gather_typed<float>(maps, map_index, origins, size, out, patches, patch_origins,
                             pad_value);
}

template <typename T>
void splice_typed(const py::array& maps, const py::array& map_index, const py::array& patches,
                  const py::array& origins, py::array out, LockedSplice* state) {
  std::int64_t map_count = 0;
  const fo::MapShape shape = map_shape_of(maps, map_count);
  const std::int64_t count = index_count(map_index);
  const fo::SlotBoxes boxes{origins_of(origins, count, shape.axes, "origins"),
                            patch_size_of<T>(patches, count, shape)};
  require_array<T>(out, "out", true);
  const std::vector<std::int64_t> s = array_shape(out);
  std::vector<std::int64_t> expected(array_shape(maps));
  bool valid = s.size() == expected.size() && s[0] >= std::max<std::int64_t>(count, 1);
  for (std::size_t a = 1; valid && a < s.size(); ++a) valid = s[a] == expected[a];
  expected[0] = std::max<std::int64_t>(count, 1);
  FASTOCCLUSION_EXPECTS(valid, "out: shape " << shape_string(s) << " is invalid, expected "
                                             << shape_string(expected)
                                             << " with the first length B >= max(1, count="
                                             << count << ")");
  FASTOCCLUSION_EXPECTS(!overlaps(out, maps) && !overlaps(out, patches),
                        "out: must not share memory with maps or patches");
  const auto* m = static_cast<const T*>(maps.data());
  const auto* idx = static_cast<const std::int64_t*>(map_index.data());
  const auto* p = static_cast<const T*>(patches.data());
  auto* o = static_cast<T*>(out.mutable_data());
  call_with_state(state, [&](fo::SpliceState* st) {
    fo::splice_windows<T>(m, map_count, shape, idx, p, boxes, count, o, s[0], st);
  });
}

void splice_binding(const py::array& maps, const py::array& map_index, const py::array& patches,
                    const py::array& origins, py::array out, LockedSplice* state) {
  if (py::isinstance<py::array_t<double>>(maps)) {
    splice_typed<double>(maps, map_index, patches, origins, out, state);
    return;
  }
  require_array<float>(maps, "maps", false);
  splice_typed<float>(maps, map_index, patches, origins, out, state);
}

}  // namespace

void register_feature_windows(py::module_& m) {
  register_fill_state<fo::SpliceState>(
      m, "SpliceState", "What each slot of a persistent spliced buffer holds (splice_windows).");

  m.def("gather_windows", &gather_binding, py::arg("maps"), py::arg("map_index"),
        py::arg("origins"), py::arg("size"), py::arg("out") = py::none(),
        py::arg("patches") = py::none(), py::arg("patch_origins") = py::none(), py::kw_only(),
        py::arg("pad_value") = 0.0,
        "Windows of channels-first feature maps, one per slot: out[j] (C, *size) is map\n"
        "maps[map_index[j]] read from origins[j] (one position per map axis; any int64, the\n"
        "window may reach past the map), pad_value outside the map, and patches[j] (C, *box)\n"
        "in place of the map inside slot j's patch box at patch_origins[j] (inside the map).\n"
        "maps (M, C, *map) over 1 to 3 axes (time; rows, columns; depth, rows, columns),\n"
        "float32 or float64 (patches and out the same dtype); map_index (count,) int64;\n"
        "origins, patch_origins (count, axes) int64; size: the window's length per axis;\n"
        "out (count, C, *size) or None (a new array). Returns out.");

  m.def("splice_windows", &splice_binding, py::arg("maps"), py::arg("map_index"),
        py::arg("patches"), py::arg("origins"), py::arg("out"), py::arg("state") = nullptr,
        "Dense maps with patches spliced in: out[j] = maps[map_index[j]] with patches[j]\n"
        "(C, *box) written at origins[j] (a box inside the map), for j < count; slots past\n"
        "count keep their content. maps (M, C, *map) over 1 to 3 axes, float32 or float64;\n"
        "patches (count, C, *box) and out (B, C, *map), B >= count, of the same dtype;\n"
        "map_index (count,) int64; origins (count, axes) int64. state: a SpliceState for a\n"
        "persistent out (a slot that keeps its map gets only its previous box restored and\n"
        "the new patch written).");
}

}  // namespace fastocclusion::bindings
