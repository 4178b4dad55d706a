// Window geometry (design §2, §5, §7): anchors, extents, per-axis edge modes, row-major
// enumeration over up to five axes, the design's families as special cases, errors.
// Sizes near int64's limit: test_geometry_limits.cpp.
#include "fastocclusion/geometry.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "naive_reference.hpp"
#include "test_support.hpp"

namespace {

using fastocclusion::EdgeMode;
using fastocclusion::make_axis_geometry;
using fastocclusion::user_error;
using fastocclusion::WindowGrid;
using test_support::all_axes;
using test_support::make_grid;
using test_support::user_error_message;

std::vector<std::int64_t> anchors_of(const fastocclusion::AxisGeometry& axis) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < axis.count; ++i) out.push_back(axis.anchor(i));
  return out;
}

std::vector<std::int64_t> extents_of(const fastocclusion::AxisGeometry& axis) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < axis.count; ++i) out.push_back(axis.extent(i));
  return out;
}

// The (begin, end) pairs of window k's box, axis by axis.
std::vector<std::pair<std::int64_t, std::int64_t>> box_of(const WindowGrid& grid, std::int64_t k) {
  const fastocclusion::Box box = grid.window_box(k);
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (int d = 0; d < grid.rank; ++d) out.emplace_back(box.begin[d], box.end[d]);
  return out;
}

// ---- design §2 worked examples -------------------------------------------------------------

TEST(Geometry, SpecExampleLength10Window2Stride3) {
  const auto axis = make_axis_geometry(10, 2, 3, EdgeMode::valid);
  EXPECT_EQ(anchors_of(axis), (std::vector<std::int64_t>{0, 3, 6}));
  EXPECT_EQ(extents_of(axis), (std::vector<std::int64_t>{2, 2, 2}));
  const auto line = make_grid({10}, {2}, {3}, {false});
  EXPECT_EQ(line.num_windows(), 3);
  const auto plane = make_grid({10, 10}, {2, 2}, {3, 3}, all_axes(2, false));
  EXPECT_EQ(plane.num_windows(), 9);
  EXPECT_EQ(box_of(plane, 5), (std::vector<std::pair<std::int64_t, std::int64_t>>{{3, 5}, {6, 8}}));
}

