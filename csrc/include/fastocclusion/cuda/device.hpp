// Device discovery, the current-device guard and stream synchronisation.
#pragma once

#include <cuda_runtime_api.h>

namespace fastocclusion::cuda {

/// Number of CUDA devices this process can use; 0 when there is no driver, no device, or
/// the driver is older than the runtime. Never throws; clears the runtime error it caused.
int device_count() noexcept;

/// device_count() > 0.
bool is_available() noexcept;

/// Throws user_error naming `device` unless 0 <= device < device_count(); cuda_error
/// (never user_error) when no device exists at all, with the runtime's reason.
void check_device(int device);

/// Makes `device` current for the guard's lifetime and restores the previous one after.
/// Throws as check_device, or cuda_error if cudaSetDevice fails. The destructor never throws.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  bool changed_ = false;
};

/// Blocks the calling thread until the work enqueued on `stream` (on the current device)
/// has finished. Throws cuda_error if it failed, e.g. a kernel fault.
void synchronize(cudaStream_t stream = 0);

}  // namespace fastocclusion::cuda
