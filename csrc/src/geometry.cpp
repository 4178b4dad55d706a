#include "fastocclusion/geometry.hpp"

#include <cstring>
#include <limits>

#include "fastocclusion/errors.hpp"

namespace fastocclusion {

EdgeMode parse_edge_mode(const char* name) {
  FASTOCCLUSION_EXPECTS(name != nullptr, "edges: expected \"valid\" or \"cover\", got null");
  if (std::strcmp(name, "valid") == 0) return EdgeMode::valid;
  if (std::strcmp(name, "cover") == 0) return EdgeMode::cover;
  FASTOCCLUSION_EXPECTS(false, "edges=\"" << name << "\": expected \"valid\" or \"cover\"");
  return EdgeMode::valid;  // unreachable
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
  // ceil((L - p + 1) / s) with L - p + 1 >= 1: at least one anchor.
  axis.count = (length - patch + 1 + stride - 1) / stride;
  if (mode == EdgeMode::cover) {
    const std::int64_t last_end = axis.anchor(axis.count - 1) + patch;
    const std::int64_t next = axis.anchor(axis.count);
    if (last_end < length && next < length) axis.count += 1;
  }
  return axis;
}

PatchGrid make_patch_grid(std::int64_t height, std::int64_t width, std::int64_t patch_h,
                          std::int64_t patch_w, std::int64_t stride_h, std::int64_t stride_w,
                          EdgeMode mode) {
  PatchGrid grid;
  grid.rows = make_axis_geometry(height, patch_h, stride_h, mode, "axis 1 (height)");
  grid.cols = make_axis_geometry(width, patch_w, stride_w, mode, "axis 2 (width)");
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
