// fastocclusion._cuda's kernels: occluded batch fills (full and incremental) on device
// buffers, and maps from window deltas. The geometry is _core's WindowGrid.
#include <cuda_runtime_api.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
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

// inputs: a DeviceBuffer (N, *sample shape) of any dtype. Returns N.
std::int64_t input_count(const PyDeviceBuffer& inputs, const fo::WindowGrid& grid) {
  return leading_count(inputs.buffer->shape(), grid_shape(grid), "inputs",
                       "the grid's sample shape");
}

// The explicit (input, window) pairs of a sweep of some windows only: a host copy (checked
// and planned on the host) and a device copy (read by the kernels), made once per sweep.
struct PyStreamPairs {
  std::vector<std::int64_t> host;  // count x 2
  std::shared_ptr<PyDeviceBuffer> device;
  std::int64_t count = 0;
};

std::shared_ptr<PyStreamPairs> make_stream_pairs(const py::array& pairs, int device) {
  FASTOCCLUSION_EXPECTS(has_dtype(pairs, fc::DType::int64) && pairs.ndim() == 2 &&
                            pairs.shape(1) == 2 && pairs.shape(0) >= 1,
                        "pairs: a " << std::string(py::str(pairs.dtype())) << " array of shape "
                                    << shape_string(std::vector<std::int64_t>(
                                           pairs.shape(), pairs.shape() + pairs.ndim()))
                                    << " is invalid, expected int64 (P, 2), P >= 1: (input, "
                                       "window) pairs");
  const py::array contiguous = py::array::ensure(pairs, py::array::c_style);
  auto result = std::make_shared<PyStreamPairs>();
  result->count = static_cast<std::int64_t>(contiguous.shape(0));
  const auto* values = static_cast<const std::int64_t*>(contiguous.data());
  result->host.assign(values, values + 2 * result->count);
  result->device = make_buffer({result->count, 2}, fc::DType::int64, device);
  copy_from_host(*result->device, contiguous, py::none(), "pairs");
  return result;
}

template <typename T>
struct BaselineArg {
  fc::BasicDeviceBaseline<T> view;
  PyDeviceBuffer* buffer = nullptr;  // the device values, if any
};

// A scalar baseline in T: for float32/float64 inputs a number (a 0-d array converts as one);
// for other dtypes a 0-d host array of the inputs' dtype, whose bits are taken (bfloat16:
// its uint16 bits).
template <typename T>
T scalar_baseline(const py::object& baseline, fc::DType dtype) {
  const std::string name = fc::dtype_name(dtype);
  if constexpr (std::is_floating_point_v<T>) {
    FASTOCCLUSION_EXPECTS(py::isinstance<py::float_>(baseline) ||
                              py::isinstance<py::int_>(baseline) ||
                              py::hasattr(baseline, "__float__"),
                          "baseline: " << std::string(py::str(py::type::of(baseline)))
                                       << " is invalid, expected a number or a DeviceBuffer");
    return static_cast<T>(py::float_(baseline).cast<double>());
  } else {
    FASTOCCLUSION_EXPECTS(py::isinstance<py::array>(baseline) &&
                              py::cast<py::array>(baseline).ndim() == 0 &&
                              has_dtype(py::cast<py::array>(baseline), dtype),
                          "baseline: " << std::string(py::str(py::type::of(baseline)))
                                       << " is invalid for " << name
                                       << " inputs, expected a 0-d host array of dtype " << name
                                       << " or a DeviceBuffer");
    const auto values = py::cast<py::array>(baseline);
    T value{};
    std::memcpy(&value, values.data(), sizeof(T));
    return value;
  }
}

