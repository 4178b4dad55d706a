// Error types and the two error macros of fastocclusion.
//
// user_error       : the caller passed something invalid (sizes, ranges, shapes).
//                    Derives from std::invalid_argument, so pybind11 turns it into
//                    Python's ValueError.
// invariant_error  : an internal invariant broke (a bug in fastocclusion).
// cuda_error       : a CUDA runtime call failed (see cuda_errors.hpp).
//
// FASTOCCLUSION_EXPECTS(cond, msg) throws user_error when cond is false; msg is
// anything streamable into an std::ostream, e.g. "patch_h=" << ph << ", expected >= 1".
// FASTOCCLUSION_ASSERT(cond, msg) throws invariant_error. Neither aborts, and
// neither is compiled out by NDEBUG: argument checks are not asserts.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fastocclusion {

/// Invalid input from the caller. Python sees ValueError.
class user_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// A broken internal invariant: a bug in fastocclusion, never the caller's fault.
class invariant_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {
[[noreturn]] void throw_user_error(const std::string& message, const char* file, int line);
[[noreturn]] void throw_invariant_error(const std::string& message, const char* file, int line);

/// `value` in double quotes, fit for an error message: bytes outside printable ASCII (NUL
/// included, which would otherwise end the message where C strings are read) as \xNN,
/// quotes and backslashes escaped, cut after 64 bytes with "...".
std::string quote_for_message(std::string_view value);
}  // namespace detail

}  // namespace fastocclusion

#define FASTOCCLUSION_EXPECTS(cond, msg)                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::ostringstream fastocclusion_msg_;                                              \
      fastocclusion_msg_ << msg;                                                          \
      ::fastocclusion::detail::throw_user_error(fastocclusion_msg_.str(), __FILE__, __LINE__); \
    }                                                                                     \
  } while (0)

#define FASTOCCLUSION_ASSERT(cond, msg)                                                   \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::ostringstream fastocclusion_msg_;                                              \
      fastocclusion_msg_ << "internal error: " << msg << " (" #cond ")";                 \
      ::fastocclusion::detail::throw_invariant_error(fastocclusion_msg_.str(), __FILE__,  \
                                                     __LINE__);                           \
    }                                                                                     \
  } while (0)
