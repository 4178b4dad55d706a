// Blending per-window values into maps with window-shaped weights (accumulate.hpp), on the
// CPU: a weighted scatter, window after window, so that every map element sums its covering
// windows in increasing window order (the order the CUDA gather uses).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/parallel.hpp"

namespace fastocclusion {
namespace {

bool collapsed(std::uint32_t mask, int axis) { return ((mask >> axis) & 1U) != 0; }

// The map axes of a grid: per axis its length in the map (1 when collapsed) and the strides
// of the map and of the importance (row-major over the map lengths and the window lengths).
struct MapAxes {
  int rank = 0;
  std::int64_t map_step[kMaxAxes] = {};
  std::int64_t importance_step[kMaxAxes] = {};
  bool collapsed[kMaxAxes] = {};
};

MapAxes map_axes(const WindowGrid& grid, std::uint32_t mask) {
  MapAxes m;
  m.rank = grid.rank;
  std::int64_t map = 1, importance = 1;
  for (int d = grid.rank - 1; d >= 0; --d) {
    m.collapsed[d] = collapsed(mask, d);
    m.map_step[d] = map;
    m.importance_step[d] = importance;
    if (!m.collapsed[d]) {
      map *= grid.axes[d].length;
      importance *= grid.axes[d].window;
    }
  }
  return m;
}

// Calls fn(map_offset, importance_offset, length) for the rows of window k's box in the map
// (the last axis's elements are contiguous in both; a collapsed axis contributes index 0),
// in increasing map offset order.
template <typename Fn>
void for_each_window_row(const WindowGrid& grid, const MapAxes& m, std::int64_t k, Fn&& fn) {
  const Box box = grid.window_box(k);
  std::int64_t extent[kMaxAxes], index[kMaxAxes] = {};
  std::int64_t map_offset = 0;
  for (int d = 0; d < m.rank; ++d) {
    extent[d] = m.collapsed[d] ? 1 : box.end[d] - box.begin[d];
    if (!m.collapsed[d]) map_offset += box.begin[d] * m.map_step[d];
  }
  const int last = m.rank - 1;
  std::int64_t importance_offset = 0;
  for (;;) {
    fn(map_offset, importance_offset, extent[last]);
    int d = last - 1;
    for (; d >= 0; --d) {  // odometer over the outer axes, innermost first
      map_offset += m.map_step[d];
      importance_offset += m.importance_step[d];
      if (++index[d] < extent[d]) break;
      map_offset -= m.map_step[d] * extent[d];
      importance_offset -= m.importance_step[d] * extent[d];
      index[d] = 0;
    }
    if (d < 0) return;
  }
}

std::vector<double>& scratch(std::size_t size) {
  thread_local std::vector<double> buffer;
  if (buffer.size() < size) buffer.resize(size);
  return buffer;
}

}  // namespace

void check_importance(const float* importance, std::int64_t size) {
  FASTOCCLUSION_EXPECTS(importance != nullptr || size == 0, "importance must not be null");
  for (std::int64_t i = 0; i < size; ++i) {
    FASTOCCLUSION_EXPECTS(std::isfinite(importance[i]) && importance[i] > 0.0f,
                          "importance: element " << i << " is " << importance[i]
                                                 << ", expected finite weights > 0");
  }
}

std::int64_t importance_size(const WindowGrid& grid, std::uint32_t collapsed_axes) {
  map_size(grid, collapsed_axes);  // checks the grid and the collapsed axes
  std::int64_t size = 1;
  for (int d = 0; d < grid.rank; ++d) {
    if (!collapsed(collapsed_axes, d)) size *= grid.axes[d].window;  // <= sample_size
  }
  return size;
}

void blend_window_values(const double* values, std::int64_t n, const WindowGrid& grid,
                         std::uint32_t collapsed_axes, const float* importance, float* maps) {
  FASTOCCLUSION_EXPECTS(n >= 1, "n=" << n << " is invalid, expected >= 1 input");
  FASTOCCLUSION_EXPECTS(values != nullptr && importance != nullptr && maps != nullptr,
                        "values, importance and maps must not be null");
  const std::int64_t size = map_size(grid, collapsed_axes);
  const std::int64_t windows = grid.num_windows();
  std::int64_t total = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(n, size, total) && checked_multiply(n, windows, total),
                        "maps: " << n << " maps of " << size << " values from " << windows
                                 << " windows each overflow int64");
  const std::int64_t weights_size = importance_size(grid, collapsed_axes);
  check_importance(importance, weights_size);
  const MapAxes m = map_axes(grid, collapsed_axes);
  // The weight sum of every map element, shared by the inputs.
  std::vector<double> weights(static_cast<std::size_t>(size), 0.0);
  for (std::int64_t k = 0; k < windows; ++k) {
    for_each_window_row(grid, m, k, [&](std::int64_t at, std::int64_t from, std::int64_t length) {
      for (std::int64_t i = 0; i < length; ++i) {
        weights[static_cast<std::size_t>(at + i)] += static_cast<double>(importance[from + i]);
      }
    });
  }
  std::int64_t work = 0;
  if (!checked_multiply(n * windows, weights_size, work)) work = total;  // saturate: large
  parallel_for(n, work, [&](std::int64_t begin, std::int64_t end) {
    double* sums = scratch(static_cast<std::size_t>(size)).data();
    for (std::int64_t input = begin; input < end; ++input) {
      std::fill_n(sums, size, 0.0);
      const double* value = values + input * windows;
      for (std::int64_t k = 0; k < windows; ++k) {
        const double v = value[k];
        for_each_window_row(grid, m, k,
                            [&](std::int64_t at, std::int64_t from, std::int64_t length) {
                              for (std::int64_t i = 0; i < length; ++i) {
                                sums[at + i] += static_cast<double>(importance[from + i]) * v;
                              }
                            });
      }
      float* map = maps + input * size;
      for (std::int64_t x = 0; x < size; ++x) {
        const double w = weights[static_cast<std::size_t>(x)];
        map[x] = w > 0.0 ? static_cast<float>(sums[x] / w) : 0.0f;
      }
    }
  });
}

}  // namespace fastocclusion
