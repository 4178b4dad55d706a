// AlignedHostBuffer: 64-byte alignment, zeroed content, shape bookkeeping, errors.
#include "fastocclusion/host_buffer.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fastocclusion/errors.hpp"

namespace {

using fastocclusion::AlignedHostBuffer;
using fastocclusion::user_error;

std::uintptr_t address(const float* p) { return reinterpret_cast<std::uintptr_t>(p); }

TEST(HostBuffer, AlignmentConstantIs64Bytes) {
  EXPECT_EQ(fastocclusion::kBufferAlignment, 64u);
}

TEST(HostBuffer, EverySizeIsAlignedAndZeroed) {
  // Sizes around and between alignment boundaries, and a few large ones.
  std::vector<std::int64_t> sizes;
  for (std::int64_t s = 1; s <= 70; ++s) sizes.push_back(s);
  for (std::int64_t s : {127, 128, 129, 1000, 4095, 4096, 4097, 224 * 224 * 3, 1 << 20}) {
    sizes.push_back(s);
  }
  std::vector<AlignedHostBuffer> alive;  // keep them alive so addresses are distinct
  for (std::int64_t s : sizes) {
    AlignedHostBuffer buf({s});
    ASSERT_NE(buf.data(), nullptr);
    EXPECT_EQ(address(buf.data()) % 64, 0u) << "size " << s;
    EXPECT_EQ(buf.size(), s);
    EXPECT_EQ(buf.nbytes(), static_cast<std::size_t>(s) * sizeof(float));
    for (std::int64_t i = 0; i < s; ++i) {
      ASSERT_EQ(buf.data()[i], 0.0f) << "size " << s << " element " << i;
    }
    buf.data()[s - 1] = 1.0f;  // the whole range is writable
    alive.push_back(std::move(buf));
  }
}

TEST(HostBuffer, ZeroedEvenWhenTheAllocatorReusesDirtyMemory) {
  // Fresh pages from the OS are zero anyway; freed-then-reused heap memory is not.
  for (std::int64_t s : {1, 15, 16, 17, 100, 1000, 5000}) {
    for (int round = 0; round < 3; ++round) {
      {
        AlignedHostBuffer dirty({s});
        for (std::int64_t i = 0; i < s; ++i) dirty.data()[i] = 42.0f;
      }
      AlignedHostBuffer buf({s});
      EXPECT_EQ(address(buf.data()) % 64, 0u) << "size " << s;
      for (std::int64_t i = 0; i < s; ++i) {
        ASSERT_EQ(buf.data()[i], 0.0f) << "size " << s << " element " << i;
      }
    }
  }
}

TEST(HostBuffer, MultiDimensionalShape) {
  const std::vector<std::int64_t> shape = {32, 7, 5, 3};
  AlignedHostBuffer buf(shape);
  EXPECT_EQ(buf.shape(), shape);
  EXPECT_EQ(buf.size(), 32 * 7 * 5 * 3);
  EXPECT_EQ(address(buf.data()) % 64, 0u);
  const AlignedHostBuffer& as_const = buf;
  EXPECT_EQ(as_const.data(), buf.data());
}

TEST(HostBuffer, MoveTransfersOwnership) {
  AlignedHostBuffer a({10, 10});
  float* p = a.data();
  AlignedHostBuffer b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.size(), 100);
}

std::string error_of(std::vector<std::int64_t> shape) {
  try {
    AlignedHostBuffer buf(std::move(shape));
  } catch (const user_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no user_error";
  return {};
}

TEST(HostBuffer, BadShapesThrowUserError) {
  EXPECT_NE(error_of({}).find("shape"), std::string::npos);
  const std::string zero = error_of({4, 0, 2});
  EXPECT_NE(zero.find("size 0"), std::string::npos) << zero;
  const std::string negative = error_of({-3});
  EXPECT_NE(negative.find("-3"), std::string::npos) << negative;
  const std::int64_t big = std::int64_t{1} << 31;
  EXPECT_NE(error_of({big, big, big}).find("too large"), std::string::npos);
  EXPECT_THROW(AlignedHostBuffer({1, -1}), std::invalid_argument);
}

}  // namespace
