// Independent oracles for the C++ tests: the SPEC's definitions written as plain loops.
//
// Nothing here calls fastocclusion: anchors are found by walking the axis, occluded
// samples are built element by element, and maps are built by scattering every patch
// delta over its pixels. Slow on purpose; obviously correct is the point.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace naive {

/// One patch position along an axis: first index and number of indices covered.
struct Span {
  std::int64_t anchor = 0;
  std::int64_t extent = 0;
};

/// SPEC §2 / §5: valid anchors are 0, s, 2s, ... while the patch fits; "cover" adds one
/// clipped patch at the next stride step when the far edge is left uncovered and that
/// step still starts inside the axis. Expects 1 <= p <= length, s >= 1.
inline std::vector<Span> axis_spans(std::int64_t length, std::int64_t p, std::int64_t s,
                                    bool cover) {
  std::vector<Span> spans;
  for (std::int64_t a = 0; a + p <= length; a += s) spans.push_back({a, p});
  if (cover) {
    const std::int64_t last = spans.back().anchor;
    const std::int64_t next = last + s;
    if (last + p < length && next < length) {
      spans.push_back({next, std::min(p, length - next)});
    }
  }
  return spans;
}

/// The 2-D grid: patch k is (rows[k / cols.size()], cols[k % cols.size()]).
struct Grid {
  std::vector<Span> rows;
  std::vector<Span> cols;
  std::int64_t num_patches() const {
    return static_cast<std::int64_t>(rows.size() * cols.size());
  }
  Span row_of(std::int64_t k) const {
    return rows[static_cast<std::size_t>(k) / cols.size()];
  }
  Span col_of(std::int64_t k) const {
    return cols[static_cast<std::size_t>(k) % cols.size()];
  }
};

inline Grid make_grid(std::int64_t h, std::int64_t w, std::int64_t ph, std::int64_t pw,
                      std::int64_t sh, std::int64_t sw, bool cover) {
  return Grid{axis_spans(h, ph, sh, cover), axis_spans(w, pw, sw, cover)};
}

inline bool inside(const Span& span, std::int64_t i) {
  return i >= span.anchor && i < span.anchor + span.extent;
}

/// Baseline layouts, mirroring fastocclusion::BaselineKind.
enum class BaselineLayout { scalar, per_channel, per_image, per_input };

/// The baseline value for element (n, y, x, c) of an (N, H, W, C) input.
inline float baseline_value(BaselineLayout layout, const std::vector<float>& values,
                            std::int64_t h, std::int64_t w, std::int64_t c, std::int64_t n,
                            std::int64_t y, std::int64_t x, std::int64_t ch) {
  switch (layout) {
    case BaselineLayout::scalar:
      return values[0];
    case BaselineLayout::per_channel:
      return values[static_cast<std::size_t>(ch)];
    case BaselineLayout::per_image:
      return values[static_cast<std::size_t>((y * w + x) * c + ch)];
    case BaselineLayout::per_input:
      return values[static_cast<std::size_t>(((n * h + y) * w + x) * c + ch)];
  }
  return 0.0f;
}

/// Occluded samples of the stream slice [start, start + count): returns count*h*w*c floats.
inline std::vector<float> fill(const std::vector<float>& inputs, std::int64_t h, std::int64_t w,
                               std::int64_t c, const Grid& grid, BaselineLayout layout,
                               const std::vector<float>& baseline, std::int64_t start,
                               std::int64_t count) {
  std::vector<float> out(static_cast<std::size_t>(count * h * w * c));
  const std::int64_t k_total = grid.num_patches();
  for (std::int64_t j = 0; j < count; ++j) {
    const std::int64_t n = (start + j) / k_total;
    const std::int64_t k = (start + j) % k_total;
    const Span rows = grid.row_of(k), cols = grid.col_of(k);
    for (std::int64_t y = 0; y < h; ++y) {
      for (std::int64_t x = 0; x < w; ++x) {
        const bool occluded = inside(rows, y) && inside(cols, x);
        for (std::int64_t ch = 0; ch < c; ++ch) {
          const std::size_t src = static_cast<std::size_t>(((n * h + y) * w + x) * c + ch);
          const std::size_t dst = static_cast<std::size_t>(((j * h + y) * w + x) * c + ch);
          out[dst] = occluded ? baseline_value(layout, baseline, h, w, c, n, y, x, ch)
                              : inputs[src];
        }
      }
    }
  }
  return out;
}

/// Per-patch scatter in double: n maps of h*w, sum (or mean) of covering patches' deltas.
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

}  // namespace naive