TEST(Geometry, SpecExample2x2ImagePatch1Stride1IsRowMajor) {
  const std::int64_t expected[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
  const auto plane = make_grid({2, 2}, {1, 1}, {1, 1}, all_axes(2, false));
  ASSERT_EQ(plane.num_windows(), 4);
  // The same image with 3 channels: windows (1, 1, 3) over (2, 2, 3), all channels at once.
  const auto image = make_grid({2, 2, 3}, {1, 1, 3}, {1, 1, 3}, all_axes(3, false));
  ASSERT_EQ(image.num_windows(), 4);
  for (std::int64_t k = 0; k < 4; ++k) {
    const auto b = plane.window_box(k);
    EXPECT_EQ(b.begin[0], expected[k][0]) << "window " << k;
    EXPECT_EQ(b.begin[1], expected[k][1]) << "window " << k;
    EXPECT_EQ(b.end[0] - b.begin[0], 1);
    EXPECT_EQ(b.end[1] - b.begin[1], 1);
    const auto c = image.window_box(k);
    EXPECT_EQ(c.begin[0], expected[k][0]) << "window " << k;
    EXPECT_EQ(c.begin[1], expected[k][1]) << "window " << k;
    EXPECT_EQ(c.begin[2], 0);
    EXPECT_EQ(c.end[2], 3);
  }
}

// ---- one axis ------------------------------------------------------------------------------

TEST(Geometry, ValidLeavesFarEdgeUncovered) {
  // L=10, w=3, s=4: anchors 0, 4; positions 3 and 7..9 are covered by no window.
  const auto axis = make_axis_geometry(10, 3, 4, EdgeMode::valid);
  EXPECT_EQ(anchors_of(axis), (std::vector<std::int64_t>{0, 4}));
}

TEST(Geometry, CoverAddsOneClippedWindowWhenFarEdgeIsUncovered) {
  const auto axis = make_axis_geometry(10, 4, 4, EdgeMode::cover);  // valid: 0, 4
  EXPECT_EQ(anchors_of(axis), (std::vector<std::int64_t>{0, 4, 8}));
  EXPECT_EQ(extents_of(axis), (std::vector<std::int64_t>{4, 4, 2}));
  const auto axis2 = make_axis_geometry(10, 2, 3, EdgeMode::cover);  // valid: 0, 3, 6
  EXPECT_EQ(anchors_of(axis2), (std::vector<std::int64_t>{0, 3, 6, 9}));
  EXPECT_EQ(axis2.extent(3), 1);
}

TEST(Geometry, CoverAddsNothingWhenValidAlreadyReachesTheEdge) {
  const auto axis = make_axis_geometry(10, 4, 3, EdgeMode::cover);  // 0, 3, 6 ends at 10
  EXPECT_EQ(anchors_of(axis), (std::vector<std::int64_t>{0, 3, 6}));
  EXPECT_EQ(make_axis_geometry(7, 7, 1, EdgeMode::cover).count, 1);
  EXPECT_TRUE(make_axis_geometry(7, 7, 5, EdgeMode::cover).single_full_window());
  EXPECT_FALSE(make_axis_geometry(7, 6, 5, EdgeMode::cover).single_full_window());
}

TEST(Geometry, CoverAddsNothingWhenTheNextAnchorLiesOutside) {
  // L=11, w=2, s=4: valid 0, 4, 8 ends at 10 < 11, but the next anchor 12 is outside.
  const auto axis = make_axis_geometry(11, 2, 4, EdgeMode::cover);
  EXPECT_EQ(anchors_of(axis), (std::vector<std::int64_t>{0, 4, 8}));
}

TEST(Geometry, BothModesMatchNaiveWalkExhaustively) {
  for (std::int64_t length = 1; length <= 24; ++length) {
    for (std::int64_t window = 1; window <= length; ++window) {
      for (std::int64_t stride = 1; stride <= length + 2; ++stride) {
        for (const bool cover : {false, true}) {
          const EdgeMode mode = cover ? EdgeMode::cover : EdgeMode::valid;
          const auto axis = make_axis_geometry(length, window, stride, mode);
          const auto spans = naive::axis_spans(length, window, stride, cover);
          ASSERT_EQ(axis.count, static_cast<std::int64_t>(spans.size()))
              << "L=" << length << " w=" << window << " s=" << stride << " cover=" << cover;
          for (std::int64_t i = 0; i < axis.count; ++i) {
            const auto& span = spans[static_cast<std::size_t>(i)];
            ASSERT_EQ(axis.anchor(i), span.anchor) << "L=" << length << " i=" << i;
            ASSERT_EQ(axis.extent(i), span.extent) << "L=" << length << " i=" << i;
          }
          EXPECT_EQ(axis.length, length);
          EXPECT_EQ(axis.window, window);
          EXPECT_EQ(axis.stride, stride);
          EXPECT_EQ(axis.mode, mode);
        }
      }
    }
  }
}

TEST(Geometry, CoverCoversEveryPositionWhenStrideIsAtMostWindow) {
  for (std::int64_t length = 1; length <= 24; ++length) {
    for (std::int64_t window = 1; window <= length; ++window) {
      for (std::int64_t stride = 1; stride <= window; ++stride) {
        const auto axis = make_axis_geometry(length, window, stride, EdgeMode::cover);
        std::vector<int> covered(static_cast<std::size_t>(length), 0);
        for (std::int64_t i = 0; i < axis.count; ++i) {
          ASSERT_GE(axis.extent(i), 1);
          ASSERT_LE(axis.anchor(i) + axis.extent(i), length);
          for (std::int64_t x = axis.anchor(i); x < axis.anchor(i) + axis.extent(i); ++x) {
            covered[static_cast<std::size_t>(x)] = 1;
          }
        }
        for (std::int64_t x = 0; x < length; ++x) {
          ASSERT_EQ(covered[static_cast<std::size_t>(x)], 1)
              << "L=" << length << " w=" << window << " s=" << stride << " x=" << x;
        }
      }
    }
  }
}

// ---- N-d grids -----------------------------------------------------------------------------

TEST(Geometry, RandomGridsOfRankOneToFiveMatchTheNaiveGrid) {
  test_support::Rng rng(2024);
  for (int trial = 0; trial < 400; ++trial) {
    const int rank = 1 + trial % fastocclusion::kMaxAxes;
    const auto a = test_support::random_axes(rng, rank);
    SCOPED_TRACE("shape=" + test_support::shape_string(a.lengths) +
                 " window=" + test_support::shape_string(a.windows) +
                 " stride=" + test_support::shape_string(a.strides));
    const WindowGrid grid = make_grid(a.lengths, a.windows, a.strides, a.cover, a.begins, a.ends);
    const naive::Grid expected =
        naive::make_grid(a.lengths, a.windows, a.strides, a.cover, a.begins, a.ends);
    ASSERT_EQ(grid.rank, rank);
    EXPECT_EQ(grid.sample_size(), naive::volume(a.lengths));
    ASSERT_EQ(grid.num_windows(), expected.num_windows());
    for (int d = 0; d < rank; ++d) {
      const auto& axis = grid.axes[d];
      EXPECT_EQ(axis.count, static_cast<std::int64_t>(expected.axes[static_cast<std::size_t>(d)].size()));
      EXPECT_EQ(axis.mode, a.cover[static_cast<std::size_t>(d)] ? EdgeMode::cover : EdgeMode::valid);
    }
    for (std::int64_t k = 0; k < grid.num_windows(); ++k) {
      const auto box = grid.window_box(k);
      const auto spans = expected.window(k);
      for (int d = 0; d < rank; ++d) {
        const auto& span = spans[static_cast<std::size_t>(d)];
        ASSERT_EQ(box.begin[d], span.anchor) << "window " << k << " axis " << d;
        ASSERT_EQ(box.end[d], span.anchor + span.extent) << "window " << k << " axis " << d;
      }
    }
  }
}

TEST(Geometry, WindowsAreEnumeratedInRowMajorOrderOfTheirAnchors) {
  const auto grid = make_grid({5, 4, 3, 2, 6}, {2, 2, 1, 2, 3}, {2, 1, 2, 1, 2},
                              {true, false, true, false, true});
  ASSERT_EQ(grid.num_windows(), 3 * 3 * 2 * 1 * 3);
  std::vector<std::int64_t> previous;
  for (std::int64_t k = 0; k < grid.num_windows(); ++k) {
    const auto box = grid.window_box(k);
    std::vector<std::int64_t> anchors(box.begin, box.begin + grid.rank);
    if (k > 0) {
      ASSERT_LT(previous, anchors) << "window " << k << " does not follow window " << k - 1;
    }
    previous = anchors;
  }
  // The last axis varies fastest: windows 0, 1, 2 differ only along axis 4.
  EXPECT_EQ(grid.window_box(1).begin[4], 2);
  EXPECT_EQ(grid.window_box(2).begin[4], 4);
  EXPECT_EQ(grid.window_box(2).end[4], 6);
  EXPECT_EQ(grid.window_box(3).begin[3], 0);
  EXPECT_EQ(grid.window_box(3).begin[2], 2);
}

TEST(Geometry, EachAxisKeepsItsOwnEdgeMode) {
  // Axis 0 valid leaves 9 uncovered; axis 1 cover adds a clipped window at 9.
  const auto grid = make_grid({10, 10, 4}, {3, 3, 4}, {3, 3, 1}, {false, true, true});
  EXPECT_EQ(anchors_of(grid.axes[0]), (std::vector<std::int64_t>{0, 3, 6}));
  EXPECT_EQ(anchors_of(grid.axes[1]), (std::vector<std::int64_t>{0, 3, 6, 9}));
  EXPECT_EQ(extents_of(grid.axes[1]), (std::vector<std::int64_t>{3, 3, 3, 1}));
  EXPECT_EQ(grid.axes[2].count, 1);
  EXPECT_EQ(grid.num_windows(), 12);
  EXPECT_EQ(grid.axes[0].mode, EdgeMode::valid);
  EXPECT_EQ(grid.axes[1].mode, EdgeMode::cover);
}

TEST(Geometry, OneWindowWhenWindowEqualsSample) {
  const auto grid = make_grid({5, 9}, {5, 9}, {1, 3}, all_axes(2, true));
  EXPECT_EQ(grid.num_windows(), 1);
  EXPECT_EQ(grid.axes[0].extent(0), 5);
  EXPECT_EQ(grid.axes[1].extent(0), 9);
  const auto volume = make_grid({2, 3, 4, 5, 6}, {2, 3, 4, 5, 6}, {1, 1, 1, 1, 1}, all_axes(5, false));
  EXPECT_EQ(volume.num_windows(), 1);
  EXPECT_EQ(volume.sample_size(), 720);
  for (int d = 0; d < 5; ++d) EXPECT_TRUE(volume.axes[d].single_full_window()) << d;
}

// ---- the families of design §7 as special cases ------------------------------------------------

TEST(GeometryFamilies, ImagesWithChannelWideWindowsAreThePlanarGrid) {
  test_support::Rng rng(71);
  for (int trial = 0; trial < 200; ++trial) {
    const std::int64_t h = test_support::uniform_int(rng, 1, 14);
    const std::int64_t w = test_support::uniform_int(rng, 1, 14);
    const std::int64_t c = test_support::uniform_int(rng, 1, 5);
    const std::int64_t ph = test_support::uniform_int(rng, 1, h);
    const std::int64_t pw = test_support::uniform_int(rng, 1, w);
    const std::int64_t sh = test_support::uniform_int(rng, 1, ph + 3);
    const std::int64_t sw = test_support::uniform_int(rng, 1, pw + 3);
    const bool cover = trial % 2 == 1;
    const auto image = make_grid({h, w, c}, {ph, pw, c}, {sh, sw, c}, all_axes(3, cover));
    const auto planar = naive::planar::make_grid(h, w, ph, pw, sh, sw, cover);
    ASSERT_EQ(image.num_windows(), planar.num_patches());
    EXPECT_TRUE(image.axes[2].single_full_window());
    for (std::int64_t k = 0; k < image.num_windows(); ++k) {
      const auto box = image.window_box(k);
      const auto rows = planar.row_of(k), cols = planar.col_of(k);
      ASSERT_EQ(box.begin[0], rows.anchor) << k;
      ASSERT_EQ(box.end[0], rows.anchor + rows.extent) << k;
      ASSERT_EQ(box.begin[1], cols.anchor) << k;
      ASSERT_EQ(box.end[1], cols.anchor + cols.extent) << k;
      ASSERT_EQ(box.begin[2], 0);
      ASSERT_EQ(box.end[2], c);
    }
  }
}

TEST(GeometryFamilies, TimeSeriesAndTabularAreThePlanarGrid) {
  // Series (T, W) windows (pt, pw): the planar grid itself. Tabular (W,) windows (pw,): the
  // planar grid of a (1, W) plane with patch (1, pw).
  const auto series = make_grid({12, 4}, {3, 2}, {2, 1}, all_axes(2, true));
  const auto planar_series = naive::planar::make_grid(12, 4, 3, 2, 2, 1, true);
  ASSERT_EQ(series.num_windows(), planar_series.num_patches());
  for (std::int64_t k = 0; k < series.num_windows(); ++k) {
    EXPECT_EQ(series.window_box(k).begin[0], planar_series.row_of(k).anchor);
    EXPECT_EQ(series.window_box(k).begin[1], planar_series.col_of(k).anchor);
  }
  const auto tabular = make_grid({17}, {3}, {2}, {false});
  const auto planar_row = naive::planar::make_grid(1, 17, 1, 3, 1, 2, false);
  ASSERT_EQ(tabular.num_windows(), planar_row.num_patches());
  for (std::int64_t k = 0; k < tabular.num_windows(); ++k) {
    EXPECT_EQ(tabular.window_box(k).begin[0], planar_row.col_of(k).anchor);
    EXPECT_EQ(tabular.window_box(k).end[0], planar_row.col_of(k).anchor + planar_row.col_of(k).extent);
  }
}

// ---- equality ------------------------------------------------------------------------------

TEST(Geometry, EqualityComparesTheWindowsNotTheModeThatMadeThem) {
  const auto a = make_grid({9, 6}, {3, 3}, {3, 3}, {false, false});
  const auto b = make_grid({9, 6}, {3, 3}, {3, 3}, {true, true});  // cover adds nothing here
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a != b);
  EXPECT_NE(a, make_grid({9, 6}, {3, 3}, {3, 2}, {false, false}));
  EXPECT_NE(a, make_grid({9, 6}, {3, 2}, {3, 3}, {false, false}));
  EXPECT_NE(a, make_grid({9, 7}, {3, 3}, {3, 3}, {false, false}));
  EXPECT_NE(make_grid({10, 6}, {3, 3}, {3, 3}, {false, false}),
            make_grid({10, 6}, {3, 3}, {3, 3}, {true, false}));  // cover adds a window
  EXPECT_NE(a, make_grid({9, 6, 1}, {3, 3, 1}, {3, 3, 1}, all_axes(3, false)));  // rank
}

