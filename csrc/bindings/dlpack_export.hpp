// DLPack export shared by the two binding modules (_core's HostBuffer, _cuda's DeviceBuffer).
// Binding code: included only by csrc/bindings/*.cpp.
//
// The capsule owns a shared_ptr to the buffer, so the memory lives as long as the consumer's
// tensor. The deleter may run on any thread without the GIL (a consumer frees its tensor
// there): it touches no Python object. Always the unversioned DLManagedTensor: NumPy,
// TensorFlow, PyTorch and CuPy accept it whatever max_version they ask for.
#pragma once

#include "dlpack_abi.hpp"
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fastocclusion/errors.hpp"

namespace fastocclusion::bindings {

namespace py = pybind11;
using namespace ::fastocclusion::dlpack;  // the DLPack ABI names

/// The (device_type, device_id) of a `dl_device` argument; ValueError naming it otherwise.
inline std::pair<int, int> parse_dl_device(const py::object& dl_device) {
  try {
    return dl_device.cast<std::pair<int, int>>();
  } catch (const py::cast_error&) {
    FASTOCCLUSION_EXPECTS(false, "dl_device: " << std::string(py::repr(dl_device))
                                               << " is invalid, expected a (device_type, device_id) tuple");
  }
  return {-1, -1};  // unreachable
}

/// BufferError for copy=True: buffers are only exported without a copy.
inline void refuse_copy(const py::object& copy, const char* buffer_type) {
  if (!copy.is_none() && copy.cast<bool>()) {
    throw py::buffer_error(std::string("copy=True: a ") + buffer_type +
                           " is only exported without a copy");
  }
}

namespace detail {

template <typename Buffer>
struct DLPackOwner {
  std::shared_ptr<Buffer> buffer;  // keeps the memory alive for the consumer
  std::vector<std::int64_t> shape;
  DLManagedTensor managed{};
};

template <typename Buffer>
void delete_dlpack_owner(DLManagedTensor* self) {
  delete static_cast<DLPackOwner<Buffer>*>(self->manager_ctx);
}

inline void dlpack_capsule_destructor(PyObject* capsule) {
  // Renamed to "used_dltensor" by a consumer that took ownership; otherwise it is ours.
  if (PyCapsule_IsValid(capsule, "dltensor")) {
    auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
    if (managed != nullptr && managed->deleter != nullptr) managed->deleter(managed);
  }
}

}  // namespace detail

/// A "dltensor" capsule of the compact row-major `buffer` (its shape(), at `data`).
template <typename Buffer>
py::object export_dlpack(const std::shared_ptr<Buffer>& buffer, void* data, DLDevice device,
                         DLDataType dtype) {
  auto owner = std::make_unique<detail::DLPackOwner<Buffer>>();
  owner->buffer = buffer;
  owner->shape = buffer->shape();
  DLTensor& t = owner->managed.dl_tensor;
  t.data = data;
  t.device = device;
  t.ndim = static_cast<std::int32_t>(owner->shape.size());
  t.dtype = dtype;
  t.shape = owner->shape.data();
  t.strides = nullptr;  // compact row-major
  t.byte_offset = 0;
  owner->managed.manager_ctx = owner.get();
  owner->managed.deleter = detail::delete_dlpack_owner<Buffer>;
  PyObject* capsule =
      PyCapsule_New(&owner->managed, "dltensor", detail::dlpack_capsule_destructor);
  if (capsule == nullptr) throw py::error_already_set();
  owner.release();  // now owned by the capsule (or its consumer)
  return py::reinterpret_steal<py::object>(capsule);
}

}  // namespace fastocclusion::bindings
