// Window geometry at int64's limits (design §2, §5, §7): exact anchor counts for any sizes,
// user errors for samples past int64, checked_multiply, and check_window_grid on grids built
// by hand (the kernels re-check every grid that reaches them).
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "fastocclusion/geometry.hpp"
#include "test_support.hpp"

namespace {

using fastocclusion::EdgeMode;
using fastocclusion::make_axis_geometry;
using fastocclusion::user_error;
using fastocclusion::WindowGrid;
using test_support::all_axes;
using test_support::make_grid;
using test_support::user_error_message;

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

// Anchor count of design §2/§5 in unsigned 64-bit arithmetic, where every intermediate below
// (at most 2^64 - 2 for sizes in [1, 2^63)) fits: the oracle for sizes near int64's limit.
std::int64_t wide_count(std::int64_t length, std::int64_t window, std::int64_t stride, bool cover) {
  using Wide = std::uint64_t;
  const Wide l = static_cast<Wide>(length), w = static_cast<Wide>(window),
             s = static_cast<Wide>(stride);
  Wide count = (l - w + 1 + s - 1) / s;  // ceil((L - w + 1) / s)
  const Wide last = (count - 1) * s;
  if (cover && last + w < l && last + s < l) count += 1;
  return static_cast<std::int64_t>(count);
}

TEST(GeometryLimits, HugeSizesAndStridesCountWithoutOverflow) {
  // The cases of the reliability issue: a stride past the axis gives one anchor.
  EXPECT_EQ(make_grid({10, 10}, {1, 1}, {kMax, 1}, all_axes(2, false)).axes[0].count, 1);
  for (const bool cover : {false, true}) {
    const auto grid = make_grid({10, 10}, {3, 3}, {kMax - 5, kMax - 5}, all_axes(2, cover));
    EXPECT_EQ(grid.axes[0].count, 1);
    EXPECT_EQ(grid.axes[1].count, 1);
    EXPECT_EQ(grid.num_windows(), 1);
  }
  // Random sizes, windows and strides near the limit, against the wide oracle.
  std::mt19937_64 rng(99);
  const auto near_max = [&rng](std::int64_t lo) {
    const std::int64_t pick[] = {1, 2, 3, lo, kMax / 2, kMax / 2 + 1, kMax - 7, kMax - 1, kMax};
    std::int64_t v = pick[rng() % 9] - static_cast<std::int64_t>(rng() % 4);
    return v < lo ? lo : v;
  };
  for (int trial = 0; trial < 4000; ++trial) {
    const std::int64_t length = near_max(1);
    std::int64_t window = near_max(1);
    if (window > length) {
      window = length - static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(length));
    }
    const std::int64_t stride = near_max(1);
    for (const bool cover : {false, true}) {
      const auto axis = make_axis_geometry(length, window, stride,
                                           cover ? EdgeMode::cover : EdgeMode::valid);
      ASSERT_EQ(axis.count, wide_count(length, window, stride, cover))
          << "length=" << length << " window=" << window << " stride=" << stride
          << " cover=" << cover;
      ASSERT_LE(axis.anchor(axis.count - 1), length - 1);
      ASSERT_GE(axis.extent(axis.count - 1), 1);
    }
  }
}

TEST(GeometryLimits, SampleSizeOrWindowCountPastInt64IsAUserError) {
  const std::int64_t big = std::int64_t{1} << 62;
  const auto msg = user_error_message([big] {
    make_grid({big, big}, {1, 1}, {1, 1}, all_axes(2, false));
  });
  EXPECT_NE(msg.find("int64"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sample shape"), std::string::npos) << msg;
  EXPECT_THROW(make_grid({big, 4}, {1, 1}, {1, 1}, all_axes(2, true)), user_error);  // 2^64
  const std::int64_t side = std::int64_t{1} << 13;  // 2^65 in five axes
  EXPECT_THROW(make_grid({side, side, side, side, side}, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1},
                         all_axes(5, false)),
               user_error);
  // Just below the limit: 2^62 x 1 windows of 1, 2^31 x 2^31, (2^12)^5 = 2^60.
  EXPECT_EQ(make_grid({big, 1}, {1, 1}, {1, 1}, all_axes(2, false)).num_windows(), big);
  const std::int64_t half = std::int64_t{1} << 31;
  EXPECT_EQ(make_grid({half, half}, {1, 1}, {1, 1}, all_axes(2, false)).num_windows(), big);
  const std::int64_t s12 = std::int64_t{1} << 12;
  const auto five = make_grid({s12, s12, s12, s12, s12}, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1},
                              all_axes(5, true));
  EXPECT_EQ(five.num_windows(), std::int64_t{1} << 60);
  EXPECT_EQ(five.sample_size(), std::int64_t{1} << 60);
  // The last window of the largest grid, without overflow.
  const auto last = five.window_box(five.num_windows() - 1);
  for (int d = 0; d < 5; ++d) EXPECT_EQ(last.begin[d], s12 - 1);
}

