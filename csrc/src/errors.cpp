#include "fastocclusion/errors.hpp"

namespace fastocclusion::detail {

// User errors carry only the message: it names the argument, the value and what was
// expected, which is what a Python user needs; the C++ location would be noise.
void throw_user_error(const std::string& message, const char* /*file*/, int /*line*/) {
  throw user_error(message);
}

void throw_invariant_error(const std::string& message, const char* file, int line) {
  throw invariant_error(message + " at " + file + ":" + std::to_string(line));
}

}  // namespace fastocclusion::detail
