// accumulate_window_deltas against a naive per-window scatter (design §1, §4, §5, §7).
#include "fastocclusion/accumulate.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "test_support.hpp"

namespace {

using fastocclusion::Reduction;
using fastocclusion::user_error;
using fastocclusion::WindowGrid;
using test_support::all_axes;
using test_support::close_maps;
using test_support::make_grid;

// The library's maps, from a buffer of sentinels (every element must be written).
std::vector<float> run(const WindowGrid& grid, const std::vector<double>& deltas, std::int64_t n,
                       Reduction reduction, std::uint32_t collapsed = 0) {
  const std::int64_t size = fastocclusion::map_size(grid, collapsed);
  std::vector<float> maps(static_cast<std::size_t>(n * size), std::nanf(""));
  fastocclusion::accumulate_window_deltas(deltas.data(), n, grid, collapsed, reduction, maps.data());
  return maps;
}

// The naive maps of a random problem, read at index 0 of the collapsed axes.
std::vector<double> expected_maps(const test_support::RandomAxes& a, const std::vector<double>& deltas,
                                  std::int64_t n, bool mean, std::uint32_t collapsed) {
  const auto grid = naive::make_grid(a.lengths, a.windows, a.strides, a.cover, a.begins, a.ends);
  return naive::collapse(naive::accumulate(deltas, n, grid, mean), n, a.lengths, collapsed);
}

// Draws a subset of the axes one full window covers (the collapsible ones).
std::uint32_t random_subset(test_support::Rng& rng, std::uint32_t axes) {
  return axes & static_cast<std::uint32_t>(test_support::uniform_int(rng, 0, 31));
}

TEST(Accumulate, RandomGridsOfRankOneToFiveMatchNaiveScatterForSumAndMean) {
  test_support::Rng rng(41);
  for (int trial = 0; trial < 400; ++trial) {
    const auto a = test_support::random_axes(rng, 1 + trial % fastocclusion::kMaxAxes);
    const auto grid = make_grid(a.lengths, a.windows, a.strides, a.cover, a.begins, a.ends);
    const std::int64_t n = test_support::uniform_int(rng, 1, 3);
    const auto deltas = test_support::random_doubles(rng, n * grid.num_windows());
    const std::uint32_t collapsed = trial % 2 == 0 ? 0 : random_subset(rng, a.full_axes);
    for (const bool mean : {false, true}) {
      ASSERT_TRUE(close_maps(run(grid, deltas, n, mean ? Reduction::mean : Reduction::sum, collapsed),
                             expected_maps(a, deltas, n, mean, collapsed)))
          << "trial " << trial << (mean ? " mean" : " sum") << " shape="
          << test_support::shape_string(a.lengths) << " window="
          << test_support::shape_string(a.windows) << " stride="
          << test_support::shape_string(a.strides) << " collapsed=" << collapsed;
    }
  }
}

TEST(Accumulate, ManyInputsTakeTheParallelPath) {
  test_support::Rng rng(42);
  struct Case {
    std::int64_t n;
    test_support::RandomAxes axes;
    std::uint32_t collapsed;
  };
  const Case cases[] = {
      {6, {{64, 48}, {7, 5}, {3, 2}, {true, true}, 0, {}, {}}, 0},
      {8, {{40, 40, 3}, {5, 4, 3}, {2, 3, 3}, {true, false, false}, 4, {}, {}}, 4},  // images, (H, W, 1)
      {4, {{12, 16, 16}, {3, 5, 4}, {2, 3, 3}, {true, true, false}, 0, {}, {}}, 0},
      // a region of interest: maps are 0 outside it
      {3, {{20, 18}, {4, 3}, {2, 2}, {true, false}, 0, {3, 5}, {17, 12}}, 0},  // a volume
  };
  for (const Case& c : cases) {
    const auto grid = make_grid(c.axes.lengths, c.axes.windows, c.axes.strides, c.axes.cover, c.axes.begins, c.axes.ends);
    const auto deltas = test_support::random_doubles(rng, c.n * grid.num_windows());
    for (const bool mean : {false, true}) {
      EXPECT_TRUE(close_maps(run(grid, deltas, c.n, mean ? Reduction::mean : Reduction::sum, c.collapsed),
                             expected_maps(c.axes, deltas, c.n, mean, c.collapsed)))
          << test_support::shape_string(c.axes.lengths) << (mean ? " mean" : " sum");
    }
  }
}

TEST(Accumulate, SpecExampleByHand) {
  // L=4, w=2, s=1: anchors 0, 1, 2; position x sums the windows covering it.
  const auto grid = make_grid({4}, {2}, {1}, {false});
  const std::vector<double> deltas = {1.0, 10.0, 100.0};
  EXPECT_EQ(run(grid, deltas, 1, Reduction::sum), (std::vector<float>{1, 11, 110, 100}));
  EXPECT_EQ(run(grid, deltas, 1, Reduction::mean), (std::vector<float>{1, 5.5f, 55, 100}));
}

TEST(Accumulate, UncoveredPixelsAreExactlyZeroAndCoveredOnesAreNot) {
  // Rows and columns: L=10, w=3, s=4 -> anchors 0, 4: 3, 7, 8, 9 uncovered (valid, gaps).
  const std::int64_t n = 2;
  const auto plane = make_grid({10, 10}, {3, 3}, {4, 4}, all_axes(2, false));
  const auto image = make_grid({10, 10, 3}, {3, 3, 3}, {4, 4, 3}, all_axes(3, false));
  ASSERT_EQ(plane.num_windows(), 4);
  ASSERT_EQ(image.num_windows(), 4);
  const std::vector<double> deltas(8, 2.5);  // every window delta positive
  for (const Reduction r : {Reduction::sum, Reduction::mean}) {
    for (const auto& maps : {run(plane, deltas, n, r), run(image, deltas, n, r, 1U << 2)}) {
      ASSERT_EQ(maps.size(), 200u);
      for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t y = 0; y < 10; ++y) {
          for (std::int64_t x = 0; x < 10; ++x) {
            const bool covered = (y % 4) < 3 && y < 7 && (x % 4) < 3 && x < 7;
            const float v = maps[static_cast<std::size_t>((i * 10 + y) * 10 + x)];
            EXPECT_EQ(v, covered ? 2.5f : 0.0f) << "y=" << y << " x=" << x;  // one window each
          }
        }
      }
    }
  }
}

