// fastocclusion._cuda: the CUDA kernels for Python (device buffers, batch fills, maps).
//
// Thin by design: check types, dtypes, shapes and devices at the boundary, release the GIL,
// call the launchers of csrc/include/fastocclusion/cuda/.
// Errors: fastocclusion::user_error (std::invalid_argument) -> ValueError;
// cuda_error -> fastocclusion._cuda.CudaError (a RuntimeError), cuda_out_of_memory ->
// CudaOutOfMemoryError (a CudaError); a DLPack export that cannot be done -> BufferError.
// Importing the module calls no CUDA function: is_available() and device_count() are the
// safe probes (False / 0 without a driver or a GPU, never an exception).
//
// Streams. Every call that enqueues work takes `stream`: None (the default) or 0 is the
// legacy default stream, which orders with PyTorch's and CuPy's default streams; an int is a
// cudaStream_t handle (torch.cuda.Stream.cuda_stream, cupy Stream.ptr, 1 = legacy,
// 2 = per-thread default); a torch or CuPy stream object is accepted too. Each DeviceBuffer
// remembers the stream of the last work enqueued on it by this module (or handed to a DLPack
// consumer); work on another stream first waits for that stream through an event, so
// buffers may move between streams safely. Work that others enqueue on the buffer's memory
// (e.g. a PyTorch model reading a DLPack view) is ordered by the caller: by using the same
// stream, by passing it as `stream`, or by exporting again through __dlpack__.
//
// Synchronisation. fill_occluded_batch only enqueues (asynchronous); copy_from_host,
// to_host, accumulate_patch_deltas and DeviceBuffer construction return when done.
//
// GIL: released around every CUDA call. The Python objects passed in stay referenced by the
// calling frame, so their device memory cannot be freed meanwhile (and a freed buffer's
// cudaFree waits for queued kernels anyway). An IncrementalFillState carries a mutex so two
// threads cannot use one state at once.
#include <cuda_runtime_api.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "dlpack_export.hpp"
#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/cuda/cuda_errors.hpp"
#include "fastocclusion/cuda/device.hpp"
#include "fastocclusion/cuda/device_buffer.hpp"
#include "fastocclusion/cuda/kernels.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/geometry.hpp"
#include "str_arg.hpp"

namespace py = pybind11;
using namespace fastocclusion::dlpack;  // the DLPack ABI names (kDLCPU, DLDevice, ...)
namespace fo = fastocclusion;
namespace fc = fastocclusion::cuda;
namespace fob = fastocclusion::bindings;

namespace {

// ---- streams -----------------------------------------------------------------------------

cudaStream_t stream_from(const py::object& stream) {
  if (stream.is_none()) return nullptr;
  py::object handle = stream;
  if (py::hasattr(stream, "cuda_stream")) handle = stream.attr("cuda_stream");  // torch
  else if (py::hasattr(stream, "ptr")) handle = stream.attr("ptr");             // CuPy
  FASTOCCLUSION_EXPECTS(py::isinstance<py::int_>(handle) || py::hasattr(handle, "__index__"),
                        "stream: expected None, an int cudaStream_t handle or a torch/CuPy "
                        "stream, got " << std::string(py::str(py::type::of(stream))));
  const auto value = handle.cast<long long>();
  FASTOCCLUSION_EXPECTS(value >= 0, "stream=" << value << " is invalid, expected a handle >= 0");
  return reinterpret_cast<cudaStream_t>(static_cast<std::uintptr_t>(value));
}

bool is_legacy(cudaStream_t s) { return s == nullptr || s == cudaStreamLegacy; }
bool same_stream(cudaStream_t a, cudaStream_t b) { return a == b || (is_legacy(a) && is_legacy(b)); }

// Makes `waiter` wait for the work enqueued so far on `producer` (current device).
void stream_wait(cudaStream_t waiter, cudaStream_t producer) {
  if (same_stream(waiter, producer)) return;
  cudaEvent_t event = nullptr;
  FASTOCCLUSION_CUDA_TRY(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  try {
    FASTOCCLUSION_CUDA_TRY(cudaEventRecord(event, producer));
    FASTOCCLUSION_CUDA_TRY(cudaStreamWaitEvent(waiter, event, 0));
  } catch (...) {
    FASTOCCLUSION_CUDA_TRY_NOTHROW(cudaEventDestroy(event));
    throw;
  }
  // Destroying a recorded event is safe: the wait already enqueued still completes.
  FASTOCCLUSION_CUDA_TRY(cudaEventDestroy(event));
}

// ---- device buffers ----------------------------------------------------------------------

struct PyDeviceBuffer {
  std::shared_ptr<fc::DeviceBuffer> buffer;
  cudaStream_t last_stream = nullptr;  // stream of the last work enqueued on it (see top)

  // Orders the next work on `stream` after everything enqueued on this buffer so far.
  // Call with the buffer's device current.
  void use_on(cudaStream_t stream) {
    stream_wait(stream, last_stream);
    last_stream = stream;
  }
};

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    s += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) s += shape.size() == 1 ? "," : ", ";
  }
  return s + ")";
}

