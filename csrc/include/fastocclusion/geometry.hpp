// Patch geometry: where the patches of an occlusion sweep lie (SPEC §2 and §5).
//
// Everything is expressed on a 4-D NHWC view of the inputs:
//   images      (N, H, W, C)  -> as is
//   time series (N, T, W)     -> (N, T, W, 1)
//   tabular     (N, W)        -> (N, 1, W, 1) with patch (1, p) and stride (1, s)
// so one code path serves 1-D and 2-D patches.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

namespace fastocclusion {

/// out = a * b for a, b >= 0; returns false (out untouched) when the product exceeds int64.
/// Every size product of the public API goes through this or an equivalent bound.
inline bool checked_multiply(std::int64_t a, std::int64_t b, std::int64_t& out) noexcept {
  if (a != 0 && b > std::numeric_limits<std::int64_t>::max() / a) return false;
  out = a * b;
  return true;
}

/// Which anchors an axis gets.
///  valid : anchors i*s for i = 0 .. ceil((L - p + 1) / s) - 1, patches fully inside (reference).
///  cover : the valid anchors plus, when the valid patches leave the far edge uncovered,
///          one more anchor at the next stride step if it starts inside the axis; that
///          patch is clipped to the axis (extent L - anchor < p).
enum class EdgeMode { valid, cover };

/// Parses "valid" / "cover", the whole view: "cover\0junk" is not "cover". Throws
/// user_error naming `edges` (the value escaped, so a NUL byte shows as \x00) otherwise.
EdgeMode parse_edge_mode(std::string_view name);
/// The same for a NUL-terminated name; also throws user_error when name is null.
EdgeMode parse_edge_mode(const char* name);

/// The anchors along one axis. Anchor i is i * stride, its extent min(patch, length - anchor).
/// For i < count (as make_axis_geometry builds it) anchor(i) <= length - 1: no overflow.
struct AxisGeometry {
  std::int64_t length = 0;
  std::int64_t patch = 0;
  std::int64_t stride = 0;
  std::int64_t count = 0;  ///< number of anchors, >= 1

  std::int64_t anchor(std::int64_t i) const noexcept { return i * stride; }
  std::int64_t extent(std::int64_t i) const noexcept {
    const std::int64_t rest = length - i * stride;
    return rest < patch ? rest : patch;
  }
};

/// Builds the anchors of one axis, for any int64 sizes (no intermediate overflows: a stride
/// past the axis gives count 1). Throws user_error (naming `axis_name`) when length < 1,
/// patch < 1, stride < 1 or patch > length. Never returns count == 0.
AxisGeometry make_axis_geometry(std::int64_t length, std::int64_t patch, std::int64_t stride,
                                EdgeMode mode, const char* axis_name = "axis");

/// The 2-D grid of patches over an (H, W) plane. Patch k is (k / cols.count, k % cols.count):
/// row-major, first axis outer, as SPEC §2 enumerates them. num_patches() does not overflow
/// for a grid from make_patch_grid; the kernels re-check hand-built grids.
struct PatchGrid {
  AxisGeometry rows;
  AxisGeometry cols;

  std::int64_t height() const noexcept { return rows.length; }
  std::int64_t width() const noexcept { return cols.length; }
  std::int64_t num_patches() const noexcept { return rows.count * cols.count; }
};

/// Builds the grid for an (height, width) plane. Throws user_error as make_axis_geometry,
/// naming "patch_size"/"patch_stride" and the axis, and when rows * cols (num_patches())
/// exceeds int64.
PatchGrid make_patch_grid(std::int64_t height, std::int64_t width, std::int64_t patch_h,
                          std::int64_t patch_w, std::int64_t stride_h, std::int64_t stride_w,
                          EdgeMode mode);

/// Sizes of an NHWC float32 tensor. All four must be >= 1.
struct InputShape {
  std::int64_t n = 0, h = 0, w = 0, c = 0;
  std::int64_t image_size() const noexcept { return h * w * c; }  ///< floats per input
};

/// Throws user_error (naming `name`) if any size is < 1 or n*h*w*c overflows int64.
void validate_shape(const InputShape& shape, const char* name = "inputs");

}  // namespace fastocclusion
