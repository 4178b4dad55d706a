// accumulate_patch_deltas against a naive per-patch scatter (SPEC §1, §4, §5).
#include "fastocclusion/accumulate.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "test_support.hpp"

namespace {

using fastocclusion::EdgeMode;
using fastocclusion::Reduction;
using fastocclusion::user_error;

struct AccumulateCase {
  std::int64_t n, h, w, ph, pw, sh, sw;
  bool cover;
};

std::vector<float> run(const AccumulateCase& c, const std::vector<double>& deltas,
                       Reduction reduction) {
  const auto grid = fastocclusion::make_patch_grid(c.h, c.w, c.ph, c.pw, c.sh, c.sw,
                                                   c.cover ? EdgeMode::cover : EdgeMode::valid);
  std::vector<float> maps(static_cast<std::size_t>(c.n * c.h * c.w), -1.0f);
  fastocclusion::accumulate_patch_deltas(deltas.data(), c.n, grid, reduction, maps.data());
  return maps;
}

// Compares maps with the double oracle: a float rounding of it, with a relative
// tolerance of a few float ulps and an absolute floor for values near zero.
void expect_close(const std::vector<float>& actual, const std::vector<double>& expected,
                  const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double tol = 4e-7 * std::fabs(expected[i]) + 1e-9;
    ASSERT_NEAR(actual[i], expected[i], tol) << what << " element " << i;
  }
}

TEST(Accumulate, RandomGridsMatchNaiveScatterForSumAndMean) {
  test_support::Rng rng(41);
  for (int trial = 0; trial < 200; ++trial) {
    AccumulateCase c{};
    c.n = test_support::uniform_int(rng, 1, 3);
    c.h = test_support::uniform_int(rng, 1, 20);
    c.w = test_support::uniform_int(rng, 1, 20);
    c.ph = test_support::uniform_int(rng, 1, c.h);
    c.pw = test_support::uniform_int(rng, 1, c.w);
    c.sh = test_support::uniform_int(rng, 1, c.ph + 3);
    c.sw = test_support::uniform_int(rng, 1, c.pw + 3);
    c.cover = trial % 2 == 1;
    const auto ngrid = naive::make_grid(c.h, c.w, c.ph, c.pw, c.sh, c.sw, c.cover);
    const auto deltas = test_support::random_doubles(rng, c.n * ngrid.num_patches());
    for (const bool mean : {false, true}) {
      const std::string what = "trial " + std::to_string(trial) + (mean ? " mean" : " sum");
      expect_close(run(c, deltas, mean ? Reduction::mean : Reduction::sum),
                   naive::accumulate(deltas, c.n, ngrid, c.h, c.w, mean), what);
    }
  }
}

TEST(Accumulate, ManyInputsTakeTheParallelPath) {
  test_support::Rng rng(42);
  const AccumulateCase c{6, 64, 48, 7, 5, 3, 2, true};
  const auto ngrid = naive::make_grid(c.h, c.w, c.ph, c.pw, c.sh, c.sw, c.cover);
  const auto deltas = test_support::random_doubles(rng, c.n * ngrid.num_patches());
  for (const bool mean : {false, true}) {
    expect_close(run(c, deltas, mean ? Reduction::mean : Reduction::sum),
                 naive::accumulate(deltas, c.n, ngrid, c.h, c.w, mean), "parallel");
  }
}

TEST(Accumulate, UncoveredPixelsAreExactlyZeroAndCoveredOnesAreNot) {
  // Rows: L=10, p=3, s=4 -> anchors 0, 4: rows 3, 7, 8, 9 uncovered ("valid" edges, gaps).
  const AccumulateCase c{2, 10, 10, 3, 3, 4, 4, false};
  const auto ngrid = naive::make_grid(c.h, c.w, c.ph, c.pw, c.sh, c.sw, false);
  ASSERT_EQ(ngrid.num_patches(), 4);
  const std::vector<double> deltas(8, 2.5);  // every patch delta positive
  for (const Reduction r : {Reduction::sum, Reduction::mean}) {
    const auto maps = run(c, deltas, r);
    for (std::int64_t i = 0; i < c.n; ++i) {
      for (std::int64_t y = 0; y < c.h; ++y) {
        for (std::int64_t x = 0; x < c.w; ++x) {
          const bool covered = (y % 4) < 3 && y < 7 && (x % 4) < 3 && x < 7;
          const float v = maps[static_cast<std::size_t>((i * c.h + y) * c.w + x)];
          if (covered) {
            EXPECT_EQ(v, 2.5f) << "y=" << y << " x=" << x;  // one patch covers each pixel
          } else {
            EXPECT_EQ(v, 0.0f) << "y=" << y << " x=" << x;
          }
        }
      }
    }
  }
}