std::vector<std::int64_t> array_shape(const py::array& a) {
  return std::vector<std::int64_t>(a.shape(), a.shape() + a.ndim());
}

py::dtype numpy_dtype(fc::DType dtype) {
  return dtype == fc::DType::float64 ? py::dtype::of<double>() : py::dtype::of<float>();
}

// NumPy's type equivalence (not object identity: equal descriptors may be distinct objects).
bool has_dtype(const py::array& array, fc::DType dtype) {
  return dtype == fc::DType::float64 ? py::isinstance<py::array_t<double>>(array)
                                     : py::isinstance<py::array_t<float>>(array);
}

// `array` must be C-contiguous, of the buffer's dtype and shape.
void check_host_array(const py::array& array, const PyDeviceBuffer& b, const char* name) {
  const fc::DType dtype = b.buffer->dtype();
  FASTOCCLUSION_EXPECTS(has_dtype(array, dtype),
                        name << ": dtype " << std::string(py::str(array.dtype()))
                             << " is invalid, expected " << fc::dtype_name(dtype));
  FASTOCCLUSION_EXPECTS((array.flags() & py::array::c_style) != 0,
                        name << ": expected a C-contiguous array");
  FASTOCCLUSION_EXPECTS(array_shape(array) == b.buffer->shape(),
                        name << ": shape " << shape_string(array_shape(array))
                             << " is invalid, expected " << shape_string(b.buffer->shape()));
}

std::shared_ptr<PyDeviceBuffer> make_buffer(const std::vector<std::int64_t>& shape,
                                            fc::DType dtype, int device) {
  auto result = std::make_shared<PyDeviceBuffer>();
  py::gil_scoped_release release;
  result->buffer = std::make_shared<fc::DeviceBuffer>(shape, dtype, device);
  return result;
}

void copy_from_host(PyDeviceBuffer& self, const py::array& array, const py::object& stream) {
  check_host_array(array, self, "array");
  const cudaStream_t s = stream.is_none() ? self.last_stream : stream_from(stream);
  fc::DeviceGuard guard(self.buffer->device());
  self.use_on(s);
  const void* src = array.data();
  py::gil_scoped_release release;
  fc::copy_host_to_device(self.buffer->data(), src, self.buffer->nbytes(), s);
}

py::array to_host(PyDeviceBuffer& self, const py::object& stream) {
  const std::vector<std::int64_t>& shape = self.buffer->shape();
  py::array result(numpy_dtype(self.buffer->dtype()), std::vector<py::ssize_t>(shape.begin(), shape.end()));
  const cudaStream_t s = stream.is_none() ? self.last_stream : stream_from(stream);
  fc::DeviceGuard guard(self.buffer->device());
  self.use_on(s);
  void* dst = result.mutable_data();
  {
    py::gil_scoped_release release;
    fc::copy_device_to_host(dst, self.buffer->data(), self.buffer->nbytes(), s);
  }
  return result;
}

// ---- DLPack export -------------------------------------------------------------------------

