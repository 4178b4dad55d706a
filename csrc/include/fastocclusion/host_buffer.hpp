// A 64-byte-aligned, zero-initialised float32 host buffer with a shape.
//
// TensorFlow aborts the process when it imports an unaligned buffer by DLPack, and SIMD
// loads like cache-line alignment: every buffer handed out of fastocclusion is one of these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace fastocclusion {

/// The number of elements of a buffer of this shape (host or device). Throws user_error
/// (naming `shape`) if it is empty, a size is < 1, or the product overflows.
std::int64_t checked_element_count(const std::vector<std::int64_t>& shape);

/// Byte alignment of every AlignedHostBuffer's data.
inline constexpr std::size_t kBufferAlignment = 64;

class AlignedHostBuffer {
 public:
  /// Allocates prod(shape) float32 values, 64-byte aligned, zeroed.
  /// Throws user_error if shape is empty or a size is < 1 or the size overflows;
  /// std::bad_alloc when memory runs out.
  explicit AlignedHostBuffer(std::vector<std::int64_t> shape);

  float* data() noexcept { return data_.get(); }
  const float* data() const noexcept { return data_.get(); }
  std::int64_t size() const noexcept { return size_; }  ///< number of floats
  std::size_t nbytes() const noexcept { return static_cast<std::size_t>(size_) * sizeof(float); }
  const std::vector<std::int64_t>& shape() const noexcept { return shape_; }

 private:
  struct Free {
    void operator()(float* p) const noexcept;
  };
  std::vector<std::int64_t> shape_;
  std::int64_t size_ = 0;
  std::unique_ptr<float, Free> data_;
};

}  // namespace fastocclusion
