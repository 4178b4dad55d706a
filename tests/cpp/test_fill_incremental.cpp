// fill_occluded_batch_incremental: a persistent buffer must always hold what a full fill
// (checked against the naive oracle in test_fill.cpp) would write.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "test_support.hpp"

namespace {

using fastocclusion::IncrementalFillState;
using fastocclusion::user_error;
using test_support::FillCase;
using test_support::kAllLayouts;
using test_support::same_floats;

constexpr float kGarbage = -777.0f;

// A persistent batch buffer and its state, driven like a model loop would drive it. The
// arguments are plain members so a test can change one of them between calls.
struct Session {
  std::int64_t n;
  fastocclusion::WindowGrid grid;
  fastocclusion::Baseline baseline;
  const float* inputs;
  std::int64_t capacity;
  std::vector<float> buffer;
  IncrementalFillState state;

  Session(const FillCase& c, std::int64_t cap)
      : n(c.n), grid(c.grid()), baseline(c.core_baseline()), inputs(c.inputs.data()),
        capacity(cap), buffer(static_cast<std::size_t>(cap * c.sample()), kGarbage) {}

  void fill(std::int64_t start, std::int64_t count, std::int64_t stride = 1) {
    fastocclusion::fill_occluded_batch_incremental(inputs, n, grid, baseline, start, count,
                                                   buffer.data(), capacity, state, stride);
  }

