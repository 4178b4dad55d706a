// fill_occluded_batch against the naive element-by-element oracle (design §1, §2, §5, §7).
#include "fastocclusion/fill.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "test_support.hpp"

namespace {

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
  const std::int64_t sample = fc.sample();
  std::vector<float> batch(static_cast<std::size_t>((count + 1) * sample), kSentinel);
  const std::vector<float> inputs_before = fc.inputs;
  const std::vector<float> baseline_before = fc.baseline;
  fastocclusion::fill_occluded_batch(fc.inputs.data(), fc.n, fc.grid(), fc.core_baseline(), start,
                                     count, batch.data());
  const std::vector<float> expected = fc.expected(start, count);
  EXPECT_TRUE(same_floats(batch.data(), expected.data(), count * sample));
  const std::vector<float> spare(static_cast<std::size_t>(sample), kSentinel);
  EXPECT_TRUE(same_floats(batch.data() + count * sample, spare.data(), sample))
      << "wrote past count slots";
  EXPECT_TRUE(same_floats(fc.inputs.data(), inputs_before.data(),
                          static_cast<std::int64_t>(fc.inputs.size())))
      << "modified the inputs";
  EXPECT_EQ(fc.baseline, baseline_before) << "modified the baseline";
}

TEST(Fill, RandomCasesOfRankOneToFiveMatchNaive) {
  test_support::Rng rng(20240601);
  for (int trial = 0; trial < 400; ++trial) {
    const auto layout = kAllLayouts[trial % 3];
    const FillCase fc = test_support::random_case(rng, layout, 1 + trial / 3 % 5);
    const std::int64_t total = fc.stream_size();
    const std::int64_t start = test_support::uniform_int(rng, 0, total - 1);
    const std::int64_t count = test_support::uniform_int(rng, 1, total - start);
    check_slice(fc, start, count);
  }
}

TEST(Fill, WholeStreamInOneCallForEveryRank) {
  test_support::Rng rng(7);
  for (const auto layout : kAllLayouts) {
    const FillCase image = test_support::image_case(rng, 3, 9, 7, 3, 3, 2, 2, 3, true, layout);
    ASSERT_EQ(image.stream_size(), 3 * 4 * 3);
    check_slice(image, 0, image.stream_size());
    for (int rank = 1; rank <= fastocclusion::kMaxAxes; ++rank) {
      const FillCase fc = test_support::random_case(rng, layout, rank);
      check_slice(fc, 0, fc.stream_size());
    }
  }
}

TEST(Fill, LargeBatchTakesTheParallelPath) {
  // 64 slots of 32x32x16 floats: well above the library's threading threshold.
  test_support::Rng rng(8);
  const FillCase image = test_support::image_case(rng, 2, 32, 32, 16, 5, 6, 3, 4, false,
                                                  naive::BaselineLayout::per_input);
  check_slice(image, 17, 64);
  // A volume (D, H, W, C) with 3-D windows, 48 slots of 16x16x16x4 floats.
  const FillCase volume = test_support::make_case(rng, 2, {16, 16, 16, 4}, {5, 4, 6, 4},
                                                  {3, 4, 5, 4}, {true, false, true, false},
                                                  naive::BaselineLayout::per_sample);
  check_slice(volume, 5, 48);
}

TEST(Fill, WindowEqualsSampleOccludesEverything) {
  test_support::Rng rng(9);
  for (const auto layout : kAllLayouts) {
    const FillCase image = test_support::image_case(rng, 2, 5, 4, 3, 5, 4, 1, 2, false, layout);
    ASSERT_EQ(image.stream_size(), 2);
    check_slice(image, 0, 2);
    const FillCase five = test_support::make_case(rng, 2, {2, 3, 1, 2, 2}, {2, 3, 1, 2, 2},
                                                  {1, 1, 1, 1, 1}, test_support::all_axes(5, true),
                                                  layout);
    ASSERT_EQ(five.stream_size(), 2);
    check_slice(five, 0, 2);
  }
}

TEST(Fill, StrideLargerThanWindow) {
  test_support::Rng rng(10);
  for (const bool cover : {false, true}) {
    for (const auto layout : kAllLayouts) {
      const FillCase fc = test_support::image_case(rng, 2, 11, 13, 2, 2, 3, 5, 4, cover, layout);
      check_slice(fc, 0, fc.stream_size());
      const FillCase volume = test_support::make_case(rng, 2, {9, 8, 7}, {2, 1, 3}, {4, 5, 6},
                                                      test_support::all_axes(3, cover), layout);
      check_slice(volume, 0, volume.stream_size());
    }
  }
}