TEST(Accumulate, MeanDividesBySeparableCoverageCount) {
  // Constant deltas: the mean is that constant wherever any patch covers.
  const AccumulateCase c{1, 13, 9, 4, 3, 1, 2, true};
  const auto ngrid = naive::make_grid(c.h, c.w, c.ph, c.pw, c.sh, c.sw, true);
  const std::vector<double> deltas(static_cast<std::size_t>(ngrid.num_patches()), -0.75);
  const auto mean = run(c, deltas, Reduction::mean);
  for (float v : mean) EXPECT_FLOAT_EQ(v, -0.75f);
  const auto sum = run(c, deltas, Reduction::sum);
  const auto counts = naive::accumulate(std::vector<double>(deltas.size(), 1.0), 1, ngrid,
                                        c.h, c.w, false);
  for (std::size_t i = 0; i < sum.size(); ++i) {
    EXPECT_FLOAT_EQ(sum[i], static_cast<float>(-0.75 * counts[i])) << i;
  }
}

// Sum over the patches covering (y, x), in long double with Kahan compensation.
long double pixel_sum_long_double(const std::vector<double>& deltas, const naive::Grid& g,
                                  std::int64_t y, std::int64_t x) {
  long double sum = 0.0L, carry = 0.0L;
  for (std::size_t i = 0; i < g.rows.size(); ++i) {
    if (!naive::inside(g.rows[i], y)) continue;
    for (std::size_t j = 0; j < g.cols.size(); ++j) {
      if (!naive::inside(g.cols[j], x)) continue;
      const long double term = deltas[i * g.cols.size() + j] - carry;
      const long double next = sum + term;
      carry = (next - sum) - term;
      sum = next;
    }
  }
  return sum;
}

float pixel_sum_float(const std::vector<double>& deltas, const naive::Grid& g, std::int64_t y,
                      std::int64_t x) {
  float sum = 0.0f;
  for (std::size_t i = 0; i < g.rows.size(); ++i) {
    if (!naive::inside(g.rows[i], y)) continue;
    for (std::size_t j = 0; j < g.cols.size(); ++j) {
      if (naive::inside(g.cols[j], x)) sum += static_cast<float>(deltas[i * g.cols.size() + j]);
    }
  }
  return sum;
}

TEST(Accumulate, TensOfThousandsOfPatchesKeepFloat32Precision) {
  // 256x256, patch 64, stride 1: 193^2 = 37249 patches, up to 4096 covering one pixel.
  // Deltas share a large offset, so a float32 running sum drifts by several ulps.
  const std::int64_t h = 256, w = 256, p = 64;
  const auto grid = fastocclusion::make_patch_grid(h, w, p, p, 1, 1, EdgeMode::valid);
  const auto ngrid = naive::make_grid(h, w, p, p, 1, 1, false);
  ASSERT_EQ(grid.num_patches(), 37249);
  test_support::Rng rng(43);
  std::vector<double> deltas = test_support::random_doubles(rng, grid.num_patches(), -1.0, 1.0);
  for (double& d : deltas) d += 1000.0;
  std::vector<float> map(static_cast<std::size_t>(h * w));
  fastocclusion::accumulate_patch_deltas(deltas.data(), 1, grid, Reduction::sum, map.data());

  std::vector<std::pair<std::int64_t, std::int64_t>> pixels = {
      {0, 0}, {0, w - 1}, {h - 1, 0}, {h - 1, w - 1}, {h / 2, w / 2}, {63, 63}, {64, 192}};
  for (int i = 0; i < 1500; ++i) {
    pixels.emplace_back(test_support::uniform_int(rng, 0, h - 1),
                        test_support::uniform_int(rng, 0, w - 1));
  }
  int float32_misses = 0;
  for (const auto& [y, x] : pixels) {
    const long double exact = pixel_sum_long_double(deltas, ngrid, y, x);
    const float expected = static_cast<float>(exact);
    const float ulp = std::nextafter(expected, std::numeric_limits<float>::infinity()) - expected;
    const float actual = map[static_cast<std::size_t>(y * w + x)];
    ASSERT_LE(std::fabs(actual - expected), ulp) << "y=" << y << " x=" << x;
    if (std::fabs(pixel_sum_float(deltas, ngrid, y, x) - expected) > ulp) ++float32_misses;
  }
  // The check above can fail: a float32 accumulation misses it at most sampled pixels.
  EXPECT_GT(float32_misses, static_cast<int>(pixels.size()) / 2);
}

