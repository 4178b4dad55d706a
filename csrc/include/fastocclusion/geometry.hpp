// Window geometry: where the occlusion windows of a sweep lie (design §2, §5, §7).
//
// One sample is a row-major array of `rank` axes (1 <= rank <= kMaxAxes; the batch axis is
// not one of them). A window slides over every axis with its own length, stride and edge
// mode; the windows are the Cartesian product of the per-axis anchors, enumerated in
// row-major order of their anchors (first axis outer). The design's families are special
// cases: images (H, W, C) take windows (ph, pw, C) with strides (sh, sw, C); time series
// (T, W) windows (pt, pw); tabular rows (W,) windows (pw,).
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

namespace fastocclusion {

/// The most axes of one sample (volumes with channels: D, H, W, C and one more).
inline constexpr int kMaxAxes = 5;

/// out = a * b for a, b >= 0; returns false (out untouched) when the product exceeds int64.
/// Every size product of the public API goes through this or an equivalent bound.
inline bool checked_multiply(std::int64_t a, std::int64_t b, std::int64_t& out) noexcept {
  if (a != 0 && b > std::numeric_limits<std::int64_t>::max() / a) return false;
  out = a * b;
  return true;
}

/// Which anchors an axis gets.
///  valid : anchors i*s for i = 0 .. ceil((L - w + 1) / s) - 1, windows fully inside (reference).
///  cover : the valid anchors plus, when the valid windows leave the far edge uncovered,
///          one more anchor at the next stride step if it starts inside the axis; that
///          window is clipped to the axis (extent L - anchor < w), as Captum does.
///  shift : the valid anchors plus, when the valid windows leave the far edge uncovered, one
///          more full window shifted back to end at the edge (anchor L - w), as MONAI's
///          sliding windows do: every position is covered, no window is clipped.
enum class EdgeMode { valid, cover, shift };

/// Parses "valid" / "cover" / "shift", the whole view: "cover\0junk" is not "cover".
/// Throws user_error naming `edges` (the value escaped, so a NUL byte shows as \x00)
/// otherwise.
EdgeMode parse_edge_mode(std::string_view name);

/// "valid" / "cover" / "shift".
const char* edge_mode_name(EdgeMode mode) noexcept;

/// The anchors along one axis of `length`, within its region of interest [begin, end) (the
/// whole axis by default): anchor i is begin + i * stride, except the last one, anchor
/// count - 1, which is `last` (begin + (count - 1) * stride for "valid" and "cover", the
/// shifted end - window for "shift"); the extent of window i is min(window, end - anchor).
/// Anchors strictly increase; for i < count (as make_axis_geometry builds it)
/// anchor(i) <= end - 1: no overflow. Positions outside the region are covered by no window.
struct AxisGeometry {
  std::int64_t length = 0;
  std::int64_t window = 0;
  std::int64_t stride = 0;
  std::int64_t count = 0;  ///< number of anchors, >= 1
  std::int64_t begin = 0;  ///< the region of interest: [begin, end), 0 <= begin < end <= length
  std::int64_t end = 0;
  std::int64_t last = 0;  ///< the anchor of window count - 1
  EdgeMode mode = EdgeMode::valid;  ///< how it was built (not part of the geometry: see ==)

  constexpr std::int64_t anchor(std::int64_t i) const noexcept {
    return i == count - 1 ? last : begin + i * stride;
  }
  /// True when the last anchor is not on the stride (a "shift" window that moved).
  constexpr bool shifted() const noexcept { return last != begin + (count - 1) * stride; }
  constexpr std::int64_t extent(std::int64_t i) const noexcept {
    const std::int64_t rest = end - anchor(i);
    return rest < window ? rest : window;
  }
  /// True when the axis has one window and it covers the whole axis.
  constexpr bool single_full_window() const noexcept {
    return count == 1 && window == length && begin == 0;
  }
  /// The same windows (the mode that made them aside: "cover" or "shift" that adds nothing
  /// is "valid").
  constexpr bool operator==(const AxisGeometry& o) const noexcept {
    return length == o.length && window == o.window && stride == o.stride && count == o.count &&
           begin == o.begin && end == o.end && last == o.last;
  }
};

/// Builds the anchors of one axis, for any int64 sizes (no intermediate overflow: a stride
/// past the region gives count 1), over its region [begin, end) (end < 0: the axis's
/// length). Throws user_error naming axis `axis` when length < 1, window < 1, stride < 1,
/// the region is not within [0, length) or is empty, or window > end - begin. Never
/// returns count == 0.
AxisGeometry make_axis_geometry(std::int64_t length, std::int64_t window, std::int64_t stride,
                                EdgeMode mode, int axis = 0, std::int64_t begin = 0,
                                std::int64_t end = -1);

/// Per-axis [begin, end) of one window (axes [0, rank) are meaningful).
struct Box {
  std::int64_t begin[kMaxAxes] = {};
  std::int64_t end[kMaxAxes] = {};
};

/// The windows over the axes of one sample. Built by make_window_grid, which guarantees
/// sample_size() and num_windows() fit int64.
struct WindowGrid {
  int rank = 0;
  AxisGeometry axes[kMaxAxes] = {};

  std::int64_t sample_size() const noexcept;  ///< product of the axis lengths
  std::int64_t num_windows() const noexcept;  ///< product of the axis counts
  /// The box of window k, 0 <= k < num_windows() (row-major over the counts).
  Box window_box(std::int64_t k) const noexcept;
  bool operator==(const WindowGrid& o) const noexcept;
  bool operator!=(const WindowGrid& o) const noexcept { return !(*this == o); }
};

/// Builds the grid of a sample of `rank` axes: lengths[d], windows[d], strides[d], modes[d]
/// for d < rank, and the region of interest [begins[d], ends[d]) of every axis (both null:
/// the whole sample). Throws user_error when rank is outside [1, kMaxAxes], for an axis as
/// make_axis_geometry does, or when the sample size or the number of windows exceeds int64.
WindowGrid make_window_grid(int rank, const std::int64_t* lengths, const std::int64_t* windows,
                            const std::int64_t* strides, const EdgeMode* modes,
                            const std::int64_t* begins = nullptr,
                            const std::int64_t* ends = nullptr);

/// Throws user_error unless `grid` could come from make_window_grid (kernels re-check
/// grids that reach them, since a caller may build one by hand).
void check_window_grid(const WindowGrid& grid);

}  // namespace fastocclusion