TEST(Fill, OneElementSamples) {
  test_support::Rng rng(11);
  for (const auto layout : kAllLayouts) {
    for (int rank = 1; rank <= fastocclusion::kMaxAxes; ++rank) {
      const naive::Shape ones(static_cast<std::size_t>(rank), 1);
      const FillCase fc = test_support::make_case(rng, 3, ones, ones, ones,
                                                  test_support::all_axes(ones.size(), true), layout);
      ASSERT_EQ(fc.stream_size(), 3);
      check_slice(fc, 0, 3);
      check_slice(fc, 1, 1);
    }
  }
}

TEST(Fill, OneAndSixteenChannelsWithOneInput) {
  test_support::Rng rng(12);
  for (const std::int64_t c : {1, 16}) {
    for (const auto layout : kAllLayouts) {
      const FillCase fc = test_support::image_case(rng, 1, 6, 10, c, 3, 4, 2, 3, true, layout);
      check_slice(fc, 0, fc.stream_size());
      check_slice(fc, fc.stream_size() - 1, 1);
    }
  }
}

// ---- the families of design §7 give the 2-D definition's samples ------------------------------

// The per-sample baseline that broadcasts a per-channel one over (H, W, C).
std::vector<float> broadcast_channels(const std::vector<float>& channels, std::int64_t h,
                                      std::int64_t w) {
  std::vector<float> out;
  for (std::int64_t p = 0; p < h * w; ++p) out.insert(out.end(), channels.begin(), channels.end());
  return out;
}

TEST(FillFamilies, ImagesWithChannelWideWindowsEqualThePlanarFill) {
  test_support::Rng rng(16);
  using Planar = naive::planar::Baseline;
  for (int trial = 0; trial < 80; ++trial) {
    const std::int64_t n = test_support::uniform_int(rng, 1, 3);
    const std::int64_t h = test_support::uniform_int(rng, 1, 10);
    const std::int64_t w = test_support::uniform_int(rng, 1, 10);
    const std::int64_t c = test_support::uniform_int(rng, 1, 4);
    const std::int64_t ph = test_support::uniform_int(rng, 1, h);
    const std::int64_t pw = test_support::uniform_int(rng, 1, w);
    const std::int64_t sh = test_support::uniform_int(rng, 1, ph + 3);
    const std::int64_t sw = test_support::uniform_int(rng, 1, pw + 3);
    const bool cover = trial % 2 == 0;
    const auto grid = test_support::make_grid({h, w, c}, {ph, pw, c}, {sh, sw, c},
                                              test_support::all_axes(3, cover));
    const auto planar = naive::planar::make_grid(h, w, ph, pw, sh, sw, cover);
    const std::int64_t total = n * planar.num_patches(), sample = h * w * c;
    ASSERT_EQ(n * grid.num_windows(), total);
    const auto inputs = test_support::random_floats(rng, n * sample);
    // The four baselines of the 2-D API; per-channel is the caller's broadcast now.
    const Planar kinds[] = {Planar::scalar, Planar::per_channel, Planar::per_image,
                            Planar::per_input};
    const Planar kind = kinds[trial % 4];
    const std::int64_t sizes[] = {1, c, sample, n * sample};
    const auto values = test_support::random_floats(rng, sizes[trial % 4], 2.0f, 3.0f);
    fastocclusion::Baseline baseline{fastocclusion::BaselineKind::scalar, values.data()};
    std::vector<float> broadcast;
    if (kind == Planar::per_channel) {
      broadcast = broadcast_channels(values, h, w);
      baseline = {fastocclusion::BaselineKind::per_sample, broadcast.data()};
    } else if (kind == Planar::per_image) {
      baseline.kind = fastocclusion::BaselineKind::per_sample;
    } else if (kind == Planar::per_input) {
      baseline.kind = fastocclusion::BaselineKind::per_input;
    }
    std::vector<float> batch(static_cast<std::size_t>(total * sample));
    fastocclusion::fill_occluded_batch(inputs.data(), n, grid, baseline, 0, total, batch.data());
    const auto expected = naive::planar::fill(inputs, h, w, c, planar, kind, values, 0, total);
    ASSERT_TRUE(same_floats(batch.data(), expected.data(), total * sample))
        << "trial " << trial << " (" << h << "," << w << "," << c << ") patch (" << ph << ","
        << pw << ") stride (" << sh << "," << sw << ") cover=" << cover;
  }
}

