// A string option argument of the bindings (edges=, reduction=): only a Python str.
// Binding code: included only by csrc/bindings/*.cpp.
//
// pybind11's std::string caster also accepts bytes (b"valid"), and a const char* or
// .c_str() handed on ends the string at its first NUL ("cover\0junk" read as "cover").
// StrArg accepts str only (anything else, bytes included, fails the overload: TypeError
// listing the signature, where the argument shows as `str`) and keeps the whole UTF-8
// value, NUL bytes included, for the core's std::string_view parsers to reject.
#pragma once

#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

namespace fastocclusion::bindings {

struct StrArg {
  std::string value;  ///< UTF-8, full length
};

/// The UTF-8 value of a Python str, full length (NUL bytes included); ValueError naming
/// `name` for a str that cannot be encoded (a lone surrogate). `text` must be a str.
inline std::string utf8_value(pybind11::handle text, const char* name) {
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(text.ptr(), &size);
  if (data == nullptr) {
    PyErr_Clear();
    throw std::invalid_argument(std::string(name) +
                                ": a str that cannot be encoded as UTF-8 is invalid");
  }
  return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace fastocclusion::bindings

namespace pybind11::detail {

template <>
struct type_caster<fastocclusion::bindings::StrArg> {
  PYBIND11_TYPE_CASTER(fastocclusion::bindings::StrArg, const_name("str"));

  bool load(handle src, bool /*convert*/) {
    if (!src || !PyUnicode_Check(src.ptr())) return false;
    Py_ssize_t size = 0;
    const char* data = PyUnicode_AsUTF8AndSize(src.ptr(), &size);
    if (data == nullptr) {  // not encodable (a lone surrogate): not an option name either
      PyErr_Clear();
      return false;
    }
    value.value.assign(data, static_cast<std::size_t>(size));
    return true;
  }

  static handle cast(const fastocclusion::bindings::StrArg& s, return_value_policy /*policy*/,
                     handle /*parent*/) {
    return PyUnicode_DecodeUTF8(s.value.data(), static_cast<Py_ssize_t>(s.value.size()), nullptr);
  }
};

}  // namespace pybind11::detail
