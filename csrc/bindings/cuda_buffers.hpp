// fastocclusion._cuda.DeviceBuffer as the other _cuda files use it. Binding code: included
// only by csrc/bindings/cuda_*.cpp.
#pragma once

#include <cuda_runtime_api.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "fastocclusion/cuda/device_buffer.hpp"

namespace fastocclusion::bindings {

/// The Python DeviceBuffer: a shared device allocation and the stream of the last work
/// enqueued on it by this module or handed to a DLPack consumer. Work on another stream
/// first waits for that one (use_on), so buffers may move between streams safely. Work that
/// others enqueue on the memory (e.g. a PyTorch model reading a DLPack view) is ordered by
/// the caller: by using the same stream, by passing it as `stream`, or by exporting again
/// through __dlpack__.
struct PyDeviceBuffer {
  std::shared_ptr<cuda::DeviceBuffer> buffer;
  cudaStream_t last_stream = nullptr;

  /// Orders the next work on `stream` after everything enqueued on this buffer so far and
  /// records `stream` as its last. Call with the buffer's device current. Throws cuda_error.
  void use_on(cudaStream_t stream);
};

/// A new zeroed buffer (allocated with the GIL released). Throws as cuda::DeviceBuffer.
std::shared_ptr<PyDeviceBuffer> make_buffer(const std::vector<std::int64_t>& shape,
                                            cuda::DType dtype, int device);

/// Copies a C-contiguous host array of the buffer's dtype and shape into it, on `stream`
/// (None: the buffer's last stream), and waits. ValueError naming `name` for another dtype,
/// shape or layout.
void copy_from_host(PyDeviceBuffer& self, const pybind11::array& array,
                    const pybind11::object& stream, const char* name = "array");

/// Whether a NumPy array has `dtype` (NumPy's type equivalence).
bool has_dtype(const pybind11::array& array, cuda::DType dtype);

/// ValueError naming `name` unless the buffer holds `dtype`.
void require_dtype(const PyDeviceBuffer& b, cuda::DType dtype, const char* name);

/// ValueError naming `name` unless the buffer lives on `device`.
void require_device(const PyDeviceBuffer& b, int device, const char* name);

}  // namespace fastocclusion::bindings
