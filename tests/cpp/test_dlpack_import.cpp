// read_dltensor (csrc/bindings/dlpack_import.hpp): what _cuda's gathers and splices accept of
// a DLPack tensor another library exports, and what they refuse, on hand-made DLTensors.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dlpack_import.hpp"
#include "fastocclusion/errors.hpp"

namespace {

namespace dl = fastocclusion::dlpack;
using fastocclusion::bindings::ImportedArray;
using fastocclusion::bindings::is_float;
using fastocclusion::bindings::overlaps;
using fastocclusion::bindings::read_dltensor;

struct Tensor {
  std::vector<float> values = std::vector<float>(64);
  std::vector<std::int64_t> shape{2, 4, 8};
  std::vector<std::int64_t> strides;  // empty: nullptr
  dl::DLTensor dl{};

  dl::DLTensor& make(dl::DLDeviceType type = dl::kDLCUDA) {
    dl.data = values.data();
    dl.device = {type, 3};
    dl.ndim = static_cast<std::int32_t>(shape.size());
    dl.dtype = {dl::kDLFloat, 32, 1};
    dl.shape = shape.data();
    dl.strides = strides.empty() ? nullptr : strides.data();
    dl.byte_offset = 0;
    return dl;
  }
};

std::string refusal(const dl::DLTensor& t, dl::DLDeviceType device = dl::kDLCUDA) {
  try {
    (void)read_dltensor(t, device, "maps");
  } catch (const fastocclusion::user_error& e) {
    return e.what();
  }
  return "";
}

TEST(DLPackImport, ReadsACompactCudaTensor) {
  Tensor t;
  const ImportedArray a = read_dltensor(t.make(), dl::kDLCUDA, "maps");
  EXPECT_EQ(a.data, t.values.data());
  EXPECT_EQ(a.shape, t.shape);
  EXPECT_EQ(a.device_id, 3);
  EXPECT_EQ(a.elements, 64);
  EXPECT_EQ(a.bytes, 256);
  EXPECT_TRUE(is_float(a.dtype, 32));
  EXPECT_FALSE(is_float(a.dtype, 64));
}

TEST(DLPackImport, AppliesTheByteOffset) {
  Tensor t;
  t.shape = {2, 2, 2};
  dl::DLTensor& d = t.make();
  d.byte_offset = 8 * sizeof(float);
  EXPECT_EQ(read_dltensor(d, dl::kDLCUDA, "maps").data, t.values.data() + 8);
}

TEST(DLPackImport, AcceptsExplicitCompactStridesAndAnyStrideOnLengthOne) {
  Tensor t;
  t.strides = {32, 8, 1};
  EXPECT_NO_THROW((void)read_dltensor(t.make(), dl::kDLCUDA, "maps"));
  t.shape = {1, 4, 8};
  t.strides = {999, 8, 1};  // PyTorch may give any stride to a length-1 axis
  EXPECT_NO_THROW((void)read_dltensor(t.make(), dl::kDLCUDA, "maps"));
  t.shape = {2, 0, 8};  // no elements: strides say nothing
  t.strides = {5, 7, 9};
  EXPECT_NO_THROW((void)read_dltensor(t.make(), dl::kDLCUDA, "maps"));
}

TEST(DLPackImport, AcceptsManagedMemoryForCuda) {
  Tensor t;
  EXPECT_NO_THROW((void)read_dltensor(t.make(dl::kDLCUDAManaged), dl::kDLCUDA, "maps"));
}

TEST(DLPackImport, RefusesOtherDevices) {
  Tensor t;
  const std::string message = refusal(t.make(dl::kDLCPU));
  EXPECT_NE(message.find("maps: an array on DLPack device type 1 is invalid"), std::string::npos)
      << message;
  EXPECT_NE(refusal(t.make(dl::kDLCUDAHost)), "");
  EXPECT_NE(refusal(t.make(dl::kDLCUDA), dl::kDLCPU), "");
}

TEST(DLPackImport, RefusesNonContiguousStrides) {
  Tensor t;
  t.strides = {32, 1, 4};  // a transpose of the last two axes
  const std::string message = refusal(t.make());
  EXPECT_NE(message.find("expected a C-contiguous array"), std::string::npos) << message;
  t.strides = {64, 16, 2};  // every other element
  EXPECT_NE(refusal(t.make()), "");
}

TEST(DLPackImport, RefusesLanesPartialBytesBadShapesAndNullData) {
  Tensor t;
  dl::DLTensor& lanes = t.make();
  lanes.dtype.lanes = 4;
  EXPECT_NE(refusal(lanes).find("lanes is invalid"), std::string::npos);
  dl::DLTensor& bits = t.make();
  bits.dtype = {dl::kDLInt, 4, 1};
  EXPECT_NE(refusal(bits), "");
  t.shape = {2, -1, 8};
  EXPECT_NE(refusal(t.make()).find("expected lengths >= 0"), std::string::npos);
  t.shape = {2, 4, 8};
  dl::DLTensor& null = t.make();
  null.data = nullptr;
  EXPECT_NE(refusal(null).find("null data pointer"), std::string::npos);
  t.shape = {0, 4, 8};
  dl::DLTensor& empty = t.make();
  empty.data = nullptr;
  EXPECT_EQ(read_dltensor(empty, dl::kDLCUDA, "maps").bytes, 0);
  t.shape = {std::int64_t{1} << 40, std::int64_t{1} << 40, 8};
  EXPECT_NE(refusal(t.make()).find("exceeds int64"), std::string::npos);
  dl::DLTensor& rank = t.make();
  rank.ndim = -1;
  EXPECT_NE(refusal(rank).find("rank -1"), std::string::npos);
  dl::DLTensor& shapeless = t.make();
  shapeless.shape = nullptr;
  EXPECT_NE(refusal(shapeless).find("a null shape is invalid for rank 3"), std::string::npos);
}

TEST(DLPackImport, OverlapsComparesByteRanges) {
  std::vector<float> memory(16);
  ImportedArray a{memory.data(), {8}, {dl::kDLFloat, 32, 1}, 0, 8, 32};
  ImportedArray b{memory.data() + 8, {8}, {dl::kDLFloat, 32, 1}, 0, 8, 32};
  EXPECT_FALSE(overlaps(a, b));
  b.data = memory.data() + 7;
  EXPECT_TRUE(overlaps(a, b));
  b.bytes = 0;
  EXPECT_FALSE(overlaps(a, b));
}

}  // namespace