TEST(FillFamilies, TimeSeriesAndTabularEqualThePlanarFill) {
  test_support::Rng rng(13);
  // Tabular (W,) windows (pw,): the 2-D fill of (N, 1, W, 1) with patch (1, pw).
  const FillCase tabular = test_support::make_case(rng, 4, {17}, {3}, {2}, {false},
                                                   naive::BaselineLayout::scalar);
  check_slice(tabular, 0, tabular.stream_size());
  const auto row = naive::planar::make_grid(1, 17, 1, 3, 1, 2, false);
  const auto tabular_planar = naive::planar::fill(tabular.inputs, 1, 17, 1, row,
                                                  naive::planar::Baseline::scalar,
                                                  tabular.baseline, 0, tabular.stream_size());
  std::vector<float> batch(tabular_planar.size());
  fastocclusion::fill_occluded_batch(tabular.inputs.data(), 4, tabular.grid(),
                                     tabular.core_baseline(), 0, tabular.stream_size(), batch.data());
  EXPECT_TRUE(same_floats(batch.data(), tabular_planar.data(), static_cast<std::int64_t>(batch.size())));
  // Time series (T, W) windows (pt, pw): the 2-D fill of (N, T, W, 1).
  const FillCase series = test_support::make_case(rng, 2, {9, 5}, {4, 5}, {3, 1}, {true, true},
                                                  naive::BaselineLayout::per_sample);
  check_slice(series, 0, series.stream_size());
  const auto plane = naive::planar::make_grid(9, 5, 4, 5, 3, 1, true);
  const auto series_planar = naive::planar::fill(series.inputs, 9, 5, 1, plane,
                                                 naive::planar::Baseline::per_image,
                                                 series.baseline, 0, series.stream_size());
  batch.assign(series_planar.size(), 0.0f);
  fastocclusion::fill_occluded_batch(series.inputs.data(), 2, series.grid(),
                                     series.core_baseline(), 0, series.stream_size(), batch.data());
  EXPECT_TRUE(same_floats(batch.data(), series_planar.data(), static_cast<std::int64_t>(batch.size())));
}

TEST(Fill, SpecExample2x2ImageOccludesPixelsInRowMajorOrder) {
  const std::vector<float> inputs = {1, 2, 3, 4};  // one (2, 2, 1) image
  const auto grid = test_support::make_grid({2, 2, 1}, {1, 1, 1}, {1, 1, 1},
                                            test_support::all_axes(3, false));
  const float zero = 0.0f;
  std::vector<float> batch(16, -1.0f);
  fastocclusion::fill_occluded_batch(inputs.data(), 1, grid,
                                     {fastocclusion::BaselineKind::scalar, &zero}, 0, 4,
                                     batch.data());
  const std::vector<float> expected = {0, 2, 3, 4, 1, 0, 3, 4, 1, 2, 0, 4, 1, 2, 3, 0};
  EXPECT_EQ(batch, expected);
}

TEST(Fill, EmptySliceWritesNothingAndAcceptsEndOfStream) {
  test_support::Rng rng(14);
  const FillCase fc = test_support::image_case(rng, 2, 4, 4, 1, 2, 2, 2, 2, false,
                                               naive::BaselineLayout::scalar);
  check_slice(fc, fc.stream_size(), 0);
  check_slice(fc, 0, 0);
  // count 0 needs no pointers at all.
  EXPECT_NO_THROW(fastocclusion::fill_occluded_batch(nullptr, fc.n, fc.grid(),
                                                     {fastocclusion::BaselineKind::scalar, nullptr},
                                                     0, 0, nullptr));
}

class FillErrors : public ::testing::Test {
 protected:
  test_support::Rng rng_{15};
  FillCase fc_ = test_support::image_case(rng_, 2, 6, 6, 3, 2, 2, 2, 2, false,
                                          naive::BaselineLayout::per_sample);
  std::vector<float> batch_ = std::vector<float>(static_cast<std::size_t>(100 * 6 * 6 * 3));

  std::string message(std::int64_t start, std::int64_t count) {
    return test_support::user_error_message([&] {
      fastocclusion::fill_occluded_batch(fc_.inputs.data(), fc_.n, fc_.grid(), fc_.core_baseline(),
                                         start, count, batch_.data());
    });
  }
};