// ---- errors ----------------------------------------------------------------------------------

TEST(GeometryErrors, InvalidSizesThrowUserErrorNamingTheArgument) {
  const auto window0 = user_error_message([] { make_axis_geometry(10, 0, 1, EdgeMode::valid); });
  EXPECT_NE(window0.find("window=0"), std::string::npos) << window0;
  const auto stride0 = user_error_message([] { make_axis_geometry(10, 2, 0, EdgeMode::valid); });
  EXPECT_NE(stride0.find("stride=0"), std::string::npos) << stride0;
  const auto stride_neg =
      user_error_message([] { make_axis_geometry(10, 2, -3, EdgeMode::cover); });
  EXPECT_NE(stride_neg.find("stride=-3"), std::string::npos) << stride_neg;
  const auto too_big = user_error_message([] { make_axis_geometry(10, 11, 1, EdgeMode::valid); });
  EXPECT_NE(too_big.find("window=11"), std::string::npos) << too_big;
  EXPECT_NE(too_big.find("10"), std::string::npos) << too_big;
  const auto length0 = user_error_message([] { make_axis_geometry(0, 1, 1, EdgeMode::valid); });
  EXPECT_NE(length0.find("length 0"), std::string::npos) << length0;
  EXPECT_THROW(make_axis_geometry(-4, 1, 1, EdgeMode::valid), std::invalid_argument);
}

