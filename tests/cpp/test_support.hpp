// Shared helpers for the C++ tests: random N-d cases, baselines, grids and comparisons.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "fastocclusion/geometry.hpp"
#include "naive_reference.hpp"

namespace test_support {

using Rng = std::mt19937_64;

inline std::int64_t uniform_int(Rng& rng, std::int64_t lo, std::int64_t hi) {
  return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
}

inline std::vector<float> random_floats(Rng& rng, std::int64_t size, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<std::size_t>(size));
  for (float& x : v) x = dist(rng);
  return v;
}

inline std::vector<double> random_doubles(Rng& rng, std::int64_t size, double lo = -1.0,
                                          double hi = 1.0) {
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<double> v(static_cast<std::size_t>(size));
  for (double& x : v) x = dist(rng);
  return v;
}

/// A grid of the library from per-axis sizes and cover flags (true: "cover"), over the
/// regions of interest [begins[d], ends[d]) (empty: the whole sample).
inline fastocclusion::WindowGrid make_grid(const naive::Shape& lengths, const naive::Shape& windows,
                                           const naive::Shape& strides,
                                           const std::vector<bool>& cover,
                                           const naive::Shape& begins = {},
                                           const naive::Shape& ends = {}) {
  fastocclusion::EdgeMode modes[fastocclusion::kMaxAxes] = {};
  for (std::size_t d = 0; d < lengths.size() && d < cover.size(); ++d) {
    if (d < static_cast<std::size_t>(fastocclusion::kMaxAxes)) {
      modes[d] = cover[d] ? fastocclusion::EdgeMode::cover : fastocclusion::EdgeMode::valid;
    }
  }
  return fastocclusion::make_window_grid(static_cast<int>(lengths.size()), lengths.data(),
                                         windows.data(), strides.data(), modes,
                                         begins.empty() ? nullptr : begins.data(),
                                         ends.empty() ? nullptr : ends.data());
}

/// The same cover flag on every axis.
inline std::vector<bool> all_axes(std::size_t rank, bool cover) {
  return std::vector<bool>(rank, cover);
}

