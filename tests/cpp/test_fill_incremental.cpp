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
  fastocclusion::InputShape shape;
  fastocclusion::PatchGrid grid;
  fastocclusion::Baseline baseline;
  const float* inputs;
  std::int64_t capacity;
  std::vector<float> buffer;
  IncrementalFillState state;

  Session(const FillCase& c, std::int64_t cap)
      : shape(c.shape), grid(c.grid()), baseline(c.core_baseline()), inputs(c.inputs.data()),
        capacity(cap),
        buffer(static_cast<std::size_t>(cap * c.shape.image_size()), kGarbage) {}

  void fill(std::int64_t start, std::int64_t count) {
    fastocclusion::fill_occluded_batch_incremental(inputs, shape, grid, baseline, start, count,
                                                   buffer.data(), capacity, state);
  }

  // The first `count` slots equal a full fill of [start, start + count) with the same
  // arguments (fill_occluded_batch is checked against the naive oracle in test_fill.cpp).
  ::testing::AssertionResult matches_full(std::int64_t start, std::int64_t count) const {
    const std::int64_t image = shape.image_size();
    std::vector<float> full(static_cast<std::size_t>(std::max<std::int64_t>(count, 1) * image));
    fastocclusion::fill_occluded_batch(inputs, shape, grid, baseline, start, count, full.data());
    return same_floats(buffer.data(), full.data(), count * image);
  }
};

TEST(IncrementalFill, ConsecutiveSlicesEqualFullFillEachTime) {
  test_support::Rng rng(31);
  for (int trial = 0; trial < 120; ++trial) {
    const FillCase fc = test_support::random_case(rng, kAllLayouts[trial % 4]);
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
      const std::int64_t image = fc.shape.image_size();
      ASSERT_TRUE(same_floats(session.buffer.data() + count * image,
                              before.data() + count * image, (capacity - count) * image));
    }
  }
}

TEST(IncrementalFill, AgreesWithNaiveOracleOnALargeParallelSession) {
  test_support::Rng rng(32);
  const FillCase fc = test_support::make_case(rng, {3, 40, 40, 8}, 8, 8, 4, 4, true,
                                              naive::BaselineLayout::per_image);
  const std::int64_t total = fc.stream_size(), capacity = 64;
  Session session(fc, capacity);
  for (std::int64_t start = 0; start < total; start += capacity) {
    const std::int64_t count = std::min(capacity, total - start);
    session.fill(start, count);
    const std::vector<float> expected = fc.expected(start, count);
    ASSERT_TRUE(same_floats(session.buffer.data(), expected.data(),
                            count * fc.shape.image_size()))
        << "start=" << start;
  }
}

TEST(IncrementalFill, NonConsecutiveSlicesInAnyOrder) {
  test_support::Rng rng(33);
  for (int trial = 0; trial < 60; ++trial) {
    const FillCase fc = test_support::random_case(rng, kAllLayouts[trial % 4]);
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

// Scribbles over the buffer: only a full refill can undo it.
void scribble(Session& session) {
  std::fill(session.buffer.begin(), session.buffer.end(), kGarbage);
}

class IncrementalRefill : public ::testing::Test {
 protected:
  test_support::Rng rng_{34};
  FillCase fc_ = test_support::make_case(rng_, {2, 12, 12, 3}, 4, 4, 2, 2, false,
                                         naive::BaselineLayout::per_channel);
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
  const std::vector<float> other =
      test_support::random_floats(rng_, fc_.shape.n * fc_.shape.image_size());
  session.inputs = other.data();  // same input indices, other data behind a new pointer
  session.fill(1, 6);
  EXPECT_TRUE(session.matches_full(1, 6));
  session.inputs = fc_.inputs.data();  // and back
  session.fill(2, 6);
  EXPECT_TRUE(session.matches_full(2, 6));
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
  const std::vector<float> other = test_support::random_baseline(rng_, fc_.layout, fc_.shape);
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
  // Same plane, other column stride: same slice indices, other patch regions.
  session.grid = fastocclusion::make_patch_grid(12, 12, 4, 4, 2, 3, fastocclusion::EdgeMode::valid);
  session.fill(0, 6);
  EXPECT_TRUE(session.matches_full(0, 6));
  // Other row patch size.
  session.grid = fastocclusion::make_patch_grid(12, 12, 3, 4, 2, 3, fastocclusion::EdgeMode::valid);
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
    fastocclusion::fill_occluded_batch_incremental(fc_.inputs.data(), fc_.shape, fc_.grid(),
                                                   fc_.core_baseline(), start, count,
                                                   session.buffer.data(), capacity,
                                                   session.state);
  };
  try {
    try_fill(0, 5, 4);
    ADD_FAILURE() << "no error for count > capacity";
  } catch (const user_error& e) {
    EXPECT_NE(std::string(e.what()).find("capacity=4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(try_fill(0, 0, 0), user_error);
  EXPECT_THROW(try_fill(fc_.stream_size() - 1, 2, 4), user_error);
  session.fill(4, 4);
  EXPECT_TRUE(session.matches_full(4, 4));
}

}  // namespace
