#include "fastocclusion/geometry.hpp"

#include <limits>

#include "fastocclusion/errors.hpp"

namespace fastocclusion {

EdgeMode parse_edge_mode(std::string_view name) {
  if (name == "valid") return EdgeMode::valid;
  if (name == "cover") return EdgeMode::cover;
  FASTOCCLUSION_EXPECTS(false, "edges=" << detail::quote_for_message(name)
                                        << " is invalid, expected \"valid\" or \"cover\"");
  return EdgeMode::valid;  // unreachable
}

EdgeMode parse_edge_mode(const char* name) {
  FASTOCCLUSION_EXPECTS(name != nullptr, "edges: expected \"valid\" or \"cover\", got null");
  return parse_edge_mode(std::string_view(name));
}

AxisGeometry make_axis_geometry(std::int64_t length, std::int64_t patch, std::int64_t stride,
                                EdgeMode mode, const char* axis_name) {
  FASTOCCLUSION_EXPECTS(length >= 1, axis_name << ": input length " << length
                                               << " is invalid, expected >= 1");
  FASTOCCLUSION_EXPECTS(patch >= 1, "patch_size=" << patch << " along " << axis_name
                                                  << " is invalid, expected >= 1");
  FASTOCCLUSION_EXPECTS(stride >= 1, "patch_stride=" << stride << " along " << axis_name
                                                     << " is invalid, expected >= 1");
  FASTOCCLUSION_EXPECTS(patch <= length, "patch_size=" << patch << " along " << axis_name
                                                       << " is larger than the input ("
                                                       << length << "), expected <= "
                                                       << length);
  AxisGeometry axis;
  axis.length = length;
  axis.patch = patch;
  axis.stride = stride;
  // ceil((L - p + 1) / s) = (L - p) / s + 1 for L - p >= 0, without the overflow of
  // L - p + s: at least one anchor, the last at most L - p.
  axis.count = (length - patch) / stride + 1;
  if (mode == EdgeMode::cover) {
    // One more anchor, last + s, when the last patch ends before L and last + s < L,
    // i.e. s < L - last (no overflow: last + p <= L, and last + s is never formed).
    const std::int64_t last = axis.anchor(axis.count - 1);
    if (last + patch < length && stride < length - last) axis.count += 1;
  }
  return axis;
}

PatchGrid make_patch_grid(std::int64_t height, std::int64_t width, std::int64_t patch_h,
                          std::int64_t patch_w, std::int64_t stride_h, std::int64_t stride_w,
                          EdgeMode mode) {
  PatchGrid grid;
  grid.rows = make_axis_geometry(height, patch_h, stride_h, mode, "axis 1 (height)");
  grid.cols = make_axis_geometry(width, patch_w, stride_w, mode, "axis 2 (width)");
  std::int64_t patches = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(grid.rows.count, grid.cols.count, patches),
                        "patch_stride=(" << stride_h << ", " << stride_w << ") with patch_size=("
                                         << patch_h << ", " << patch_w << ") over a (" << height
                                         << ", " << width << ") plane gives " << grid.rows.count
                                         << " x " << grid.cols.count
                                         << " patches, more than int64 can count");
  return grid;
}

void validate_shape(const InputShape& s, const char* name) {
  FASTOCCLUSION_EXPECTS(s.n >= 1 && s.h >= 1 && s.w >= 1 && s.c >= 1,
                        name << ": shape (" << s.n << ", " << s.h << ", " << s.w << ", " << s.c
                             << ") is invalid, expected every size >= 1");
  constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max() / 8;
  FASTOCCLUSION_EXPECTS(s.h <= max / s.w && s.h * s.w <= max / s.c &&
                            s.image_size() <= max / s.n,
                        name << ": shape (" << s.n << ", " << s.h << ", " << s.w << ", " << s.c
                             << ") is too large");
}

}  // namespace fastocclusion
