// The DLPack C ABI (https://dmlc.github.io/dlpack/latest/c_api.html), the part fastocclusion
// uses, declared here so that building the package needs no system header (as nanobind does).
//
// These are the ABI-stable layouts of DLPack 0.x/1.x's unversioned interface: the structs a
// "dltensor" capsule points to. Field order, types and enum values must match the standard
// byte for byte; a static_assert below pins the sizes on LP64 platforms. Only binding code
// (csrc/bindings/) includes this file.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastocclusion::dlpack {

/// DLDeviceType: where the memory lives (values of the standard).
enum DLDeviceType : std::int32_t {
  kDLCPU = 1,
  kDLCUDA = 2,
  kDLCUDAHost = 3,
  kDLCUDAManaged = 13,
};

/// DLDataTypeCode (values of the standard).
enum DLDataTypeCode : std::uint8_t {
  kDLInt = 0,
  kDLUInt = 1,
  kDLFloat = 2,
  kDLBool = 6,
};

struct DLDevice {
  DLDeviceType device_type;
  std::int32_t device_id;
};

struct DLDataType {
  std::uint8_t code;
  std::uint8_t bits;
  std::uint16_t lanes;
};

struct DLTensor {
  void* data;
  DLDevice device;
  std::int32_t ndim;
  DLDataType dtype;
  std::int64_t* shape;
  std::int64_t* strides;  ///< nullptr: compact row-major
  std::uint64_t byte_offset;
};

/// The unversioned managed tensor of a "dltensor" capsule. `deleter` is called by the
/// consumer (or by the capsule's destructor when nobody consumed it) to free `manager_ctx`.
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

static_assert(sizeof(DLDevice) == 8, "DLDevice must match the DLPack ABI");
static_assert(sizeof(DLDataType) == 4, "DLDataType must match the DLPack ABI");
static_assert(sizeof(void*) != 8 || sizeof(DLTensor) == 48, "DLTensor must match the DLPack ABI");
static_assert(sizeof(void*) != 8 || sizeof(DLManagedTensor) == 64,
              "DLManagedTensor must match the DLPack ABI");
static_assert(sizeof(void*) != 8 || offsetof(DLTensor, byte_offset) == 40,
              "DLTensor::byte_offset must match the DLPack ABI");

}  // namespace fastocclusion::dlpack
