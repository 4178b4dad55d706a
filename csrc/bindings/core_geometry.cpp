// fastocclusion._core.WindowGrid: the windows of a sweep over the axes of one sample.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "core_module.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/geometry.hpp"
#include "str_arg.hpp"

namespace py = pybind11;
namespace fo = fastocclusion;

namespace fastocclusion::bindings {
namespace {

// `edges`: one str for every axis, or a sequence of one str per axis.
std::vector<fo::EdgeMode> edge_modes(const py::object& edges, std::size_t rank) {
  if (py::isinstance<py::str>(edges)) {
    return std::vector<fo::EdgeMode>(rank, fo::parse_edge_mode(utf8_value(edges, "edges")));
  }
  FASTOCCLUSION_EXPECTS(py::isinstance<py::sequence>(edges) && !py::isinstance<py::bytes>(edges),
                        "edges: " << std::string(py::repr(edges)).substr(0, 80)
                                  << " is invalid, expected \"valid\", \"cover\", \"shift\" or a sequence of "
                                  << rank << " of them");
  const auto items = edges.cast<py::sequence>();
  FASTOCCLUSION_EXPECTS(items.size() == rank, "edges: " << items.size() << " modes for a sample of "
                                                        << rank << " axes, expected " << rank);
  std::vector<fo::EdgeMode> modes;
  for (const py::handle item : items) {
    FASTOCCLUSION_EXPECTS(py::isinstance<py::str>(item),
                          "edges: " << std::string(py::repr(item)).substr(0, 80)
                                    << " is invalid, expected \"valid\", \"cover\" or \"shift\"");
    modes.push_back(fo::parse_edge_mode(utf8_value(item, "edges")));
  }
  return modes;
}

// `region`: None (the whole sample) or one (begin, end) pair per axis.
using Region = std::optional<std::vector<std::pair<std::int64_t, std::int64_t>>>;

fo::WindowGrid make_grid(const std::vector<std::int64_t>& shape,
                         const std::vector<std::int64_t>& window,
                         const std::vector<std::int64_t>& stride, const py::object& edges,
                         const Region& region) {
  FASTOCCLUSION_EXPECTS(shape.size() >= 1 && shape.size() <= static_cast<std::size_t>(fo::kMaxAxes),
                        "shape: " << shape_string(shape) << " is invalid, expected 1 to "
                                  << fo::kMaxAxes << " axes (one sample, no batch axis)");
  FASTOCCLUSION_EXPECTS(window.size() == shape.size(),
                        "window: " << shape_string(window) << " is invalid for a sample of shape "
                                   << shape_string(shape) << ", expected " << shape.size()
                                   << " sizes");
  FASTOCCLUSION_EXPECTS(stride.size() == shape.size(),
                        "stride: " << shape_string(stride) << " is invalid for a sample of shape "
                                   << shape_string(shape) << ", expected " << shape.size()
                                   << " sizes");
  const std::vector<fo::EdgeMode> modes = edge_modes(edges, shape.size());
  std::vector<std::int64_t> begins, ends;
  if (region) {
    FASTOCCLUSION_EXPECTS(region->size() == shape.size(),
                          "region: " << region->size() << " (begin, end) pairs for a sample of "
                                     << shape.size() << " axes, expected " << shape.size());
    for (const auto& [begin, end] : *region) {
      begins.push_back(begin);
      ends.push_back(end);
    }
  }
  return fo::make_window_grid(static_cast<int>(shape.size()), shape.data(), window.data(),
                              stride.data(), modes.data(), region ? begins.data() : nullptr,
                              region ? ends.data() : nullptr);
}

template <typename Field>
py::tuple per_axis(const fo::WindowGrid& g, Field field) {
  py::tuple t(static_cast<std::size_t>(g.rank));
  for (int d = 0; d < g.rank; ++d) t[static_cast<std::size_t>(d)] = py::cast(field(g.axes[d]));
  return t;
}

py::tuple region_of(const fo::WindowGrid& g) {
  return per_axis(g, [](const fo::AxisGeometry& a) { return std::make_pair(a.begin, a.end); });
}

py::tuple edges_of(const fo::WindowGrid& g) {
  return per_axis(g, [](const fo::AxisGeometry& a) { return std::string(fo::edge_mode_name(a.mode)); });
}

}  // namespace

void register_geometry(py::module_& m) {
  py::class_<fo::WindowGrid>(
      m, "WindowGrid",
      "The windows of an occlusion sweep over the axes of one sample (design §2, §5, §7):\n"
      "per axis a window length, a stride and an edge mode ('valid', 'cover' or 'shift'); windows are\n"
      "enumerated in row-major order of their anchors (first axis outer).")
      .def(py::init(&make_grid), py::arg("shape"), py::arg("window"), py::arg("stride"),
           py::arg("edges") = "valid", py::arg("region") = py::none(),
           "shape: one sample's shape (1 to 5 axes); window, stride: one size per axis;\n"
           "edges: 'valid' | 'cover' | 'shift' (the last window moved back to end at the edge, as\n"
           "MONAI's sliding windows), or one per axis; region: None (the whole sample) or\n"
           "one (begin, end) pair per axis: the windows lie in that box, anchored at begin.")
      .def_property_readonly("rank", [](const fo::WindowGrid& g) { return g.rank; })
      .def_property_readonly("shape", [](const fo::WindowGrid& g) {
        return per_axis(g, [](const fo::AxisGeometry& a) { return a.length; });
      })
      .def_property_readonly("window", [](const fo::WindowGrid& g) {
        return per_axis(g, [](const fo::AxisGeometry& a) { return a.window; });
      })
      .def_property_readonly("stride", [](const fo::WindowGrid& g) {
        return per_axis(g, [](const fo::AxisGeometry& a) { return a.stride; });
      })
      .def_property_readonly("counts", [](const fo::WindowGrid& g) {
        return per_axis(g, [](const fo::AxisGeometry& a) { return a.count; });
      }, "windows per axis")
      .def_property_readonly("edges", &edges_of)
      .def_property_readonly("region", &region_of, "(begin, end) of the windows' box per axis")
      .def_property_readonly("num_windows", &fo::WindowGrid::num_windows)
      .def_property_readonly("sample_size", &fo::WindowGrid::sample_size)
      .def("spans", [](const fo::WindowGrid& g, int axis) {
             FASTOCCLUSION_EXPECTS(axis >= 0 && axis < g.rank, "axis: " << axis
                                       << " is invalid, expected 0 to " << g.rank - 1);
             const fo::AxisGeometry& a = g.axes[axis];
             std::vector<std::pair<std::int64_t, std::int64_t>> spans;
             for (std::int64_t i = 0; i < a.count; ++i) spans.emplace_back(a.anchor(i), a.extent(i));
             return spans;
           }, py::arg("axis"), "(anchor, extent) of every window position along `axis`")
      .def("window_box", [](const fo::WindowGrid& g, std::int64_t k) {
             FASTOCCLUSION_EXPECTS(k >= 0 && k < g.num_windows(), "k: " << k
                                       << " is invalid, expected 0 to " << g.num_windows() - 1);
             const fo::Box box = g.window_box(k);
             py::tuple t(static_cast<std::size_t>(g.rank));
             for (int d = 0; d < g.rank; ++d) t[static_cast<std::size_t>(d)] = py::make_tuple(box.begin[d], box.end[d]);
             return t;
           }, py::arg("k"), "((begin, end) per axis) of window k")
      .def("__eq__", [](const fo::WindowGrid& a, const fo::WindowGrid& b) { return a == b; })
      .def("__hash__", [](const fo::WindowGrid& g) {
        std::size_t h = static_cast<std::size_t>(g.rank);
        for (int d = 0; d < g.rank; ++d) {
          for (std::int64_t v : {g.axes[d].length, g.axes[d].window, g.axes[d].stride, g.axes[d].count}) {
            h = h * 1000003U ^ static_cast<std::size_t>(v);
          }
        }
        return h;
      })
      .def(py::pickle(
          [](const fo::WindowGrid& g) {
            return py::make_tuple(grid_shape(g), per_axis(g, [](const fo::AxisGeometry& a) { return a.window; }),
                                  per_axis(g, [](const fo::AxisGeometry& a) { return a.stride; }),
                                  edges_of(g), region_of(g));
          },
          [](const py::tuple& t) {
            FASTOCCLUSION_EXPECTS(t.size() == 5, "WindowGrid: a pickled state of " << t.size()
                                                     << " items is invalid, expected 5");
            return make_grid(t[0].cast<std::vector<std::int64_t>>(),
                             t[1].cast<std::vector<std::int64_t>>(),
                             t[2].cast<std::vector<std::int64_t>>(), t[3], t[4].cast<Region>());
          }))
      .def("__repr__", [](const fo::WindowGrid& g) {
        std::vector<std::int64_t> window, stride;
        std::string edges = "(", region = "(";
        bool whole = true;
        for (int d = 0; d < g.rank; ++d) {
          const fo::AxisGeometry& a = g.axes[d];
          window.push_back(a.window);
          stride.push_back(a.stride);
          edges += std::string(d ? ", '" : "'") + fo::edge_mode_name(a.mode) + "'";
          region += std::string(d ? ", (" : "(") + std::to_string(a.begin) + ", " +
                    std::to_string(a.end) + ")";
          whole = whole && a.begin == 0 && a.end == a.length;
        }
        edges += g.rank == 1 ? ",)" : ")";
        region += g.rank == 1 ? ",)" : ")";
        return "WindowGrid(shape=" + shape_string(grid_shape(g)) + ", window=" +
               shape_string(window) + ", stride=" + shape_string(stride) + ", edges=" + edges +
               (whole ? "" : ", region=" + region) + ", counts=" + shape_string(grid_counts(g)) +
               ")";
      });
}

}  // namespace fastocclusion::bindings
