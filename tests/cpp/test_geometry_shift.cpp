// The "shift" edge mode (MONAI's sliding windows): the valid anchors plus one full window
// moved back to end at the region's end; against MONAI's dense_patch_slices written as a
// loop (naive::shift_spans), exhaustively on small axes, with regions, and on random N-d
// grids; equality, check_window_grid and the parser.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "fastocclusion/geometry.hpp"
#include "window_ops_support.hpp"

namespace {

using fastocclusion::AxisGeometry;
using fastocclusion::EdgeMode;
using fastocclusion::make_axis_geometry;
using fastocclusion::user_error;

std::vector<naive::Span> spans_of(const AxisGeometry& a) {
  std::vector<naive::Span> out;
  for (std::int64_t i = 0; i < a.count; ++i) out.push_back({a.anchor(i), a.extent(i)});
  return out;
}

bool same_spans(const std::vector<naive::Span>& a, const std::vector<naive::Span>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].anchor != b[i].anchor || a[i].extent != b[i].extent) return false;
  }
  return true;
}

TEST(ShiftGeometry, WorkedExamples) {
  // L = 11, w = 4, s = 3: valid anchors 0, 3, 6 leave 10 uncovered; one more window at 7.
  const auto a = make_axis_geometry(11, 4, 3, EdgeMode::shift);
  EXPECT_TRUE(same_spans(spans_of(a), {{0, 4}, {3, 4}, {6, 4}, {7, 4}}));
  EXPECT_TRUE(a.shifted());
  // L = 10: the valid windows reach the edge; nothing moves.
  const auto b = make_axis_geometry(10, 4, 3, EdgeMode::shift);
  EXPECT_TRUE(same_spans(spans_of(b), {{0, 4}, {3, 4}, {6, 4}}));
  EXPECT_FALSE(b.shifted());
  // One window over the whole axis, any stride.
  const auto c = make_axis_geometry(5, 5, 1000, EdgeMode::shift);
  EXPECT_TRUE(same_spans(spans_of(c), {{0, 5}}));
  // A region [2, 9) of 12: anchors 2, 4, then 9 - 3 = 6 (the stride's 6 already ends there).
  const auto d = make_axis_geometry(12, 3, 2, EdgeMode::shift, 0, 2, 9);
  EXPECT_TRUE(same_spans(spans_of(d), {{2, 3}, {4, 3}, {6, 3}}));
  const auto e = make_axis_geometry(12, 3, 3, EdgeMode::shift, 0, 2, 10);
  EXPECT_TRUE(same_spans(spans_of(e), {{2, 3}, {5, 3}, {7, 3}}));
  // Stride larger than the window (MONAI never has it; the core allows it).
  const auto f = make_axis_geometry(10, 2, 5, EdgeMode::shift);
  EXPECT_TRUE(same_spans(spans_of(f), {{0, 2}, {5, 2}, {8, 2}}));
}

TEST(ShiftGeometry, MatchesMonaiSlidingWindowsExhaustively) {
  for (std::int64_t length = 1; length <= 18; ++length) {
    for (std::int64_t begin = 0; begin < length; begin += 3) {
      for (std::int64_t end = begin + 1; end <= length; ++end) {
        for (std::int64_t w = 1; w <= end - begin; ++w) {
          for (std::int64_t s = 1; s <= w + 3; ++s) {
            const auto a = make_axis_geometry(length, w, s, EdgeMode::shift, 0, begin, end);
            ASSERT_TRUE(same_spans(spans_of(a), naive::shift_spans(w, s, begin, end)))
                << "length " << length << " region [" << begin << "," << end << ") w " << w
                << " s " << s;
            // Every position of the region is covered when s <= w; anchors increase.
            for (std::int64_t i = 1; i < a.count; ++i) ASSERT_LT(a.anchor(i - 1), a.anchor(i));
            if (s <= w) {
              for (std::int64_t x = begin; x < end; ++x) {
                bool covered = false;
                for (const naive::Span& sp : spans_of(a)) covered = covered || sp.contains(x);
                ASSERT_TRUE(covered) << x;
              }
            }
            EXPECT_NO_THROW(fastocclusion::check_window_grid(
                fastocclusion::WindowGrid{1, {a, {}, {}, {}, {}}}));
          }
        }
      }
    }
  }
}

TEST(ShiftGeometry, RandomGridsMatchTheNaiveGridWindowByWindow) {
  window_ops::Rng rng(41);
  for (int trial = 0; trial < 400; ++trial) {
    const window_ops::GridCase c = window_ops::random_grid_case(rng, trial);
    const fastocclusion::WindowGrid grid = c.grid();
    const naive::Grid expected = c.naive_grid();
    ASSERT_EQ(grid.num_windows(), expected.num_windows()) << c.describe();
    for (std::int64_t k = 0; k < grid.num_windows(); ++k) {
      const fastocclusion::Box box = grid.window_box(k);
      const std::vector<naive::Span> spans = expected.window(k);
      for (int d = 0; d < grid.rank; ++d) {
        ASSERT_EQ(box.begin[d], spans[static_cast<std::size_t>(d)].anchor) << c.describe();
        ASSERT_EQ(box.end[d] - box.begin[d], spans[static_cast<std::size_t>(d)].extent);
      }
    }
  }
}

TEST(ShiftGeometry, EqualityComparesTheWindows) {
  const auto valid = make_axis_geometry(10, 4, 3, EdgeMode::valid);
  EXPECT_TRUE(make_axis_geometry(10, 4, 3, EdgeMode::shift) == valid);  // adds nothing
  const auto shifted = make_axis_geometry(11, 4, 3, EdgeMode::shift);
  const auto cover = make_axis_geometry(11, 4, 3, EdgeMode::cover);
  EXPECT_EQ(shifted.count, cover.count);
  EXPECT_FALSE(shifted == cover);  // the same count, the last window elsewhere
}

TEST(ShiftGeometry, CheckWindowGridRejectsAMisplacedLastAnchor) {
  const auto good = make_axis_geometry(11, 4, 3, EdgeMode::shift);
  const auto rejects = [](AxisGeometry a) {
    EXPECT_THROW(fastocclusion::check_window_grid(fastocclusion::WindowGrid{1, {a, {}, {}, {}, {}}}),
                 user_error);
  };
  AxisGeometry a = good;
  a.last = 8;  // past end - window
  rejects(a);
  a = good;
  a.last = 6;  // not past the previous anchor
  rejects(a);
  a = good;
  a.count = 5;  // a stride anchor at 9 + 4 > 11
  rejects(a);
  a = make_axis_geometry(11, 4, 3, EdgeMode::valid);
  a.last = 5;  // neither on the stride nor at end - window
  rejects(a);
}

TEST(ShiftGeometry, ParseAndName) {
  EXPECT_EQ(fastocclusion::parse_edge_mode("shift"), EdgeMode::shift);
  EXPECT_STREQ(fastocclusion::edge_mode_name(EdgeMode::shift), "shift");
  EXPECT_THROW(fastocclusion::parse_edge_mode("Shift"), user_error);
}

}  // namespace
