// fastocclusion._cuda: the CUDA kernels for Python (device buffers, batch fills, maps).
//
// Thin by design: check types, dtypes, shapes and devices at the boundary, release the GIL,
// call the launchers of csrc/include/fastocclusion/cuda/. Registered against _core's types:
// the module imports fastocclusion._core first, so the WindowGrid registered there is the
// one _cuda's functions take (both modules are built by one CMake with one pybind11, so they
// share pybind11's type registry).
//
// Errors: fastocclusion::user_error (std::invalid_argument) -> ValueError;
// cuda_error -> fastocclusion._cuda.CudaError (a RuntimeError), cuda_out_of_memory ->
// CudaOutOfMemoryError (a CudaError); a DLPack export that cannot be done -> BufferError.
// Importing the module calls no CUDA function: is_available() and device_count() are the
// safe probes (False / 0 without a driver or a GPU, never an exception).
//
// Streams: cuda_streams.hpp (what `stream` means, the DLPack stream protocol); each
// DeviceBuffer remembers the stream of its last work (cuda_buffers.hpp).
// Synchronisation: fill_occluded_batch only enqueues (asynchronous); accumulate_window_deltas,
// DeviceBuffer construction, from_host, copy_from_host and to_host return when done.
// GIL: released around every CUDA call (common.hpp).
#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>

#include "cuda_module.hpp"
#include "cuda_streams.hpp"
#include "fastocclusion/cuda/cuda_errors.hpp"
#include "fastocclusion/cuda/device.hpp"

namespace py = pybind11;
namespace fc = fastocclusion::cuda;
namespace fob = fastocclusion::bindings;

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "fastocclusion CUDA kernels: device buffers, occluded batch filling, map accumulation";
  // _core registers WindowGrid (taken by the kernels here): import it first.
  py::module_::import("fastocclusion._core");

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
        const cudaStream_t s = fob::stream_from(stream);
        fc::DeviceGuard guard(device);
        py::gil_scoped_release release;
        fc::synchronize(s);
      }, py::arg("stream") = py::none(), py::arg("device") = 0,
      "Wait until the work enqueued on `stream` (default: the legacy default stream) of "
      "`device` is done.");

  fob::register_device_buffer(m);
  fob::register_cuda_kernels(m);
  fob::register_cuda_feature_windows(m);
}
