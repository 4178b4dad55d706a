// fastocclusion._core: the only translation unit that includes pybind11.
//
// Thin by design: check dtype, rank, contiguity, alignment and sizes at the boundary,
// release the GIL, call the plain C++ functions of csrc/include/fastocclusion/.
// User errors (fastocclusion::user_error, a std::invalid_argument) reach Python as ValueError,
// std::bad_alloc (on any kernel thread: parallel_for rethrows it) as MemoryError, other C++
// exceptions as RuntimeError; nothing aborts the process. String options (edges=,
// reduction=) are StrArg (str_arg.hpp): str only, parsed over their whole length.
//
// GIL: released around every kernel call. The arrays passed in stay referenced by this
// frame, so another thread cannot free them meanwhile; it could write to them, which gives
// wrong numbers for that call, never a crash. An IncrementalFillState carries a mutex so
// two threads cannot use one state at once.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dlpack_export.hpp"
#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "fastocclusion/geometry.hpp"
#include "fastocclusion/host_buffer.hpp"
#include "fastocclusion/parallel.hpp"
#include "str_arg.hpp"

namespace py = pybind11;
using namespace fastocclusion::dlpack;  // the DLPack ABI names (kDLCPU, DLDevice, ...)
namespace fo = fastocclusion;
namespace fob = fastocclusion::bindings;

namespace {

constexpr int kNpyAligned = 0x0100;  // NPY_ARRAY_ALIGNED

std::string shape_string(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    s += std::to_string(a.shape(i));
    s += (a.ndim() == 1 || i + 1 < a.ndim()) ? (i + 1 < a.ndim() ? ", " : ",") : "";
  }
  return s + ")";
}

// Checks that `a` is a C-contiguous, aligned array of T; `writable` too if asked.
template <typename T>
void require_array(const py::array& a, const char* name, bool writable) {
  FASTOCCLUSION_EXPECTS(py::isinstance<py::array_t<T>>(a),
                        name << ": dtype " << std::string(py::str(a.dtype())) << " is invalid, expected "
                             << std::string(py::str(py::dtype::of<T>())));
  FASTOCCLUSION_EXPECTS((a.flags() & py::array::c_style) != 0,
                        name << ": expected a C-contiguous array");
  FASTOCCLUSION_EXPECTS((a.flags() & kNpyAligned) != 0, name << ": expected an aligned array");
  if (writable) FASTOCCLUSION_EXPECTS(a.writeable(), name << ": expected a writable array");
}

