#include "fastocclusion/cuda/cuda_errors.hpp"

#include <cstdio>
#include <exception>

namespace fastocclusion::cuda::detail {

std::string cuda_error_message(cudaError_t code, const char* call, const char* file, int line) {
  const char* name = cudaGetErrorName(code);
  const char* text = cudaGetErrorString(code);
  std::string message = "CUDA error ";
  message += name != nullptr ? name : "(unknown)";
  message += " (";
  message += text != nullptr ? text : "no description";
  message += ") in `";
  message += call != nullptr ? call : "?";
  message += "` at ";
  message += file != nullptr ? file : "?";
  message += ":" + std::to_string(line);
  return message;
}

void throw_cuda_error(cudaError_t code, const char* call, const char* file, int line) {
  // A failed runtime call also sets the thread's last-error slot; clear it so that the next
  // launch check does not report this failure again (sticky errors stay, by design).
  (void)cudaGetLastError();
  const std::string message = cuda_error_message(code, call, file, line);
  if (code == cudaErrorMemoryAllocation) throw cuda_out_of_memory(message, code);
  throw cuda_error(message, code);
}

void report_cuda_error(cudaError_t code, const char* call, const char* file, int line) noexcept {
  (void)cudaGetLastError();
  // The process is exiting and the runtime has already shut down (a buffer or guard
  // destroyed by interpreter teardown after CUDA's own static teardown): its resources are
  // gone with it, nothing to report (rmm does the same).
  if (code == cudaErrorCudartUnloading) return;
  try {
    const std::string message = cuda_error_message(code, call, file, line);
    std::fprintf(stderr, "fastocclusion: %s (ignored)\n", message.c_str());
  } catch (const std::exception&) {
    std::fprintf(stderr, "fastocclusion: CUDA error %d at %s:%d (ignored)\n",
                 static_cast<int>(code), file != nullptr ? file : "?", line);
  }
}

}  // namespace fastocclusion::cuda::detail
