// fastocclusion._cuda.DeviceBuffer: device memory of one of NumPy's number dtypes (float32,
// float64, float16, integers, bool) with host copies and a DLPack export (PyTorch, CuPy and
// JAX view it without a copy).
//
// Synchronisation: construction, from_host, copy_from_host and to_host return when done.
// GIL: released around every CUDA call; the Python objects passed in stay referenced by the
// calling frame meanwhile.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"
#include "cuda_buffers.hpp"
#include "cuda_module.hpp"
#include "cuda_streams.hpp"
#include "dlpack_export.hpp"
#include "fastocclusion/cuda/device.hpp"
#include "fastocclusion/cuda/device_buffer.hpp"
#include "fastocclusion/errors.hpp"
#include "str_arg.hpp"

namespace py = pybind11;
namespace fc = fastocclusion::cuda;

namespace fastocclusion::bindings {
namespace {

std::vector<std::int64_t> array_shape(const py::array& a) {
  return std::vector<std::int64_t>(a.shape(), a.shape() + a.ndim());
}

py::dtype numpy_dtype(fc::DType dtype) { return py::dtype(std::string(fc::dtype_name(dtype))); }

constexpr fc::DType kAllDTypes[] = {
    fc::DType::float32, fc::DType::float64, fc::DType::float16, fc::DType::int8,
    fc::DType::int16,   fc::DType::int32,   fc::DType::int64,   fc::DType::uint8,
    fc::DType::uint16,  fc::DType::uint32,  fc::DType::uint64,  fc::DType::bool_};

// The DType of a host array; ValueError naming `name` for any other dtype.
fc::DType dtype_of(const py::array& array, const char* name) {
  for (const fc::DType dtype : kAllDTypes) {
    if (has_dtype(array, dtype)) return dtype;
  }
  FASTOCCLUSION_EXPECTS(false, name << ": dtype " << std::string(py::str(array.dtype()))
                                    << " is invalid, expected a number dtype in native byte "
                                       "order: float32, float64, float16, int8..int64, "
                                       "uint8..uint64 or bool");
  return fc::DType::float32;  // unreachable
}

// The DLPack type of a DType.
DLDataType dlpack_dtype(fc::DType dtype) {
  const auto bits = static_cast<std::uint8_t>(8 * fc::dtype_size(dtype));
  switch (fc::dtype_kind(dtype)) {
    case fc::DTypeKind::floating:
      return {kDLFloat, bits, 1};
    case fc::DTypeKind::signed_integer:
      return {kDLInt, bits, 1};
    case fc::DTypeKind::unsigned_integer:
      return {kDLUInt, bits, 1};
    case fc::DTypeKind::boolean:
    default:
      return {kDLBool, bits, 1};
  }
}

py::array to_host(PyDeviceBuffer& self, const py::object& stream) {
  const std::vector<std::int64_t>& shape = self.buffer->shape();
  py::array result(numpy_dtype(self.buffer->dtype()),
                   std::vector<py::ssize_t>(shape.begin(), shape.end()));
  const cudaStream_t s = stream.is_none() ? self.last_stream : stream_from(stream);
  fc::DeviceGuard guard(self.buffer->device());
  self.use_on(s);
  void* dst = result.mutable_data();
  {
    py::gil_scoped_release release;
    fc::copy_device_to_host(dst, self.buffer->data(), self.buffer->nbytes(), s);
  }
  return result;
}

std::shared_ptr<PyDeviceBuffer> from_host(const py::array& array, int device) {
  FASTOCCLUSION_EXPECTS(array.ndim() >= 1, "array: expected at least one dimension");
  const fc::DType dtype = dtype_of(array, "array");
  const py::array contiguous = py::array::ensure(array, py::array::c_style);
  auto result = make_buffer(array_shape(contiguous), dtype, device);
  copy_from_host(*result, contiguous, py::none());
  return result;
}

// The producer side of the DLPack stream protocol (cuda_streams.hpp): the consumer's stream
// waits, by an event, for the work enqueued on this buffer so far; later work of this module
// on the buffer waits for the consumer's stream (it becomes the buffer's last stream).
py::object buffer_to_dlpack(PyDeviceBuffer& self, const py::object& stream,
                            const py::object& /*max_version*/, const py::object& dl_device,
                            const py::object& copy) {
  const int device = self.buffer->device();
  if (!dl_device.is_none()) {
    const auto wanted = parse_dl_device(dl_device);
    if (wanted.first != kDLCUDA || wanted.second != device) {
      throw py::buffer_error("dl_device=(" + std::to_string(wanted.first) + ", " +
                             std::to_string(wanted.second) + "): a DeviceBuffer lives on (" +
                             std::to_string(kDLCUDA) + ", " + std::to_string(device) +
                             ") and is only exported there");
    }
  }
  refuse_copy(copy, "DeviceBuffer");
  const DLPackConsumer consumer = dlpack_consumer(stream);
  if (consumer.synchronize) {
    fc::DeviceGuard guard(device);
    self.use_on(consumer.stream);
  }
  return export_dlpack(self.buffer, self.buffer->data(), DLDevice{kDLCUDA, device},
                       dlpack_dtype(self.buffer->dtype()));
}

}  // namespace

void PyDeviceBuffer::use_on(cudaStream_t stream) {
  stream_wait(stream, last_stream);
  last_stream = stream;
}

std::shared_ptr<PyDeviceBuffer> make_buffer(const std::vector<std::int64_t>& shape,
                                            fc::DType dtype, int device) {
  auto result = std::make_shared<PyDeviceBuffer>();
  py::gil_scoped_release release;
  result->buffer = std::make_shared<fc::DeviceBuffer>(shape, dtype, device);
  return result;
}

bool has_dtype(const py::array& array, fc::DType dtype) {
  const py::dtype wanted = numpy_dtype(dtype);
  return array.dtype().is(wanted) || array.dtype().equal(wanted);
}

void require_dtype(const PyDeviceBuffer& b, fc::DType dtype, const char* name) {
  FASTOCCLUSION_EXPECTS(b.buffer->dtype() == dtype, name << ": dtype "
                                                         << fc::dtype_name(b.buffer->dtype())
                                                         << " is invalid, expected "
                                                         << fc::dtype_name(dtype));
}

void require_device(const PyDeviceBuffer& b, int device, const char* name) {
  FASTOCCLUSION_EXPECTS(b.buffer->device() == device,
                        name << ": on device " << b.buffer->device() << ", expected device "
                             << device << " like the other buffers");
}

void copy_from_host(PyDeviceBuffer& self, const py::array& array, const py::object& stream,
                    const char* name) {
  const fc::DType dtype = self.buffer->dtype();
  FASTOCCLUSION_EXPECTS(has_dtype(array, dtype), name << ": dtype "
                                                      << std::string(py::str(array.dtype()))
                                                      << " is invalid, expected "
                                                      << fc::dtype_name(dtype));
  FASTOCCLUSION_EXPECTS((array.flags() & py::array::c_style) != 0,
                        name << ": expected a C-contiguous array");
  FASTOCCLUSION_EXPECTS(array_shape(array) == self.buffer->shape(),
                        name << ": shape " << shape_string(array_shape(array))
                             << " is invalid, expected " << shape_string(self.buffer->shape()));
  const cudaStream_t s = stream.is_none() ? self.last_stream : stream_from(stream);
  fc::DeviceGuard guard(self.buffer->device());
  self.use_on(s);
  const void* src = array.data();
  py::gil_scoped_release release;
  fc::copy_host_to_device(self.buffer->data(), src, self.buffer->nbytes(), s);
}

void register_device_buffer(py::module_& m) {
  py::class_<PyDeviceBuffer, std::shared_ptr<PyDeviceBuffer>>(
      m, "DeviceBuffer",
      "A zeroed buffer in device memory (256-byte aligned, row-major) of one of NumPy's\n"
      "number dtypes: float32, float64, float16, int8..int64, uint8..uint64 or bool\n"
      "(bfloat16 as its bits: int16 or uint16). PyTorch, CuPy and JAX view it without a copy\n"
      "through DLPack.")
      .def(py::init([](const std::vector<std::int64_t>& shape, const StrArg& dtype, int device) {
             return make_buffer(shape, fc::parse_dtype(dtype.value), device);
           }),
           py::arg("shape"), py::arg("dtype") = "float32", py::arg("device") = 0,
           "shape: >= 1 sizes, each >= 1; dtype: a str, 'float32' (default), 'float64', "
           "'float16', 'int8'..'int64', 'uint8'..'uint64' or 'bool'; zeroed (synchronous).")
      .def_static("from_host", &from_host, py::arg("array"), py::arg("device") = 0,
                  "A new buffer of the array's dtype holding a copy of it (synchronous).")
      .def_property_readonly("shape", [](const PyDeviceBuffer& b) { return py::tuple(py::cast(b.buffer->shape())); })
      .def_property_readonly("ndim", [](const PyDeviceBuffer& b) { return b.buffer->shape().size(); })
      .def_property_readonly("size", [](const PyDeviceBuffer& b) { return b.buffer->size(); })
      .def_property_readonly("dtype", [](const PyDeviceBuffer& b) { return std::string(fc::dtype_name(b.buffer->dtype())); })
      .def_property_readonly("device", [](const PyDeviceBuffer& b) { return b.buffer->device(); })
      .def_property_readonly("nbytes", [](const PyDeviceBuffer& b) { return b.buffer->nbytes(); })
      .def_property_readonly("data_ptr", [](const PyDeviceBuffer& b) {
        return reinterpret_cast<std::uintptr_t>(b.buffer->data());
      })
      .def("copy_from_host",
           [](PyDeviceBuffer& self, const py::array& array, const py::object& stream) {
             copy_from_host(self, array, stream);
           },
           py::arg("array"), py::arg("stream") = py::none(),
           "Copy a C-contiguous array of the same dtype and shape in (synchronous).")
      .def("to_host", &to_host, py::arg("stream") = py::none(),
           "A NumPy copy, after the work enqueued on the buffer (synchronous).")
      .def("__dlpack__", &buffer_to_dlpack, py::kw_only(), py::arg("stream") = py::none(),
           py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(),
           py::arg("copy") = py::none())
      .def("__dlpack_device__", [](const PyDeviceBuffer& b) {
        return py::make_tuple(static_cast<int>(kDLCUDA), b.buffer->device());
      })
      .def("__repr__", [](const PyDeviceBuffer& b) {
        return "DeviceBuffer(shape=" + shape_string(b.buffer->shape()) + ", dtype=" +
               fc::dtype_name(b.buffer->dtype()) + ", device=" + std::to_string(b.buffer->device()) + ")";
      });
}

}  // namespace fastocclusion::bindings