bool overlaps(const py::array& a, const py::array& b) {
  const auto* a0 = static_cast<const char*>(a.data());
  const auto* b0 = static_cast<const char*>(b.data());
  return a.nbytes() > 0 && b.nbytes() > 0 && a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

fo::InputShape input_shape(const py::array& inputs) {
  FASTOCCLUSION_EXPECTS(inputs.ndim() == 4, "inputs: shape " << shape_string(inputs)
                                                             << " is invalid, expected (N, H, W, C)");
  fo::InputShape s{inputs.shape(0), inputs.shape(1), inputs.shape(2), inputs.shape(3)};
  fo::validate_shape(s, "inputs");
  return s;
}

fo::Baseline baseline_view(const py::array& baseline, const fo::InputShape& s) {
  require_array<float>(baseline, "baseline", false);
  const auto* values = static_cast<const float*>(baseline.data());
  const auto dims = baseline.ndim();
  if (dims == 0) return {fo::BaselineKind::scalar, values};
  if (dims == 1 && baseline.shape(0) == s.c) return {fo::BaselineKind::per_channel, values};
  if (dims == 3 && baseline.shape(0) == s.h && baseline.shape(1) == s.w && baseline.shape(2) == s.c)
    return {fo::BaselineKind::per_image, values};
  if (dims == 4 && baseline.shape(0) == s.n && baseline.shape(1) == s.h &&
      baseline.shape(2) == s.w && baseline.shape(3) == s.c)
    return {fo::BaselineKind::per_input, values};
  FASTOCCLUSION_EXPECTS(false, "baseline: shape " << shape_string(baseline)
                                                  << " is invalid, expected (), (" << s.c << ",), ("
                                                  << s.h << ", " << s.w << ", " << s.c << ") or ("
                                                  << s.n << ", " << s.h << ", " << s.w << ", "
                                                  << s.c << ")");
  return {};
}

struct LockedFillState {
  fo::IncrementalFillState state;
  std::mutex mutex;
};

void fill_binding(const py::array& inputs, const fo::PatchGrid& grid, const py::array& baseline,
                  std::int64_t start, std::int64_t count, py::array out,
                  LockedFillState* state, std::int64_t stride) {
  require_array<float>(inputs, "inputs", false);
  const fo::InputShape shape = input_shape(inputs);
  const fo::Baseline base = baseline_view(baseline, shape);
  require_array<float>(out, "out", true);
  FASTOCCLUSION_EXPECTS(out.ndim() == 4 && out.shape(1) == shape.h && out.shape(2) == shape.w &&
                            out.shape(3) == shape.c && out.shape(0) >= count && out.shape(0) >= 1,
                        "out: shape " << shape_string(out) << " is invalid, expected (B, " << shape.h
                                      << ", " << shape.w << ", " << shape.c << ") with B >= count="
                                      << count);
  FASTOCCLUSION_EXPECTS(!overlaps(out, inputs) && !overlaps(out, baseline),
                        "out: must not share memory with inputs or baseline");
  const auto* in = static_cast<const float*>(inputs.data());
  auto* batch = static_cast<float*>(out.mutable_data());
  const std::int64_t capacity = out.shape(0);
  if (state == nullptr) {
    py::gil_scoped_release release;
    fo::fill_occluded_batch(in, shape, grid, base, start, count, batch, stride);
    return;
  }
  std::unique_lock<std::mutex> lock(state->mutex, std::try_to_lock);
  FASTOCCLUSION_EXPECTS(lock.owns_lock(), "state: already in use by another thread");
  py::gil_scoped_release release;
  fo::fill_occluded_batch_incremental(in, shape, grid, base, start, count, batch, capacity,
                                      state->state, stride);
}

py::array accumulate_binding(const py::array& deltas, const fo::PatchGrid& grid,
                             const fob::StrArg& reduction, std::optional<py::array> out) {
  const fo::Reduction red = fo::parse_reduction(std::string_view(reduction.value));
  require_array<double>(deltas, "deltas", false);
  FASTOCCLUSION_EXPECTS(deltas.ndim() == 3 && deltas.shape(0) >= 1 &&
                            deltas.shape(1) == grid.rows.count && deltas.shape(2) == grid.cols.count,
                        "deltas: shape " << shape_string(deltas) << " is invalid, expected (N, "
                                         << grid.rows.count << ", " << grid.cols.count
                                         << ") with N >= 1");
  const std::int64_t n = deltas.shape(0);
  py::array maps = out ? *out : py::array_t<float>({n, grid.height(), grid.width()});
  require_array<float>(maps, "out", true);
  FASTOCCLUSION_EXPECTS(maps.ndim() == 3 && maps.shape(0) == n && maps.shape(1) == grid.height() &&
                            maps.shape(2) == grid.width(),
                        "out: shape " << shape_string(maps) << " is invalid, expected (" << n << ", "
                                      << grid.height() << ", " << grid.width() << ")");
  FASTOCCLUSION_EXPECTS(!overlaps(maps, deltas), "out: must not share memory with deltas");
  const auto* d = static_cast<const double*>(deltas.data());
  auto* m = static_cast<float*>(maps.mutable_data());
  {
    py::gil_scoped_release release;
    fo::accumulate_patch_deltas(d, n, grid, red, m);
  }
  return maps;
}

// ---- DLPack export of host buffers -------------------------------------------------------

py::object buffer_to_dlpack(const std::shared_ptr<fo::AlignedHostBuffer>& buffer,
                            const py::object& stream, const py::object& /*max_version*/,
                            const py::object& dl_device, const py::object& copy) {
  FASTOCCLUSION_EXPECTS(stream.is_none(), "stream: expected None for a host buffer");
  if (!dl_device.is_none()) {
    const auto device = fob::parse_dl_device(dl_device);
    FASTOCCLUSION_EXPECTS(device.first == kDLCPU && device.second == 0,
                          "dl_device: (" << device.first << ", " << device.second
                                         << ") is invalid, a host buffer lives on (1, 0)");
  }
  fob::refuse_copy(copy, "HostBuffer");
  return fob::export_dlpack(buffer, buffer->data(), DLDevice{kDLCPU, 0},
                            DLDataType{kDLFloat, 32, 1});
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastocclusion compiled core: patch geometry, occluded batch filling, map accumulation";
  m.attr("BUFFER_ALIGNMENT") = fo::kBufferAlignment;
  m.def("num_threads", &fo::num_threads, "Threads the CPU kernels may use.");
  m.def("set_num_threads", &fo::set_num_threads, py::arg("threads"),
        "Set the threads the CPU kernels may use (< 1: hardware concurrency).");

  py::class_<fo::PatchGrid>(m, "PatchGrid",
                            "Patch anchors over an (height, width) plane (SPEC §2, §5).")
      .def(py::init([](std::int64_t height, std::int64_t width, std::pair<std::int64_t, std::int64_t> patch,
                       std::pair<std::int64_t, std::int64_t> stride, const fob::StrArg& edges) {
             return fo::make_patch_grid(height, width, patch.first, patch.second, stride.first,
                                        stride.second, fo::parse_edge_mode(std::string_view(edges.value)));
           }),
           py::arg("height"), py::arg("width"), py::arg("patch_size"), py::arg("patch_stride"),
           py::arg("edges") = "valid")
      .def_property_readonly("height", &fo::PatchGrid::height)
      .def_property_readonly("width", &fo::PatchGrid::width)
      .def_property_readonly("rows", [](const fo::PatchGrid& g) { return g.rows.count; })
      .def_property_readonly("cols", [](const fo::PatchGrid& g) { return g.cols.count; })
      .def_property_readonly("num_patches", &fo::PatchGrid::num_patches)
      .def_property_readonly("patch_size", [](const fo::PatchGrid& g) { return std::make_pair(g.rows.patch, g.cols.patch); })
      .def_property_readonly("patch_stride", [](const fo::PatchGrid& g) { return std::make_pair(g.rows.stride, g.cols.stride); })
      .def("row_spans", [](const fo::PatchGrid& g) {
             std::vector<std::pair<std::int64_t, std::int64_t>> spans;
             for (std::int64_t i = 0; i < g.rows.count; ++i) spans.emplace_back(g.rows.anchor(i), g.rows.extent(i));
             return spans;
           }, "(anchor, extent) of every patch row")
      .def("col_spans", [](const fo::PatchGrid& g) {
             std::vector<std::pair<std::int64_t, std::int64_t>> spans;
             for (std::int64_t j = 0; j < g.cols.count; ++j) spans.emplace_back(g.cols.anchor(j), g.cols.extent(j));
             return spans;
           }, "(anchor, extent) of every patch column")
      .def("__repr__", [](const fo::PatchGrid& g) {
        return "PatchGrid(height=" + std::to_string(g.height()) + ", width=" + std::to_string(g.width()) +
               ", rows=" + std::to_string(g.rows.count) + ", cols=" + std::to_string(g.cols.count) + ")";
      });

  py::class_<LockedFillState>(m, "IncrementalFillState",
                              "What each slot of a persistent batch holds, for incremental fills.")
      .def(py::init<>())
      .def("reset", [](LockedFillState& s) {
        std::lock_guard<std::mutex> lock(s.mutex);
        s.state.reset();
      });

  m.def("fill_occluded_batch", &fill_binding, py::arg("inputs"), py::arg("grid"), py::arg("baseline"),
        py::arg("start"), py::arg("count"), py::arg("out"), py::arg("state") = nullptr,
        py::kw_only(), py::arg("stride") = 1,
        "Write occluded samples of the (input, patch) stream into out[:count]: slot j gets stream\n"
        "index start + j*stride (stride 1: the slice [start, start+count)).\n"
        "inputs (N,H,W,C) float32; baseline float32 (), (C,), (H,W,C) or (N,H,W,C);\n"
        "out (B,H,W,C) float32, B >= count; state: an IncrementalFillState for incremental fills.");

  m.def("accumulate_patch_deltas", &accumulate_binding, py::arg("deltas"), py::arg("grid"),
        py::arg("reduction") = "sum", py::arg("out") = py::none(),
        "Sensitivity maps (N,H,W) float32 from patch deltas (N,rows,cols) float64.");

  py::class_<fo::AlignedHostBuffer, std::shared_ptr<fo::AlignedHostBuffer>>(
      m, "HostBuffer", py::buffer_protocol(),
      "A 64-byte-aligned, zeroed float32 buffer; NumPy views it by the buffer protocol,\n"
      "TensorFlow/PyTorch by DLPack, without a copy.")
      .def(py::init([](const std::vector<std::int64_t>& shape) {
             return std::make_shared<fo::AlignedHostBuffer>(shape);
           }),
           py::arg("shape"))
      .def_buffer([](fo::AlignedHostBuffer& b) {
        std::vector<py::ssize_t> shape(b.shape().begin(), b.shape().end());
        std::vector<py::ssize_t> strides(shape.size());
        py::ssize_t stride = sizeof(float);
        for (std::size_t i = shape.size(); i-- > 0;) {
          strides[i] = stride;
          stride *= shape[i];
        }
        return py::buffer_info(b.data(), sizeof(float), py::format_descriptor<float>::format(),
                               static_cast<py::ssize_t>(shape.size()), shape, strides);
      })
      .def_property_readonly("shape", [](const fo::AlignedHostBuffer& b) { return py::tuple(py::cast(b.shape())); })
      .def_property_readonly("nbytes", &fo::AlignedHostBuffer::nbytes)
      .def_property_readonly("data_ptr", [](const fo::AlignedHostBuffer& b) {
        return reinterpret_cast<std::uintptr_t>(b.data());
      })
      .def("__dlpack__", &buffer_to_dlpack, py::kw_only(), py::arg("stream") = py::none(),
           py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(),
           py::arg("copy") = py::none())
      .def("__dlpack_device__", [](const fo::AlignedHostBuffer&) { return py::make_tuple(static_cast<int>(kDLCPU), 0); });
}
