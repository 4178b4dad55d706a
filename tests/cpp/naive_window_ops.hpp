// Independent oracles of the kernel features MONAI's occlusion sensitivity needs, as plain
// loops over naive::Grid (naive_reference.hpp): the "shift" anchors written as MONAI's
// dense_patch_slices writes them, the window means, the per_window and window_mask fills,
// and the weighted blend of per-window values. Nothing here calls fastocclusion.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "naive_reference.hpp"

namespace naive {

/// MONAI's sliding-window starts over a span of `end - begin` (dense_patch_slices with
/// scan interval s): the number of windows is one more than the first d with
/// d * s + w >= span, and start i is i * s moved back by max(i * s + w - span, 0).
/// Expects 1 <= w <= end - begin, s >= 1.
inline std::vector<Span> shift_spans(std::int64_t w, std::int64_t s, std::int64_t begin,
                                     std::int64_t end) {
  const std::int64_t span = end - begin;
  std::int64_t scan = 0;
  while (scan * s + w < span) ++scan;
  std::vector<Span> spans;
  for (std::int64_t i = 0; i <= scan; ++i) {
    std::int64_t start = i * s;
    start -= std::max<std::int64_t>(start + w - span, 0);
    spans.push_back({begin + start, w});
  }
  return spans;
}

/// Edge modes of one naive axis, mirroring fastocclusion::EdgeMode.
enum class Edges { valid, cover, shift };

/// The naive grid of per-axis modes over the regions [begins[d], ends[d]).
inline Grid make_mode_grid(const Shape& lengths, const Shape& windows, const Shape& strides,
                           const std::vector<Edges>& modes, const Shape& begins,
                           const Shape& ends) {
  Grid g;
  g.lengths = lengths;
  for (std::size_t d = 0; d < lengths.size(); ++d) {
    if (modes[d] == Edges::shift) {
      g.axes.push_back(shift_spans(windows[d], strides[d], begins[d], ends[d]));
    } else {
      g.axes.push_back(axis_spans(lengths[d], windows[d], strides[d], modes[d] == Edges::cover,
                                  begins[d], ends[d]));
    }
  }
  return g;
}

/// T (float or double) of the float64 mean of input i over window k's box, summed in
/// row-major order.
template <typename T>
T window_mean(const std::vector<T>& inputs, const Grid& grid, std::int64_t i, std::int64_t k) {
  const std::int64_t sample = volume(grid.lengths);
  double sum = 0.0;
  std::int64_t count = 0;
  grid.for_each_element(k, [&](std::int64_t e) {
    sum += static_cast<double>(inputs[static_cast<std::size_t>(i * sample + e)]);
    ++count;
  });
  return static_cast<T>(sum / static_cast<double>(count));
}

/// Baselines of the window features, mirroring fastocclusion::BaselineKind::per_window and
/// ::per_window_scale (values: n * K) and ::window_mask (values: the product of `windows`,
/// row-major).
enum class WindowBaseline { per_window, per_window_scale, window_mask };

/// Occluded samples as naive::fill, with a window baseline: slot j < count holds stream
/// index start + j*stride; the box of its window k gets values[n*K + k] (per_window),
/// input * values[n*K + k] (per_window_scale) or input * values[offset in the window]
/// (window_mask, `windows` the window lengths).
inline std::vector<float> fill_window_baseline(const std::vector<float>& inputs,
                                               const Grid& grid, const Shape& windows,
                                               WindowBaseline kind,
                                               const std::vector<float>& values,
                                               std::int64_t start, std::int64_t count,
                                               std::int64_t stride = 1) {
  const std::int64_t sample = volume(grid.lengths);
  const std::int64_t num = grid.num_windows();
  std::vector<float> out(static_cast<std::size_t>(count * sample));
  std::int64_t at[kMaxRank] = {}, offset[kMaxRank] = {};
  for (std::int64_t j = 0; j < count; ++j) {
    const std::int64_t s = start + j * stride;
    const std::int64_t n = s / num, k = s % num;
    const std::vector<Span> spans = grid.window(k);
    for (std::int64_t e = 0; e < sample; ++e) {
      const float input = inputs[static_cast<std::size_t>(n * sample + e)];
      float value = input;
      unravel(e, grid.lengths, at);
      if (Grid::inside(spans, at)) {
        if (kind == WindowBaseline::per_window) {
          value = values[static_cast<std::size_t>(n * num + k)];
        } else if (kind == WindowBaseline::per_window_scale) {
          value = input * values[static_cast<std::size_t>(n * num + k)];
        } else {
          for (std::size_t d = 0; d < spans.size(); ++d) offset[d] = at[d] - spans[d].anchor;
          value = input * values[static_cast<std::size_t>(ravel(offset, windows))];
        }
      }
      out[static_cast<std::size_t>(j * sample + e)] = value;
    }
  }
  return out;
}

/// The weighted blend: n maps over `map_lengths` (the sample shape with the collapsed axes
/// of length 1; `importance` row-major over `importance_shape`, the window lengths with 1
/// on the collapsed axes): at x, sum_k imp[x - anchor_k] * values[i*K + k] over the
/// windows covering x divided by sum_k imp[x - anchor_k], both in float64 in increasing k;
/// 0 where no window covers. A collapsed axis reads coordinate 0 (its one window covers it).
inline std::vector<float> blend(const std::vector<double>& values, std::int64_t n,
                                const Grid& grid, const Shape& map_lengths,
                                const Shape& importance_shape,
                                const std::vector<float>& importance) {
  const std::int64_t size = volume(map_lengths), num = grid.num_windows();
  std::vector<float> maps(static_cast<std::size_t>(n * size));
  std::int64_t at[kMaxRank] = {}, offset[kMaxRank] = {};
  for (std::int64_t e = 0; e < size; ++e) {
    unravel(e, map_lengths, at);
    for (std::int64_t i = 0; i < n; ++i) {
      double weights = 0.0, sum = 0.0;
      for (std::int64_t k = 0; k < num; ++k) {
        const std::vector<Span> spans = grid.window(k);
        if (!Grid::inside(spans, at)) continue;
        for (std::size_t d = 0; d < spans.size(); ++d) {
          offset[d] = importance_shape[d] == 1 ? 0 : at[d] - spans[d].anchor;
        }
        const double w = importance[static_cast<std::size_t>(ravel(offset, importance_shape))];
        weights += w;
        sum += w * values[static_cast<std::size_t>(i * num + k)];
      }
      maps[static_cast<std::size_t>(i * size + e)] =
          weights > 0.0 ? static_cast<float>(sum / weights) : 0.0f;
    }
  }
  return maps;
}

}  // namespace naive