// The baseline, of the inputs' dtype: a scalar (scalar_baseline) or a DeviceBuffer of the
// sample shape (per_sample) or (N, *sample shape) (per_input) ("auto"); a DeviceBuffer of
// shape (N, *grid.counts) ("per_window", "per_window_scale") or grid.window ("window_mask").
template <typename T>
BaselineArg<T> baseline_view(const py::object& baseline, std::int64_t n,
                             const fo::WindowGrid& grid, BaselineChoice choice, fc::DType dtype) {
  const std::vector<std::int64_t> sample = grid_shape(grid);
  const std::string name = fc::dtype_name(dtype);
  if (choice != BaselineChoice::automatic) {
    const bool per_window = choice != BaselineChoice::window_mask;
    const std::vector<std::int64_t> expected =
        per_window ? batch_shape(n, grid_counts(grid)) : grid_windows(grid);
    FASTOCCLUSION_EXPECTS(py::isinstance<PyDeviceBuffer>(baseline),
                          "baseline: " << std::string(py::str(py::type::of(baseline)))
                                       << " is invalid, expected a " << name
                                       << " DeviceBuffer of shape " << shape_string(expected));
    auto& b = baseline.cast<PyDeviceBuffer&>();
    require_dtype(b, dtype, "baseline");
    FASTOCCLUSION_EXPECTS(b.buffer->shape() == expected,
                          "baseline: shape " << shape_string(b.buffer->shape())
                                             << " is invalid, expected "
                                             << shape_string(expected));
    const fo::BaselineKind kind = choice == BaselineChoice::per_window ? fo::BaselineKind::per_window
                                  : choice == BaselineChoice::per_window_scale
                                      ? fo::BaselineKind::per_window_scale
                                      : fo::BaselineKind::window_mask;
    return {{kind, b.buffer->data_as<T>(), T{}}, &b};
  }
  if (py::isinstance<PyDeviceBuffer>(baseline)) {
    auto& b = baseline.cast<PyDeviceBuffer&>();
    require_dtype(b, dtype, "baseline");
    const std::vector<std::int64_t>& shape = b.buffer->shape();
    const auto* values = b.buffer->data_as<T>();
    if (shape == sample) return {{fo::BaselineKind::per_sample, values, T{}}, &b};
    if (shape == batch_shape(n, sample)) return {{fo::BaselineKind::per_input, values, T{}}, &b};
    FASTOCCLUSION_EXPECTS(false, "baseline: shape " << shape_string(shape)
                                                    << " is invalid, expected the sample shape "
                                                    << shape_string(sample) << " or "
                                                    << shape_string(batch_shape(n, sample))
                                                    << ", or a scalar");
  }
  if (py::isinstance<py::array>(baseline)) {
    FASTOCCLUSION_EXPECTS(py::cast<py::array>(baseline).ndim() == 0,
                          "baseline: a host array is invalid, expected a scalar or a DeviceBuffer "
                          "(upload it with DeviceBuffer.from_host)");
  }
  return {{fo::BaselineKind::scalar, nullptr, scalar_baseline<T>(baseline, dtype)}, nullptr};
}

void fill_binding(PyDeviceBuffer& inputs, const fo::WindowGrid& grid, const py::object& baseline,
                  std::int64_t start, std::int64_t count, PyDeviceBuffer& out,
                  CudaFillState* state, std::int64_t stride, const StrArg& baseline_kind,
                  const py::object& stream, PyStreamPairs* pairs) {
  const BaselineChoice choice = parse_baseline_kind(baseline_kind.value);
  const std::int64_t n = input_count(inputs, grid);
  const fc::DType dtype = inputs.buffer->dtype();
  with_fill_type(dtype == fc::DType::float32, dtype == fc::DType::float64,
                 fc::dtype_size(dtype), [&](auto zero) {
    using T = decltype(zero);
    const BaselineArg<T> base = baseline_view<T>(baseline, n, grid, choice, dtype);
    require_dtype(out, dtype, "out");
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
    if (pairs != nullptr) require_device(*pairs->device, device, "pairs");
    const cudaStream_t s = stream_from(stream);
    fc::DeviceGuard guard(device);
    inputs.use_on(s);
    out.use_on(s);
    if (base.buffer != nullptr) base.buffer->use_on(s);
    if (pairs != nullptr) pairs->device->use_on(s);
    const fc::DevicePairs stream_pairs =
        pairs == nullptr ? fc::DevicePairs{}
                         : fc::DevicePairs{pairs->host.data(),
                                           pairs->device->buffer->data_as<std::int64_t>(),
                                           pairs->count};
    const auto* in = inputs.buffer->data_as<T>();
    auto* batch = out.buffer->data_as<T>();
    const std::int64_t capacity = out_shape[0];
    call_with_state(state, [&](DeviceFillState* st) {
      if (st == nullptr) {
        fc::fill_occluded_batch_async(in, n, grid, base.view, start, count, batch, stride, s,
                                      stream_pairs);
      } else {
        fc::fill_occluded_batch_incremental_async(in, n, grid, base.view, start, count, batch,
                                                  capacity, *st, stride, s, stream_pairs);
      }
    });
  });
}

