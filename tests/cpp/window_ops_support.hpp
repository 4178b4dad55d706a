// Random cases for the tests of the MONAI kernel features (test_geometry_shift.cpp,
// test_window_ops.cpp, test_cuda_emulated_windows.cpp): window grids of rank 1..5 with
// per-axis edge modes ("valid", "cover", "shift"), regions of interest and full-window
// axes, built both by the library and as the independent naive grid.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fastocclusion/geometry.hpp"
#include "naive_window_ops.hpp"

namespace window_ops {

using Rng = std::mt19937_64;

inline std::int64_t uniform_int(Rng& rng, std::int64_t lo, std::int64_t hi) {
  return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
}

inline std::vector<float> random_floats(Rng& rng, std::int64_t size, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<std::size_t>(size));
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<double> random_doubles(Rng& rng, std::int64_t size, double lo, double hi) {
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<std::size_t>(size));
  for (double& x : v) x = dist(rng);
  return v;
}

inline fastocclusion::EdgeMode to_mode(naive::Edges e) {
  return e == naive::Edges::cover   ? fastocclusion::EdgeMode::cover
         : e == naive::Edges::shift ? fastocclusion::EdgeMode::shift
                                    : fastocclusion::EdgeMode::valid;
}

/// One grid: per-axis sizes, modes and regions; the library's and the naive one.
struct GridCase {
  naive::Shape lengths, windows, strides, begins, ends;
  std::vector<naive::Edges> modes;

  fastocclusion::WindowGrid grid() const {
    std::vector<fastocclusion::EdgeMode> m;
    for (naive::Edges e : modes) m.push_back(to_mode(e));
    return fastocclusion::make_window_grid(static_cast<int>(lengths.size()), lengths.data(),
                                           windows.data(), strides.data(), m.data(),
                                           begins.data(), ends.data());
  }
  naive::Grid naive_grid() const {
    return naive::make_mode_grid(lengths, windows, strides, modes, begins, ends);
  }
  std::int64_t sample() const { return naive::volume(lengths); }
  std::int64_t window_volume() const { return naive::volume(windows); }
  std::string describe() const {
    std::ostringstream os;
    os << "grid[";
    for (std::size_t d = 0; d < lengths.size(); ++d) {
      const char* mode = modes[d] == naive::Edges::shift   ? "shift"
                         : modes[d] == naive::Edges::cover ? "cover"
                                                           : "valid";
      os << (d ? " " : "") << lengths[d] << "[" << begins[d] << "," << ends[d] << ")/"
         << windows[d] << "/" << strides[d] << "/" << mode;
    }
    return os.str() + "] (length[region)/window/stride/edges)";
  }
};

/// Rank 1 + trial % 5, about `cap` elements; by trial / 5 % 4: general, full-window axes
/// (the kernels merge them), "shift" everywhere with MONAI's strides (<= the window), tiny
/// axes. One grid in three has a region of interest.
inline GridCase random_grid_case(Rng& rng, int trial, std::int64_t cap = 600) {
  const int rank = 1 + trial % 5;
  const int pick = trial / 5 % 4;
  const auto side = std::max<std::int64_t>(
      2, std::llround(std::pow(static_cast<double>(cap), 1.0 / rank)));
  GridCase c;
  const bool region = uniform_int(rng, 0, 2) == 0;
  for (int d = 0; d < rank; ++d) {
    const std::int64_t length = pick == 3 ? uniform_int(rng, 1, 3) : uniform_int(rng, 1, 2 * side);
    const bool full = pick == 1 && (d + 1 == rank || uniform_int(rng, 0, 1) == 1);
    std::int64_t begin = 0, end = length;
    if (region && !full) {
      begin = uniform_int(rng, 0, length - 1);
      end = uniform_int(rng, begin + 1, length);
    }
    const std::int64_t window = full ? length : uniform_int(rng, 1, end - begin);
    const std::int64_t stride =
        pick == 2 ? uniform_int(rng, 1, window) : uniform_int(rng, 1, window + 3);
    const int mode = pick == 2 ? 2 : static_cast<int>(uniform_int(rng, 0, 2));
    c.lengths.push_back(length);
    c.windows.push_back(window);
    c.strides.push_back(stride);
    c.begins.push_back(begin);
    c.ends.push_back(end);
    c.modes.push_back(mode == 2 ? naive::Edges::shift
                                : mode == 1 ? naive::Edges::cover : naive::Edges::valid);
  }
  return c;
}

/// A random subset of the axes that one window covers in full (bit d: axis d).
inline std::uint32_t random_collapse(Rng& rng, const fastocclusion::WindowGrid& grid) {
  std::uint32_t mask = 0;
  for (int d = 0; d < grid.rank; ++d) {
    if (grid.axes[d].single_full_window() && uniform_int(rng, 0, 1) == 1) mask |= 1U << d;
  }
  return mask;
}

/// The map lengths and the importance shape of a grid with collapsed axes.
inline naive::Shape map_lengths(const GridCase& c, std::uint32_t mask) {
  naive::Shape shape = c.lengths;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if ((mask >> d) & 1U) shape[d] = 1;
  }
  return shape;
}
inline naive::Shape importance_shape(const GridCase& c, std::uint32_t mask) {
  naive::Shape shape = c.windows;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if ((mask >> d) & 1U) shape[d] = 1;
  }
  return shape;
}

}  // namespace window_ops