  // The first `count` slots equal a full fill of the same slots with the same arguments
  // (fill_occluded_batch is checked against the naive oracle in test_fill.cpp).
  ::testing::AssertionResult matches_full(std::int64_t start, std::int64_t count,
                                          std::int64_t stride = 1) const {
    const std::int64_t sample = grid.sample_size();
    std::vector<float> full(static_cast<std::size_t>(std::max<std::int64_t>(count, 1) * sample));
    fastocclusion::fill_occluded_batch(inputs, n, grid, baseline, start, count, full.data(), stride);
    return same_floats(buffer.data(), full.data(), count * sample);
  }
};

TEST(IncrementalFill, ConsecutiveSlicesEqualFullFillEachTime) {
  test_support::Rng rng(31);
  for (int trial = 0; trial < 150; ++trial) {
    const FillCase fc = test_support::random_case(rng, kAllLayouts[trial % 3], 1 + trial / 3 % 5);
    const std::int64_t total = fc.stream_size();
    const std::int64_t capacity = test_support::uniform_int(rng, 1, std::min<std::int64_t>(total, 9));
    Session session(fc, capacity);
    for (std::int64_t start = 0; start < total; start += capacity) {
      const std::int64_t count = std::min(capacity, total - start);
      const std::vector<float> before = session.buffer;
      session.fill(start, count);
      ASSERT_TRUE(session.matches_full(start, count))
          << fc.describe() << " capacity=" << capacity << " start=" << start;
      // Slots past `count` (the short last batch) keep their content.
      const std::int64_t sample = fc.sample();
      ASSERT_TRUE(same_floats(session.buffer.data() + count * sample,
                              before.data() + count * sample, (capacity - count) * sample));
    }
  }
}

TEST(IncrementalFill, AgreesWithNaiveOracleOnALargeParallelSession) {
  test_support::Rng rng(32);
  const FillCase image = test_support::image_case(rng, 3, 40, 40, 8, 8, 8, 4, 4, true,
                                                  naive::BaselineLayout::per_sample);
  const FillCase volume = test_support::make_case(rng, 2, {12, 20, 20, 4}, {4, 6, 6, 4},
                                                  {3, 5, 5, 4}, {true, true, false, false},
                                                  naive::BaselineLayout::per_input);
  for (const FillCase* fc : {&image, &volume}) {
    const std::int64_t total = fc->stream_size(), capacity = 64;
    Session session(*fc, capacity);
    for (std::int64_t start = 0; start < total; start += capacity) {
      const std::int64_t count = std::min(capacity, total - start);
      session.fill(start, count);
      const std::vector<float> expected = fc->expected(start, count);
      ASSERT_TRUE(same_floats(session.buffer.data(), expected.data(), count * fc->sample()))
          << fc->describe() << " start=" << start;
    }
  }
}

TEST(IncrementalFill, NonConsecutiveSlicesInAnyOrder) {
  test_support::Rng rng(33);
  for (int trial = 0; trial < 75; ++trial) {
    const FillCase fc = test_support::random_case(rng, kAllLayouts[trial % 3], 1 + trial / 3 % 5);
    const std::int64_t total = fc.stream_size();
    const std::int64_t capacity = test_support::uniform_int(rng, 1, std::min<std::int64_t>(total, 8));
    Session session(fc, capacity);
    std::int64_t previous_start = -1, previous_count = 0;
    for (int step = 0; step < 25; ++step) {
      std::int64_t start, count;
      if (step % 5 == 4 && previous_start >= 0) {  // repeat a slice exactly
        start = previous_start;
        count = previous_count;
      } else {
        start = test_support::uniform_int(rng, 0, total - 1);
        count = test_support::uniform_int(rng, 0, std::min(capacity, total - start));
      }
      session.fill(start, count);
      ASSERT_TRUE(session.matches_full(start, count))
          << fc.describe() << " capacity=" << capacity << " step=" << step << " start=" << start
          << " count=" << count;
      previous_start = start;
      previous_count = count;
    }
  }
}

TEST(IncrementalFill, StateRecordsTheInputAndWindowOfEverySlot) {
  // The CUDA fill uses the state as the host mirror of a device batch: slot j must say which
  // (input, window) it holds after each call, and -1 before any.
  test_support::Rng rng(35);
  const FillCase fc = test_support::make_case(rng, 3, {4, 5, 3}, {2, 2, 3}, {1, 2, 3},
                                              {false, true, false}, naive::BaselineLayout::scalar);
  const std::int64_t windows = fc.grid().num_windows();
  Session session(fc, 5);
  session.fill(0, 0);
  for (std::int64_t j = 0; j < 5; ++j) {
    EXPECT_EQ(session.state.slot_inputs()[j], -1);
    EXPECT_EQ(session.state.slot_windows()[j], -1);
  }
  for (const std::int64_t start : {0, 7, 13}) {
    session.fill(start, 4, 3);
    for (std::int64_t j = 0; j < 4; ++j) {
      const std::int64_t s = start + 3 * j;
      EXPECT_EQ(session.state.slot_inputs()[j], s / windows) << "slot " << j;
      EXPECT_EQ(session.state.slot_windows()[j], s % windows) << "slot " << j;
    }
    EXPECT_EQ(session.state.slot_inputs()[4], -1) << "slot 4 never filled";
    EXPECT_TRUE(session.matches_full(start, 4, 3));
  }
}

// Scribbles over the buffer: only a full refill can undo it.
void scribble(Session& session) {
  std::fill(session.buffer.begin(), session.buffer.end(), kGarbage);
}

class IncrementalRefill : public ::testing::Test {
 protected:
  test_support::Rng rng_{34};
  FillCase fc_ = test_support::image_case(rng_, 2, 12, 12, 3, 4, 4, 2, 2, false,
                                          naive::BaselineLayout::per_sample);
};

TEST_F(IncrementalRefill, ChangingCapacityForcesFullRefill) {
  Session session(fc_, 6);
  session.fill(0, 4);
  scribble(session);
  session.capacity = 5;  // same pointer, fewer slots
  session.fill(0, 4);
  EXPECT_TRUE(session.matches_full(0, 4));
}

TEST_F(IncrementalRefill, ChangingInputsPointerForcesFullRefill) {
  Session session(fc_, 6);
  session.fill(0, 6);
  const std::vector<float> other = test_support::random_floats(rng_, fc_.n * fc_.sample());
  session.inputs = other.data();  // same input indices, other data behind a new pointer
  session.fill(1, 6);
  EXPECT_TRUE(session.matches_full(1, 6));
  session.inputs = fc_.inputs.data();  // and back
  session.fill(2, 6);
  EXPECT_TRUE(session.matches_full(2, 6));
}

TEST_F(IncrementalRefill, ChangingInputCountForcesFullRefill) {
  Session session(fc_, 6);
  session.fill(0, 6);
  scribble(session);
  session.n = 1;  // same pointer, fewer inputs
  session.fill(0, 6);
  EXPECT_TRUE(session.matches_full(0, 6));
}

TEST_F(IncrementalRefill, ChangingBufferPointerForcesFullRefill) {
  Session session(fc_, 6);
  session.fill(0, 6);
  std::vector<float> moved(session.buffer.size(), kGarbage);
  std::swap(session.buffer, moved);  // a new buffer pointer, full of garbage
  session.fill(1, 6);
  EXPECT_TRUE(session.matches_full(1, 6));
}

TEST_F(IncrementalRefill, ChangingBaselineForcesFullRefill) {
  Session session(fc_, 6);
  session.fill(0, 6);
  // Same kind, values behind a new pointer; same slice: only a refill brings them in.
  const std::vector<float> other = test_support::random_baseline(rng_, fc_.layout, fc_.n, fc_.sample());
  session.baseline.values = other.data();
  session.fill(0, 6);
  EXPECT_TRUE(session.matches_full(0, 6));
  // Same pointer, another kind.
  session.baseline.kind = fastocclusion::BaselineKind::scalar;
  session.fill(0, 6);
  EXPECT_TRUE(session.matches_full(0, 6));
}

TEST_F(IncrementalRefill, ChangingGridForcesFullRefill) {
  Session session(fc_, 6);
  session.fill(0, 6);
  // Same sample shape, other column stride: same slice indices, other window regions.
  session.grid = test_support::make_grid({12, 12, 3}, {4, 4, 3}, {2, 3, 3},
                                         test_support::all_axes(3, false));
  session.fill(0, 6);
  EXPECT_TRUE(session.matches_full(0, 6));
  // Other row window.
  session.grid = test_support::make_grid({12, 12, 3}, {3, 4, 3}, {2, 3, 3},
                                         test_support::all_axes(3, false));
  session.fill(0, 6);
  EXPECT_TRUE(session.matches_full(0, 6));
  // Other edge mode on one axis, adding windows: same slice, other windows in it.
  session.grid = test_support::make_grid({12, 12, 3}, {3, 4, 3}, {2, 3, 3},
                                         {false, true, false});
  session.fill(0, 6);
  EXPECT_TRUE(session.matches_full(0, 6));
  // Channel windows split: windows (3, 4, 1) over the same sample shape.
  session.grid = test_support::make_grid({12, 12, 3}, {3, 4, 1}, {2, 3, 1},
                                         test_support::all_axes(3, false));
  session.fill(0, 6);
  EXPECT_TRUE(session.matches_full(0, 6));
}

TEST_F(IncrementalRefill, ResetForcesFullRefill) {
  Session session(fc_, 6);
  session.fill(0, 6);
  scribble(session);
  session.state.reset();
  session.fill(0, 6);
  EXPECT_TRUE(session.matches_full(0, 6));
  scribble(session);
  session.state.reset();
  session.fill(3, 6);
  EXPECT_TRUE(session.matches_full(3, 6));
}

TEST_F(IncrementalRefill, ErrorsOnBadCapacityAndLeaveStateUsable) {
  Session session(fc_, 4);
  session.fill(0, 4);
  const auto try_fill = [&](std::int64_t start, std::int64_t count, std::int64_t capacity) {
    fastocclusion::fill_occluded_batch_incremental(fc_.inputs.data(), fc_.n, fc_.grid(),
                                                   fc_.core_baseline(), start, count,
                                                   session.buffer.data(), capacity, session.state);
  };
  const auto msg = test_support::user_error_message([&] { try_fill(0, 5, 4); });
  EXPECT_NE(msg.find("capacity=4"), std::string::npos) << msg;
  EXPECT_THROW(try_fill(0, 0, 0), user_error);
  EXPECT_THROW(try_fill(fc_.stream_size() - 1, 2, 4), user_error);
  session.fill(4, 4);
  EXPECT_TRUE(session.matches_full(4, 4));
}

}  // namespace
