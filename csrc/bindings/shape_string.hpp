// Shapes as the error messages write them. Plain C++ (no Python): binding code
// (csrc/bindings/) and the C++ tests of dlpack_import.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fastocclusion::bindings {

/// "(2, 3)" / "(4,)" / "()".
inline std::string shape_string(const std::int64_t* dims, std::size_t rank) {
  std::string s = "(";
  for (std::size_t i = 0; i < rank; ++i) {
    s += std::to_string(dims[i]);
    if (rank == 1 || i + 1 < rank) s += rank == 1 ? "," : ", ";
  }
  return s + ")";
}

inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  return shape_string(shape.data(), shape.size());
}

}  // namespace fastocclusion::bindings