TEST_F(FillErrors, StartOrCountPastTheStreamEnd) {
  const std::int64_t total = fc_.stream_size();  // 2 inputs x 9 windows
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

TEST_F(FillErrors, MalformedGridIsRejectedBeforeAnythingIsWritten) {
  // A grid built by hand, not by make_window_grid: the kernels re-check it.
  fastocclusion::WindowGrid grid = fc_.grid();
  grid.axes[1].count = 7;  // anchors past the axis: would write past each sample
  std::vector<float> batch(batch_.size(), kSentinel);
  const auto msg = test_support::user_error_message([&] {
    fastocclusion::fill_occluded_batch(fc_.inputs.data(), fc_.n, grid, fc_.core_baseline(), 0, 1,
                                       batch.data());
  });
  EXPECT_NE(msg.find("window grid: axis 1"), std::string::npos) << msg;
  EXPECT_EQ(batch, std::vector<float>(batch_.size(), kSentinel));
  grid = fc_.grid();
  grid.rank = 0;
  EXPECT_THROW(fastocclusion::fill_occluded_batch(fc_.inputs.data(), fc_.n, grid,
                                                  fc_.core_baseline(), 0, 1, batch.data()),
               user_error);
}

TEST_F(FillErrors, NoInputsAndNullPointers) {
  const auto none = test_support::user_error_message([&] {
    fastocclusion::fill_occluded_batch(fc_.inputs.data(), 0, fc_.grid(), fc_.core_baseline(), 0,
                                       0, batch_.data());
  });
  EXPECT_NE(none.find("n=0"), std::string::npos) << none;
  EXPECT_THROW(fastocclusion::fill_occluded_batch(nullptr, fc_.n, fc_.grid(), fc_.core_baseline(),
                                                  0, 1, batch_.data()),
               user_error);
  EXPECT_THROW(fastocclusion::fill_occluded_batch(fc_.inputs.data(), fc_.n, fc_.grid(),
                                                  {fastocclusion::BaselineKind::scalar, nullptr},
                                                  0, 1, batch_.data()),
               user_error);
  EXPECT_THROW(fastocclusion::fill_occluded_batch(fc_.inputs.data(), fc_.n, fc_.grid(),
                                                  fc_.core_baseline(), 0, 1, nullptr),
               user_error);
}

// Sizes past int64 are user errors before anything is written: n inputs of a sample (and so
// a stream of n * K pairs), and a batch of count samples, each within int64 on its own.
TEST(FillOverflow, StreamAndBatchSizesPastInt64AreUserErrors) {
  std::vector<float> dummy(16, 0.0f);
  const float* p = dummy.data();
  const std::int64_t half = std::int64_t{1} << 31;
  // 2^62 values and 2^62 windows per input: fine for one input, not for two.
  const auto many = test_support::make_grid({half, half}, {1, 1}, {1, 1},
                                            test_support::all_axes(2, false));
  EXPECT_NO_THROW(fastocclusion::check_fill_arguments(p, 1, many, true, 0, 1, dummy.data()));
  const auto inputs_msg = test_support::user_error_message([&] {
    fastocclusion::check_fill_arguments(p, 2, many, true, 0, 1, dummy.data());
  });
  EXPECT_NE(inputs_msg.find("overflow int64"), std::string::npos) << inputs_msg;
  // Samples of 2^44 floats (windows (1, 2^24): 2^20 of them); 2^20 slots: 2^64 floats.
  const std::int64_t h = std::int64_t{1} << 20, w = std::int64_t{1} << 24;
  const auto rows = test_support::make_grid({h, w}, {1, w}, {1, 1}, test_support::all_axes(2, false));
  ASSERT_EQ(rows.num_windows(), h);
  const auto batch_msg = test_support::user_error_message([&] {
    fastocclusion::check_fill_arguments(p, 1, rows, true, 0, h, dummy.data());
  });
  EXPECT_NE(batch_msg.find("1048576"), std::string::npos) << batch_msg;
  EXPECT_NE(batch_msg.find("overflow int64"), std::string::npos) << batch_msg;
  std::vector<float> batch(16);
  fastocclusion::IncrementalFillState state;
  const fastocclusion::Baseline scalar{fastocclusion::BaselineKind::scalar, p};
  EXPECT_THROW(fastocclusion::fill_occluded_batch_incremental(p, 1, rows, scalar, 0, h,
                                                              batch.data(), h, state),
               user_error);
  const auto capacity_msg = test_support::user_error_message([&] {  // one slot, 2^20 capacity
    fastocclusion::fill_occluded_batch_incremental(p, 1, rows, scalar, 0, 1, batch.data(), h, state);
  });
  EXPECT_NE(capacity_msg.find("capacity=1048576"), std::string::npos) << capacity_msg;
  EXPECT_NO_THROW(fastocclusion::check_fill_arguments(p, 1, rows, true, 0, 1, dummy.data()));
}

}  // namespace
