#include "fastocclusion/cuda/device.hpp"

#include "fastocclusion/cuda/cuda_errors.hpp"
#include "fastocclusion/errors.hpp"

namespace fastocclusion::cuda {

int device_count() noexcept {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    // No driver (cudaErrorInsufficientDriver), no device (cudaErrorNoDevice), ...: not an
    // error for a query. Clear the last-error slot so no later check reports it.
    (void)cudaGetLastError();
    return 0;
  }
  return count > 0 ? count : 0;
}

bool is_available() noexcept { return device_count() > 0; }

void check_device(int device) {
  int count = 0;
  FASTOCCLUSION_CUDA_TRY(cudaGetDeviceCount(&count));
  FASTOCCLUSION_EXPECTS(device >= 0 && device < count,
                        "device=" << device << " is invalid, expected 0 <= device < " << count
                                  << " (the number of CUDA devices)");
}

DeviceGuard::DeviceGuard(int device) {
  check_device(device);
  FASTOCCLUSION_CUDA_TRY(cudaGetDevice(&previous_));
  if (previous_ != device) {
    FASTOCCLUSION_CUDA_TRY(cudaSetDevice(device));
    changed_ = true;
  }
}

DeviceGuard::~DeviceGuard() {
  if (changed_) FASTOCCLUSION_CUDA_TRY_NOTHROW(cudaSetDevice(previous_));
}

void synchronize(cudaStream_t stream) { FASTOCCLUSION_CUDA_TRY(cudaStreamSynchronize(stream)); }

}  // namespace fastocclusion::cuda