TEST(GeometryErrors, WindowGridNamesTheFailingAxis) {
  const auto axis2 = user_error_message([] {
    make_grid({8, 8, 3}, {2, 2, 4}, {1, 1, 1}, all_axes(3, false));
  });
  EXPECT_NE(axis2.find("axis 2"), std::string::npos) << axis2;
  EXPECT_NE(axis2.find("window=4"), std::string::npos) << axis2;
  const auto axis4 = user_error_message([] {
    make_grid({2, 2, 2, 2, 2}, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 0}, all_axes(5, true));
  });
  EXPECT_NE(axis4.find("axis 4"), std::string::npos) << axis4;
  EXPECT_NE(axis4.find("stride=0"), std::string::npos) << axis4;
  const auto length = user_error_message([] {
    make_grid({3, 0}, {1, 1}, {1, 1}, all_axes(2, false));
  });
  EXPECT_NE(length.find("axis 1"), std::string::npos) << length;
}

TEST(GeometryErrors, RankMustBeOneToFiveAndPointersNonNull) {
  const std::int64_t ones[6] = {1, 1, 1, 1, 1, 1};
  const EdgeMode modes[6] = {};
  for (const int rank : {0, -1, 6}) {
    const auto msg = user_error_message(
        [&] { fastocclusion::make_window_grid(rank, ones, ones, ones, modes); });
    EXPECT_NE(msg.find("rank " + std::to_string(rank)), std::string::npos) << msg;
    EXPECT_NE(msg.find("1 to 5"), std::string::npos) << msg;
  }
  EXPECT_THROW(fastocclusion::make_window_grid(2, nullptr, ones, ones, modes), user_error);
  EXPECT_THROW(fastocclusion::make_window_grid(2, ones, ones, ones, nullptr), user_error);
  EXPECT_EQ(fastocclusion::make_window_grid(5, ones, ones, ones, modes).num_windows(), 1);
}

