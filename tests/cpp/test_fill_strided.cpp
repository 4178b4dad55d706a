// Strided batches: slot j holds stream index start + j * stride (fill.hpp). Each slot is
// checked against the naive oracle's single-sample slice [s, s + 1), for the full and the
// incremental fill, over the chunked sweep order the Python sweep uses.
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "test_support.hpp"

namespace {

using test_support::FillCase;
using test_support::kAllLayouts;
using test_support::same_floats;

// Slot j of `batch` must equal the oracle's sample start + j * stride.
void expect_strided(const FillCase& fc, const std::vector<float>& batch, std::int64_t start,
                    std::int64_t count, std::int64_t stride) {
  const std::int64_t sample = fc.sample();
  const std::vector<float> expected = fc.expected(start, count, stride);
  for (std::int64_t j = 0; j < count; ++j) {
    const std::vector<float> one = fc.expected(start + j * stride, 1);
    ASSERT_TRUE(same_floats(expected.data() + j * sample, one.data(), sample))
        << "the oracle's strided slot " << j << " is not its sample " << start + j * stride;
    EXPECT_TRUE(same_floats(batch.data() + j * sample, one.data(), sample))
        << "slot " << j << " (stream index " << start + j * stride << ")";
  }
}

TEST(FillStrided, RandomStridedSlicesMatchNaive) {
  test_support::Rng rng(31337);
  for (int trial = 0; trial < 250; ++trial) {
    const FillCase fc = test_support::random_case(rng, kAllLayouts[trial % 3], 1 + trial / 3 % 5);
    SCOPED_TRACE(fc.describe());
    const std::int64_t total = fc.stream_size();
    const std::int64_t stride = test_support::uniform_int(rng, 1, total);
    const std::int64_t start = test_support::uniform_int(rng, 0, total - 1);
    const std::int64_t count = test_support::uniform_int(rng, 1, (total - 1 - start) / stride + 1);
    std::vector<float> batch(static_cast<std::size_t>(count * fc.sample()), -1.0f);
    fastocclusion::fill_occluded_batch(fc.inputs.data(), fc.n, fc.grid(), fc.core_baseline(),
                                       start, count, batch.data(), stride);
    expect_strided(fc, batch, start, count, stride);
  }
}

TEST(FillStrided, ChunkedSweepIncrementalMatchesNaive) {
  // The Python sweep's order: `capacity` chunks of C pairs, batch b = indices b + j*C.
  test_support::Rng rng(4242);
  for (int trial = 0; trial < 75; ++trial) {
    const FillCase fc = test_support::random_case(rng, kAllLayouts[trial % 3], 1 + trial / 3 % 5);
    SCOPED_TRACE(fc.describe());
    const std::int64_t total = fc.stream_size();
    const std::int64_t capacity = test_support::uniform_int(rng, 1, 9);
    const std::int64_t chunk = (total + capacity - 1) / capacity;
    std::vector<float> batch(static_cast<std::size_t>(capacity * fc.sample()), -1.0f);
    fastocclusion::IncrementalFillState state;
    for (std::int64_t b = 0; b < chunk; ++b) {
      const std::int64_t count = (total - b + chunk - 1) / chunk;
      fastocclusion::fill_occluded_batch_incremental(fc.inputs.data(), fc.n, fc.grid(),
                                                     fc.core_baseline(), b, count, batch.data(),
                                                     capacity, state, chunk);
      expect_strided(fc, batch, b, count, chunk);
    }
  }
}

TEST(FillStrided, ChunkedSweepOverAVolumeTakesTheParallelPath) {
  // (D, H, W, C) = (10, 24, 24, 8) with 3-D windows, 32 slots: a few MiB per batch.
  test_support::Rng rng(4243);
  const FillCase fc = test_support::make_case(rng, 3, {10, 24, 24, 8}, {4, 6, 6, 8}, {3, 5, 5, 8},
                                              {true, true, true, false},
                                              naive::BaselineLayout::per_input);
  const std::int64_t total = fc.stream_size(), capacity = 32;
  const std::int64_t chunk = (total + capacity - 1) / capacity;
  std::vector<float> batch(static_cast<std::size_t>(capacity * fc.sample()), -1.0f);
  fastocclusion::IncrementalFillState state;
  for (std::int64_t b = 0; b < chunk; b += chunk / 3 + 1) {  // a few batches of the sweep
    const std::int64_t count = (total - b + chunk - 1) / chunk;
    fastocclusion::fill_occluded_batch_incremental(fc.inputs.data(), fc.n, fc.grid(),
                                                   fc.core_baseline(), b, count, batch.data(),
                                                   capacity, state, chunk);
    expect_strided(fc, batch, b, count, chunk);
  }
}

TEST(FillStrided, SlotsPastTheStreamAndBadStridesThrow) {
  test_support::Rng rng(5);
  const FillCase fc = test_support::random_case(rng, kAllLayouts[0]);
  const std::int64_t total = fc.stream_size();
  std::vector<float> batch(static_cast<std::size_t>(4 * fc.sample()));
  const auto fill = [&](std::int64_t start, std::int64_t count, std::int64_t stride) {
    fastocclusion::fill_occluded_batch(fc.inputs.data(), fc.n, fc.grid(), fc.core_baseline(),
                                       start, count, batch.data(), stride);
  };
  const auto zero = test_support::user_error_message([&] { fill(0, 1, 0); });
  EXPECT_NE(zero.find("stride=0"), std::string::npos) << zero;
  EXPECT_THROW(fill(0, 1, -3), fastocclusion::user_error);
  // Two slots at stride `total` would reach index `total`: one past the end.
  EXPECT_THROW(fill(0, 2, total), fastocclusion::user_error);
  EXPECT_NO_THROW(fill(total - 1, 1, total));
  // A huge stride must not overflow into an accepted call.
  EXPECT_THROW(fill(0, 3, std::int64_t{1} << 62), fastocclusion::user_error);
  EXPECT_THROW(fill(1, 2, std::numeric_limits<std::int64_t>::max()), fastocclusion::user_error);
}

}  // namespace
