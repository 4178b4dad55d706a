// fill_occluded_batch(_incremental) over an explicit list of (input, window) pairs (a sweep
// of some windows only, engine.drill_down): slot j equals the grid-stream fill of the pair's
// stream index (checked against the naive oracle in test_fill.cpp), for one-shot and
// incremental fills in sessions of random pair lists; bad pairs are user errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "test_support.hpp"

namespace {

namespace fo = fastocclusion;
using test_support::FillCase;
using test_support::kAllLayouts;
using test_support::same_floats;
using test_support::uniform_int;

// `count` random pairs of the case's stream, input-major runs as a drill-down makes them.
std::vector<std::int64_t> random_pairs(test_support::Rng& rng, const FillCase& c,
                                       std::int64_t count) {
  const std::int64_t windows = c.grid().num_windows();
  std::vector<std::int64_t> pairs;
  for (std::int64_t s = 0; s < count; ++s) {
    pairs.push_back(uniform_int(rng, 0, c.n - 1));
    pairs.push_back(uniform_int(rng, 0, windows - 1));
  }
  return pairs;
}

// The grid-stream fill of each pair, one slot at a time.
std::vector<float> expected_slots(const FillCase& c, const std::vector<std::int64_t>& pairs,
                                  std::int64_t start, std::int64_t count, std::int64_t stride) {
  const std::int64_t sample = c.sample(), windows = c.grid().num_windows();
  std::vector<float> out(static_cast<std::size_t>(std::max<std::int64_t>(count, 1) * sample));
  for (std::int64_t j = 0; j < count; ++j) {
    const std::int64_t s = start + j * stride;
    const std::int64_t index = pairs[2 * s] * windows + pairs[2 * s + 1];
    fo::fill_occluded_batch(c.inputs.data(), c.n, c.grid(), c.core_baseline(), index, 1,
                            out.data() + j * sample);
  }
  return out;
}

TEST(PairFill, EachSlotEqualsTheStreamFillOfItsPair) {
  test_support::Rng rng(71);
  for (int trial = 0; trial < 120; ++trial) {
    const FillCase c = test_support::random_case(rng, kAllLayouts[trial % 3], 1 + trial / 3 % 5);
    const std::int64_t total = uniform_int(rng, 1, 12);
    const std::vector<std::int64_t> pairs = random_pairs(rng, c, total);
    const fo::StreamPairs stream{pairs.data(), total};
    const std::int64_t stride = uniform_int(rng, 1, 3);
    const std::int64_t start = uniform_int(rng, 0, total - 1);
    const std::int64_t count = (total - 1 - start) / stride + 1;
    std::vector<float> batch(static_cast<std::size_t>(count * c.sample()), -5.0f);
    fo::fill_occluded_batch<float>(c.inputs.data(), c.n, c.grid(), c.core_baseline(), start,
                                   count, batch.data(), stride, stream);
    const std::vector<float> expected = expected_slots(c, pairs, start, count, stride);
    EXPECT_TRUE(same_floats(batch.data(), expected.data(), count * c.sample())) << trial;
  }
}

TEST(PairFill, IncrementalSessionsEqualTheStreamFillEveryCall) {
  test_support::Rng rng(72);
  for (int trial = 0; trial < 60; ++trial) {
    const FillCase c = test_support::random_case(rng, kAllLayouts[trial % 3], 1 + trial / 3 % 5);
    const std::int64_t total = uniform_int(rng, 2, 20);
    const std::vector<std::int64_t> pairs = random_pairs(rng, c, total);
    const fo::StreamPairs stream{pairs.data(), total};
    const std::int64_t capacity = uniform_int(rng, 1, 5);
    const std::int64_t chunk = (total + capacity - 1) / capacity;
    std::vector<float> buffer(static_cast<std::size_t>(capacity * c.sample()), -5.0f);
    fo::IncrementalFillState state;
    for (std::int64_t b = 0; b < chunk; ++b) {  // as a sweep walks its stream
      const std::int64_t count = (total - b + chunk - 1) / chunk;
      fo::fill_occluded_batch_incremental<float>(c.inputs.data(), c.n, c.grid(),
                                                 c.core_baseline(), b, count, buffer.data(),
                                                 capacity, state, chunk, stream);
      const std::vector<float> expected = expected_slots(c, pairs, b, count, chunk);
      ASSERT_TRUE(same_floats(buffer.data(), expected.data(), count * c.sample()))
          << "trial " << trial << " batch " << b;
    }
  }
}

TEST(PairFill, PairsOutsideTheInputsOrWindowsAreUserErrors) {
  test_support::Rng rng(73);
  const FillCase c = test_support::random_case(rng, kAllLayouts[0], 2);
  const std::int64_t windows = c.grid().num_windows();
  std::vector<float> batch(static_cast<std::size_t>(c.sample()));
  for (const std::vector<std::int64_t>& bad : {std::vector<std::int64_t>{c.n, 0},
                                               std::vector<std::int64_t>{0, windows},
                                               std::vector<std::int64_t>{-1, 0}}) {
    const fo::StreamPairs stream{bad.data(), 1};
    const std::string message = test_support::user_error_message([&] {
      fo::fill_occluded_batch<float>(c.inputs.data(), c.n, c.grid(), c.core_baseline(), 0, 1,
                                     batch.data(), 1, stream);
    });
    EXPECT_NE(message.find("pairs[0]"), std::string::npos) << message;
  }
  const std::vector<std::int64_t> one{0, 0};
  const std::string past = test_support::user_error_message([&] {
    fo::fill_occluded_batch<float>(c.inputs.data(), c.n, c.grid(), c.core_baseline(), 0, 2,
                                   batch.data(), 1, fo::StreamPairs{one.data(), 1});
  });
  EXPECT_NE(past.find("runs past the end of the stream of 1"), std::string::npos) << past;
  // Only the pairs a call reads are checked: a bad pair 2 is refused by the call whose
  // slot reads it, and a call of pairs 0 and 1 runs.
  const std::vector<std::int64_t> third_bad{0, 0, 1, 0, c.n, 0};
  const fo::StreamPairs stream{third_bad.data(), 3};
  std::vector<float> two(static_cast<std::size_t>(2 * c.sample()));
  fo::fill_occluded_batch<float>(c.inputs.data(), c.n, c.grid(), c.core_baseline(), 0, 2,
                                 two.data(), 1, stream);
  const std::string third = test_support::user_error_message([&] {
    fo::fill_occluded_batch<float>(c.inputs.data(), c.n, c.grid(), c.core_baseline(), 1, 2,
                                   two.data(), 1, stream);
  });
  EXPECT_NE(third.find("pairs[2]"), std::string::npos) << third;
}

}  // namespace
