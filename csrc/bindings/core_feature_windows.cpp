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
#include "feature_window_args.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/feature_windows.hpp"

namespace py = pybind11;
namespace fo = fastocclusion;

namespace fastocclusion::bindings {
namespace {

using LockedSplice = LockedState<fo::SpliceState>;

template <typename T>
py::array gather_typed(const py::array& maps, const py::array& map_index, const py::array& origins,
                       const std::vector<std::int64_t>& size, std::optional<py::array> out,
                       const std::optional<py::array>& patches,
                       const std::optional<py::array>& patch_origins, double pad_value) {
  std::int64_t map_count = 0;
  const fo::MapShape shape = map_shape_of(array_shape(maps), map_count);
  const std::int64_t count = index_count(map_index);
  const fo::SlotBoxes windows{origins_of(origins, count, shape.axes, "origins"),
                              window_size_of(size, shape)};
  FASTOCCLUSION_EXPECTS(patches.has_value() == patch_origins.has_value(),
                        "patches and patch_origins: give both or neither");
  fo::SlotBoxes patch_boxes{};
  const T* patch_values = nullptr;
  if (patches) {
    require_array<T>(*patches, "patches", false);
    patch_boxes = {origins_of(*patch_origins, count, shape.axes, "patch_origins"),
                   patch_size_of(array_shape(*patches), count, shape)};
    patch_values = static_cast<const T*>(patches->data());
  }
  const std::vector<std::int64_t> out_shape = gather_out_shape(count, shape, size);
  py::array result = out ? *out : py::array_t<T>(std::vector<py::ssize_t>(out_shape.begin(), out_shape.end()));
  require_array<T>(result, "out", true);
  check_gather_out(array_shape(result), out_shape);
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
  const fo::MapShape shape = map_shape_of(array_shape(maps), map_count);
  const std::int64_t count = index_count(map_index);
  require_array<T>(patches, "patches", false);
  const fo::SlotBoxes boxes{origins_of(origins, count, shape.axes, "origins"),
                            patch_size_of(array_shape(patches), count, shape)};
  require_array<T>(out, "out", true);
  const std::vector<std::int64_t> s = array_shape(out);
  check_splice_out(s, array_shape(maps), count);
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