/// The message of the user_error thrown by `fn`, failing the test if none is thrown.
template <class Fn>
std::string user_error_message(Fn&& fn) {
  try {
    fn();
  } catch (const fastocclusion::user_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a fastocclusion::user_error";
  return {};
}

constexpr naive::BaselineLayout kAllLayouts[] = {naive::BaselineLayout::scalar,
                                                 naive::BaselineLayout::per_sample,
                                                 naive::BaselineLayout::per_input};

inline fastocclusion::BaselineKind to_kind(naive::BaselineLayout layout) {
  switch (layout) {
    case naive::BaselineLayout::scalar: return fastocclusion::BaselineKind::scalar;
    case naive::BaselineLayout::per_sample: return fastocclusion::BaselineKind::per_sample;
    case naive::BaselineLayout::per_input: return fastocclusion::BaselineKind::per_input;
  }
  return fastocclusion::BaselineKind::scalar;
}

inline const char* layout_name(naive::BaselineLayout layout) {
  switch (layout) {
    case naive::BaselineLayout::scalar: return "scalar";
    case naive::BaselineLayout::per_sample: return "per_sample";
    case naive::BaselineLayout::per_input: return "per_input";
  }
  return "?";
}

inline std::string shape_string(const naive::Shape& v) {
  std::ostringstream os;
  os << "(";
  for (std::size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  os << ")";
  return os.str();
}

/// One occlusion problem: n inputs of a sample shape, windows, strides, edges, baseline.
struct FillCase {
  std::int64_t n = 1;
  naive::Shape lengths, windows, strides;
  std::vector<bool> cover;
  naive::Shape begins, ends;  ///< regions of interest (empty: the whole sample)
  naive::BaselineLayout layout = naive::BaselineLayout::scalar;
  std::vector<float> inputs;
  std::vector<float> baseline;

  int rank() const { return static_cast<int>(lengths.size()); }
  std::int64_t sample() const { return naive::volume(lengths); }
  fastocclusion::WindowGrid grid() const {
    return make_grid(lengths, windows, strides, cover, begins, ends);
  }
  naive::Grid naive_grid() const {
    return naive::make_grid(lengths, windows, strides, cover, begins, ends);
  }
  fastocclusion::Baseline core_baseline() const { return {to_kind(layout), baseline.data()}; }
  std::int64_t stream_size() const { return n * naive_grid().num_windows(); }
  std::vector<float> expected(std::int64_t start, std::int64_t count,
                              std::int64_t stride = 1) const {
    return naive::fill(inputs, naive_grid(), layout, baseline, start, count, stride);
  }
  std::string describe() const {
    std::ostringstream os;
    os << "n=" << n << " shape=" << shape_string(lengths) << " window=" << shape_string(windows)
       << " stride=" << shape_string(strides) << " cover=";
    for (bool c : cover) os << (c ? "1" : "0");
    if (!begins.empty()) os << " region=" << shape_string(begins) << "-" << shape_string(ends);
    os << " baseline=" << layout_name(layout);
    return os.str();
  }
};

/// Baseline values sized for `layout`; they lie outside the inputs' [-1, 1] range so an
/// occluded element can never equal the input by chance.
inline std::vector<float> random_baseline(Rng& rng, naive::BaselineLayout layout,
                                          std::int64_t n, std::int64_t sample) {
  const std::int64_t size = layout == naive::BaselineLayout::scalar       ? 1
                            : layout == naive::BaselineLayout::per_sample ? sample
                                                                          : n * sample;
  return random_floats(rng, size, 2.0f, 3.0f);
}

inline FillCase make_case(Rng& rng, std::int64_t n, naive::Shape lengths, naive::Shape windows,
                          naive::Shape strides, std::vector<bool> cover,
                          naive::BaselineLayout layout) {
  FillCase fc;
  fc.n = n;
  fc.lengths = std::move(lengths);
  fc.windows = std::move(windows);
  fc.strides = std::move(strides);
  fc.cover = std::move(cover);
  fc.layout = layout;
  fc.inputs = random_floats(rng, n * fc.sample());
  fc.baseline = random_baseline(rng, layout, n, fc.sample());
  return fc;
}

/// An image case of design §7: n inputs (H, W, C), windows (ph, pw, C), strides (sh, sw, C).
inline FillCase image_case(Rng& rng, std::int64_t n, std::int64_t h, std::int64_t w,
                           std::int64_t c, std::int64_t ph, std::int64_t pw, std::int64_t sh,
                           std::int64_t sw, bool cover, naive::BaselineLayout layout) {
  return make_case(rng, n, {h, w, c}, {ph, pw, c}, {sh, sw, c}, {cover, cover, cover}, layout);
}

/// Random per-axis sizes of rank 1..5 (rank 0: drawn): at most ~600 values per sample,
/// strides up to window + 3 (gaps included), about one axis in five covered by one full
/// window (like channels, so that it can be collapsed), a random edge mode per axis.
struct RandomAxes {
  naive::Shape lengths, windows, strides;
  std::vector<bool> cover;
  std::uint32_t full_axes = 0;  ///< bit d: axis d has one window over the whole axis
  naive::Shape begins, ends;    ///< regions of interest (empty: the whole sample)
};

inline RandomAxes random_axes(Rng& rng, int rank = 0) {
  if (rank == 0) rank = static_cast<int>(uniform_int(rng, 1, fastocclusion::kMaxAxes));
  const std::int64_t max_length = rank <= 2 ? 12 : rank == 3 ? 8 : 5;
  RandomAxes a;
  // About one case in three restricts the windows to a region of interest (a random
  // sub-range of every axis that is not covered by one full window).
  const bool region = uniform_int(rng, 0, 2) == 0;
  for (int d = 0; d < rank; ++d) {
    const std::int64_t length = uniform_int(rng, 1, max_length);
    const bool full = uniform_int(rng, 0, 4) == 0;
    std::int64_t begin = 0, end = length;
    if (region && !full) {
      begin = uniform_int(rng, 0, length - 1);
      end = uniform_int(rng, begin + 1, length);
    }
    if (region) {
      a.begins.push_back(begin);
      a.ends.push_back(end);
    }
    const std::int64_t window = full ? length : uniform_int(rng, 1, end - begin);
    a.lengths.push_back(length);
    a.windows.push_back(window);
    a.strides.push_back(full ? uniform_int(rng, 1, length + 2) : uniform_int(rng, 1, window + 3));
    a.cover.push_back(uniform_int(rng, 0, 1) == 1);
    if (full) a.full_axes |= 1U << d;
  }
  return a;
}

/// A random small case of rank 1..5 (see random_axes), 1 to 3 inputs.
inline FillCase random_case(Rng& rng, naive::BaselineLayout layout, int rank = 0) {
  RandomAxes a = random_axes(rng, rank);
  FillCase fc =
      make_case(rng, uniform_int(rng, 1, 3), a.lengths, a.windows, a.strides, a.cover, layout);
  fc.begins = a.begins;
  fc.ends = a.ends;
  return fc;
}

/// Bitwise-equal float ranges (the fill only copies values), reporting the first mismatch.
inline ::testing::AssertionResult same_floats(const float* actual, const float* expected,
                                              std::int64_t size) {
  for (std::int64_t i = 0; i < size; ++i) {
    if (!(actual[i] == expected[i])) {
      return ::testing::AssertionFailure() << "first mismatch at element " << i << " of "
                                           << size << ": got " << actual[i] << ", expected "
                                           << expected[i];
    }
  }
  return ::testing::AssertionSuccess();
}

/// Float maps against the double oracle: a float rounding of it, within a relative
/// tolerance of a few float ulps and an absolute floor for values near zero.
inline ::testing::AssertionResult close_maps(const std::vector<float>& actual,
                                             const std::vector<double>& expected) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure() << "size " << actual.size() << ", expected "
                                         << expected.size();
  }
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double tol = 4e-7 * std::fabs(expected[i]) + 1e-9;
    if (!(std::fabs(static_cast<double>(actual[i]) - expected[i]) <= tol)) {
      return ::testing::AssertionFailure() << "element " << i << " of " << actual.size()
                                           << ": got " << actual[i] << ", expected "
                                           << expected[i];
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace test_support
