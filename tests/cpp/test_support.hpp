// Shared helpers for the C++ tests: random cases, baseline setup and float comparisons.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <vector>

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

constexpr naive::BaselineLayout kAllLayouts[] = {
    naive::BaselineLayout::scalar, naive::BaselineLayout::per_channel,
    naive::BaselineLayout::per_image, naive::BaselineLayout::per_input};

inline fastocclusion::BaselineKind to_kind(naive::BaselineLayout layout) {
  switch (layout) {
    case naive::BaselineLayout::scalar:
      return fastocclusion::BaselineKind::scalar;
    case naive::BaselineLayout::per_channel:
      return fastocclusion::BaselineKind::per_channel;
    case naive::BaselineLayout::per_image:
      return fastocclusion::BaselineKind::per_image;
    case naive::BaselineLayout::per_input:
      return fastocclusion::BaselineKind::per_input;
  }
  return fastocclusion::BaselineKind::scalar;
}

inline const char* layout_name(naive::BaselineLayout layout) {
  switch (layout) {
    case naive::BaselineLayout::scalar:
      return "scalar";
    case naive::BaselineLayout::per_channel:
      return "per_channel";
    case naive::BaselineLayout::per_image:
      return "per_image";
    case naive::BaselineLayout::per_input:
      return "per_input";
  }
  return "?";
}

/// Baseline values sized for `layout` over an (n, h, w, c) input; values lie outside the
/// inputs' [-1, 1] range so an occluded element can never equal the input by chance.
inline std::vector<float> random_baseline(Rng& rng, naive::BaselineLayout layout,
                                          const fastocclusion::InputShape& s) {
  std::int64_t size = 1;
  switch (layout) {
    case naive::BaselineLayout::scalar:
      size = 1;
      break;
    case naive::BaselineLayout::per_channel:
      size = s.c;
      break;
    case naive::BaselineLayout::per_image:
      size = s.image_size();
      break;
    case naive::BaselineLayout::per_input:
      size = s.n * s.image_size();
      break;
  }
  return random_floats(rng, size, 2.0f, 3.0f);
}

/// One random occlusion problem: shape, geometry, baseline and inputs.
struct FillCase {
  fastocclusion::InputShape shape;
  std::int64_t ph = 1, pw = 1, sh = 1, sw = 1;
  bool cover = false;
  naive::BaselineLayout layout = naive::BaselineLayout::scalar;
  std::vector<float> inputs;
  std::vector<float> baseline;

  fastocclusion::PatchGrid grid() const {
    return fastocclusion::make_patch_grid(shape.h, shape.w, ph, pw, sh, sw,
                                          cover ? fastocclusion::EdgeMode::cover
                                                : fastocclusion::EdgeMode::valid);
  }
  naive::Grid naive_grid() const {
    return naive::make_grid(shape.h, shape.w, ph, pw, sh, sw, cover);
  }
  fastocclusion::Baseline core_baseline() const { return {to_kind(layout), baseline.data()}; }
  std::int64_t stream_size() const { return shape.n * naive_grid().num_patches(); }
  std::vector<float> expected(std::int64_t start, std::int64_t count) const {
    return naive::fill(inputs, shape.h, shape.w, shape.c, naive_grid(), layout, baseline, start,
                       count);
  }
  std::string describe() const {
    std::ostringstream os;
    os << "shape=(" << shape.n << "," << shape.h << "," << shape.w << "," << shape.c
       << ") patch=(" << ph << "," << pw << ") stride=(" << sh << "," << sw
       << ") edges=" << (cover ? "cover" : "valid") << " baseline=" << layout_name(layout);
    return os.str();
  }
};

inline FillCase make_case(Rng& rng, fastocclusion::InputShape shape, std::int64_t ph,
                          std::int64_t pw, std::int64_t sh, std::int64_t sw, bool cover,
                          naive::BaselineLayout layout) {
  FillCase fc;
  fc.shape = shape;
  fc.ph = ph;
  fc.pw = pw;
  fc.sh = sh;
  fc.sw = sw;
  fc.cover = cover;
  fc.layout = layout;
  fc.inputs = random_floats(rng, shape.n * shape.image_size());
  fc.baseline = random_baseline(rng, layout, shape);
  return fc;
}

/// A random small case: sizes up to 12, strides up to patch + 3 (gaps included).
inline FillCase random_case(Rng& rng, naive::BaselineLayout layout) {
  const std::int64_t channels[] = {1, 2, 3, 4, 16};
  fastocclusion::InputShape s{uniform_int(rng, 1, 3), uniform_int(rng, 1, 12),
                              uniform_int(rng, 1, 12), channels[uniform_int(rng, 0, 4)]};
  const std::int64_t ph = uniform_int(rng, 1, s.h), pw = uniform_int(rng, 1, s.w);
  return make_case(rng, s, ph, pw, uniform_int(rng, 1, ph + 3), uniform_int(rng, 1, pw + 3),
                   uniform_int(rng, 0, 1) == 1, layout);
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

}  // namespace test_support