TEST(Accumulate, MeanDividesBySeparableCoverageCount) {
  // Constant deltas: the mean is that constant wherever any window covers.
  const test_support::RandomAxes cases[] = {
      {{13, 9}, {4, 3}, {1, 2}, {true, true}, 0, {}, {}},
      {{7, 5, 6, 4}, {3, 2, 6, 2}, {2, 2, 1, 3}, {true, false, true, true}, 4, {}, {}},
      {{9, 8}, {3, 2}, {2, 1}, {true, false}, 0, {2, 1}, {9, 6}},
  };
  for (const auto& a : cases) {
    const auto grid = make_grid(a.lengths, a.windows, a.strides, a.cover, a.begins, a.ends);
    const std::vector<double> deltas(static_cast<std::size_t>(grid.num_windows()), -0.75);
    const auto ngrid = naive::make_grid(a.lengths, a.windows, a.strides, a.cover, a.begins, a.ends);
    const auto counts = naive::accumulate(std::vector<double>(deltas.size(), 1.0), 1, ngrid, false);
    const auto mean = run(grid, deltas, 1, Reduction::mean);
    const auto sum = run(grid, deltas, 1, Reduction::sum);
    for (std::size_t i = 0; i < sum.size(); ++i) {
      EXPECT_FLOAT_EQ(mean[i], counts[i] > 0 ? -0.75f : 0.0f) << i;
      EXPECT_FLOAT_EQ(sum[i], static_cast<float>(-0.75 * counts[i])) << i;
    }
  }
}

