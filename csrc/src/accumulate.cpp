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
// for the mean), by a difference pass and a prefix sum along the axis, in float64 in `row`
// (length x inner doubles, reused for every o), then stored as Out (double for an
// intermediate axis, float for the last one).
template <typename Out>
void expand_axis(const double* in, Out* out, std::int64_t outer, std::int64_t inner,
                 const AxisGeometry& axis, const double* inv_cover, double* row) {
  const std::int64_t length = axis.length;
  const std::int64_t span = length * inner;
  for (std::int64_t o = 0; o < outer; ++o) {
    const double* src = in + o * axis.count * inner;
    std::fill_n(row, span, 0.0);
    for (std::int64_t w = 0; w < axis.count; ++w) {
      const std::int64_t begin = axis.anchor(w), end = begin + axis.extent(w);
      const double* value = src + w * inner;
      double* first = row + begin * inner;
      for (std::int64_t i = 0; i < inner; ++i) first[i] += value[i];
      if (end < length) {
        double* past = row + end * inner;
        for (std::int64_t i = 0; i < inner; ++i) past[i] -= value[i];
      }
    }
    Out* dst = out + o * span;
    if (inner == 1) {  // one running sum: the common last axis of a map
      double running = 0.0;
      for (std::int64_t x = 0; x < length; ++x) {
        running += row[x];
        dst[x] = static_cast<Out>(inv_cover != nullptr ? running * inv_cover[x] : running);
      }
      continue;
    }
    for (std::int64_t x = 1; x < length; ++x) {
      double* current = row + x * inner;
      const double* previous = current - inner;
      for (std::int64_t i = 0; i < inner; ++i) current[i] += previous[i];
    }
    for (std::int64_t x = 0; x < length; ++x) {
      const double* from = row + x * inner;
      Out* to = dst + x * inner;
      const double scale = inv_cover != nullptr ? inv_cover[x] : 1.0;
      for (std::int64_t i = 0; i < inner; ++i) to[i] = static_cast<Out>(from[i] * scale);
    }
  }
}

// Scratch of the calling thread, kept between calls: a fresh map-sized allocation costs its
// page faults on every call (worker threads are started per call: theirs go with them).
std::vector<double>& scratch(int which, std::size_t size) {
  thread_local std::vector<double> buffers[3];
  std::vector<double>& buffer = buffers[which];
  if (buffer.size() < size) buffer.resize(size);
  return buffer;
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
  std::int64_t total = 0, stream = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(n, size, total) && checked_multiply(n, windows, stream),
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
  // The axes to expand, in order; the last one writes the float map. Every intermediate
  // array (lengths of the axes done, counts of the others) is at most the map size, since
  // count <= length on every axis.
  int expanded[kMaxAxes];
  int steps = 0;
  for (int d = 0; d < grid.rank; ++d) {
    if (!collapsed(collapsed_axes, d)) expanded[steps++] = d;
  }
  std::int64_t longest_row = 1;  // length x inner of an expanded axis: <= the map size
  for (int step = 0; step < steps; ++step) {
    std::int64_t inner = 1;
    for (int e = expanded[step] + 1; e < grid.rank; ++e) inner *= grid.axes[e].count;
    longest_row = std::max(longest_row, grid.axes[expanded[step]].length * inner);
  }
  const auto map_values = static_cast<std::size_t>(size);
  parallel_for(n, total, [&](std::int64_t begin, std::int64_t end) {
    double* row = scratch(0, static_cast<std::size_t>(longest_row)).data();
    double* ping = steps > 1 ? scratch(1, map_values).data() : nullptr;
    double* pong = steps > 2 ? scratch(2, map_values).data() : nullptr;
    for (std::int64_t input = begin; input < end; ++input) {
      const double* src = deltas + input * windows;
      float* map = maps + input * size;
      if (steps == 0) {  // every axis collapsed: one window, its delta everywhere (size 1)
        map[0] = static_cast<float>(src[0]);
        continue;
      }
      std::int64_t dims[kMaxAxes];
      for (int d = 0; d < grid.rank; ++d) dims[d] = grid.axes[d].count;
      for (int step = 0; step < steps; ++step) {
        const int d = expanded[step];
        std::int64_t outer = 1, inner = 1;
        for (int e = 0; e < d; ++e) outer *= dims[e];
        for (int e = d + 1; e < grid.rank; ++e) inner *= dims[e];
        const double* inv = inv_cover[d].empty() ? nullptr : inv_cover[d].data();
        if (step + 1 == steps) {
          expand_axis(src, map, outer, inner, grid.axes[d], inv, row);
        } else {
          double* dst = step % 2 == 0 ? ping : pong;
          expand_axis(src, dst, outer, inner, grid.axes[d], inv, row);
          src = dst;
        }
        dims[d] = grid.axes[d].length;
      }
    }
  });
}

}  // namespace fastocclusion
