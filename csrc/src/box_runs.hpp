// The contiguous runs of a window's box in a row-major sample, shared by the CPU fill and
// the host side of the CUDA fill.
#pragma once

#include <cstdint>

#include "fastocclusion/geometry.hpp"

namespace fastocclusion {

/// A box seen as `rows` runs of `run` contiguous floats: run r starts at offset(r).
/// The innermost axes the box covers in full merge into the run, so an image window
/// (ph, pw, C) over (H, W, C) is ph runs of pw * C floats.
///
/// Offsets in the window: a box that starts at its window's anchor (a window box) maps its
/// elements to a window-shaped array (grid.axes[d].window per axis, row-major) too: run r
/// starts there at window_offset(r), and its elements are contiguous there as well (an axis
/// the box covers in full has window == length).
struct BoxRuns {
  int outer_rank = 0;                  ///< axes [0, outer_rank) are iterated
  std::int64_t run = 0;                ///< floats per run
  std::int64_t rows = 0;               ///< number of runs
  std::int64_t first = 0;              ///< offset of run 0
  std::int64_t extent[kMaxAxes] = {};  ///< box extent of the outer axes
  std::int64_t step[kMaxAxes] = {};    ///< sample stride (floats) of the outer axes
  std::int64_t window_step[kMaxAxes] = {};  ///< window-array stride of the outer axes

  /// Offset of run r, 0 <= r < rows (row-major over the outer extents).
  std::int64_t offset(std::int64_t r) const noexcept {
    std::int64_t at = first;
    for (int d = outer_rank - 1; d >= 0; --d) {
      at += (r % extent[d]) * step[d];
      r /= extent[d];
    }
    return at;
  }
};

/// The runs of `box` in a sample of `grid`'s shape.
inline BoxRuns box_runs(const WindowGrid& grid, const Box& box) noexcept {
  std::int64_t stride[kMaxAxes], window_stride[kMaxAxes];
  std::int64_t s = 1, w = 1;
  for (int d = grid.rank - 1; d >= 0; --d) {
    stride[d] = s;
    window_stride[d] = w;
    s *= grid.axes[d].length;
    w *= grid.axes[d].window;
  }
  int inner = grid.rank - 1;  // the innermost axis the box does not cover in full
  while (inner > 0 && box.begin[inner] == 0 && box.end[inner] == grid.axes[inner].length) {
    --inner;
  }
  BoxRuns runs;
  runs.outer_rank = inner;
  runs.run = (box.end[inner] - box.begin[inner]) * stride[inner];
  runs.first = box.begin[inner] * stride[inner];
  runs.rows = 1;
  for (int d = 0; d < inner; ++d) {
    runs.extent[d] = box.end[d] - box.begin[d];
    runs.step[d] = stride[d];
    runs.window_step[d] = window_stride[d];
    runs.first += box.begin[d] * stride[d];
    runs.rows *= runs.extent[d];
  }
  return runs;
}

/// Calls fn(offset, length, window_offset) for every run of `box`, in increasing offset
/// order (window_offset: see BoxRuns; meaningful for a window box).
template <typename Fn>
void for_each_run(const WindowGrid& grid, const Box& box, Fn&& fn) {
  const BoxRuns runs = box_runs(grid, box);
  std::int64_t index[kMaxAxes] = {};
  std::int64_t offset = runs.first;
  std::int64_t window_offset = 0;
  for (std::int64_t r = 0; r < runs.rows; ++r) {
    fn(offset, runs.run, window_offset);
    // odometer over the outer axes, innermost first
    for (int d = runs.outer_rank - 1; d >= 0; --d) {
      offset += runs.step[d];
      window_offset += runs.window_step[d];
      if (++index[d] < runs.extent[d]) break;
      offset -= runs.step[d] * runs.extent[d];
      window_offset -= runs.window_step[d] * runs.extent[d];
      index[d] = 0;
    }
  }
}

}  // namespace fastocclusion