TEST(Accumulate, CollapsingEveryAxisGivesEachInputItsOneDelta) {
  const auto grid = make_grid({3, 4, 5}, {3, 4, 5}, {1, 2, 9}, all_axes(3, true));
  ASSERT_EQ(grid.num_windows(), 1);
  ASSERT_EQ(fastocclusion::map_size(grid, 7), 1);
  const std::vector<double> deltas = {0.5, -2.0, 7.25};
  for (const Reduction r : {Reduction::sum, Reduction::mean}) {
    EXPECT_EQ(run(grid, deltas, 3, r, 7), (std::vector<float>{0.5f, -2.0f, 7.25f}));
    // Not collapsed: the same value at every element of each input.
    const auto full = run(grid, deltas, 3, r);
    for (std::size_t i = 0; i < full.size(); ++i) EXPECT_EQ(full[i], static_cast<float>(deltas[i / 60]));
  }
}

// ---- the families of design §7 give the 2-D definition's maps ------------------------------

TEST(AccumulateFamilies, ImagesWithCollapsedChannelsEqualThePlanarMaps) {
  // Images (H, W, C), windows (ph, pw, C), strides (sh, sw, C): maps (H, W, 1) with axis 2
  // collapsed equal the 2-D maps (H, W); not collapsed, every channel holds them.
  test_support::Rng rng(44);
  for (int trial = 0; trial < 150; ++trial) {
    const std::int64_t n = test_support::uniform_int(rng, 1, 3);
    const std::int64_t h = test_support::uniform_int(rng, 1, 16);
    const std::int64_t w = test_support::uniform_int(rng, 1, 16);
    const std::int64_t c = test_support::uniform_int(rng, 1, 4);
    const std::int64_t ph = test_support::uniform_int(rng, 1, h);
    const std::int64_t pw = test_support::uniform_int(rng, 1, w);
    const std::int64_t sh = test_support::uniform_int(rng, 1, ph + 3);
    const std::int64_t sw = test_support::uniform_int(rng, 1, pw + 3);
    const bool cover = trial % 2 == 1;
    const auto grid = make_grid({h, w, c}, {ph, pw, c}, {sh, sw, c}, all_axes(3, cover));
    const auto planar = naive::planar::make_grid(h, w, ph, pw, sh, sw, cover);
    ASSERT_EQ(grid.num_windows(), planar.num_patches());
    const auto deltas = test_support::random_doubles(rng, n * grid.num_windows());
    for (const bool mean : {false, true}) {
      const Reduction r = mean ? Reduction::mean : Reduction::sum;
      const auto expected = naive::planar::accumulate(deltas, n, planar, h, w, mean);
      ASSERT_TRUE(close_maps(run(grid, deltas, n, r, 1U << 2), expected))
          << "trial " << trial << (mean ? " mean" : " sum");
      std::vector<double> per_channel;
      for (const double v : expected) per_channel.insert(per_channel.end(), static_cast<std::size_t>(c), v);
      ASSERT_TRUE(close_maps(run(grid, deltas, n, r), per_channel)) << "trial " << trial;
    }
  }
}

TEST(AccumulateFamilies, TimeSeriesAndTabularEqualThePlanarMaps) {
  test_support::Rng rng(45);
  for (const bool mean : {false, true}) {
    const Reduction r = mean ? Reduction::mean : Reduction::sum;
    // Series (T, W) windows (pt, pw): the 2-D maps themselves.
    const auto series = make_grid({12, 4}, {3, 2}, {2, 1}, all_axes(2, true));
    const auto series_deltas = test_support::random_doubles(rng, 3 * series.num_windows());
    EXPECT_TRUE(close_maps(run(series, series_deltas, 3, r),
                           naive::planar::accumulate(series_deltas, 3,
                                                     naive::planar::make_grid(12, 4, 3, 2, 2, 1, true),
                                                     12, 4, mean)));
    // Tabular (W,) windows (pw,): the 2-D maps of a (1, W) plane with patch (1, pw).
    const auto tabular = make_grid({17}, {3}, {2}, {false});
    const auto tabular_deltas = test_support::random_doubles(rng, 4 * tabular.num_windows());
    EXPECT_TRUE(close_maps(run(tabular, tabular_deltas, 4, r),
                           naive::planar::accumulate(tabular_deltas, 4,
                                                     naive::planar::make_grid(1, 17, 1, 3, 1, 2, false),
                                                     1, 17, mean)));
  }
}

// ---- precision ---------------------------------------------------------------------------------

