// The parts of fastocclusion._core, one registration function per concern (one file each).
// Binding code: included only by csrc/bindings/core_*.cpp.
#pragma once

#include <pybind11/pybind11.h>

namespace fastocclusion::bindings {

void register_geometry(pybind11::module_& m);     // core_geometry.cpp: WindowGrid
void register_host_buffer(pybind11::module_& m);  // core_buffers.cpp: HostBuffer (+ DLPack)
void register_cpu_kernels(pybind11::module_& m);  // core_kernels.cpp: fills, maps, threads
// core_feature_windows.cpp: gather_windows, splice_windows (incremental inference)
void register_feature_windows(pybind11::module_& m);

}  // namespace fastocclusion::bindings