// The per-window values of a map kernel (deltas, values): a float64 DeviceBuffer, or a
// host float64 ndarray that upload() copies to the device once every check has passed.
struct WindowValues {
  std::shared_ptr<PyDeviceBuffer> buffer;
  py::array host;
  std::vector<std::int64_t> shape;
};

WindowValues window_values(const py::object& obj, const char* name) {
  WindowValues v;
  if (py::isinstance<PyDeviceBuffer>(obj)) {
    v.buffer = obj.cast<std::shared_ptr<PyDeviceBuffer>>();
    require_dtype(*v.buffer, fc::DType::float64, name);
    v.shape = v.buffer->buffer->shape();
    return v;
  }
  FASTOCCLUSION_EXPECTS(py::isinstance<py::array>(obj),
                        name << ": " << std::string(py::str(py::type::of(obj)))
                             << " is invalid, expected a float64 ndarray or DeviceBuffer");
  v.host = py::cast<py::array>(obj);
  FASTOCCLUSION_EXPECTS(has_dtype(v.host, fc::DType::float64),
                        name << ": dtype " << std::string(py::str(v.host.dtype()))
                             << " is invalid, expected float64");
  v.shape = std::vector<std::int64_t>(v.host.shape(), v.host.shape() + v.host.ndim());
  return v;
}

// The device of a map call: out's, else the values', else the current one.
int maps_device(const std::shared_ptr<PyDeviceBuffer>& out, const WindowValues& values,
                const char* name) {
  int device = 0;
  if (out) device = out->buffer->device();
  else if (values.buffer) device = values.buffer->buffer->device();
  else FASTOCCLUSION_CUDA_TRY(cudaGetDevice(&device));
  if (values.buffer) require_device(*values.buffer, device, name);
  return device;
}

// `out` checked against the maps' shape, or a new buffer.
std::shared_ptr<PyDeviceBuffer> maps_buffer(std::shared_ptr<PyDeviceBuffer> out,
                                            const std::vector<std::int64_t>& mshape, int device) {
  if (!out) return make_buffer(mshape, fc::DType::float32, device);
  require_dtype(*out, fc::DType::float32, "out");
  FASTOCCLUSION_EXPECTS(out->buffer->shape() == mshape,
                        "out: shape " << shape_string(out->buffer->shape())
                                      << " is invalid, expected " << shape_string(mshape));
  return out;
}

void upload(WindowValues& v, int device, const py::object& stream, const char* name) {
  if (v.buffer) return;
  const py::array contiguous =
      py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(v.host);
  v.buffer = make_buffer(v.shape, fc::DType::float64, device);
  copy_from_host(*v.buffer, contiguous, stream, name);
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
  WindowValues deltas = window_values(deltas_obj, "deltas");
  const std::int64_t n = leading_count(deltas.shape, grid_counts(grid), "deltas",
                                       "the grid's window counts");
  const int device = maps_device(out, deltas, "deltas");
  out = maps_buffer(out, map_shape(n, grid, mask), device);
  upload(deltas, device, stream, "deltas");
  const std::size_t work_bytes = fc::accumulate_workspace_bytes(n, grid);
  auto workspace = make_buffer({static_cast<std::int64_t>(work_bytes / sizeof(double))},
                               fc::DType::float64, device);
  fc::DeviceGuard guard(device);
  deltas.buffer->use_on(s);
  out->use_on(s);
  workspace->use_on(s);
  const auto* d = deltas.buffer->buffer->data_as<double>();
  auto* maps = out->buffer->data_as<float>();
  void* work = workspace->buffer->data();
  {
    py::gil_scoped_release release;
    fc::accumulate_window_deltas_async(d, n, grid, mask, red, maps, work, work_bytes, s);
    fc::synchronize(s);  // synchronous by contract; the workspace is freed on return
  }
  return out;
}

