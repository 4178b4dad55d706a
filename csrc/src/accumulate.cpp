#include "fastocclusion/accumulate.hpp"

#include <cstring>
#include <limits>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "fastocclusion/parallel.hpp"

namespace fastocclusion {
namespace {

// Number of patches covering each position of one axis, by a 1-D difference array.
std::vector<double> axis_coverage(const AxisGeometry& axis) {
  std::vector<double> diff(static_cast<std::size_t>(axis.length) + 1, 0.0);
  for (std::int64_t i = 0; i < axis.count; ++i) {
    diff[static_cast<std::size_t>(axis.anchor(i))] += 1.0;
    diff[static_cast<std::size_t>(axis.anchor(i) + axis.extent(i))] -= 1.0;
  }
  double running = 0.0;
  for (std::int64_t x = 0; x < axis.length; ++x) {
    running += diff[static_cast<std::size_t>(x)];
    diff[static_cast<std::size_t>(x)] = running;
  }
  diff.pop_back();
  return diff;
}

// One input: scatter the 4 corners of every patch into a (H+1) x (W+1) difference grid,
// then a 2-D inclusive prefix sum gives, at (y, x), the sum over covering patches.
void accumulate_one(const double* deltas, const PatchGrid& g, const double* inv_row,
                    const double* inv_col, bool mean, double* diff, float* map) {
  const std::int64_t h = g.height(), w = g.width(), stride = w + 1;
  std::memset(diff, 0, static_cast<std::size_t>((h + 1) * stride) * sizeof(double));
  for (std::int64_t i = 0; i < g.rows.count; ++i) {
    const std::int64_t r0 = g.rows.anchor(i), r1 = r0 + g.rows.extent(i);
    for (std::int64_t j = 0; j < g.cols.count; ++j) {
      const std::int64_t c0 = g.cols.anchor(j), c1 = c0 + g.cols.extent(j);
      const double d = deltas[i * g.cols.count + j];
      diff[r0 * stride + c0] += d;
      diff[r0 * stride + c1] -= d;
      diff[r1 * stride + c0] -= d;
      diff[r1 * stride + c1] += d;
    }
  }
  // 2-D inclusive prefix sum over the first h rows and w columns, in three simple loops so
  // that only the running sum along a row is serial: the add of the row above and the
  // float conversion (with the mean's scaling) vectorise.
  for (std::int64_t y = 0; y < h; ++y) {
    double* row = diff + y * stride;
    double running = 0.0;
    for (std::int64_t x = 0; x < w; ++x) {
      running += row[x];
      row[x] = running;
    }
    if (y > 0) {
      const double* above = row - stride;
      for (std::int64_t x = 0; x < w; ++x) row[x] += above[x];
    }
    float* out = map + y * w;
    if (mean) {
      const double scale = inv_row[y];
      for (std::int64_t x = 0; x < w; ++x) out[x] = static_cast<float>(row[x] * scale * inv_col[x]);
    } else {
      for (std::int64_t x = 0; x < w; ++x) out[x] = static_cast<float>(row[x]);
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

Reduction parse_reduction(const char* name) {
  FASTOCCLUSION_EXPECTS(name != nullptr, "reduction: expected \"sum\" or \"mean\", got null");
  return parse_reduction(std::string_view(name));
}

void accumulate_patch_deltas(const double* deltas, std::int64_t n, const PatchGrid& grid,
                             Reduction reduction, float* maps) {
  FASTOCCLUSION_EXPECTS(n >= 1, "n=" << n << " is invalid, expected >= 1 input");
  FASTOCCLUSION_EXPECTS(deltas != nullptr && maps != nullptr,
                        "deltas and maps must not be null");
  FASTOCCLUSION_ASSERT(grid.rows.count >= 1 && grid.cols.count >= 1, "empty patch grid");
  // Every size product below, checked once here (a grid may be built by hand).
  std::int64_t patches = 0, plane = 0, values = 0, deltas_count = 0, diff_count = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(grid.rows.count, grid.cols.count, patches) &&
                            checked_multiply(n, patches, deltas_count),
                        "deltas: n=" << n << " inputs of " << grid.rows.count << " x "
                                     << grid.cols.count << " patches overflow int64");
  constexpr std::int64_t max_doubles = std::numeric_limits<std::int64_t>::max() / 8;
  FASTOCCLUSION_EXPECTS(grid.height() < max_doubles && grid.width() < max_doubles &&
                            checked_multiply(grid.height(), grid.width(), plane) &&
                            checked_multiply(n, plane, values) &&
                            checked_multiply(grid.height() + 1, grid.width() + 1, diff_count) &&
                            diff_count <= max_doubles,
                        "maps: n=" << n << " maps of (" << grid.height() << ", " << grid.width()
                                   << ") are too large");
  const bool mean = reduction == Reduction::mean;
  // Mean: coverage is separable, count(y, x) = rows(y) * cols(x); store reciprocals, 0 where
  // no patch covers so the map is 0 there.
  std::vector<double> inv_row, inv_col;
  if (mean) {
    inv_row = axis_coverage(grid.rows);
    inv_col = axis_coverage(grid.cols);
    for (double& v : inv_row) v = v > 0 ? 1.0 / v : 0.0;
    for (double& v : inv_col) v = v > 0 ? 1.0 / v : 0.0;
  }
  const auto diff_size = static_cast<std::size_t>(diff_count);
  // The scratch is allocated per chunk, inside fn: a std::bad_alloc there reaches the caller
  // through parallel_for (Python: MemoryError).
  parallel_for(n, values, [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> diff(diff_size);
    for (std::int64_t i = begin; i < end; ++i) {
      accumulate_one(deltas + i * patches, grid, inv_row.data(), inv_col.data(), mean,
                     diff.data(), maps + i * plane);
    }
  });
}

}  // namespace fastocclusion
