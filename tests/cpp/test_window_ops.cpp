// The CPU kernel features of MONAI's occlusion sensitivity against the naive oracles of
// naive_window_ops.hpp, on random N-d grids with "valid", "cover" and "shift" axes and
// regions of interest: window means, the per_window and window_mask fills (full,
// incremental, strided; per_window_scale too), the weighted blend, and the mean accumulation over shifted grids.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "fastocclusion/geometry.hpp"
#include "window_ops_support.hpp"

namespace {

namespace fo = fastocclusion;
using window_ops::GridCase;
using window_ops::Rng;
using window_ops::uniform_int;

::testing::AssertionResult same_bits(const std::vector<float>& got,
                                     const std::vector<float>& expected) {
  if (got.size() != expected.size()) return ::testing::AssertionFailure() << "sizes differ";
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &expected[i], sizeof(float)) != 0) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << got[i] << ", expected " << expected[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// One problem: n inputs in [-1, 1] over a random grid, and its window baselines.
struct Problem {
  GridCase c;
  fo::WindowGrid grid;
  naive::Grid naive;
  std::int64_t n = 1;
  std::vector<float> inputs, means, mask;
};

Problem random_problem(Rng& rng, int trial) {
  Problem p;
  p.c = window_ops::random_grid_case(rng, trial);
  p.grid = p.c.grid();
  p.naive = p.c.naive_grid();
  p.n = uniform_int(rng, 1, 3);
  p.inputs = window_ops::random_floats(rng, p.n * p.c.sample(), -1.0f, 1.0f);
  p.means.resize(static_cast<std::size_t>(p.n * p.grid.num_windows()));
  fo::window_means(p.inputs.data(), p.n, p.grid, p.means.data());
  p.mask = window_ops::random_floats(rng, p.c.window_volume(), 0.0f, 1.0f);
  return p;
}

constexpr naive::WindowBaseline kWindowKinds[] = {naive::WindowBaseline::per_window,
                                                  naive::WindowBaseline::per_window_scale,
                                                  naive::WindowBaseline::window_mask};

fo::Baseline baseline_of(const Problem& p, naive::WindowBaseline kind) {
  switch (kind) {
    case naive::WindowBaseline::per_window: return {fo::BaselineKind::per_window, p.means.data()};
    case naive::WindowBaseline::per_window_scale:
      return {fo::BaselineKind::per_window_scale, p.means.data()};
    case naive::WindowBaseline::window_mask:
    default: return {fo::BaselineKind::window_mask, p.mask.data()};
  }
}

const std::vector<float>& values_of(const Problem& p, naive::WindowBaseline kind) {
  return kind == naive::WindowBaseline::window_mask ? p.mask : p.means;
}

TEST(WindowMeans, EqualTheNaiveMeansBitForBit) {
  Rng rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    const Problem p = random_problem(rng, trial);
    std::vector<float> expected;
    for (std::int64_t i = 0; i < p.n; ++i) {
      for (std::int64_t k = 0; k < p.grid.num_windows(); ++k) {
        expected.push_back(naive::window_mean(p.inputs, p.naive, i, k));
      }
    }
    ASSERT_TRUE(same_bits(p.means, expected)) << p.c.describe() << " n=" << p.n;
  }
}

TEST(WindowMeans, Float64MeansEqualTheNaiveMeansBitForBit) {
  Rng rng(12);
  for (int trial = 0; trial < 200; ++trial) {
    const Problem p = random_problem(rng, trial);
    const std::vector<double> inputs =
        window_ops::random_doubles(rng, static_cast<std::int64_t>(p.inputs.size()), -1.0, 1.0);
    std::vector<double> means(p.means.size(), -777.0), expected;
    fo::window_means(inputs.data(), p.n, p.grid, means.data());
    for (std::int64_t i = 0; i < p.n; ++i) {
      for (std::int64_t k = 0; k < p.grid.num_windows(); ++k) {
        expected.push_back(naive::window_mean(inputs, p.naive, i, k));
      }
    }
    ASSERT_EQ(means, expected) << p.c.describe() << " n=" << p.n;
  }
}

