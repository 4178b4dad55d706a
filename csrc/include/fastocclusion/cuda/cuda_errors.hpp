// Error types and checking macros of the CUDA path.
//
// cuda_error            : a CUDA runtime call failed. Derives std::runtime_error (pybind11
//                         would make it RuntimeError; the _cuda module registers it as
//                         fastocclusion._cuda.CudaError, a RuntimeError subclass).
// cuda_out_of_memory    : the cuda_error of cudaErrorMemoryAllocation, so callers can free
//                         memory and retry (Python: CudaOutOfMemoryError).
//
// FASTOCCLUSION_CUDA_TRY(call)          evaluates a cudaError_t expression; on failure it
//     clears the runtime's last-error slot (so the failure is not reported a second time by
//     a later cudaGetLastError) and throws cuda_error / cuda_out_of_memory with the file,
//     line, call text, error name and cudaGetErrorString. Never aborts.
// FASTOCCLUSION_CUDA_TRY_NOTHROW(call)  for destructors and other noexcept paths: on failure
//     it writes the same message to stderr and carries on; cudaErrorCudartUnloading (the
//     process is exiting and the runtime already shut down) counts as success, silently.
//     Never throws, never aborts.
// FASTOCCLUSION_CUDA_CHECK_LAUNCH()     after a kernel launch: FASTOCCLUSION_CUDA_TRY on
//     cudaGetLastError() (launch-configuration errors; faults of the kernel itself surface
//     at a later synchronising call).
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace fastocclusion::cuda {

/// A CUDA runtime call failed. code() is the cudaError_t it returned.
class cuda_error : public std::runtime_error {
 public:
  cuda_error(const std::string& message, cudaError_t code)
      : std::runtime_error(message), code_(code) {}
  cudaError_t code() const noexcept { return code_; }

 private:
  cudaError_t code_;
};

/// cudaErrorMemoryAllocation: the device ran out of memory.
class cuda_out_of_memory : public cuda_error {
 public:
  using cuda_error::cuda_error;
};

namespace detail {
/// "CUDA error cudaErrorX (description) in `call` at file:line".
std::string cuda_error_message(cudaError_t code, const char* call, const char* file, int line);
/// Clears the last-error slot, then throws cuda_out_of_memory or cuda_error.
[[noreturn]] void throw_cuda_error(cudaError_t code, const char* call, const char* file,
                                   int line);
/// Clears the last-error slot, then writes the message to stderr (nothing for
/// cudaErrorCudartUnloading). Never throws.
void report_cuda_error(cudaError_t code, const char* call, const char* file, int line) noexcept;
}  // namespace detail

}  // namespace fastocclusion::cuda

#define FASTOCCLUSION_CUDA_TRY(call)                                                       \
  do {                                                                                     \
    const cudaError_t fastocclusion_status_ = (call);                                      \
    if (fastocclusion_status_ != cudaSuccess) {                                            \
      ::fastocclusion::cuda::detail::throw_cuda_error(fastocclusion_status_, #call,        \
                                                      __FILE__, __LINE__);                 \
    }                                                                                      \
  } while (0)

#define FASTOCCLUSION_CUDA_TRY_NOTHROW(call)                                               \
  do {                                                                                     \
    const cudaError_t fastocclusion_status_ = (call);                                      \
    if (fastocclusion_status_ != cudaSuccess) {                                            \
      ::fastocclusion::cuda::detail::report_cuda_error(fastocclusion_status_, #call,       \
                                                       __FILE__, __LINE__);                \
    }                                                                                      \
  } while (0)

#define FASTOCCLUSION_CUDA_CHECK_LAUNCH() FASTOCCLUSION_CUDA_TRY(cudaGetLastError())
