#include "fastocclusion/host_buffer.hpp"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include "fastocclusion/errors.hpp"

namespace fastocclusion {

void AlignedHostBuffer::Free::operator()(float* p) const noexcept { std::free(p); }

std::int64_t checked_element_count(const std::vector<std::int64_t>& shape) {
  FASTOCCLUSION_EXPECTS(!shape.empty(), "shape: expected at least one dimension");
  std::int64_t size = 1;
  constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max() / 64;
  for (std::int64_t d : shape) {
    FASTOCCLUSION_EXPECTS(d >= 1, "shape: size " << d << " is invalid, expected >= 1");
    FASTOCCLUSION_EXPECTS(size <= max / d, "shape: too large");
    size *= d;
  }
  return size;
}

AlignedHostBuffer::AlignedHostBuffer(std::vector<std::int64_t> shape)
    : shape_(std::move(shape)), size_(checked_element_count(shape_)) {
  const std::int64_t size = size_;
  // aligned_alloc wants a size that is a multiple of the alignment.
  std::size_t bytes = static_cast<std::size_t>(size) * sizeof(float);
  bytes = (bytes + kBufferAlignment - 1) / kBufferAlignment * kBufferAlignment;
  void* p = std::aligned_alloc(kBufferAlignment, bytes);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  data_.reset(static_cast<float*>(p));
}

}  // namespace fastocclusion
