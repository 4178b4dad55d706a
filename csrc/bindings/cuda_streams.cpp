// CUDA streams for _cuda (see cuda_streams.hpp).
#include "cuda_streams.hpp"

#include <cstdint>
#include <string>

#include "fastocclusion/cuda/cuda_errors.hpp"
#include "fastocclusion/errors.hpp"

namespace py = pybind11;

namespace fastocclusion::bindings {
namespace {

bool is_legacy(cudaStream_t s) { return s == nullptr || s == cudaStreamLegacy; }
bool same_stream(cudaStream_t a, cudaStream_t b) { return a == b || (is_legacy(a) && is_legacy(b)); }

cudaStream_t from_handle(long long value) {
  return reinterpret_cast<cudaStream_t>(static_cast<std::uintptr_t>(value));
}

}  // namespace

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
  return from_handle(value);
}

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

DLPackConsumer dlpack_consumer(const py::object& stream) {
  DLPackConsumer consumer;
  if (stream.is_none()) return consumer;
  FASTOCCLUSION_EXPECTS(py::isinstance<py::int_>(stream) || py::hasattr(stream, "__index__"),
                        "stream: " << std::string(py::str(py::type::of(stream)))
                                   << " is invalid, expected None, -1 or a CUDA stream handle");
  const auto value = stream.cast<long long>();
  FASTOCCLUSION_EXPECTS(value >= -1, "stream=" << value << " is invalid, expected None, -1 or a "
                                                          "CUDA stream handle");
  if (value == -1) consumer.synchronize = false;
  else consumer.stream = from_handle(value);
  return consumer;
}

}  // namespace fastocclusion::bindings
