// Independent oracles for the C++ tests: the design's definitions written as plain loops.
//
// Nothing here calls fastocclusion: anchors are found by walking the axis, occluded samples
// are built element by element over N-d coordinates, and maps are built by scattering every
// window delta over the elements of its box. Slow on purpose; obviously correct is the point.
//
// naive::planar keeps the 2-D definitions of design §2 (a patch over H and W of an
// (N, H, W, C) input, all channels at once; maps (N, H, W)) written the old way, so that the
// N-d geometry can be checked to reproduce them for the families of design §7.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace naive {

/// One window position along an axis: first index and number of indices covered.
struct Span {
  std::int64_t anchor = 0;
  std::int64_t extent = 0;
  bool contains(std::int64_t i) const { return i >= anchor && i < anchor + extent; }
};

/// design §2 / §5: valid anchors are 0, s, 2s, ... while the window fits; "cover" adds one
/// clipped window at the next stride step when the far edge is left uncovered and that
/// step still starts inside the axis. Within a region of interest [begin, end) (end < 0:
/// the whole axis), the same from begin, the window fitting before end. Expects
/// 1 <= w <= end - begin, s >= 1.
inline std::vector<Span> axis_spans(std::int64_t length, std::int64_t w, std::int64_t s,
                                    bool cover, std::int64_t begin = 0, std::int64_t end = -1) {
  if (end < 0) end = length;
  std::vector<Span> spans;
  for (std::int64_t a = begin; a + w <= end; a += s) spans.push_back({a, w});
  if (cover) {
    const std::int64_t last = spans.back().anchor;
    const std::int64_t next = last + s;
    if (last + w < end && next < end) spans.push_back({next, std::min(w, end - next)});
  }
  return spans;
}

/// A sample shape: row-major axes (at most 8 here; the library takes 5).
using Shape = std::vector<std::int64_t>;
constexpr std::size_t kMaxRank = 8;

inline std::int64_t volume(const Shape& shape) {
  std::int64_t v = 1;
  for (std::int64_t d : shape) v *= d;
  return v;
}

/// Row-major index -> coordinates, into `at` (shape.size() entries).
inline void unravel(std::int64_t index, const Shape& shape, std::int64_t* at) {
  for (std::size_t d = shape.size(); d-- > 0;) {
    at[d] = index % shape[d];
    index /= shape[d];
  }
}

inline Shape unravel(std::int64_t index, const Shape& shape) {
  Shape at(shape.size());
  unravel(index, shape, at.data());
  return at;
}

/// Coordinates -> row-major index.
inline std::int64_t ravel(const std::int64_t* at, const Shape& shape) {
  std::int64_t index = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) index = index * shape[d] + at[d];
  return index;
}

/// The N-d grid: window k is the row-major k-th combination of the per-axis spans.
struct Grid {
  Shape lengths;
  std::vector<std::vector<Span>> axes;

  std::int64_t num_windows() const {
    std::int64_t k = 1;
    for (const auto& spans : axes) k *= static_cast<std::int64_t>(spans.size());
    return k;
  }
  /// The spans of window k, one per axis.
  std::vector<Span> window(std::int64_t k) const {
    std::vector<Span> spans(axes.size());
    for (std::size_t d = axes.size(); d-- > 0;) {
      const auto count = static_cast<std::int64_t>(axes[d].size());
      spans[d] = axes[d][static_cast<std::size_t>(k % count)];
      k /= count;
    }
    return spans;
  }
  bool covers(std::int64_t k, const Shape& at) const { return inside(window(k), at.data()); }
  static bool inside(const std::vector<Span>& spans, const std::int64_t* at) {
    for (std::size_t d = 0; d < spans.size(); ++d) {
      if (!spans[d].contains(at[d])) return false;
    }
    return true;
  }
  /// Calls fn(element index) for every element of window k's box, counting through the
  /// box's coordinates (last axis fastest).
  template <typename Fn>
  void for_each_element(std::int64_t k, Fn&& fn) const {
    const std::vector<Span> spans = window(k);
    const std::size_t rank = spans.size();
    std::int64_t at[kMaxRank] = {};
    for (std::size_t d = 0; d < rank; ++d) at[d] = spans[d].anchor;
    for (;;) {
      fn(ravel(at, lengths));
      std::size_t d = rank;
      while (d-- > 0) {
        if (++at[d] < spans[d].anchor + spans[d].extent) break;
        at[d] = spans[d].anchor;
      }
      if (d == static_cast<std::size_t>(-1)) return;  // every axis wrapped: done
    }
  }
};

