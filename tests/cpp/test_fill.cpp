// fill_occluded_batch against the naive element-by-element oracle (SPEC §1, §2, §5).
#include "fastocclusion/fill.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "test_support.hpp"

namespace {

using fastocclusion::InputShape;
using fastocclusion::user_error;
using test_support::FillCase;
using test_support::kAllLayouts;
using test_support::same_floats;

constexpr float kSentinel = -12345.0f;

// Fills [start, start + count) into a buffer with one spare slot and checks: the slots
// match the oracle, the spare slot is untouched, and the inputs are not modified.
void check_slice(const FillCase& fc, std::int64_t start, std::int64_t count) {
  SCOPED_TRACE(fc.describe() + " start=" + std::to_string(start) +
               " count=" + std::to_string(count));
  const std::int64_t image = fc.shape.image_size();
  std::vector<float> batch(static_cast<std::size_t>((count + 1) * image), kSentinel);
  const std::vector<float> inputs_before = fc.inputs;
  fastocclusion::fill_occluded_batch(fc.inputs.data(), fc.shape, fc.grid(), fc.core_baseline(),
                                     start, count, batch.data());
  const std::vector<float> expected = fc.expected(start, count);
  EXPECT_TRUE(same_floats(batch.data(), expected.data(), count * image));
  const std::vector<float> spare(static_cast<std::size_t>(image), kSentinel);
  EXPECT_TRUE(same_floats(batch.data() + count * image, spare.data(), image))
      << "wrote past count slots";
  EXPECT_TRUE(same_floats(fc.inputs.data(), inputs_before.data(),
                          static_cast<std::int64_t>(fc.inputs.size())))
      << "modified the inputs";
}

TEST(Fill, RandomCasesMatchNaive) {
  test_support::Rng rng(20240601);
  for (int trial = 0; trial < 300; ++trial) {
    const auto layout = kAllLayouts[trial % 4];
    const FillCase fc = test_support::random_case(rng, layout);
    const std::int64_t total = fc.stream_size();
    const std::int64_t start = test_support::uniform_int(rng, 0, total - 1);
    const std::int64_t count = test_support::uniform_int(rng, 1, total - start);
    check_slice(fc, start, count);
  }
}

TEST(Fill, WholeStreamInOneCall) {
  test_support::Rng rng(7);
  for (const auto layout : kAllLayouts) {
    const FillCase fc = test_support::make_case(rng, {3, 9, 7, 3}, 3, 2, 2, 3, true, layout);
    check_slice(fc, 0, fc.stream_size());
  }
}

TEST(Fill, LargeBatchTakesTheParallelPath) {
  // 64 slots of 32x32x16 floats: well above the library's threading threshold.
  test_support::Rng rng(8);
  const FillCase fc = test_support::make_case(rng, {2, 32, 32, 16}, 5, 6, 3, 4, false,
                                              naive::BaselineLayout::per_input);
  check_slice(fc, 17, 64);
}

TEST(Fill, PatchEqualsInputOccludesEverything) {
  test_support::Rng rng(9);
  for (const auto layout : kAllLayouts) {
    const FillCase fc = test_support::make_case(rng, {2, 5, 4, 3}, 5, 4, 1, 2, false, layout);
    ASSERT_EQ(fc.stream_size(), 2);
    check_slice(fc, 0, 2);
  }
}

TEST(Fill, StrideLargerThanPatch) {
  test_support::Rng rng(10);
  for (const bool cover : {false, true}) {
    for (const auto layout : kAllLayouts) {
      const FillCase fc = test_support::make_case(rng, {2, 11, 13, 2}, 2, 3, 5, 4, cover, layout);
      check_slice(fc, 0, fc.stream_size());
    }
  }
}

TEST(Fill, OneByOneInput) {
  test_support::Rng rng(11);
  for (const auto layout : kAllLayouts) {
    const FillCase fc = test_support::make_case(rng, {3, 1, 1, 1}, 1, 1, 1, 1, true, layout);
    check_slice(fc, 0, 3);
    check_slice(fc, 1, 1);
  }
}

TEST(Fill, OneAndSixteenChannelsWithOneInput) {
  test_support::Rng rng(12);
  for (const std::int64_t c : {1, 16}) {
    for (const auto layout : kAllLayouts) {
      const FillCase fc = test_support::make_case(rng, {1, 6, 10, c}, 3, 4, 2, 3, true, layout);
      check_slice(fc, 0, fc.stream_size());
      check_slice(fc, fc.stream_size() - 1, 1);
    }
  }
}

TEST(Fill, TabularAndTimeSeriesViews) {
  test_support::Rng rng(13);
  // Tabular (N, W) as (N, 1, W, 1) with patch (1, p); time series (N, T, W) as (N, T, W, 1).
  const FillCase tabular = test_support::make_case(rng, {4, 1, 17, 1}, 1, 3, 1, 2, false,
                                                   naive::BaselineLayout::scalar);
  check_slice(tabular, 0, tabular.stream_size());
  const FillCase series = test_support::make_case(rng, {2, 9, 5, 1}, 4, 5, 3, 1, true,
                                                  naive::BaselineLayout::per_image);
  check_slice(series, 0, series.stream_size());
}

TEST(Fill, EmptySliceWritesNothingAndAcceptsEndOfStream) {
  test_support::Rng rng(14);
  const FillCase fc = test_support::make_case(rng, {2, 4, 4, 1}, 2, 2, 2, 2, false,
                                              naive::BaselineLayout::scalar);
  check_slice(fc, fc.stream_size(), 0);
  check_slice(fc, 0, 0);
}

class FillErrors : public ::testing::Test {
 protected:
  test_support::Rng rng_{15};
  FillCase fc_ = test_support::make_case(rng_, {2, 6, 6, 3}, 2, 2, 2, 2, false,
                                         naive::BaselineLayout::per_channel);
  std::vector<float> batch_ = std::vector<float>(static_cast<std::size_t>(100 * 6 * 6 * 3));