// The DLPack stream protocol (array API standard, CUDA): the consumer passes the stream it
// will use the tensor on. None: the legacy default stream; 1: legacy; 2: per-thread
// default; -1: no synchronisation wanted; any other int: a cudaStream_t. (0 is ambiguous and
// disallowed by the standard; it is read as the legacy default stream, like None.)
// The producer must make the data ready for that stream: the consumer's stream waits, by an
// event, for the work enqueued on this buffer so far; later work of this module on the
// buffer waits for the consumer's stream (it becomes the buffer's last stream).
py::object buffer_to_dlpack(PyDeviceBuffer& self, const py::object& stream,
                            const py::object& /*max_version*/, const py::object& dl_device,
                            const py::object& copy) {
  const int device = self.buffer->device();
  if (!dl_device.is_none()) {
    const auto wanted = fob::parse_dl_device(dl_device);
    if (wanted.first != kDLCUDA || wanted.second != device) {
      throw py::buffer_error("dl_device=(" + std::to_string(wanted.first) + ", " +
                             std::to_string(wanted.second) + "): a DeviceBuffer lives on (" +
                             std::to_string(kDLCUDA) + ", " + std::to_string(device) +
                             ") and is only exported there");
    }
  }
  fob::refuse_copy(copy, "DeviceBuffer");
  bool synchronize = true;
  cudaStream_t consumer = nullptr;
  if (!stream.is_none()) {
    const auto value = stream.cast<long long>();
    FASTOCCLUSION_EXPECTS(value >= -1, "stream=" << value << " is invalid, expected None, -1 or a "
                                                            "CUDA stream handle");
    if (value == -1) synchronize = false;
    else consumer = reinterpret_cast<cudaStream_t>(static_cast<std::uintptr_t>(value));
  }
  if (synchronize) {
    fc::DeviceGuard guard(device);
    self.use_on(consumer);
  }
  return fob::export_dlpack(
      self.buffer, self.buffer->data(), DLDevice{kDLCUDA, device},
      DLDataType{kDLFloat, static_cast<std::uint8_t>(8 * fc::dtype_size(self.buffer->dtype())), 1});
}

// ---- patch grids -------------------------------------------------------------------------

// A fastocclusion._core.PatchGrid (or any object with its attributes) as a C++ PatchGrid.
// pybind11 shares the registered type between modules only when both were built with the
// same pybind11 ABI (then the C++ object is used as is); otherwise the grid is rebuilt from
// its public attributes, the edge mode, which _core does not expose, being the one whose
// patch counts match (the grids are identical otherwise).
fo::PatchGrid grid_from_object(const py::object& obj) {
  if (py::isinstance<fo::PatchGrid>(obj)) return obj.cast<const fo::PatchGrid&>();
  std::int64_t height = 0, width = 0, rows = 0, cols = 0;
  std::pair<std::int64_t, std::int64_t> patch, stride;
  try {
    height = obj.attr("height").cast<std::int64_t>();
    width = obj.attr("width").cast<std::int64_t>();
    rows = obj.attr("rows").cast<std::int64_t>();
    cols = obj.attr("cols").cast<std::int64_t>();
    patch = obj.attr("patch_size").cast<std::pair<std::int64_t, std::int64_t>>();
    stride = obj.attr("patch_stride").cast<std::pair<std::int64_t, std::int64_t>>();
  } catch (const py::error_already_set&) {
    FASTOCCLUSION_EXPECTS(false, "grid: expected a fastocclusion._core.PatchGrid, got "
                                     << std::string(py::str(py::type::of(obj))));
  } catch (const py::cast_error&) {
    FASTOCCLUSION_EXPECTS(false, "grid: expected a fastocclusion._core.PatchGrid, got "
                                     << std::string(py::str(py::type::of(obj))));
  }
  for (const fo::EdgeMode mode : {fo::EdgeMode::valid, fo::EdgeMode::cover}) {
    const fo::PatchGrid grid = fo::make_patch_grid(height, width, patch.first, patch.second,
                                                   stride.first, stride.second, mode);
    if (grid.rows.count == rows && grid.cols.count == cols) return grid;
  }
  FASTOCCLUSION_EXPECTS(false, "grid: " << rows << " x " << cols << " patches do not match a ("
                                        << height << ", " << width << ") plane with patch_size ("
                                        << patch.first << ", " << patch.second << ") and stride ("
                                        << stride.first << ", " << stride.second << ")");
  return {};
}

// ---- fills and maps ----------------------------------------------------------------------

struct LockedFillState {
  fc::IncrementalFillState state;
  std::mutex mutex;
};

void require_dtype(const PyDeviceBuffer& b, fc::DType dtype, const char* name) {
  FASTOCCLUSION_EXPECTS(b.buffer->dtype() == dtype, name << ": dtype " << fc::dtype_name(b.buffer->dtype())
                                                         << " is invalid, expected "
                                                         << fc::dtype_name(dtype));
}

void require_device(const PyDeviceBuffer& b, int device, const char* name) {
  FASTOCCLUSION_EXPECTS(b.buffer->device() == device,
                        name << ": on device " << b.buffer->device() << ", expected device "
                             << device << " like the other buffers");
}