TEST(AccumulateErrors, BadArgumentsThrowUserError) {
  const auto grid = fastocclusion::make_patch_grid(4, 4, 2, 2, 2, 2, EdgeMode::valid);
  std::vector<double> deltas(4, 1.0);
  std::vector<float> maps(16);
  try {
    fastocclusion::accumulate_patch_deltas(deltas.data(), 0, grid, Reduction::sum, maps.data());
    FAIL() << "no error for n=0";
  } catch (const user_error& e) {
    EXPECT_NE(std::string(e.what()).find("n=0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fastocclusion::accumulate_patch_deltas(nullptr, 1, grid, Reduction::sum,
                                                      maps.data()),
               std::invalid_argument);
  EXPECT_THROW(fastocclusion::accumulate_patch_deltas(deltas.data(), 1, grid, Reduction::mean,
                                                      nullptr),
               user_error);
}

TEST(ParseReduction, AcceptsExactlySumAndMean) {
  EXPECT_EQ(fastocclusion::parse_reduction("sum"), Reduction::sum);
  EXPECT_EQ(fastocclusion::parse_reduction("mean"), Reduction::mean);
  for (const char* bad : {"Sum", "", "max", "mean\n"}) {
    try {
      fastocclusion::parse_reduction(bad);
      ADD_FAILURE() << "no error for reduction " << bad;
    } catch (const user_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("reduction"), std::string::npos) << what;
      EXPECT_NE(what.find("\"mean\""), std::string::npos) << what;
    }
  }
  EXPECT_THROW(fastocclusion::parse_reduction(nullptr), std::invalid_argument);
}

TEST(ParseReduction, ReadsTheWholeStringNotUpToTheFirstNul) {
  using namespace std::string_view_literals;
  for (const std::string_view bad : {"sum\0junk"sv, "mean\0"sv, "\0sum"sv}) {
    try {
      fastocclusion::parse_reduction(bad);
      ADD_FAILURE() << "no error for a reduction with a NUL byte";
    } catch (const user_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("reduction="), std::string::npos) << what;
      EXPECT_NE(what.find("\\x00"), std::string::npos) << what;
    }
  }
  EXPECT_EQ(fastocclusion::parse_reduction(std::string("mean")), Reduction::mean);
}

// Sizes past int64 are user errors before anything is read or written (a grid's patch
// count fits int64, n times it need not; nor need n * H * W or the (H+1)*(W+1) scratch).
TEST(AccumulateErrors, SizesPastInt64AreUserErrors) {
  std::vector<double> deltas(4, 1.0);
  std::vector<float> maps(4, 0.0f);
  const std::int64_t half = std::int64_t{1} << 31;
  const auto many = fastocclusion::make_patch_grid(half, half, 1, 1, 1, 1, EdgeMode::valid);
  ASSERT_EQ(many.num_patches(), std::int64_t{1} << 62);
  try {
    fastocclusion::accumulate_patch_deltas(deltas.data(), 4, many, Reduction::sum, maps.data());
    FAIL() << "no error for 4 x 2^62 deltas";
  } catch (const user_error& e) {
    EXPECT_NE(std::string(e.what()).find("deltas: n=4"), std::string::npos) << e.what();
  }
  const std::int64_t huge = std::int64_t{1} << 40;
  const auto wide = fastocclusion::make_patch_grid(huge, huge, huge, huge, 1, 1, EdgeMode::cover);
  ASSERT_EQ(wide.num_patches(), 1);  // one patch, over a 2^80-pixel plane
  for (const Reduction reduction : {Reduction::sum, Reduction::mean}) {
    try {
      fastocclusion::accumulate_patch_deltas(deltas.data(), 1, wide, reduction, maps.data());
      FAIL() << "no error for a 2^80-pixel map";
    } catch (const user_error& e) {
      EXPECT_NE(std::string(e.what()).find("too large"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
