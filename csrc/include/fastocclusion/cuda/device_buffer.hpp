// An owning, typed device allocation with a shape, and host <-> device copies.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace fastocclusion::cuda {

/// Element types a DeviceBuffer can hold: NumPy's numbers (bfloat16, which NumPy lacks,
/// travels as its bits in int16 or uint16).
enum class DType {
  float32, float64, float16,
  int8, int16, int32, int64,
  uint8, uint16, uint32, uint64,
  bool_,
};

/// How the elements of a DType are stored, for the kernels (fill.hpp, "Element types").
enum class DTypeKind { floating, signed_integer, unsigned_integer, boolean };

/// Bytes per element of `dtype`.
std::size_t dtype_size(DType dtype) noexcept;
/// Its kind.
DTypeKind dtype_kind(DType dtype) noexcept;
/// "float32", "float64", "float16", "int8" ... "uint64", "bool" (NumPy's names).
const char* dtype_name(DType dtype) noexcept;
/// Parses one of dtype_name's names, the whole view: "float32\0x" is not "float32". Throws
/// user_error naming `dtype` (the value escaped, a NUL byte shown as \x00) otherwise.
DType parse_dtype(std::string_view name);

/// prod(shape) elements of `dtype` in device memory of one device, compact row-major, at
/// least 256-byte aligned (cudaMalloc's guarantee), zeroed at construction.
/// Not copyable; movable. The destructor frees with cudaFree, which waits for the device's
/// outstanding work, so freeing a buffer that a queued kernel still uses is safe; it never
/// throws (a failure is reported on stderr, except cudaErrorCudartUnloading: a buffer freed
/// while the process exits, after the CUDA runtime shut down, is silently gone).
class DeviceBuffer {
 public:
  /// Allocates on `device` and zeroes synchronously (a cudaMemsetAsync on the legacy default
  /// stream, then a wait for it), so the buffer is ready for any stream on return.
  /// shape: >= 1 dimension, every size >= 1. Throws user_error for a bad shape or device,
  /// cuda_out_of_memory when the device is full, cuda_error for other CUDA failures.
  DeviceBuffer(std::vector<std::int64_t> shape, DType dtype = DType::float32, int device = 0);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() noexcept { return data_; }
  const void* data() const noexcept { return data_; }
  template <typename T>
  T* data_as() noexcept { return static_cast<T*>(data_); }
  template <typename T>
  const T* data_as() const noexcept { return static_cast<const T*>(data_); }

  const std::vector<std::int64_t>& shape() const noexcept { return shape_; }
  std::int64_t size() const noexcept { return size_; }  ///< number of elements
  std::size_t nbytes() const noexcept { return static_cast<std::size_t>(size_) * dtype_size(dtype_); }
  DType dtype() const noexcept { return dtype_; }
  int device() const noexcept { return device_; }

 private:
  void release() noexcept;
  std::vector<std::int64_t> shape_;
  std::int64_t size_ = 0;
  DType dtype_ = DType::float32;
  int device_ = 0;
  void* data_ = nullptr;
};

/// Enqueues a copy of `bytes` from host memory to device memory on `stream` and waits for
/// it: on return `src` may be reused. Call with the destination's device current.
/// Throws cuda_error. Synchronous.
void copy_host_to_device(void* dst, const void* src, std::size_t bytes, cudaStream_t stream = 0);

/// Enqueues a copy of `bytes` from device memory to host memory on `stream` (after the work
/// already queued there) and waits for it: on return `dst` holds the data.
/// Call with the source's device current. Throws cuda_error. Synchronous.
void copy_device_to_host(void* dst, const void* src, std::size_t bytes, cudaStream_t stream = 0);

}  // namespace fastocclusion::cuda
