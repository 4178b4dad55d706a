// NumPy array checks shared by the kernel bindings (the value arrays of _core, the host
// index arrays of both modules). Binding code: included only by csrc/bindings/*.cpp.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fastocclusion/errors.hpp"

namespace fastocclusion::bindings {

namespace py = pybind11;

inline constexpr int kNpyAligned = 0x0100;  // NPY_ARRAY_ALIGNED

inline std::vector<std::int64_t> array_shape(const py::array& a) {
  return std::vector<std::int64_t>(a.shape(), a.shape() + a.ndim());
}

/// Checks that `a` is a C-contiguous, aligned array of T; `writable` too if asked.
/// ValueError naming `name` otherwise.
template <typename T>
void require_array(const py::array& a, const char* name, bool writable) {
  FASTOCCLUSION_EXPECTS(py::isinstance<py::array_t<T>>(a),
                        name << ": dtype " << std::string(py::str(a.dtype())) << " is invalid, expected "
                             << std::string(py::str(py::dtype::of<T>())));
  FASTOCCLUSION_EXPECTS((a.flags() & py::array::c_style) != 0,
                        name << ": expected a C-contiguous array");
  FASTOCCLUSION_EXPECTS((a.flags() & kNpyAligned) != 0, name << ": expected an aligned array");
  if (writable) FASTOCCLUSION_EXPECTS(a.writeable(), name << ": expected a writable array");
}

/// True when the memory of `a` and `b` overlaps (empty arrays never do).
inline bool overlaps(const py::array& a, const py::array& b) {
  const auto* a0 = static_cast<const char*>(a.data());
  const auto* b0 = static_cast<const char*>(b.data());
  return a.nbytes() > 0 && b.nbytes() > 0 && a0 < b0 + b.nbytes() && b0 < a0 + a.nbytes();
}

}  // namespace fastocclusion::bindings
