// fastocclusion._core: the CPU kernels for Python (window grids, host buffers, batch fills,
// maps). Thin by design: check dtype, rank, contiguity, alignment and sizes at the boundary,
// release the GIL, call the plain C++ functions of csrc/include/fastocclusion/.
// User errors (fastocclusion::user_error, a std::invalid_argument) reach Python as
// ValueError; std::bad_alloc as MemoryError.
#include "core_module.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "fastocclusion compiled core: window grids, occluded batch filling, map accumulation";
  fastocclusion::bindings::register_geometry(m);
  fastocclusion::bindings::register_host_buffer(m);
  fastocclusion::bindings::register_cpu_kernels(m);
  fastocclusion::bindings::register_feature_windows(m);
}