std::shared_ptr<PyDeviceBuffer> blend_binding(const py::object& values_obj,
                                              const fo::WindowGrid& grid,
                                              const py::array& importance,
                                              const std::vector<int>& collapsed_axes,
                                              std::shared_ptr<PyDeviceBuffer> out,
                                              const py::object& stream) {
  const std::uint32_t mask = axes_mask(collapsed_axes, grid.rank);
  fo::map_size(grid, mask);  // checks the grid and the collapsed axes
  const cudaStream_t s = stream_from(stream);
  WindowValues values = window_values(values_obj, "values");
  const std::int64_t n = leading_count(values.shape, grid_counts(grid), "values",
                                       "the grid's window counts");
  // The importance: a host array, checked here (the launcher cannot read device memory).
  FASTOCCLUSION_EXPECTS(has_dtype(importance, fc::DType::float32),
                        "importance: dtype " << std::string(py::str(importance.dtype()))
                                             << " is invalid, expected float32");
  const std::vector<std::int64_t> ishape = importance_shape(grid, mask);
  const std::vector<std::int64_t> given(importance.shape(), importance.shape() + importance.ndim());
  FASTOCCLUSION_EXPECTS(given == ishape, "importance: shape " << shape_string(given)
                                                              << " is invalid, expected the window's "
                                                              << shape_string(ishape)
                                                              << " (1 on the collapsed axes)");
  const py::array weights =
      py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(importance);
  fo::check_importance(static_cast<const float*>(weights.data()),
                       fo::importance_size(grid, mask));
  const int device = maps_device(out, values, "values");
  out = maps_buffer(out, map_shape(n, grid, mask), device);
  upload(values, device, stream, "values");
  auto weights_buffer = make_buffer(ishape, fc::DType::float32, device);
  copy_from_host(*weights_buffer, weights, stream, "importance");
  fc::DeviceGuard guard(device);
  values.buffer->use_on(s);
  out->use_on(s);
  weights_buffer->use_on(s);
  const auto* v = values.buffer->buffer->data_as<double>();
  const auto* w = weights_buffer->buffer->data_as<float>();
  auto* maps = out->buffer->data_as<float>();
  {
    py::gil_scoped_release release;
    fc::blend_window_values_async(v, n, grid, mask, w, maps, s);
    fc::synchronize(s);  // synchronous: the uploaded importance is freed on return
  }
  return out;
}

std::shared_ptr<PyDeviceBuffer> window_means_binding(PyDeviceBuffer& inputs,
                                                     const fo::WindowGrid& grid,
                                                     const py::object& stream) {
  const fc::DType dtype = inputs.buffer->dtype();
  FASTOCCLUSION_EXPECTS(dtype == fc::DType::float32 || dtype == fc::DType::float64,
                        "inputs: dtype " << fc::dtype_name(dtype)
                                         << " is invalid, expected float32 or float64");
  const std::int64_t n = input_count(inputs, grid);
  const int device = inputs.buffer->device();
  auto out = make_buffer(batch_shape(n, grid_counts(grid)), dtype, device);
  const cudaStream_t s = stream_from(stream);
  fc::DeviceGuard guard(device);
  inputs.use_on(s);
  out->use_on(s);
  const auto run = [&](auto zero) {
    using T = decltype(zero);
    const auto* in = inputs.buffer->data_as<T>();
    auto* means = out->buffer->data_as<T>();
    py::gil_scoped_release release;
    fc::window_means_async(in, n, grid, means, s);
  };
  if (dtype == fc::DType::float64) run(double{});
  else run(float{});
  return out;
}

}  // namespace