// Sum over the windows covering (y, x), in long double with Kahan compensation.
long double pixel_sum_long_double(const std::vector<double>& deltas, const naive::Grid& g,
                                  std::int64_t y, std::int64_t x) {
  const auto& rows = g.axes[0];
  const auto& cols = g.axes[1];
  long double sum = 0.0L, carry = 0.0L;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (!rows[i].contains(y)) continue;
    for (std::size_t j = 0; j < cols.size(); ++j) {
      if (!cols[j].contains(x)) continue;
      const long double term = deltas[i * cols.size() + j] - carry;
      const long double next = sum + term;
      carry = (next - sum) - term;
      sum = next;
    }
  }
  return sum;
}

float pixel_sum_float(const std::vector<double>& deltas, const naive::Grid& g, std::int64_t y,
                      std::int64_t x) {
  const auto& rows = g.axes[0];
  const auto& cols = g.axes[1];
  float sum = 0.0f;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (!rows[i].contains(y)) continue;
    for (std::size_t j = 0; j < cols.size(); ++j) {
      if (cols[j].contains(x)) sum += static_cast<float>(deltas[i * cols.size() + j]);
    }
  }
  return sum;
}

TEST(Accumulate, TensOfThousandsOfWindowsKeepFloat32Precision) {
  // 256x256, window 64, stride 1: 193^2 = 37249 windows, up to 4096 covering one pixel.
  // Deltas share a large offset, so a float32 running sum drifts by several ulps.
  const std::int64_t h = 256, w = 256, p = 64;
  const auto grid = make_grid({h, w}, {p, p}, {1, 1}, all_axes(2, false));
  const auto ngrid = naive::make_grid({h, w}, {p, p}, {1, 1}, all_axes(2, false));
  ASSERT_EQ(grid.num_windows(), 37249);
  test_support::Rng rng(43);
  std::vector<double> deltas = test_support::random_doubles(rng, grid.num_windows(), -1.0, 1.0);
  for (double& d : deltas) d += 1000.0;
  const std::vector<float> map = run(grid, deltas, 1, Reduction::sum);

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

// ---- errors ------------------------------------------------------------------------------------

TEST(AccumulateErrors, BadArgumentsThrowUserError) {
  const auto grid = make_grid({4, 4}, {2, 2}, {2, 2}, all_axes(2, false));
  std::vector<double> deltas(4, 1.0);
  std::vector<float> maps(16);
  const auto n0 = test_support::user_error_message([&] {
    fastocclusion::accumulate_window_deltas(deltas.data(), 0, grid, 0, Reduction::sum, maps.data());
  });
  EXPECT_NE(n0.find("n=0"), std::string::npos) << n0;
  EXPECT_THROW(fastocclusion::accumulate_window_deltas(nullptr, 1, grid, 0, Reduction::sum,
                                                       maps.data()),
               std::invalid_argument);
  EXPECT_THROW(fastocclusion::accumulate_window_deltas(deltas.data(), 1, grid, 0, Reduction::mean,
                                                       nullptr),
               user_error);
  WindowGrid malformed = grid;
  malformed.axes[0].count = 3;  // anchors past the axis
  const std::vector<float> before(maps.size(), 9.0f);
  maps = before;
  EXPECT_THROW(fastocclusion::accumulate_window_deltas(deltas.data(), 1, malformed, 0,
                                                       Reduction::sum, maps.data()),
               user_error);
  EXPECT_EQ(maps, before) << "wrote maps for a malformed grid";
}

TEST(AccumulateErrors, OnlyAxesOneFullWindowCoversCanBeCollapsed) {
  const auto grid = make_grid({6, 5, 3}, {2, 5, 3}, {2, 1, 1}, all_axes(3, false));
  EXPECT_EQ(fastocclusion::map_size(grid, 0), 90);
  EXPECT_EQ(fastocclusion::map_size(grid, 2), 18);
  EXPECT_EQ(fastocclusion::map_size(grid, 4), 30);
  EXPECT_EQ(fastocclusion::map_size(grid, 6), 6);
  const auto axis0 = test_support::user_error_message([&] { fastocclusion::map_size(grid, 1); });
  EXPECT_NE(axis0.find("collapsed_axes: axis 0"), std::string::npos) << axis0;
  const auto past = test_support::user_error_message([&] { fastocclusion::map_size(grid, 8); });
  EXPECT_NE(past.find("collapsed_axes=8"), std::string::npos) << past;
  std::vector<double> deltas(3, 1.0);
  std::vector<float> maps(90, 9.0f);
  for (const std::uint32_t bad : {1U, 8U, 1U << 31}) {
    EXPECT_THROW(fastocclusion::accumulate_window_deltas(deltas.data(), 1, grid, bad,
                                                         Reduction::mean, maps.data()),
                 user_error)
        << bad;
  }
  EXPECT_EQ(maps, std::vector<float>(90, 9.0f));
  // (4,) with windows (3,) has two windows, covering it only together; windows (4,) are one
  // full window whatever the stride and edge mode.
  EXPECT_THROW(fastocclusion::map_size(make_grid({4}, {3}, {1}, {true}), 1), user_error);
  EXPECT_EQ(fastocclusion::map_size(make_grid({4}, {4}, {3}, {true}), 1), 1);
}

TEST(ParseReduction, AcceptsExactlySumAndMean) {
  EXPECT_EQ(fastocclusion::parse_reduction("sum"), Reduction::sum);
  EXPECT_EQ(fastocclusion::parse_reduction("mean"), Reduction::mean);
  for (const char* bad : {"Sum", "", "max", "mean\n"}) {
    const auto what = test_support::user_error_message([bad] { fastocclusion::parse_reduction(bad); });
    EXPECT_NE(what.find("reduction"), std::string::npos) << what;
    EXPECT_NE(what.find("\"mean\""), std::string::npos) << what;
  }
}

TEST(ParseReduction, ReadsTheWholeStringNotUpToTheFirstNul) {
  using namespace std::string_view_literals;
  for (const std::string_view bad : {"sum\0junk"sv, "mean\0"sv, "\0sum"sv}) {
    const auto what = test_support::user_error_message([bad] { fastocclusion::parse_reduction(bad); });
    EXPECT_NE(what.find("reduction="), std::string::npos) << what;
    EXPECT_NE(what.find("\\x00"), std::string::npos) << what;
  }
  EXPECT_EQ(fastocclusion::parse_reduction(std::string("mean")), Reduction::mean);
}

// Sizes past int64 are user errors before anything is read or written (a grid's window
// count and map size fit int64, n times them need not).
TEST(AccumulateErrors, SizesPastInt64AreUserErrors) {
  std::vector<double> deltas(16, 1.0);
  std::vector<float> maps(16, 0.0f);
  const std::int64_t half = std::int64_t{1} << 31;
  const auto many = make_grid({half, half}, {1, 1}, {1, 1}, all_axes(2, false));
  ASSERT_EQ(many.num_windows(), std::int64_t{1} << 62);
  const auto msg = test_support::user_error_message([&] {
    fastocclusion::accumulate_window_deltas(deltas.data(), 4, many, 0, Reduction::sum, maps.data());
  });
  EXPECT_NE(msg.find("maps: 4 maps"), std::string::npos) << msg;
  EXPECT_NE(msg.find("int64"), std::string::npos) << msg;
  // One window over a 2^60-value sample: 16 maps of it overflow int64 ...
  const std::int64_t tall = std::int64_t{1} << 40, wide = std::int64_t{1} << 20;
  const auto one = make_grid({tall, wide}, {tall, wide}, {1, 1}, all_axes(2, true));
  ASSERT_EQ(one.num_windows(), 1);
  for (const Reduction reduction : {Reduction::sum, Reduction::mean}) {
    const auto big = test_support::user_error_message([&] {
      fastocclusion::accumulate_window_deltas(deltas.data(), 16, one, 0, reduction, maps.data());
    });
    EXPECT_NE(big.find("overflow int64"), std::string::npos) << big;
    // ... while with both axes collapsed each map is one value: no scratch of the sample's
    // size, no per-axis coverage table of 2^40 entries.
    fastocclusion::accumulate_window_deltas(deltas.data(), 16, one, 3, reduction, maps.data());
    EXPECT_EQ(maps, std::vector<float>(16, 1.0f));
  }
}

}  // namespace