/// begins/ends: the region of interest of every axis (empty: the whole sample).
inline Grid make_grid(const Shape& lengths, const Shape& windows, const Shape& strides,
                      const std::vector<bool>& cover, const Shape& begins = {},
                      const Shape& ends = {}) {
  Grid g;
  g.lengths = lengths;
  for (std::size_t d = 0; d < lengths.size(); ++d) {
    g.axes.push_back(axis_spans(lengths[d], windows[d], strides[d], cover[d],
                                begins.empty() ? 0 : begins[d], ends.empty() ? -1 : ends[d]));
  }
  return g;
}

/// Baseline layouts, mirroring fastocclusion::BaselineKind.
enum class BaselineLayout { scalar, per_sample, per_input };

/// Occluded samples: slot j < count holds stream index start + j*stride of the inputs
/// (each volume(grid.lengths) floats): input s / K with window s % K set to the baseline.
inline std::vector<float> fill(const std::vector<float>& inputs, const Grid& grid,
                               BaselineLayout layout, const std::vector<float>& baseline,
                               std::int64_t start, std::int64_t count, std::int64_t stride = 1) {
  const std::int64_t sample = volume(grid.lengths);
  const std::int64_t windows = grid.num_windows();
  std::vector<float> out(static_cast<std::size_t>(count * sample));
  std::int64_t at[kMaxRank] = {};
  for (std::int64_t j = 0; j < count; ++j) {
    const std::int64_t s = start + j * stride;
    const std::int64_t n = s / windows, k = s % windows;
    const std::vector<Span> spans = grid.window(k);
    for (std::int64_t e = 0; e < sample; ++e) {
      float value = inputs[static_cast<std::size_t>(n * sample + e)];
      unravel(e, grid.lengths, at);
      if (Grid::inside(spans, at)) {
        switch (layout) {
          case BaselineLayout::scalar: value = baseline[0]; break;
          case BaselineLayout::per_sample: value = baseline[static_cast<std::size_t>(e)]; break;
          case BaselineLayout::per_input:
            value = baseline[static_cast<std::size_t>(n * sample + e)];
            break;
        }
      }
      out[static_cast<std::size_t>(j * sample + e)] = value;
    }
  }
  return out;
}

/// Per-window scatter in double over the full sample shape: n maps, at every element the
/// sum (or the mean, 0 where no window covers) of the deltas of the windows covering it.
/// deltas: n * K, delta of window k of input i at i*K + k.
inline std::vector<double> accumulate(const std::vector<double>& deltas, std::int64_t n,
                                      const Grid& grid, bool mean) {
  const std::int64_t sample = volume(grid.lengths);
  const std::int64_t windows = grid.num_windows();
  std::vector<double> sums(static_cast<std::size_t>(n * sample), 0.0);
  std::vector<double> counts(static_cast<std::size_t>(sample), 0.0);
  for (std::int64_t k = 0; k < windows; ++k) {
    grid.for_each_element(k, [&](std::int64_t e) {
      counts[static_cast<std::size_t>(e)] += 1.0;
      for (std::int64_t i = 0; i < n; ++i) {
        sums[static_cast<std::size_t>(i * sample + e)] +=
            deltas[static_cast<std::size_t>(i * windows + k)];
      }
    });
  }
  if (mean) {
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t e = 0; e < sample; ++e) {
        const double c = counts[static_cast<std::size_t>(e)];
        double& v = sums[static_cast<std::size_t>(i * sample + e)];
        v = c > 0 ? v / c : 0.0;
      }
    }
  }
  return sums;
}

/// The map shape with the axes of `collapsed` (bit d: axis d) of length 1.
inline Shape collapsed_shape(const Shape& lengths, std::uint32_t collapsed) {
  Shape shape = lengths;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if ((collapsed >> d) & 1U) shape[d] = 1;
  }
  return shape;
}

/// n maps over `lengths` -> the same maps read at index 0 of the collapsed axes.
inline std::vector<double> collapse(const std::vector<double>& maps, std::int64_t n,
                                    const Shape& lengths, std::uint32_t collapsed) {
  const Shape small = collapsed_shape(lengths, collapsed);
  const std::int64_t full = volume(lengths), size = volume(small);
  std::vector<double> out(static_cast<std::size_t>(n * size));
  std::int64_t at[kMaxRank] = {};
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t e = 0; e < size; ++e) {
      unravel(e, small, at);  // index 0 along the collapsed axes
      out[static_cast<std::size_t>(i * size + e)] =
          maps[static_cast<std::size_t>(i * full + ravel(at, lengths))];
    }
  }
  return out;
}

