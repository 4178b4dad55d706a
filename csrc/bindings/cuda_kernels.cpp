// fastocclusion._cuda's kernels: occluded batch fills (full and incremental) on device
// buffers, and maps from window deltas. The geometry is _core's WindowGrid.
#include <cuda_runtime_api.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"
#include "cuda_buffers.hpp"
#include "cuda_module.hpp"
#include "cuda_streams.hpp"
#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/cuda/cuda_errors.hpp"
#include "fastocclusion/cuda/device.hpp"
#include "fastocclusion/cuda/device_buffer.hpp"
#include "fastocclusion/cuda/kernels.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "fastocclusion/geometry.hpp"
#include "str_arg.hpp"

namespace py = pybind11;
namespace fo = fastocclusion;
namespace fc = fastocclusion::cuda;

namespace fastocclusion::bindings {
namespace {

// The host mirror of a device batch: the core's IncrementalFillState, as a type of its own.
// _core registers LockedState<IncrementalFillState> as _core.IncrementalFillState, pybind11
// registers a C++ type once across the modules that share its registry, and a CPU batch's
// state is no state for a device batch: _cuda.IncrementalFillState is this one.
struct DeviceFillState : fo::IncrementalFillState {};
using CudaFillState = LockedState<DeviceFillState>;

// inputs: a float32 DeviceBuffer (N, *sample shape). Returns N.
std::int64_t input_count(const PyDeviceBuffer& inputs, const fo::WindowGrid& grid) {
  require_dtype(inputs, fc::DType::float32, "inputs");
  return leading_count(inputs.buffer->shape(), grid_shape(grid), "inputs",
                       "the grid's sample shape");
}

struct BaselineArg {
  fc::DeviceBaseline view;
  PyDeviceBuffer* buffer = nullptr;  // the device values, if any
};

// The baseline: a number (scalar, by value) or a float32 DeviceBuffer of the sample shape
// (per_sample) or (N, *sample shape) (per_input).
BaselineArg baseline_view(const py::object& baseline, std::int64_t n, const fo::WindowGrid& grid) {
  const std::vector<std::int64_t> sample = grid_shape(grid);
  if (py::isinstance<PyDeviceBuffer>(baseline)) {
    auto& b = baseline.cast<PyDeviceBuffer&>();
    require_dtype(b, fc::DType::float32, "baseline");
    const std::vector<std::int64_t>& shape = b.buffer->shape();
    const auto* values = b.buffer->data_as<float>();
    if (shape == sample) return {{fo::BaselineKind::per_sample, values, 0.0f}, &b};
    if (shape == batch_shape(n, sample)) return {{fo::BaselineKind::per_input, values, 0.0f}, &b};
    FASTOCCLUSION_EXPECTS(false, "baseline: shape " << shape_string(shape)
                                                    << " is invalid, expected the sample shape "
                                                    << shape_string(sample) << " or "
                                                    << shape_string(batch_shape(n, sample))
                                                    << ", or a number");
  }
  if (py::isinstance<py::array>(baseline)) {
    FASTOCCLUSION_EXPECTS(py::cast<py::array>(baseline).ndim() == 0,
                          "baseline: a host array is invalid, expected a number or a DeviceBuffer "
                          "(upload it with DeviceBuffer.from_host)");
  }
  FASTOCCLUSION_EXPECTS(py::isinstance<py::float_>(baseline) || py::isinstance<py::int_>(baseline) ||
                            py::hasattr(baseline, "__float__"),
                        "baseline: " << std::string(py::str(py::type::of(baseline)))
                                     << " is invalid, expected a number or a DeviceBuffer");
  const auto value = static_cast<float>(py::float_(baseline).cast<double>());
  return {{fo::BaselineKind::scalar, nullptr, value}, nullptr};
}

void fill_binding(PyDeviceBuffer& inputs, const fo::WindowGrid& grid, const py::object& baseline,
                  std::int64_t start, std::int64_t count, PyDeviceBuffer& out,
                  CudaFillState* state, std::int64_t stride, const py::object& stream) {
  const std::int64_t n = input_count(inputs, grid);
  const BaselineArg base = baseline_view(baseline, n, grid);
  require_dtype(out, fc::DType::float32, "out");
  const std::vector<std::int64_t> sample = grid_shape(grid);
  const std::vector<std::int64_t>& out_shape = out.buffer->shape();
  FASTOCCLUSION_EXPECTS(out_shape.size() == sample.size() + 1 && out_shape[0] >= count &&
                            std::vector<std::int64_t>(out_shape.begin() + 1, out_shape.end()) == sample,
                        "out: shape " << shape_string(out_shape) << " is invalid, expected (B, "
                                      << shape_string(sample).substr(1) << " with B >= count="
                                      << count);
  // Device buffers own their memory (no views): sharing memory means being the same buffer.
  FASTOCCLUSION_EXPECTS(out.buffer != inputs.buffer &&
                            (base.buffer == nullptr || out.buffer != base.buffer->buffer),
                        "out: must not share memory with inputs or baseline");
  const int device = inputs.buffer->device();
  require_device(out, device, "out");
  if (base.buffer != nullptr) require_device(*base.buffer, device, "baseline");
  const cudaStream_t s = stream_from(stream);
  fc::DeviceGuard guard(device);
  inputs.use_on(s);
  out.use_on(s);
  if (base.buffer != nullptr) base.buffer->use_on(s);
  const auto* in = inputs.buffer->data_as<float>();
  auto* batch = out.buffer->data_as<float>();
  const std::int64_t capacity = out_shape[0];
  call_with_state(state, [&](DeviceFillState* st) {
    if (st == nullptr) {
      fc::fill_occluded_batch_async(in, n, grid, base.view, start, count, batch, stride, s);
    } else {
      fc::fill_occluded_batch_incremental_async(in, n, grid, base.view, start, count, batch,
                                                capacity, *st, stride, s);
    }
  });
}

std::shared_ptr<PyDeviceBuffer> accumulate_binding(const py::object& deltas_obj,
                                                   const fo::WindowGrid& grid,
                                                   const StrArg& reduction,
                                                   const std::vector<int>& collapsed_axes,
                                                   std::shared_ptr<PyDeviceBuffer> out,
                                                   const py::object& stream) {
  const fo::Reduction red = fo::parse_reduction(reduction.value);
  const std::uint32_t mask = axes_mask(collapsed_axes, grid.rank);
  fo::map_size(grid, mask);  // checks the grid and the collapsed axes
  const cudaStream_t s = stream_from(stream);
  // deltas: a float64 DeviceBuffer, or a host float64 array uploaded here.
  std::shared_ptr<PyDeviceBuffer> deltas;
  std::vector<std::int64_t> dshape;
  py::array host;
  if (py::isinstance<PyDeviceBuffer>(deltas_obj)) {
    deltas = deltas_obj.cast<std::shared_ptr<PyDeviceBuffer>>();
    require_dtype(*deltas, fc::DType::float64, "deltas");
    dshape = deltas->buffer->shape();
  } else {
    FASTOCCLUSION_EXPECTS(py::isinstance<py::array>(deltas_obj),
                          "deltas: " << std::string(py::str(py::type::of(deltas_obj)))
                                     << " is invalid, expected a float64 ndarray or DeviceBuffer");
    host = py::cast<py::array>(deltas_obj);
    FASTOCCLUSION_EXPECTS(has_dtype(host, fc::DType::float64),
                          "deltas: dtype " << std::string(py::str(host.dtype()))
                                           << " is invalid, expected float64");
    dshape = std::vector<std::int64_t>(host.shape(), host.shape() + host.ndim());
  }
  const std::int64_t n = leading_count(dshape, grid_counts(grid), "deltas",
                                       "the grid's window counts");
  int device = 0;
  if (out) device = out->buffer->device();
  else if (deltas) device = deltas->buffer->device();
  else FASTOCCLUSION_CUDA_TRY(cudaGetDevice(&device));
  if (deltas) require_device(*deltas, device, "deltas");
  const std::vector<std::int64_t> mshape = map_shape(n, grid, mask);
  if (out) {
    require_dtype(*out, fc::DType::float32, "out");
    FASTOCCLUSION_EXPECTS(out->buffer->shape() == mshape,
                          "out: shape " << shape_string(out->buffer->shape())
                                        << " is invalid, expected " << shape_string(mshape));
  } else {
    out = make_buffer(mshape, fc::DType::float32, device);
  }
  if (!deltas) {
    const py::array contiguous =
        py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(host);
    deltas = make_buffer(dshape, fc::DType::float64, device);
    copy_from_host(*deltas, contiguous, stream, "deltas");
  }
  const std::size_t work_bytes = fc::accumulate_workspace_bytes(n, grid);
  auto workspace = make_buffer({static_cast<std::int64_t>(work_bytes / sizeof(double))},
                               fc::DType::float64, device);
  fc::DeviceGuard guard(device);
  deltas->use_on(s);
  out->use_on(s);
  workspace->use_on(s);
  const auto* d = deltas->buffer->data_as<double>();
  auto* maps = out->buffer->data_as<float>();
  void* work = workspace->buffer->data();
  {
    py::gil_scoped_release release;
    fc::accumulate_window_deltas_async(d, n, grid, mask, red, maps, work, work_bytes, s);
    fc::synchronize(s);  // synchronous by contract; the workspace is freed on return
  }
  return out;
}

}  // namespace

void register_cuda_kernels(py::module_& m) {
  register_fill_state<DeviceFillState>(
      m, "IncrementalFillState",
      "What each slot of a persistent device batch holds (kept on the host), for incremental "
      "fills.");

  m.def("fill_occluded_batch", &fill_binding, py::arg("inputs"), py::arg("grid"),
        py::arg("baseline"), py::arg("start"), py::arg("count"), py::arg("out"),
        py::arg("state") = nullptr, py::kw_only(), py::arg("stride") = 1,
        py::arg("stream") = py::none(),
        "Enqueue occluded samples of the (input, window) stream into out[:count] "
        "(asynchronous): slot j\n"
        "gets stream index start + j*stride (stride 1: the slice [start, start+count)).\n"
        "inputs: float32 DeviceBuffer (N, *grid.shape); grid: a fastocclusion._core.WindowGrid;\n"
        "baseline: a number or a float32 DeviceBuffer of grid.shape or (N, *grid.shape);\n"
        "out: float32 DeviceBuffer (B, *grid.shape), B >= count; state: an\n"
        "IncrementalFillState for incremental fills; stream: see the module doc.");

  m.def("accumulate_window_deltas", &accumulate_binding, py::arg("deltas"), py::arg("grid"),
        py::arg("reduction") = "sum", py::arg("collapsed_axes") = std::vector<int>{},
        py::arg("out") = nullptr, py::kw_only(), py::arg("stream") = py::none(),
        "Sensitivity maps (N, *map shape) as a float32 DeviceBuffer from window deltas\n"
        "(N, *grid.counts) float64 (a host ndarray or a DeviceBuffer); synchronous. The map\n"
        "shape is grid.shape with the collapsed axes of length 1 (as _core's).");
}

}  // namespace fastocclusion::bindings