fo::InputShape input_shape(const PyDeviceBuffer& inputs) {
  const auto& s = inputs.buffer->shape();
  FASTOCCLUSION_EXPECTS(s.size() == 4, "inputs: shape " << shape_string(s)
                                                        << " is invalid, expected (N, H, W, C)");
  fo::InputShape shape{s[0], s[1], s[2], s[3]};
  fo::validate_shape(shape, "inputs");
  return shape;
}

// The baseline: a number (scalar) or a float32 DeviceBuffer of shape (C,), (H, W, C) or
// (N, H, W, C). Returns the buffer too when there is one.
std::pair<fc::DeviceBaseline, PyDeviceBuffer*> baseline_view(const py::object& baseline,
                                                             const fo::InputShape& s) {
  if (py::isinstance<PyDeviceBuffer>(baseline)) {
    auto& b = baseline.cast<PyDeviceBuffer&>();
    require_dtype(b, fc::DType::float32, "baseline");
    const auto& d = b.buffer->shape();
    const auto* values = b.buffer->data_as<float>();
    if (d.size() == 1 && d[0] == s.c) return {{fo::BaselineKind::per_channel, values, 0.0f}, &b};
    if (d.size() == 3 && d[0] == s.h && d[1] == s.w && d[2] == s.c)
      return {{fo::BaselineKind::per_image, values, 0.0f}, &b};
    if (d.size() == 4 && d[0] == s.n && d[1] == s.h && d[2] == s.w && d[3] == s.c)
      return {{fo::BaselineKind::per_input, values, 0.0f}, &b};
    FASTOCCLUSION_EXPECTS(false, "baseline: shape " << shape_string(d) << " is invalid, expected ("
                                                    << s.c << ",), (" << s.h << ", " << s.w << ", "
                                                    << s.c << ") or (" << s.n << ", " << s.h << ", "
                                                    << s.w << ", " << s.c << "), or a number");
  }
  if (py::isinstance<py::array>(baseline)) {
    FASTOCCLUSION_EXPECTS(py::cast<py::array>(baseline).ndim() == 0,
                          "baseline: a host array is invalid, expected a number or a DeviceBuffer "
                          "(upload it with DeviceBuffer.from_host)");
  }
  if (!py::isinstance<py::float_>(baseline) && !py::isinstance<py::int_>(baseline) &&
      !py::hasattr(baseline, "__float__")) {
    FASTOCCLUSION_EXPECTS(false, "baseline: " << std::string(py::str(py::type::of(baseline)))
                                              << " is invalid, expected a number or a DeviceBuffer");
  }
  const auto value = static_cast<float>(py::float_(baseline).cast<double>());
  return {{fo::BaselineKind::scalar, nullptr, value}, nullptr};
}

void fill_binding(PyDeviceBuffer& inputs, const py::object& grid_obj, const py::object& baseline,
                  std::int64_t start, std::int64_t count, PyDeviceBuffer& out,
                  LockedFillState* state, const py::object& stream) {
  require_dtype(inputs, fc::DType::float32, "inputs");
  const fo::InputShape shape = input_shape(inputs);
  const fo::PatchGrid grid = grid_from_object(grid_obj);
  const auto [base, base_buffer] = baseline_view(baseline, shape);
  require_dtype(out, fc::DType::float32, "out");
  const auto& o = out.buffer->shape();
  FASTOCCLUSION_EXPECTS(o.size() == 4 && o[1] == shape.h && o[2] == shape.w && o[3] == shape.c &&
                            o[0] >= count,
                        "out: shape " << shape_string(o) << " is invalid, expected (B, " << shape.h
                                      << ", " << shape.w << ", " << shape.c
                                      << ") with B >= count=" << count);
  FASTOCCLUSION_EXPECTS(out.buffer != inputs.buffer &&
                            (base_buffer == nullptr || out.buffer != base_buffer->buffer),
                        "out: must not share memory with inputs or baseline");
  const int device = inputs.buffer->device();
  require_device(out, device, "out");
  if (base_buffer != nullptr) require_device(*base_buffer, device, "baseline");
  const cudaStream_t s = stream_from(stream);
  fc::DeviceGuard guard(device);
  inputs.use_on(s);
  out.use_on(s);
  if (base_buffer != nullptr) base_buffer->use_on(s);
  const auto* in = inputs.buffer->data_as<float>();
  auto* batch = out.buffer->data_as<float>();
  const std::int64_t capacity = o[0];
  if (state == nullptr) {
    py::gil_scoped_release release;
    fc::fill_occluded_batch_async(in, shape, grid, base, start, count, batch, s);
    return;
  }
  std::unique_lock<std::mutex> lock(state->mutex, std::try_to_lock);
  FASTOCCLUSION_EXPECTS(lock.owns_lock(), "state: already in use by another thread");
  py::gil_scoped_release release;
  fc::fill_occluded_batch_incremental_async(in, shape, grid, base, start, count, batch, capacity,
                                            state->state, s);
}

