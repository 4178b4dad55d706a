// CUDA streams as _cuda sees them: what a `stream` argument means, ordering one stream
// after another, and the DLPack stream protocol. Binding code: included only by
// csrc/bindings/cuda_*.cpp.
//
// A `stream` argument of the _cuda functions: None (the default) or 0 is the legacy default
// stream, which orders with PyTorch's and CuPy's default streams; an int is a cudaStream_t
// handle (torch.cuda.Stream.cuda_stream, cupy Stream.ptr, 1 = legacy, 2 = per-thread
// default); a torch stream (its .cuda_stream) or a CuPy stream (its .ptr) is accepted too.
#pragma once

#include <cuda_runtime_api.h>
#include <pybind11/pybind11.h>

namespace fastocclusion::bindings {

/// The cudaStream_t of a `stream` argument (see the header comment). ValueError for a
/// negative handle or an object that is none of the above.
cudaStream_t stream_from(const pybind11::object& stream);

/// Makes `waiter` wait (on the device) for the work enqueued so far on `producer`, through
/// an event; nothing when they are the same stream (the legacy default stream under either
/// name). Call with their device current. Throws cuda_error. Does not block the host.
void stream_wait(cudaStream_t waiter, cudaStream_t producer);

/// The consumer side of the DLPack stream protocol (array API standard, CUDA): the stream a
/// consumer passes to __dlpack__(stream=...). None: the legacy default stream; 1: legacy;
/// 2: per-thread default; -1: no synchronisation wanted (`synchronize` false); any other
/// int > 2: a cudaStream_t. 0 is ambiguous and disallowed by the standard; it is read as
/// the legacy default stream, like None. ValueError for other values.
struct DLPackConsumer {
  bool synchronize = true;
  cudaStream_t stream = nullptr;
};
DLPackConsumer dlpack_consumer(const pybind11::object& stream);

}  // namespace fastocclusion::bindings
