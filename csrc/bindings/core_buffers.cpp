// fastocclusion._core.HostBuffer: 64-byte-aligned float32 host memory that NumPy views by the
// buffer protocol and TensorFlow/PyTorch by DLPack, without a copy.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core_module.hpp"
#include "dlpack_export.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/host_buffer.hpp"

namespace py = pybind11;
namespace fo = fastocclusion;

namespace fastocclusion::bindings {
namespace {

py::object buffer_to_dlpack(const std::shared_ptr<fo::AlignedHostBuffer>& buffer,
                            const py::object& stream, const py::object& /*max_version*/,
                            const py::object& dl_device, const py::object& copy) {
  FASTOCCLUSION_EXPECTS(stream.is_none(), "stream: expected None for a host buffer");
  if (!dl_device.is_none()) {
    const auto device = parse_dl_device(dl_device);
    FASTOCCLUSION_EXPECTS(device.first == kDLCPU && device.second == 0,
                          "dl_device: (" << device.first << ", " << device.second
                                         << ") is invalid, a host buffer lives on (1, 0)");
  }
  refuse_copy(copy, "HostBuffer");
  return export_dlpack(buffer, buffer->data(), DLDevice{kDLCPU, 0}, DLDataType{kDLFloat, 32, 1});
}

}  // namespace

void register_host_buffer(py::module_& m) {
  m.attr("BUFFER_ALIGNMENT") = fo::kBufferAlignment;
  py::class_<fo::AlignedHostBuffer, std::shared_ptr<fo::AlignedHostBuffer>>(
      m, "HostBuffer", py::buffer_protocol(),
      "A 64-byte-aligned, zeroed float32 buffer; NumPy views it by the buffer protocol,\n"
      "TensorFlow/PyTorch by DLPack, without a copy.")
      .def(py::init([](const std::vector<std::int64_t>& shape) {
             return std::make_shared<fo::AlignedHostBuffer>(shape);
           }),
           py::arg("shape"))
      .def_buffer([](fo::AlignedHostBuffer& b) {
        std::vector<py::ssize_t> shape(b.shape().begin(), b.shape().end());
        std::vector<py::ssize_t> strides(shape.size());
        py::ssize_t stride = sizeof(float);
        for (std::size_t i = shape.size(); i-- > 0;) {
          strides[i] = stride;
          stride *= shape[i];
        }
        return py::buffer_info(b.data(), sizeof(float), py::format_descriptor<float>::format(),
                               static_cast<py::ssize_t>(shape.size()), shape, strides);
      })
      .def_property_readonly("shape", [](const fo::AlignedHostBuffer& b) { return py::tuple(py::cast(b.shape())); })
      .def_property_readonly("nbytes", &fo::AlignedHostBuffer::nbytes)
      .def_property_readonly("data_ptr", [](const fo::AlignedHostBuffer& b) {
        return reinterpret_cast<std::uintptr_t>(b.data());
      })
      .def("__dlpack__", &buffer_to_dlpack, py::kw_only(), py::arg("stream") = py::none(),
           py::arg("max_version") = py::none(), py::arg("dl_device") = py::none(),
           py::arg("copy") = py::none())
      .def("__dlpack_device__", [](const fo::AlignedHostBuffer&) {
        return py::make_tuple(static_cast<int>(kDLCPU), 0);
      });
}

}  // namespace fastocclusion::bindings
