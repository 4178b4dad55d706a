// Patch geometry (SPEC §2, §5): anchors, extents, edge modes, enumeration order, errors.
#include "fastocclusion/geometry.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "naive_reference.hpp"

namespace {

using fastocclusion::EdgeMode;
using fastocclusion::make_axis_geometry;
using fastocclusion::make_patch_grid;
using fastocclusion::user_error;

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

// The message of the user_error thrown by `fn`, failing the test if none is thrown.
template <class Fn>
std::string user_error_message(Fn&& fn) {
  try {
    fn();
  } catch (const user_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a fastocclusion::user_error";
  return {};
}

TEST(Geometry, SpecExampleLength10Patch2Stride3) {
  const auto axis = make_axis_geometry(10, 2, 3, EdgeMode::valid);
  EXPECT_EQ(anchors_of(axis), (std::vector<std::int64_t>{0, 3, 6}));
  EXPECT_EQ(extents_of(axis), (std::vector<std::int64_t>{2, 2, 2}));
  const auto grid = make_patch_grid(10, 10, 2, 2, 3, 3, EdgeMode::valid);
  EXPECT_EQ(grid.num_patches(), 9);
}

TEST(Geometry, SpecExample2x2ImagePatch1Stride1IsRowMajor) {
  const auto grid = make_patch_grid(2, 2, 1, 1, 1, 1, EdgeMode::valid);
  ASSERT_EQ(grid.num_patches(), 4);
  const std::int64_t expected[4][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
  for (std::int64_t k = 0; k < 4; ++k) {
    EXPECT_EQ(grid.rows.anchor(k / grid.cols.count), expected[k][0]) << "patch " << k;
    EXPECT_EQ(grid.cols.anchor(k % grid.cols.count), expected[k][1]) << "patch " << k;
  }
}

TEST(Geometry, ValidLeavesFarEdgeUncovered) {
  // L=10, p=3, s=4: anchors 0, 4; positions 3 and 7..9 are covered by no patch.
  const auto axis = make_axis_geometry(10, 3, 4, EdgeMode::valid);
  EXPECT_EQ(anchors_of(axis), (std::vector<std::int64_t>{0, 4}));
}

TEST(Geometry, CoverAddsOneClippedPatchWhenFarEdgeIsUncovered) {
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
}

TEST(Geometry, CoverAddsNothingWhenTheNextAnchorLiesOutside) {
  // L=11, p=2, s=4: valid 0, 4, 8 ends at 10 < 11, but the next anchor 12 is outside.
  const auto axis = make_axis_geometry(11, 2, 4, EdgeMode::cover);
  EXPECT_EQ(anchors_of(axis), (std::vector<std::int64_t>{0, 4, 8}));
}

TEST(Geometry, BothModesMatchNaiveWalkExhaustively) {
  for (std::int64_t length = 1; length <= 24; ++length) {
    for (std::int64_t patch = 1; patch <= length; ++patch) {
      for (std::int64_t stride = 1; stride <= length + 2; ++stride) {
        for (const bool cover : {false, true}) {
          const auto axis = make_axis_geometry(length, patch, stride,
                                               cover ? EdgeMode::cover : EdgeMode::valid);
          const auto spans = naive::axis_spans(length, patch, stride, cover);
          ASSERT_EQ(axis.count, static_cast<std::int64_t>(spans.size()))
              << "L=" << length << " p=" << patch << " s=" << stride << " cover=" << cover;
          for (std::int64_t i = 0; i < axis.count; ++i) {
            const auto& span = spans[static_cast<std::size_t>(i)];
            ASSERT_EQ(axis.anchor(i), span.anchor) << "L=" << length << " i=" << i;
            ASSERT_EQ(axis.extent(i), span.extent) << "L=" << length << " i=" << i;
          }
          EXPECT_EQ(axis.length, length);
          EXPECT_EQ(axis.patch, patch);
          EXPECT_EQ(axis.stride, stride);
        }
      }
    }
  }
}

TEST(Geometry, CoverCoversEveryPositionWhenStrideIsAtMostPatch) {
  for (std::int64_t length = 1; length <= 24; ++length) {
    for (std::int64_t patch = 1; patch <= length; ++patch) {
      for (std::int64_t stride = 1; stride <= patch; ++stride) {
        const auto axis = make_axis_geometry(length, patch, stride, EdgeMode::cover);
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
              << "L=" << length << " p=" << patch << " s=" << stride << " x=" << x;
        }
      }
    }
  }
}

TEST(Geometry, PatchGridCombinesIndependentAxes) {
  const auto grid = make_patch_grid(7, 12, 3, 5, 2, 4, EdgeMode::valid);
  EXPECT_EQ(grid.height(), 7);
  EXPECT_EQ(grid.width(), 12);
  EXPECT_EQ(grid.rows.count, static_cast<std::int64_t>(naive::axis_spans(7, 3, 2, false).size()));
  EXPECT_EQ(grid.cols.count,
            static_cast<std::int64_t>(naive::axis_spans(12, 5, 4, false).size()));
  EXPECT_EQ(grid.num_patches(), grid.rows.count * grid.cols.count);
}

TEST(Geometry, OnePatchWhenPatchEqualsInput) {
  const auto grid = make_patch_grid(5, 9, 5, 9, 1, 3, EdgeMode::cover);
  EXPECT_EQ(grid.num_patches(), 1);
  EXPECT_EQ(grid.rows.extent(0), 5);
  EXPECT_EQ(grid.cols.extent(0), 9);
}

TEST(GeometryErrors, InvalidSizesThrowUserErrorNamingTheArgument) {
  const auto patch0 = user_error_message([] { make_axis_geometry(10, 0, 1, EdgeMode::valid); });
  EXPECT_NE(patch0.find("patch_size=0"), std::string::npos) << patch0;
  const auto stride0 = user_error_message([] { make_axis_geometry(10, 2, 0, EdgeMode::valid); });
  EXPECT_NE(stride0.find("patch_stride=0"), std::string::npos) << stride0;
  const auto stride_neg =
      user_error_message([] { make_axis_geometry(10, 2, -3, EdgeMode::cover); });
  EXPECT_NE(stride_neg.find("patch_stride=-3"), std::string::npos) << stride_neg;
  const auto too_big = user_error_message([] { make_axis_geometry(10, 11, 1, EdgeMode::valid); });
  EXPECT_NE(too_big.find("patch_size=11"), std::string::npos) << too_big;
  EXPECT_NE(too_big.find("10"), std::string::npos) << too_big;
  const auto length0 = user_error_message([] { make_axis_geometry(0, 1, 1, EdgeMode::valid); });
  EXPECT_NE(length0.find("0"), std::string::npos) << length0;
  EXPECT_THROW(make_axis_geometry(-4, 1, 1, EdgeMode::valid), std::invalid_argument);
}

TEST(GeometryErrors, PatchGridNamesTheFailingAxis) {
  const auto width_error = user_error_message([] {
    make_patch_grid(8, 8, 2, 9, 1, 1, EdgeMode::valid);
  });
  EXPECT_NE(width_error.find("width"), std::string::npos) << width_error;
  EXPECT_NE(width_error.find("patch_size=9"), std::string::npos) << width_error;
  const auto height_error = user_error_message([] {
    make_patch_grid(8, 8, 2, 2, 0, 1, EdgeMode::valid);
  });
  EXPECT_NE(height_error.find("height"), std::string::npos) << height_error;
}

TEST(ParseEdgeMode, AcceptsExactlyValidAndCover) {
  EXPECT_EQ(fastocclusion::parse_edge_mode("valid"), EdgeMode::valid);
  EXPECT_EQ(fastocclusion::parse_edge_mode("cover"), EdgeMode::cover);
  for (const char* bad : {"Valid", "", "same", "cover "}) {
    const auto msg = user_error_message([bad] { fastocclusion::parse_edge_mode(bad); });
    EXPECT_NE(msg.find("edges"), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"valid\""), std::string::npos) << msg;
  }
  EXPECT_THROW(fastocclusion::parse_edge_mode(nullptr), std::invalid_argument);
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

// Anchor count of SPEC §2/§5 in unsigned 64-bit arithmetic, where every intermediate below
// (at most 2^64 - 2 for sizes in [1, 2^63)) fits: the oracle for sizes near int64's limit.
std::int64_t wide_count(std::int64_t length, std::int64_t patch, std::int64_t stride, bool cover) {
  using Wide = std::uint64_t;
  const Wide l = static_cast<Wide>(length), p = static_cast<Wide>(patch), s = static_cast<Wide>(stride);
  Wide count = (l - p + 1 + s - 1) / s;  // ceil((L - p + 1) / s)
  const Wide last = (count - 1) * s;
  if (cover && last + p < l && last + s < l) count += 1;
  return static_cast<std::int64_t>(count);
}

TEST(Geometry, HugeSizesAndStridesCountWithoutOverflow) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  // The cases of the reliability issue: a stride past the axis gives one anchor.
  EXPECT_EQ(make_patch_grid(10, 10, 1, 1, kMax, 1, EdgeMode::valid).rows.count, 1);
  for (const EdgeMode mode : {EdgeMode::valid, EdgeMode::cover}) {
    const auto grid = make_patch_grid(10, 10, 3, 3, kMax - 5, kMax - 5, mode);
    EXPECT_EQ(grid.rows.count, 1);
    EXPECT_EQ(grid.cols.count, 1);
    EXPECT_EQ(grid.num_patches(), 1);
  }
  // Random sizes, patches and strides near the limit, against the 128-bit oracle.
  std::mt19937_64 rng(99);
  const auto near_max = [&rng](std::int64_t lo) {
    const std::int64_t pick[] = {1, 2, 3, lo, kMax / 2, kMax / 2 + 1, kMax - 7, kMax - 1, kMax};
    std::int64_t v = pick[rng() % 9] - static_cast<std::int64_t>(rng() % 4);
    return v < lo ? lo : v;
  };
  for (int trial = 0; trial < 4000; ++trial) {
    const std::int64_t length = near_max(1);
    std::int64_t patch = near_max(1);
    if (patch > length) patch = length - static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(length));
    const std::int64_t stride = near_max(1);
    for (const bool cover : {false, true}) {
      const auto axis = make_axis_geometry(length, patch, stride,
                                           cover ? EdgeMode::cover : EdgeMode::valid);
      ASSERT_EQ(axis.count, wide_count(length, patch, stride, cover))
          << "length=" << length << " patch=" << patch << " stride=" << stride
          << " cover=" << cover;
      ASSERT_LE(axis.anchor(axis.count - 1), length - 1);
      ASSERT_GE(axis.extent(axis.count - 1), 1);
    }
  }
}

