#include "fastocclusion/cuda/device_buffer.hpp"

#include <limits>
#include <utility>

#include "fastocclusion/cuda/cuda_errors.hpp"
#include "fastocclusion/cuda/device.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/host_buffer.hpp"

namespace fastocclusion::cuda {

namespace {

struct DTypeInfo {
  DType dtype;
  const char* name;
  std::size_t size;
  DTypeKind kind;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::float32, "float32", 4, DTypeKind::floating},
    {DType::float64, "float64", 8, DTypeKind::floating},
    {DType::float16, "float16", 2, DTypeKind::floating},
    {DType::int8, "int8", 1, DTypeKind::signed_integer},
    {DType::int16, "int16", 2, DTypeKind::signed_integer},
    {DType::int32, "int32", 4, DTypeKind::signed_integer},
    {DType::int64, "int64", 8, DTypeKind::signed_integer},
    {DType::uint8, "uint8", 1, DTypeKind::unsigned_integer},
    {DType::uint16, "uint16", 2, DTypeKind::unsigned_integer},
    {DType::uint32, "uint32", 4, DTypeKind::unsigned_integer},
    {DType::uint64, "uint64", 8, DTypeKind::unsigned_integer},
    {DType::bool_, "bool", 1, DTypeKind::boolean},
};

const DTypeInfo& info(DType dtype) noexcept {
  for (const DTypeInfo& i : kDTypes) {
    if (i.dtype == dtype) return i;
  }
  return kDTypes[0];  // unreachable: every enumerator is listed
}

}  // namespace

std::size_t dtype_size(DType dtype) noexcept { return info(dtype).size; }

DTypeKind dtype_kind(DType dtype) noexcept { return info(dtype).kind; }

const char* dtype_name(DType dtype) noexcept { return info(dtype).name; }

DType parse_dtype(std::string_view name) {
  for (const DTypeInfo& i : kDTypes) {
    if (name == i.name) return i.dtype;
  }
  FASTOCCLUSION_EXPECTS(false, "dtype=" << ::fastocclusion::detail::quote_for_message(name)
                                        << " is invalid, expected one of float32, float64, "
                                           "float16, int8, int16, int32, int64, uint8, uint16, "
                                           "uint32, uint64, bool");
  return DType::float32;  // unreachable
}

DeviceBuffer::DeviceBuffer(std::vector<std::int64_t> shape, DType dtype, int device)
    : shape_(std::move(shape)), dtype_(dtype), device_(device) {
  size_ = checked_element_count(shape_);
  DeviceGuard guard(device_);
  FASTOCCLUSION_CUDA_TRY(cudaMalloc(&data_, nbytes()));
  try {
    // The legacy default stream waits for, and is waited for by, every blocking stream;
    // the wait makes the zeroes visible to non-blocking streams too.
    FASTOCCLUSION_CUDA_TRY(cudaMemsetAsync(data_, 0, nbytes(), 0));
    FASTOCCLUSION_CUDA_TRY(cudaStreamSynchronize(0));
  } catch (...) {
    release();
    throw;
  }
}

DeviceBuffer::~DeviceBuffer() { release(); }

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : shape_(std::move(other.shape_)),
      size_(std::exchange(other.size_, 0)),
      dtype_(other.dtype_),
      device_(other.device_),
      data_(std::exchange(other.data_, nullptr)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    release();
    shape_ = std::move(other.shape_);
    size_ = std::exchange(other.size_, 0);
    dtype_ = other.dtype_;
    device_ = other.device_;
    data_ = std::exchange(other.data_, nullptr);
  }
  return *this;
}

void DeviceBuffer::release() noexcept {
  if (data_ == nullptr) return;
  // cudaFree needs no current-device switch: the pointer identifies its device. It waits
  // for the outstanding work of the device, so queued kernels finish before the memory goes.
  FASTOCCLUSION_CUDA_TRY_NOTHROW(cudaFree(data_));
  data_ = nullptr;
}

void copy_host_to_device(void* dst, const void* src, std::size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return;
  FASTOCCLUSION_EXPECTS(dst != nullptr && src != nullptr, "copy: null pointer");
  FASTOCCLUSION_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
  FASTOCCLUSION_CUDA_TRY(cudaStreamSynchronize(stream));
}

void copy_device_to_host(void* dst, const void* src, std::size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return;
  FASTOCCLUSION_EXPECTS(dst != nullptr && src != nullptr, "copy: null pointer");
  FASTOCCLUSION_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
  FASTOCCLUSION_CUDA_TRY(cudaStreamSynchronize(stream));
}

}  // namespace fastocclusion::cuda