TEST(CheckedMultiply, DetectsEveryOverflowOfNonNegativeOperands) {
  std::int64_t out = -1;
  EXPECT_TRUE(fastocclusion::checked_multiply(0, kMax, out));
  EXPECT_EQ(out, 0);
  EXPECT_TRUE(fastocclusion::checked_multiply(kMax, 1, out));
  EXPECT_EQ(out, kMax);
  EXPECT_TRUE(fastocclusion::checked_multiply(3037000499, 3037000499, out));  // floor(sqrt(max))
  EXPECT_FALSE(fastocclusion::checked_multiply(3037000500, 3037000500, out));
  EXPECT_FALSE(fastocclusion::checked_multiply(kMax, 2, out));
  EXPECT_FALSE(fastocclusion::checked_multiply(std::int64_t{1} << 32, std::int64_t{1} << 31, out));
}

// ---- check_window_grid: grids built by hand ------------------------------------------------

TEST(CheckWindowGrid, AcceptsEveryMadeGridAndRejectsMalformedOnes) {
  test_support::Rng rng(5);
  for (int trial = 0; trial < 50; ++trial) {
    const auto a = test_support::random_axes(rng);
    EXPECT_NO_THROW(fastocclusion::check_window_grid(make_grid(a.lengths, a.windows, a.strides, a.cover, a.begins, a.ends)));
  }
  const WindowGrid good = make_grid({6, 7, 3}, {2, 3, 3}, {2, 2, 3}, all_axes(3, true));
  const auto rejects = [&good](auto&& change, const char* what) {
    WindowGrid g = good;
    change(g);
    const auto msg = user_error_message([&g] { fastocclusion::check_window_grid(g); });
    EXPECT_NE(msg.find("window grid"), std::string::npos) << what << ": " << msg;
  };
  rejects([](WindowGrid& g) { g.rank = 0; }, "rank 0");
  rejects([](WindowGrid& g) { g.rank = 6; }, "rank 6");
  rejects([](WindowGrid& g) { g.axes[1].count = 0; }, "no window");
  rejects([](WindowGrid& g) { g.axes[1].count = 5; }, "anchors past the axis");
  rejects([](WindowGrid& g) { g.axes[0].window = 7; }, "window > length");
  rejects([](WindowGrid& g) { g.axes[2].stride = 0; }, "stride 0");
  rejects([](WindowGrid& g) { g.axes[0].length = 0; }, "length 0");
  rejects([](WindowGrid& g) { g.axes[0].begin = 3; }, "window past the region's end");
  rejects([](WindowGrid& g) { g.axes[1].end = 0; }, "empty region");
  const std::int64_t huge = std::int64_t{1} << 40;
  const auto sizes = user_error_message([huge] {
    WindowGrid g = make_grid({8, 8}, {1, 1}, {1, 1}, all_axes(2, false));
    for (int d = 0; d < 2; ++d) {
      g.axes[d].length = huge;  // 2^80 values in a sample
      g.axes[d].end = huge;
      g.axes[d].count = huge;
      g.axes[d].last = huge - 1;
    }
    fastocclusion::check_window_grid(g);
  });
  EXPECT_NE(sizes.find("int64"), std::string::npos) << sizes;
}

}  // namespace