// ---- the 2-D definitions of design §2 (patches over H and W of (N, H, W, C) inputs) --------
namespace planar {

/// Baselines of the 2-D API: one value, one per channel, one image, one image per input.
enum class Baseline { scalar, per_channel, per_image, per_input };

/// The 2-D grid: patch k is (rows[k / cols.size()], cols[k % cols.size()]).
struct Grid {
  std::vector<Span> rows;
  std::vector<Span> cols;
  std::int64_t num_patches() const { return static_cast<std::int64_t>(rows.size() * cols.size()); }
  Span row_of(std::int64_t k) const { return rows[static_cast<std::size_t>(k) / cols.size()]; }
  Span col_of(std::int64_t k) const { return cols[static_cast<std::size_t>(k) % cols.size()]; }
};

inline Grid make_grid(std::int64_t h, std::int64_t w, std::int64_t ph, std::int64_t pw,
                      std::int64_t sh, std::int64_t sw, bool cover) {
  return Grid{axis_spans(h, ph, sh, cover), axis_spans(w, pw, sw, cover)};
}

/// The baseline value for element (n, y, x, ch) of an (N, H, W, C) input.
inline float baseline_value(Baseline layout, const std::vector<float>& values, std::int64_t h,
                            std::int64_t w, std::int64_t c, std::int64_t n, std::int64_t y,
                            std::int64_t x, std::int64_t ch) {
  switch (layout) {
    case Baseline::scalar: return values[0];
    case Baseline::per_channel: return values[static_cast<std::size_t>(ch)];
    case Baseline::per_image: return values[static_cast<std::size_t>((y * w + x) * c + ch)];
    case Baseline::per_input:
      return values[static_cast<std::size_t>(((n * h + y) * w + x) * c + ch)];
  }
  return 0.0f;
}

/// Occluded (H, W, C) samples of the stream slice [start, start + count).
inline std::vector<float> fill(const std::vector<float>& inputs, std::int64_t h, std::int64_t w,
                               std::int64_t c, const Grid& grid, Baseline layout,
                               const std::vector<float>& baseline, std::int64_t start,
                               std::int64_t count) {
  std::vector<float> out(static_cast<std::size_t>(count * h * w * c));
  const std::int64_t k_total = grid.num_patches();
  for (std::int64_t j = 0; j < count; ++j) {
    const std::int64_t n = (start + j) / k_total, k = (start + j) % k_total;
    const Span rows = grid.row_of(k), cols = grid.col_of(k);
    for (std::int64_t y = 0; y < h; ++y) {
      for (std::int64_t x = 0; x < w; ++x) {
        const bool occluded = rows.contains(y) && cols.contains(x);
        for (std::int64_t ch = 0; ch < c; ++ch) {
          const auto src = static_cast<std::size_t>(((n * h + y) * w + x) * c + ch);
          const auto dst = static_cast<std::size_t>(((j * h + y) * w + x) * c + ch);
          out[dst] = occluded ? baseline_value(layout, baseline, h, w, c, n, y, x, ch) : inputs[src];
        }
      }
    }
  }
  return out;
}

/// n maps of h*w: sum (or mean) of the deltas (n * K, K = rows x cols) of covering patches.
inline std::vector<double> accumulate(const std::vector<double>& deltas, std::int64_t n,
                                      const Grid& grid, std::int64_t h, std::int64_t w,
                                      bool mean) {
  std::vector<double> sums(static_cast<std::size_t>(n * h * w), 0.0);
  std::vector<double> counts(static_cast<std::size_t>(h * w), 0.0);
  const std::int64_t k_total = grid.num_patches();
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t k = 0; k < k_total; ++k) {
      const Span rows = grid.row_of(k), cols = grid.col_of(k);
      const double d = deltas[static_cast<std::size_t>(i * k_total + k)];
      for (std::int64_t y = rows.anchor; y < rows.anchor + rows.extent; ++y) {
        for (std::int64_t x = cols.anchor; x < cols.anchor + cols.extent; ++x) {
          sums[static_cast<std::size_t>((i * h + y) * w + x)] += d;
          if (i == 0) counts[static_cast<std::size_t>(y * w + x)] += 1.0;
        }
      }
    }
  }
  if (mean) {
    for (std::int64_t i = 0; i < n; ++i) {
      for (std::int64_t p = 0; p < h * w; ++p) {
        const double cnt = counts[static_cast<std::size_t>(p)];
        double& v = sums[static_cast<std::size_t>(i * h * w + p)];
        v = cnt > 0 ? v / cnt : 0.0;
      }
    }
  }
  return sums;
}

}  // namespace planar
}  // namespace naive