TEST(Geometry, PatchCountPastInt64IsAUserErrorNamingTheStride) {
  const std::int64_t big = std::int64_t{1} << 62;
  const auto msg = user_error_message([big] { make_patch_grid(big, big, 1, 1, 1, 1, EdgeMode::valid); });
  EXPECT_NE(msg.find("patch_stride=(1, 1)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("int64"), std::string::npos) << msg;
  EXPECT_THROW(make_patch_grid(big, 4, 1, 1, 1, 1, EdgeMode::cover), user_error);  // 2^64
  // Just below the limit: 2^62 x 1 and 2^31 x 2^31 patches are fine.
  EXPECT_EQ(make_patch_grid(big, 4, 1, 4, 1, 1, EdgeMode::valid).num_patches(), big);
  const std::int64_t half = std::int64_t{1} << 31;
  EXPECT_EQ(make_patch_grid(half, half, 1, 1, 1, 1, EdgeMode::valid).num_patches(), big);
}

TEST(CheckedMultiply, DetectsEveryOverflowOfNonNegativeOperands) {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
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

TEST(ValidateShape, RejectsNonPositiveAndOverflowingSizes) {
  EXPECT_NO_THROW(fastocclusion::validate_shape({1, 1, 1, 1}));
  const auto msg = user_error_message([] { fastocclusion::validate_shape({2, 0, 3, 1}, "x"); });
  EXPECT_NE(msg.find("x: shape (2, 0, 3, 1)"), std::string::npos) << msg;
  EXPECT_THROW(fastocclusion::validate_shape({1, 1, 1, -1}), user_error);
  const std::int64_t big = std::int64_t{1} << 20;
  EXPECT_THROW(fastocclusion::validate_shape({big, big, big, 1}), user_error);
}

}  // namespace