  std::string message(std::int64_t start, std::int64_t count) {
    try {
      fastocclusion::fill_occluded_batch(fc_.inputs.data(), fc_.shape, fc_.grid(),
                                         fc_.core_baseline(), start, count, batch_.data());
    } catch (const user_error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no user_error for start=" << start << " count=" << count;
    return {};
  }
};

TEST_F(FillErrors, StartOrCountPastTheStreamEnd) {
  const std::int64_t total = fc_.stream_size();  // 2 inputs x 9 patches
  ASSERT_EQ(total, 18);
  const std::string past_start = message(total + 1, 0);
  EXPECT_NE(past_start.find("start=19"), std::string::npos) << past_start;
  EXPECT_NE(past_start.find("18"), std::string::npos) << past_start;
  const std::string past_count = message(total - 1, 2);
  EXPECT_NE(past_count.find("count=2"), std::string::npos) << past_count;
  EXPECT_NE(message(0, total + 1).find("count="), std::string::npos);
  EXPECT_NE(message(-1, 1).find("start=-1"), std::string::npos);
  EXPECT_NE(message(0, -1).find("count=-1"), std::string::npos);
}

TEST_F(FillErrors, GridShapeMismatch) {
  const auto grid = fastocclusion::make_patch_grid(7, 6, 2, 2, 2, 2,
                                                   fastocclusion::EdgeMode::valid);
  try {
    fastocclusion::fill_occluded_batch(fc_.inputs.data(), fc_.shape, grid, fc_.core_baseline(),
                                       0, 1, batch_.data());
    FAIL() << "no error for a grid of another plane";
  } catch (const user_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("(7, 6)"), std::string::npos) << what;
    EXPECT_NE(what.find("(6, 6)"), std::string::npos) << what;
  }
}

TEST_F(FillErrors, InvalidShapeAndNullPointers) {
  InputShape bad = fc_.shape;
  bad.c = 0;
  EXPECT_THROW(fastocclusion::fill_occluded_batch(fc_.inputs.data(), bad, fc_.grid(),
                                                  fc_.core_baseline(), 0, 1, batch_.data()),
               user_error);
  EXPECT_THROW(fastocclusion::fill_occluded_batch(nullptr, fc_.shape, fc_.grid(),
                                                  fc_.core_baseline(), 0, 1, batch_.data()),
               user_error);
  EXPECT_THROW(fastocclusion::fill_occluded_batch(fc_.inputs.data(), fc_.shape, fc_.grid(),
                                                  {fastocclusion::BaselineKind::scalar, nullptr},
                                                  0, 1, batch_.data()),
               user_error);
  EXPECT_THROW(fastocclusion::fill_occluded_batch(fc_.inputs.data(), fc_.shape, fc_.grid(),
                                                  fc_.core_baseline(), 0, 1, nullptr),
               user_error);
}

// Sizes past int64 are user errors before anything is written: a stream of n * K pairs from
// a hand-built grid, and a batch of count * h*w*c floats that validate_shape alone allows.
TEST(FillOverflow, StreamAndBatchSizesPastInt64AreUserErrors) {
  std::vector<float> dummy(16, 0.0f);
  const float* p = dummy.data();
  auto grid = fastocclusion::make_patch_grid(8, 8, 1, 1, 1, 1, fastocclusion::EdgeMode::valid);
  grid.rows.count = std::int64_t{1} << 40;  // hand-built: 2^80 patches
  grid.cols.count = std::int64_t{1} << 40;
  try {
    fastocclusion::check_fill_arguments(p, {2, 8, 8, 1}, grid, true, 0, 1, dummy.data());
    FAIL() << "no error for a stream of 2^81 pairs";
  } catch (const user_error& e) {
    EXPECT_NE(std::string(e.what()).find("overflows int64"), std::string::npos) << e.what();
  }
  const std::int64_t h = std::int64_t{1} << 20, c = std::int64_t{1} << 21;
  const InputShape tall{1, h, 1, c};  // 2^41 floats per input: a valid shape
  ASSERT_NO_THROW(fastocclusion::validate_shape(tall));
  const auto column = fastocclusion::make_patch_grid(h, 1, 1, 1, 1, 1,
                                                     fastocclusion::EdgeMode::valid);
  try {  // 2^20 slots of 2^41 floats: 2^61 floats
    fastocclusion::check_fill_arguments(p, tall, column, true, 0, h, dummy.data());
    FAIL() << "no error for a batch of 2^61 floats";
  } catch (const user_error& e) {
    EXPECT_NE(std::string(e.what()).find("count=1048576"), std::string::npos) << e.what();
  }
  std::vector<float> batch(16);
  fastocclusion::IncrementalFillState state;
  EXPECT_THROW(fastocclusion::fill_occluded_batch_incremental(p, tall, column, {fastocclusion::BaselineKind::scalar, p},
                                                              0, h, batch.data(), h, state),
               user_error);
  EXPECT_NO_THROW(fastocclusion::check_fill_arguments(p, tall, column, true, 0, 1, dummy.data()));
}

}  // namespace