TEST(WindowBaselineFill, FullFillsEqualTheNaiveFill) {
  Rng rng(12);
  for (int trial = 0; trial < 400; ++trial) {
    const Problem p = random_problem(rng, trial);
    const std::int64_t total = p.n * p.grid.num_windows(), sample = p.c.sample();
    for (const auto kind : kWindowKinds) {
      const std::int64_t stride = uniform_int(rng, 1, 3);
      const std::int64_t start = uniform_int(rng, 0, total - 1);
      const std::int64_t count = std::min<std::int64_t>((total - 1 - start) / stride + 1, 20);
      std::vector<float> batch(static_cast<std::size_t>(count * sample), -777.0f);
      fo::fill_occluded_batch(p.inputs.data(), p.n, p.grid, baseline_of(p, kind), start, count,
                              batch.data(), stride);
      ASSERT_TRUE(same_bits(batch, naive::fill_window_baseline(p.inputs, p.naive, p.c.windows,
                                                               kind, values_of(p, kind), start,
                                                               count, stride)))
          << p.c.describe() << " kind=" << static_cast<int>(kind);
    }
  }
}

TEST(WindowBaselineFill, IncrementalSessionsEqualTheNaiveFillAfterEveryCall) {
  Rng rng(13);
  for (int trial = 0; trial < 300; ++trial) {
    const Problem p = random_problem(rng, trial);
    const std::int64_t total = p.n * p.grid.num_windows(), sample = p.c.sample();
    const std::int64_t capacity = uniform_int(rng, 1, std::min<std::int64_t>(total, 12));
    const std::int64_t chunk = (total + capacity - 1) / capacity;
    for (const auto kind : kWindowKinds) {
      std::vector<float> batch(static_cast<std::size_t>(capacity * sample), -777.0f);
      fo::IncrementalFillState state;
      // The sweep's chunked order (slot j walks chunk j), then a few random slices.
      for (std::int64_t call = 0; call < chunk + 3; ++call) {
        std::int64_t start = call, stride = chunk;
        if (call >= chunk) {
          stride = uniform_int(rng, 1, 3);
          start = uniform_int(rng, 0, total - 1);
        }
        const std::int64_t count =
            std::min(capacity, (total - 1 - start) / stride + 1);
        fo::fill_occluded_batch_incremental(p.inputs.data(), p.n, p.grid, baseline_of(p, kind),
                                            start, count, batch.data(), capacity, state, stride);
        const std::vector<float> expected = naive::fill_window_baseline(
            p.inputs, p.naive, p.c.windows, kind, values_of(p, kind), start, count, stride);
        ASSERT_TRUE(same_bits(std::vector<float>(batch.begin(), batch.begin() + count * sample),
                              expected))
            << p.c.describe() << " call " << call << " kind " << static_cast<int>(kind);
      }
    }
  }
}

TEST(Blend, EqualsTheNaiveWeightedBlendBitForBit) {
  Rng rng(14);
  std::int64_t collapsed = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const GridCase c = window_ops::random_grid_case(rng, trial, 300);
    const fo::WindowGrid grid = c.grid();
    const std::uint32_t mask = window_ops::random_collapse(rng, grid);
    collapsed += mask != 0;
    const std::int64_t n = uniform_int(rng, 1, 3), size = fo::map_size(grid, mask);
    const std::vector<double> values =
        window_ops::random_doubles(rng, n * grid.num_windows(), -2.0, 2.0);
    const naive::Shape ishape = window_ops::importance_shape(c, mask);
    ASSERT_EQ(fo::importance_size(grid, mask), naive::volume(ishape));
    const std::vector<float> importance =
        window_ops::random_floats(rng, naive::volume(ishape), 1e-3f, 1.0f);
    std::vector<float> maps(static_cast<std::size_t>(n * size), -777.0f);
    fo::blend_window_values(values.data(), n, grid, mask, importance.data(), maps.data());
    ASSERT_TRUE(same_bits(maps, naive::blend(values, n, c.naive_grid(),
                                             window_ops::map_lengths(c, mask), ishape,
                                             importance)))
        << c.describe() << " collapsed=" << mask;
  }
  EXPECT_GT(collapsed, 0);
}

