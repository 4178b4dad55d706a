// The parts of fastocclusion._cuda, one registration function per concern (one file each).
// Binding code: included only by csrc/bindings/cuda_*.cpp.
#pragma once

#include <pybind11/pybind11.h>

namespace fastocclusion::bindings {

void register_device_buffer(pybind11::module_& m);  // cuda_buffers.cpp: DeviceBuffer (+ DLPack)
void register_cuda_kernels(pybind11::module_& m);   // cuda_kernels.cpp: fills, maps, fill state
void register_cuda_feature_windows(pybind11::module_& m);  // cuda_feature_windows.cpp: gathers

}  // namespace fastocclusion::bindings