std::shared_ptr<PyDeviceBuffer> accumulate_binding(const py::object& deltas_obj,
                                                   const py::object& grid_obj,
                                                   const fob::StrArg& reduction,
                                                   std::shared_ptr<PyDeviceBuffer> out,
                                                   const py::object& stream) {
  const fo::Reduction red = fo::parse_reduction(std::string_view(reduction.value));
  const fo::PatchGrid grid = grid_from_object(grid_obj);
  const cudaStream_t s = stream_from(stream);
  // deltas: a float64 DeviceBuffer, or a host float64 array uploaded here (N*K doubles).
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
    dshape = array_shape(host);
  }
  FASTOCCLUSION_EXPECTS(dshape.size() == 3 && dshape[0] >= 1 && dshape[1] == grid.rows.count &&
                            dshape[2] == grid.cols.count,
                        "deltas: shape " << shape_string(dshape) << " is invalid, expected (N, "
                                         << grid.rows.count << ", " << grid.cols.count
                                         << ") with N >= 1");
  const std::int64_t n = dshape[0];
  int device = 0;
  if (out) device = out->buffer->device();
  else if (deltas) device = deltas->buffer->device();
  else FASTOCCLUSION_CUDA_TRY(cudaGetDevice(&device));
  if (deltas) require_device(*deltas, device, "deltas");
  const std::vector<std::int64_t> mshape{n, grid.height(), grid.width()};
  if (out) {
    require_dtype(*out, fc::DType::float32, "out");
    FASTOCCLUSION_EXPECTS(out->buffer->shape() == mshape,
                          "out: shape " << shape_string(out->buffer->shape())
                                        << " is invalid, expected " << shape_string(mshape));
  } else {
    out = make_buffer(mshape, fc::DType::float32, device);
  }
  if (!deltas) {
    const py::array contiguous = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(host);
    deltas = make_buffer(dshape, fc::DType::float64, device);
    copy_from_host(*deltas, contiguous, stream);
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
    fc::accumulate_patch_deltas_async(d, n, grid, red, maps, work, work_bytes, s);
    fc::synchronize(s);  // synchronous by contract; the workspace is freed on return
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastocclusion CUDA kernels: device buffers, occluded batch filling, map accumulation";

  auto cuda_error = py::register_exception<fc::cuda_error>(m, "CudaError", PyExc_RuntimeError);
  py::register_exception<fc::cuda_out_of_memory>(m, "CudaOutOfMemoryError", cuda_error.ptr());

  m.def("is_available", &fc::is_available,
        "True when a CUDA driver and at least one device are usable; never raises.");
  m.def("device_count", &fc::device_count, "Number of usable CUDA devices; 0 without a driver.");
  m.def("runtime_version", [] {
    int v = 0;
    return cudaRuntimeGetVersion(&v) == cudaSuccess ? v : 0;
  }, "CUDA runtime version this module was built with, e.g. 13000.");
  m.def("driver_version", [] {
    int v = 0;
    if (cudaDriverGetVersion(&v) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    return v;
  }, "CUDA version the installed driver supports, 0 without a driver.");
  m.def("synchronize", [](const py::object& stream, int device) {
        const cudaStream_t s = stream_from(stream);
        fc::DeviceGuard guard(device);
        py::gil_scoped_release release;
        fc::synchronize(s);
      }, py::arg("stream") = py::none(), py::arg("device") = 0,
      "Wait until the work enqueued on `stream` (default: the legacy default stream) of `device` is done.");

  py::class_<PyDeviceBuffer, std::shared_ptr<PyDeviceBuffer>>(
      m, "DeviceBuffer",
      "A zeroed float32/float64 buffer in device memory (256-byte aligned, row-major).\n"
      "PyTorch, CuPy and JAX view it without a copy through DLPack.")
      .def(py::init([](const std::vector<std::int64_t>& shape, const std::string& dtype, int device) {
             return make_buffer(shape, fc::parse_dtype(dtype.c_str()), device);
           }),
           py::arg("shape"), py::arg("dtype") = "float32", py::arg("device") = 0)
      .def_static("from_host", [](const py::array& array, int device) {
             FASTOCCLUSION_EXPECTS(array.ndim() >= 1, "array: expected at least one dimension");
             const bool is64 = has_dtype(array, fc::DType::float64);
             FASTOCCLUSION_EXPECTS(is64 || has_dtype(array, fc::DType::float32),
                                   "array: dtype " << std::string(py::str(array.dtype()))
                                                   << " is invalid, expected float32 or float64");
             const py::array contiguous = py::array::ensure(array, py::array::c_style);
             auto result = make_buffer(array_shape(contiguous),
                                       is64 ? fc::DType::float64 : fc::DType::float32, device);
             copy_from_host(*result, contiguous, py::none());
             return result;
           },
           py::arg("array"), py::arg("device") = 0,
           "A new buffer holding a copy of a C-contiguous float32/float64 array (synchronous).")
      .def_property_readonly("shape", [](const PyDeviceBuffer& b) { return py::tuple(py::cast(b.buffer->shape())); })
      .def_property_readonly("ndim", [](const PyDeviceBuffer& b) { return b.buffer->shape().size(); })
      .def_property_readonly("size", [](const PyDeviceBuffer& b) { return b.buffer->size(); })
      .def_property_readonly("dtype", [](const PyDeviceBuffer& b) { return std::string(fc::dtype_name(b.buffer->dtype())); })
      .def_property_readonly("device", [](const PyDeviceBuffer& b) { return b.buffer->device(); })
      .def_property_readonly("nbytes", [](const PyDeviceBuffer& b) { return b.buffer->nbytes(); })
      .def_property_readonly("data_ptr", [](const PyDeviceBuffer& b) {
        return reinterpret_cast<std::uintptr_t>(b.buffer->data());
      })
      .def("copy_from_host", &copy_from_host, py::arg("array"), py::arg("stream") = py::none(),
           "Copy a C-contiguous array of the same dtype and shape in (synchronous).")
      .def("to_host", &to_host, py::arg("stream") = py::none(),
           "A NumPy copy, after the work enqueued on the buffer (synchronous).")
      .def("__dlpack__", &buffer_to_dlpack, py::kw_only(), py::arg("stream") = py::none(),
           py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(),
           py::arg("copy") = py::none())
      .def("__dlpack_device__", [](const PyDeviceBuffer& b) {
        return py::make_tuple(static_cast<int>(kDLCUDA), b.buffer->device());
      })
      .def("__repr__", [](const PyDeviceBuffer& b) {
        return "DeviceBuffer(shape=" + shape_string(b.buffer->shape()) + ", dtype=" +
               fc::dtype_name(b.buffer->dtype()) + ", device=" + std::to_string(b.buffer->device()) + ")";
      });

  py::class_<LockedFillState>(m, "IncrementalFillState",
                              "What each slot of a persistent device batch holds (kept on the host).")
      .def(py::init<>())
      .def("reset", [](LockedFillState& s) {
        std::lock_guard<std::mutex> lock(s.mutex);
        s.state.reset();
      });

  m.def("fill_occluded_batch", &fill_binding, py::arg("inputs"), py::arg("grid"), py::arg("baseline"),
        py::arg("start"), py::arg("count"), py::arg("out"), py::arg("state") = nullptr,
        py::kw_only(), py::arg("stream") = py::none(),
        "Enqueue occluded samples [start, start+count) of the (input, patch) stream into out[:count]\n"
        "(asynchronous). inputs: float32 DeviceBuffer (N,H,W,C); grid: a fastocclusion._core.PatchGrid;\n"
        "baseline: a number or a float32 DeviceBuffer (C,), (H,W,C) or (N,H,W,C); out: float32\n"
        "DeviceBuffer (B,H,W,C), B >= count; state: an IncrementalFillState for incremental fills.");

  m.def("accumulate_patch_deltas", &accumulate_binding, py::arg("deltas"), py::arg("grid"),
        py::arg("reduction") = "sum", py::arg("out") = nullptr, py::kw_only(),
        py::arg("stream") = py::none(),
        "Sensitivity maps (N,H,W) float32 DeviceBuffer from patch deltas (N,rows,cols) float64\n"
        "(host ndarray or DeviceBuffer). Synchronous.");
}
