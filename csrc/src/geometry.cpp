#include "fastocclusion/geometry.hpp"

#include "fastocclusion/errors.hpp"

namespace fastocclusion {

EdgeMode parse_edge_mode(std::string_view name) {
  if (name == "valid") return EdgeMode::valid;
  if (name == "cover") return EdgeMode::cover;
  if (name == "shift") return EdgeMode::shift;
  FASTOCCLUSION_EXPECTS(false, "edges=" << detail::quote_for_message(name)
                                        << " is invalid, expected \"valid\", \"cover\" or "
                                           "\"shift\"");
  return EdgeMode::valid;  // unreachable
}

const char* edge_mode_name(EdgeMode mode) noexcept {
  switch (mode) {
    case EdgeMode::cover: return "cover";
    case EdgeMode::shift: return "shift";
    case EdgeMode::valid:
    default: return "valid";
  }
}

AxisGeometry make_axis_geometry(std::int64_t length, std::int64_t window, std::int64_t stride,
                                EdgeMode mode, int axis, std::int64_t begin, std::int64_t end) {
  FASTOCCLUSION_EXPECTS(length >= 1, "axis " << axis << ": length " << length
                                             << " is invalid, expected >= 1");
  if (end < 0) end = length;
  FASTOCCLUSION_EXPECTS(begin >= 0 && begin < end && end <= length,
                        "region [" << begin << ", " << end << ") along axis " << axis
                                   << " is invalid, expected 0 <= begin < end <= " << length);
  const std::int64_t span = end - begin;
  FASTOCCLUSION_EXPECTS(window >= 1, "window=" << window << " along axis " << axis
                                               << " is invalid, expected >= 1");
  FASTOCCLUSION_EXPECTS(stride >= 1, "stride=" << stride << " along axis " << axis
                                               << " is invalid, expected >= 1");
  FASTOCCLUSION_EXPECTS(window <= span, "window=" << window << " along axis " << axis
                                                  << " is larger than "
                                                  << (span == length ? "the axis (" : "its region (")
                                                  << span << "), expected <= " << span);
  AxisGeometry a;
  a.length = length;
  a.window = window;
  a.stride = stride;
  a.begin = begin;
  a.end = end;
  a.mode = mode;
  // ceil((S - w + 1) / s) = (S - w) / s + 1 for S - w >= 0 (S the region's span), without
  // the overflow of S - w + s: at least one anchor, the last at most end - w.
  a.count = (span - window) / stride + 1;
  if (mode == EdgeMode::cover) {
    // The last valid window ends at last + w <= S; the next anchor is last + s. Both are
    // compared as "S - last > w" and "S - last > s" so that nothing overflows.
    const std::int64_t last = (a.count - 1) * stride;  // <= S - w: no overflow
    const std::int64_t rest = span - last;             // >= w
    if (rest > window && rest > stride) a.count += 1;
  }
  a.last = begin + (a.count - 1) * stride;  // <= end - 1: no overflow
  if (mode == EdgeMode::shift && a.last != end - window) {
    // The last valid window ends before `end`: one more, ending at `end`. Its anchor
    // end - w lies past the last valid one (which is <= end - w) and differs from it.
    a.count += 1;
    a.last = end - window;
  }
  return a;
}

std::int64_t WindowGrid::sample_size() const noexcept {
  std::int64_t size = 1;
  for (int d = 0; d < rank; ++d) size *= axes[d].length;
  return size;
}

std::int64_t WindowGrid::num_windows() const noexcept {
  std::int64_t windows = 1;
  for (int d = 0; d < rank; ++d) windows *= axes[d].count;
  return windows;
}

Box WindowGrid::window_box(std::int64_t k) const noexcept {
  Box box;
  for (int d = rank - 1; d >= 0; --d) {
    const AxisGeometry& a = axes[d];
    const std::int64_t i = k % a.count;
    k /= a.count;
    box.begin[d] = a.anchor(i);
    box.end[d] = box.begin[d] + a.extent(i);
  }
  return box;
}

bool WindowGrid::operator==(const WindowGrid& o) const noexcept {
  if (rank != o.rank) return false;
  for (int d = 0; d < rank; ++d) {
    if (!(axes[d] == o.axes[d])) return false;
  }
  return true;
}

namespace {

void check_products(const WindowGrid& g) {
  std::int64_t size = 1, windows = 1;
  for (int d = 0; d < g.rank; ++d) {
    FASTOCCLUSION_EXPECTS(checked_multiply(size, g.axes[d].length, size),
                          "sample shape: the product of the axis lengths exceeds int64");
    FASTOCCLUSION_EXPECTS(checked_multiply(windows, g.axes[d].count, windows),
                          "window grid: the number of windows exceeds int64");
  }
}

}  // namespace

WindowGrid make_window_grid(int rank, const std::int64_t* lengths, const std::int64_t* windows,
                            const std::int64_t* strides, const EdgeMode* modes,
                            const std::int64_t* begins, const std::int64_t* ends) {
  FASTOCCLUSION_EXPECTS(rank >= 1 && rank <= kMaxAxes,
                        "sample rank " << rank << " is invalid, expected 1 to " << kMaxAxes
                                       << " axes (the batch axis excluded)");
  FASTOCCLUSION_EXPECTS(lengths != nullptr && windows != nullptr && strides != nullptr &&
                            modes != nullptr,
                        "lengths, windows, strides and modes must not be null");
  WindowGrid g;
  g.rank = rank;
  FASTOCCLUSION_EXPECTS((begins == nullptr) == (ends == nullptr),
                        "region: expected both begins and ends, or neither");
  for (int d = 0; d < rank; ++d) {
    g.axes[d] = make_axis_geometry(lengths[d], windows[d], strides[d], modes[d], d,
                                   begins != nullptr ? begins[d] : 0,
                                   ends != nullptr ? ends[d] : -1);
  }
  check_products(g);
  return g;
}

void check_window_grid(const WindowGrid& g) {
  FASTOCCLUSION_EXPECTS(g.rank >= 1 && g.rank <= kMaxAxes,
                        "window grid: rank " << g.rank << " is invalid, expected 1 to "
                                             << kMaxAxes);
  for (int d = 0; d < g.rank; ++d) {
    const AxisGeometry& a = g.axes[d];
    const bool sizes = a.length >= 1 && a.begin >= 0 && a.begin < a.end && a.end <= a.length &&
                       a.window >= 1 && a.window <= a.end - a.begin && a.stride >= 1 &&
                       a.count >= 1;
    const std::int64_t span = a.end - a.begin;
    // Anchors on the stride, the last inside the region (checked before the product: no
    // overflow); or the stride's anchors before a shifted last one at end - window.
    const bool on_stride = sizes && a.count <= (span - 1) / a.stride + 1 &&
                           a.last == a.begin + (a.count - 1) * a.stride;
    const bool shifted = sizes && a.count >= 2 && span > a.window &&
                         a.count - 2 <= (span - a.window - 1) / a.stride &&
                         a.last == a.end - a.window;
    FASTOCCLUSION_EXPECTS(on_stride || shifted,
                          "window grid: axis " << d << " (length " << a.length << ", region ["
                                               << a.begin << ", " << a.end << "), window "
                                               << a.window << ", stride " << a.stride
                                               << ", count " << a.count << ", last anchor "
                                               << a.last << ") is malformed");
  }
  check_products(g);
}

}  // namespace fastocclusion