void register_cuda_kernels(py::module_& m) {
  register_fill_state<DeviceFillState>(
      m, "IncrementalFillState",
      "What each slot of a persistent device batch holds (kept on the host), for incremental "
      "fills.");

  py::class_<PyStreamPairs, std::shared_ptr<PyStreamPairs>>(
      m, "StreamPairs",
      "The (input, window) pairs of a sweep of some windows only (a drill-down's), for\n"
      "fill_occluded_batch(pairs=...): a host copy (checked and planned on the host) and a\n"
      "device copy (read by the kernels), made once (synchronous upload).")
      .def(py::init(&make_stream_pairs), py::arg("pairs"), py::arg("device") = 0,
           "pairs: int64 (P, 2), P >= 1, rows (input, window).")
      .def_property_readonly("count", [](const PyStreamPairs& p) { return p.count; })
      .def_property_readonly("device", [](const PyStreamPairs& p) {
        return p.device->buffer->device();
      });

  m.def("fill_occluded_batch", &fill_binding, py::arg("inputs"), py::arg("grid"),
        py::arg("baseline"), py::arg("start"), py::arg("count"), py::arg("out"),
        py::arg("state") = nullptr, py::kw_only(), py::arg("stride") = 1,
        py::arg("baseline_kind") = "auto", py::arg("stream") = py::none(),
        py::arg("pairs") = nullptr,
        "Enqueue occluded samples of the (input, window) stream into out[:count] "
        "(asynchronous): slot j\n"
        "gets stream index start + j*stride (stride 1: the slice [start, start+count)).\n"
        "inputs: a DeviceBuffer (N, *grid.shape) of any dtype, whose values are copied bit\n"
        "for bit (bfloat16 as its bits: int16 or uint16); grid: a _core.WindowGrid;\n"
        "baseline, of the inputs' dtype: a scalar (a number for float32/float64 inputs, else a\n"
        "0-d host array of that dtype) or a DeviceBuffer of grid.shape or (N, *grid.shape)\n"
        "(baseline_kind 'auto'), of (N, *grid.counts) ('per_window', 'per_window_scale') or\n"
        "grid.window ('window_mask'), as _core's ('per_window_scale' and 'window_mask'\n"
        "multiply: float32/float64 only);\n"
        "out: a DeviceBuffer (B, *grid.shape) of the inputs' dtype, B >= count; state: an\n"
        "IncrementalFillState for incremental fills; stream: see the module doc; pairs: a\n"
        "StreamPairs, whose pairs replace the grid's stream (slot j gets pair start + j*stride).");

  m.def("accumulate_window_deltas", &accumulate_binding, py::arg("deltas"), py::arg("grid"),
        py::arg("reduction") = "sum", py::arg("collapsed_axes") = std::vector<int>{},
        py::arg("out") = nullptr, py::kw_only(), py::arg("stream") = py::none(),
        "Sensitivity maps (N, *map shape) as a float32 DeviceBuffer from window deltas\n"
        "(N, *grid.counts) float64 (a host ndarray or a DeviceBuffer); synchronous. The map\n"
        "shape is grid.shape with the collapsed axes of length 1 (as _core's).");

  m.def("blend_window_values", &blend_binding, py::arg("values"), py::arg("grid"),
        py::arg("importance"), py::arg("collapsed_axes") = std::vector<int>{},
        py::arg("out") = nullptr, py::kw_only(), py::arg("stream") = py::none(),
        "Maps (N, *map shape) as a float32 DeviceBuffer blending per-window values\n"
        "(N, *grid.counts) float64 (a host ndarray or a DeviceBuffer) with window-shaped\n"
        "weights (importance: a host float32 ndarray, finite > 0, of grid.window with 1 on\n"
        "the collapsed axes); synchronous; as _core's, bit for bit.");

  m.def("window_means", &window_means_binding, py::arg("inputs"), py::arg("grid"),
        py::kw_only(), py::arg("stream") = py::none(),
        "The mean of every window's box per input (inputs: a float32 or float64 DeviceBuffer),\n"
        "a DeviceBuffer (N, *grid.counts) of the inputs' dtype\n"
        "(asynchronous): the values of 'per_window' and 'per_window_scale' (MONAI's\n"
        "mean_patch), as _core's.");
}

}  // namespace fastocclusion::bindings
