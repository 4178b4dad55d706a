#include "fastocclusion/accumulate.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "fastocclusion/parallel.hpp"

namespace fastocclusion {
namespace {

bool collapsed(std::uint32_t mask, int axis) { return ((mask >> axis) & 1U) != 0; }

// 1 / (number of windows covering x) along one axis, 0 where none covers.
std::vector<double> inverse_coverage(const AxisGeometry& axis) {
  std::vector<double> cover(static_cast<std::size_t>(axis.length) + 1, 0.0);
  for (std::int64_t i = 0; i < axis.count; ++i) {
    cover[static_cast<std::size_t>(axis.anchor(i))] += 1.0;
    cover[static_cast<std::size_t>(axis.anchor(i) + axis.extent(i))] -= 1.0;
  }
  double running = 0.0;
  for (std::int64_t x = 0; x < axis.length; ++x) {
    running += cover[static_cast<std::size_t>(x)];
    cover[static_cast<std::size_t>(x)] = running > 0.0 ? 1.0 / running : 0.0;
  }
  cover.pop_back();
  return cover;
}

// Axis d of `in` (outer x count x inner) becomes axis d of `out` (outer x length x inner):
// out[o, x, i] = sum over the windows covering x of in[o, w, i] (times the inverse coverage
// for the mean), by a difference pass and a prefix sum along the axis.
void expand_axis(const double* in, double* out, std::int64_t outer, std::int64_t inner,
                 const AxisGeometry& axis, const double* inv_cover) {
  const std::int64_t length = axis.length;
  std::fill_n(out, outer * length * inner, 0.0);
  for (std::int64_t o = 0; o < outer; ++o) {
    const double* src = in + o * axis.count * inner;
    double* dst = out + o * length * inner;
    for (std::int64_t w = 0; w < axis.count; ++w) {
      const std::int64_t begin = axis.anchor(w), end = begin + axis.extent(w);
      const double* value = src + w * inner;
      double* first = dst + begin * inner;
      for (std::int64_t i = 0; i < inner; ++i) first[i] += value[i];
      if (end < length) {
        double* past = dst + end * inner;
        for (std::int64_t i = 0; i < inner; ++i) past[i] -= value[i];
      }
    }
    for (std::int64_t x = 1; x < length; ++x) {
      double* row = dst + x * inner;
      const double* previous = row - inner;
      for (std::int64_t i = 0; i < inner; ++i) row[i] += previous[i];
    }
    if (inv_cover != nullptr) {
      for (std::int64_t x = 0; x < length; ++x) {
        double* row = dst + x * inner;
        for (std::int64_t i = 0; i < inner; ++i) row[i] *= inv_cover[x];
      }
    }
  }
}

}  // namespace

Reduction parse_reduction(std::string_view name) {
  if (name == "sum") return Reduction::sum;
  if (name == "mean") return Reduction::mean;
  FASTOCCLUSION_EXPECTS(false, "reduction=" << detail::quote_for_message(name)
                                            << " is invalid, expected \"sum\" or \"mean\"");
  return Reduction::sum;  // unreachable
}

std::int64_t map_size(const WindowGrid& grid, std::uint32_t collapsed_axes) {
  check_window_grid(grid);
  FASTOCCLUSION_EXPECTS((collapsed_axes >> grid.rank) == 0,
                        "collapsed_axes=" << collapsed_axes << " names axes past the sample's "
                                          << grid.rank);
  std::int64_t size = 1;
  for (int d = 0; d < grid.rank; ++d) {
    if (collapsed(collapsed_axes, d)) {
      FASTOCCLUSION_EXPECTS(grid.axes[d].single_full_window(),
                            "collapsed_axes: axis " << d << " has " << grid.axes[d].count
                                                    << " window(s) of " << grid.axes[d].window
                                                    << " over " << grid.axes[d].length
                                                    << ", expected one window covering it");
    } else {
      size *= grid.axes[d].length;  // within sample_size: no overflow
    }
  }
  return size;
}

void accumulate_window_deltas(const double* deltas, std::int64_t n, const WindowGrid& grid,
                              std::uint32_t collapsed_axes, Reduction reduction, float* maps) {
  FASTOCCLUSION_EXPECTS(n >= 1, "n=" << n << " is invalid, expected >= 1 input");
  FASTOCCLUSION_EXPECTS(deltas != nullptr && maps != nullptr,
                        "deltas and maps must not be null");
  const std::int64_t size = map_size(grid, collapsed_axes);
  const std::int64_t windows = grid.num_windows();
  std::int64_t total = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(n, size, total) && checked_multiply(n, windows, total),
                        "maps: " << n << " maps of " << size << " values from " << windows
                                 << " windows each overflow int64");
  // Per axis: its inverse coverage for the mean (nullptr: nothing to scale), and whether
  // the axis is expanded (a collapsed axis keeps its single window, count 1, as is).
  std::vector<double> inv_cover[kMaxAxes];
  for (int d = 0; d < grid.rank; ++d) {
    if (reduction == Reduction::mean && !collapsed(collapsed_axes, d)) {
      inv_cover[d] = inverse_coverage(grid.axes[d]);
    }
  }
  const int rank = grid.rank;
  // Scratch: every intermediate array (lengths of the axes done, counts of the others) is
  // at most the map size, since count <= length on every axis.
  parallel_for(n, n * size * std::max(1, rank), [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> a(static_cast<std::size_t>(std::max(size, windows)));
    std::vector<double> b(a.size());
    for (std::int64_t input = begin; input < end; ++input) {
      std::copy_n(deltas + input * windows, windows, a.data());
      std::int64_t dims[kMaxAxes];
      for (int d = 0; d < rank; ++d) dims[d] = grid.axes[d].count;
      for (int d = 0; d < rank; ++d) {
        if (collapsed(collapsed_axes, d)) continue;  // count 1 stays 1
        std::int64_t outer = 1, inner = 1;
        for (int e = 0; e < d; ++e) outer *= dims[e];
        for (int e = d + 1; e < rank; ++e) inner *= dims[e];
        expand_axis(a.data(), b.data(), outer, inner, grid.axes[d],
                    inv_cover[d].empty() ? nullptr : inv_cover[d].data());
        dims[d] = grid.axes[d].length;
        std::swap(a, b);
      }
      float* map = maps + input * size;
      for (std::int64_t i = 0; i < size; ++i) map[i] = static_cast<float>(a[static_cast<std::size_t>(i)]);
    }
  });
}

}  // namespace fastocclusion