TEST(ParseEdgeMode, AcceptsExactlyValidAndCover) {
  EXPECT_EQ(fastocclusion::parse_edge_mode("valid"), EdgeMode::valid);
  EXPECT_EQ(fastocclusion::parse_edge_mode("cover"), EdgeMode::cover);
  EXPECT_STREQ(fastocclusion::edge_mode_name(EdgeMode::valid), "valid");
  EXPECT_STREQ(fastocclusion::edge_mode_name(EdgeMode::cover), "cover");
  for (const EdgeMode mode : {EdgeMode::valid, EdgeMode::cover}) {
    EXPECT_EQ(fastocclusion::parse_edge_mode(fastocclusion::edge_mode_name(mode)), mode);
  }
  for (const char* bad : {"Valid", "", "same", "cover "}) {
    const auto msg = user_error_message([bad] { fastocclusion::parse_edge_mode(bad); });
    EXPECT_NE(msg.find("edges"), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"valid\""), std::string::npos) << msg;
  }
}

TEST(ParseEdgeMode, ReadsTheWholeStringNotUpToTheFirstNul) {
  using namespace std::string_view_literals;
  for (const std::string_view bad : {"cover\0junk"sv, "valid\0"sv, "\0valid"sv, "\0"sv}) {
    const auto msg = user_error_message([bad] { fastocclusion::parse_edge_mode(bad); });
    EXPECT_NE(msg.find("edges="), std::string::npos) << msg;
    EXPECT_NE(msg.find("\\x00"), std::string::npos) << "NUL not shown escaped: " << msg;
    EXPECT_EQ(msg.find('\0'), std::string::npos) << "raw NUL in the message";
  }
  EXPECT_EQ(fastocclusion::parse_edge_mode(std::string("cover")), EdgeMode::cover);
  EXPECT_EQ(fastocclusion::parse_edge_mode("valid"sv), EdgeMode::valid);
}

}  // namespace