TEST(Blend, ConstantImportanceIsTheMeanAccumulation) {
  Rng rng(15);
  for (int trial = 0; trial < 200; ++trial) {
    const GridCase c = window_ops::random_grid_case(rng, trial, 300);
    const fo::WindowGrid grid = c.grid();
    const std::uint32_t mask = window_ops::random_collapse(rng, grid);
    const std::int64_t n = 2, size = fo::map_size(grid, mask);
    const std::vector<double> values =
        window_ops::random_doubles(rng, n * grid.num_windows(), -1.0, 1.0);
    const std::vector<float> ones(static_cast<std::size_t>(fo::importance_size(grid, mask)), 0.5f);
    std::vector<float> blended(static_cast<std::size_t>(n * size)), mean(blended.size());
    fo::blend_window_values(values.data(), n, grid, mask, ones.data(), blended.data());
    fo::accumulate_window_deltas(values.data(), n, grid, mask, fo::Reduction::mean, mean.data());
    for (std::size_t i = 0; i < mean.size(); ++i) {
      ASSERT_NEAR(blended[i], mean[i], 1e-6) << c.describe() << " element " << i;
    }
  }
}

TEST(Accumulate, ShiftedGridsMatchTheNaiveScatter) {
  Rng rng(16);
  for (int trial = 0; trial < 300; ++trial) {
    const GridCase c = window_ops::random_grid_case(rng, trial, 300);
    const fo::WindowGrid grid = c.grid();
    const std::int64_t n = uniform_int(rng, 1, 3), sample = c.sample();
    const std::vector<double> deltas =
        window_ops::random_doubles(rng, n * grid.num_windows(), -1.0, 1.0);
    for (const auto reduction : {fo::Reduction::sum, fo::Reduction::mean}) {
      std::vector<float> maps(static_cast<std::size_t>(n * sample));
      fo::accumulate_window_deltas(deltas.data(), n, grid, 0, reduction, maps.data());
      const std::vector<double> expected =
          naive::accumulate(deltas, n, c.naive_grid(), reduction == fo::Reduction::mean);
      for (std::size_t i = 0; i < maps.size(); ++i) {
        ASSERT_NEAR(maps[i], expected[i], 1e-5 * (1.0 + std::fabs(expected[i])))
            << c.describe() << " element " << i;
      }
    }
  }
}

TEST(WindowOpsErrors, BadArgumentsAreUserErrorsNamingThem) {
  const fo::EdgeMode modes[2] = {fo::EdgeMode::shift, fo::EdgeMode::shift};
  const std::int64_t lengths[2] = {6, 5}, windows[2] = {3, 2}, strides[2] = {2, 2};
  const fo::WindowGrid grid = fo::make_window_grid(2, lengths, windows, strides, modes);
  std::vector<float> inputs(30, 1.0f), out(static_cast<std::size_t>(grid.num_windows()));
  EXPECT_THROW(fo::window_means(inputs.data(), 0, grid, out.data()), fo::user_error);
  EXPECT_THROW(fo::window_means<float>(nullptr, 1, grid, out.data()), fo::user_error);
  std::vector<double> values(static_cast<std::size_t>(grid.num_windows()), 1.0);
  std::vector<float> maps(30);
  for (const float bad : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::infinity()}) {
    std::vector<float> importance(6, 1.0f);
    importance[4] = bad;
    try {
      fo::blend_window_values(values.data(), 1, grid, 0, importance.data(), maps.data());
      ADD_FAILURE() << "weight " << bad << " accepted";
    } catch (const fo::user_error& e) {
      EXPECT_NE(std::string(e.what()).find("importance: element 4"), std::string::npos)
          << e.what();
    }
  }
  const std::vector<float> importance(6, 1.0f);
  EXPECT_THROW(fo::blend_window_values(values.data(), 1, grid, 1U, importance.data(), maps.data()),
               fo::user_error);  // axis 0 has several windows: it cannot be collapsed
  EXPECT_THROW(fo::blend_window_values(nullptr, 1, grid, 0, importance.data(), maps.data()),
               fo::user_error);
  EXPECT_EQ(fo::baseline_size(fo::BaselineKind::window_mask, 3, grid), 6);
  EXPECT_EQ(fo::baseline_size(fo::BaselineKind::per_window, 3, grid), 3 * grid.num_windows());
  EXPECT_EQ(fo::baseline_size(fo::BaselineKind::per_window_scale, 2, grid),
            2 * grid.num_windows());
}

}  // namespace
