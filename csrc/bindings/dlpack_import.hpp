// Reading a DLPack tensor that another library exports (the consumer side of the DLPack
// C ABI, dlpack_abi.hpp): its data pointer, shape and dtype once it is checked to be a
// compact row-major array on the expected kind of device. Plain C++ (no Python), so the C++
// tests check it too. Binding code and tests/cpp only.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "dlpack_abi.hpp"
#include "fastocclusion/errors.hpp"
#include "shape_string.hpp"

namespace fastocclusion::bindings {

/// A checked DLPack tensor: `data` is its first element (byte_offset applied), the array
/// compact row-major (C-contiguous) with `shape`.
struct ImportedArray {
  void* data = nullptr;
  std::vector<std::int64_t> shape;
  dlpack::DLDataType dtype{};
  std::int32_t device_id = 0;
  std::int64_t elements = 0;  ///< the product of shape
  std::int64_t bytes = 0;     ///< elements * the element size
};

/// True for DLPack's float32 (`bits` 32) or float64 (`bits` 64) with one lane.
inline bool is_float(const dlpack::DLDataType& dtype, int bits) {
  return dtype.code == dlpack::kDLFloat && dtype.bits == bits && dtype.lanes == 1;
}

/// `tensor` as an ImportedArray. Throws user_error naming `name` unless it lives on a device
/// of type `device` (CUDA also accepts CUDA managed memory), has one lane of whole bytes,
/// a rank in [0, 32] with its shape, non-negative lengths, strides of a compact row-major array (any
/// stride on a length-1 axis; nullptr means compact), a non-null data pointer when it holds
/// elements, and a size in bytes within int64.
inline ImportedArray read_dltensor(const dlpack::DLTensor& tensor, dlpack::DLDeviceType device,
                                   const char* name) {
  const auto type = tensor.device.device_type;
  const bool on_device =
      type == device || (device == dlpack::kDLCUDA && type == dlpack::kDLCUDAManaged);
  FASTOCCLUSION_EXPECTS(on_device, name << ": an array on DLPack device type " << type
                                        << " is invalid, expected device type " << device
                                        << (device == dlpack::kDLCUDA ? " (CUDA)" : ""));
  FASTOCCLUSION_EXPECTS(tensor.ndim >= 0 && tensor.ndim <= 32,
                        name << ": rank " << tensor.ndim << " is invalid, expected 0 to 32");
  FASTOCCLUSION_EXPECTS(tensor.dtype.lanes == 1 && tensor.dtype.bits % 8 == 0 &&
                            tensor.dtype.bits > 0,
                        name << ": a DLPack dtype of " << int(tensor.dtype.bits) << " bits x "
                             << tensor.dtype.lanes << " lanes is invalid, expected one lane "
                             << "of whole bytes");
  FASTOCCLUSION_EXPECTS(tensor.ndim == 0 || tensor.shape != nullptr,
                        name << ": a null shape is invalid for rank " << tensor.ndim);
  ImportedArray out;
  out.dtype = tensor.dtype;
  out.device_id = tensor.device.device_id;
  const auto rank = static_cast<std::size_t>(tensor.ndim);
  out.shape.assign(tensor.shape, tensor.shape + rank);
  const std::int64_t item = tensor.dtype.bits / 8;
  std::int64_t elements = 1;
  for (std::int64_t length : out.shape) {
    FASTOCCLUSION_EXPECTS(length >= 0, name << ": shape " << shape_string(out.shape)
                                            << " is invalid, expected lengths >= 0");
    const std::int64_t limit = std::numeric_limits<std::int64_t>::max() / item;
    FASTOCCLUSION_EXPECTS(length == 0 || elements <= limit / length,
                          name << ": shape " << shape_string(out.shape)
                               << " is invalid, its size in bytes exceeds int64");
    elements *= length;
  }
  if (tensor.strides != nullptr && elements > 0) {
    std::int64_t expected = 1;
    for (std::size_t a = rank; a-- > 0;) {
      FASTOCCLUSION_EXPECTS(out.shape[a] == 1 || tensor.strides[a] == expected,
                            name << ": strides " << shape_string(tensor.strides, rank)
                                 << " of shape " << shape_string(out.shape)
                                 << " are invalid, expected a C-contiguous array");
      expected *= out.shape[a];
    }
  }
  FASTOCCLUSION_EXPECTS(elements == 0 || tensor.data != nullptr,
                        name << ": a null data pointer is invalid for " << elements
                             << " elements");
  out.elements = elements;
  out.bytes = elements * item;
  out.data = tensor.data == nullptr
                 ? nullptr
                 : static_cast<void*>(static_cast<char*>(tensor.data) + tensor.byte_offset);
  return out;
}

/// True when the bytes of `a` and `b` overlap (empty arrays never do).
inline bool overlaps(const ImportedArray& a, const ImportedArray& b) {
  const auto* a0 = static_cast<const char*>(a.data);
  const auto* b0 = static_cast<const char*>(b.data);
  return a.bytes > 0 && b.bytes > 0 && a0 < b0 + b.bytes && b0 < a0 + a.bytes;
}

}  // namespace fastocclusion::bindings