TEST(GeometryRegion, AnchorsStartAtTheRegionAndWindowsFitBeforeItsEnd) {
  // length 12, region [3, 11): valid windows of 3 at stride 2 start at 3, 5, 7 (the next,
  // 9, would end past 11); cover adds 9 clipped to [9, 11).
  const auto valid = make_axis_geometry(12, 3, 2, EdgeMode::valid, 0, 3, 11);
  EXPECT_EQ(valid.count, 3);
  EXPECT_EQ(valid.anchor(0), 3);
  EXPECT_EQ(valid.anchor(2), 7);
  EXPECT_EQ(valid.extent(2), 3);
  const auto cover = make_axis_geometry(12, 3, 2, EdgeMode::cover, 0, 3, 11);
  EXPECT_EQ(cover.count, 4);
  EXPECT_EQ(cover.anchor(3), 9);
  EXPECT_EQ(cover.extent(3), 2);
  // the region's end reached by the valid windows: nothing to add
  EXPECT_EQ(make_axis_geometry(12, 3, 2, EdgeMode::cover, 0, 3, 10).count, 3);
  EXPECT_FALSE(make_axis_geometry(5, 5, 1, EdgeMode::valid, 0, 0, 5).single_full_window() ==
               make_axis_geometry(6, 5, 1, EdgeMode::valid, 0, 1, 6).single_full_window());
  EXPECT_FALSE(valid == make_axis_geometry(12, 3, 2, EdgeMode::valid));
}

TEST(GeometryRegion, BadRegionsAreUserErrorsNamingTheAxis) {
  EXPECT_THROW(make_axis_geometry(10, 2, 1, EdgeMode::valid, 1, 4, 4), user_error);   // empty
  EXPECT_THROW(make_axis_geometry(10, 2, 1, EdgeMode::valid, 1, -1, 5), user_error);  // < 0
  EXPECT_THROW(make_axis_geometry(10, 2, 1, EdgeMode::valid, 1, 2, 11), user_error);  // > L
  const auto message = user_error_message([] { make_axis_geometry(10, 4, 1, EdgeMode::valid, 2, 3, 6); });
  EXPECT_NE(message.find("axis 2"), std::string::npos) << message;
  EXPECT_NE(message.find("its region (3)"), std::string::npos) << message;
}
