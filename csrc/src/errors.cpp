#include "fastocclusion/errors.hpp"

#include <cstddef>

namespace fastocclusion::detail {

// User errors carry only the message: it names the argument, the value and what was
// expected, which is what a Python user needs; the C++ location would be noise.
void throw_user_error(const std::string& message, const char* /*file*/, int /*line*/) {
  throw user_error(message);
}

void throw_invariant_error(const std::string& message, const char* file, int line) {
  throw invariant_error(message + " at " + file + ":" + std::to_string(line));
}

std::string quote_for_message(std::string_view value) {
  constexpr std::size_t kMaxShown = 64;
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < value.size() && i < kMaxShown; ++i) {
    const auto byte = static_cast<unsigned char>(value[i]);
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += static_cast<char>(byte);
    } else if (byte >= 0x20 && byte < 0x7f) {
      out += static_cast<char>(byte);
    } else {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    }
  }
  if (value.size() > kMaxShown) out += "...";
  return out + "\"";
}

}  // namespace fastocclusion::detail
