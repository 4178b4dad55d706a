// gather_windows and splice_windows (feature-map windows of incremental inference) against
// naive per-element loops: random map shapes, windows past every edge, patches at the
// borders, both value types, persistent splice sessions, and the argument checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "fastocclusion/feature_windows.hpp"
#include "test_support.hpp"

namespace {

namespace fo = fastocclusion;
using test_support::Rng;
using test_support::uniform_int;

// A random case: maps, one slot per window, patches inside the map.
template <typename T>
struct Case {
  fo::MapShape shape;
  std::int64_t map_count = 0, count = 0;
  std::vector<T> maps, patches;
  std::vector<std::int64_t> index, window_origins, patch_origins;
  std::int64_t wh = 0, ww = 0, ph = 0, pw = 0;

  std::int64_t map_size() const { return shape.channels * shape.height * shape.width; }
  fo::SlotBoxes windows() const { return {window_origins.data(), wh, ww}; }
  fo::SlotBoxes patch_boxes() const { return {patch_origins.data(), ph, pw}; }
};

template <typename T>
std::vector<T> random_values(Rng& rng, std::int64_t size) {
  std::vector<T> values(static_cast<std::size_t>(size));
  for (T& v : values) v = static_cast<T>(uniform_int(rng, -1000, 1000)) / T(8);
  return values;
}

template <typename T>
Case<T> random_case(Rng& rng) {
  Case<T> c;
  c.shape = {uniform_int(rng, 1, 4), uniform_int(rng, 1, 13), uniform_int(rng, 1, 13)};
  c.map_count = uniform_int(rng, 1, 3);
  c.count = uniform_int(rng, 0, 6);
  c.maps = random_values<T>(rng, c.map_count * c.map_size());
  c.wh = uniform_int(rng, 1, c.shape.height + 4);
  c.ww = uniform_int(rng, 1, c.shape.width + 4);
  c.ph = uniform_int(rng, 1, c.shape.height);
  c.pw = uniform_int(rng, 1, c.shape.width);
  c.patches = random_values<T>(rng, c.count * c.shape.channels * c.ph * c.pw);
  for (std::int64_t j = 0; j < c.count; ++j) {
    c.index.push_back(uniform_int(rng, 0, c.map_count - 1));
    c.window_origins.push_back(uniform_int(rng, -c.wh - 1, c.shape.height + 1));
    c.window_origins.push_back(uniform_int(rng, -c.ww - 1, c.shape.width + 1));
    c.patch_origins.push_back(uniform_int(rng, 0, c.shape.height - c.ph));
    c.patch_origins.push_back(uniform_int(rng, 0, c.shape.width - c.pw));
  }
  return c;
}

// The value of slot j's spliced map at (ch, y, x): the patch inside its box, else the map.
template <typename T>
T spliced_value(const Case<T>& c, std::int64_t j, std::int64_t ch, std::int64_t y,
                std::int64_t x, bool with_patches) {
  const std::int64_t py = c.patch_origins.empty() ? 0 : c.patch_origins[2 * j];
  const std::int64_t px = c.patch_origins.empty() ? 0 : c.patch_origins[2 * j + 1];
  if (with_patches && y >= py && y < py + c.ph && x >= px && x < px + c.pw) {
    return c.patches[static_cast<std::size_t>(((j * c.shape.channels + ch) * c.ph + (y - py)) * c.pw +
                                              (x - px))];
  }
  return c.maps[static_cast<std::size_t>(c.index[j] * c.map_size() +
                                         (ch * c.shape.height + y) * c.shape.width + x)];
}

// The naive gather: one element at a time, as the contract says.
template <typename T>
std::vector<T> naive_gather(const Case<T>& c, bool with_patches, T pad) {
  std::vector<T> out;
  for (std::int64_t j = 0; j < c.count; ++j) {
    for (std::int64_t ch = 0; ch < c.shape.channels; ++ch) {
      for (std::int64_t y = 0; y < c.wh; ++y) {
        for (std::int64_t x = 0; x < c.ww; ++x) {
          const std::int64_t row = c.window_origins[2 * j] + y;
          const std::int64_t col = c.window_origins[2 * j + 1] + x;
          const bool inside = row >= 0 && row < c.shape.height && col >= 0 && col < c.shape.width;
          out.push_back(inside ? spliced_value(c, j, ch, row, col, with_patches) : pad);
        }
      }
    }
  }
  return out;
}

// The naive splice of the first `count` slots.
template <typename T>
std::vector<T> naive_splice(const Case<T>& c) {
  std::vector<T> out;
  for (std::int64_t j = 0; j < c.count; ++j) {
    for (std::int64_t ch = 0; ch < c.shape.channels; ++ch) {
      for (std::int64_t y = 0; y < c.shape.height; ++y) {
        for (std::int64_t x = 0; x < c.shape.width; ++x) {
          out.push_back(spliced_value(c, j, ch, y, x, true));
        }
      }
    }
  }
  return out;
}

template <typename T>
std::vector<T> gather(const Case<T>& c, bool with_patches, T pad) {
  std::vector<T> out(static_cast<std::size_t>(c.count * c.shape.channels * c.wh * c.ww), T(-5));
  fo::gather_windows<T>(c.maps.data(), c.map_count, c.shape, c.index.data(), c.windows(),
                        with_patches ? c.patches.data() : nullptr, c.patch_boxes(), pad, c.count,
                        out.data());
  return out;
}

template <typename T>
class FeatureWindows : public ::testing::Test {};
using ValueTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(FeatureWindows, ValueTypes);

TYPED_TEST(FeatureWindows, GatherEqualsTheNaiveLoops) {
  using T = TypeParam;
  Rng rng(101);
  for (int trial = 0; trial < 400; ++trial) {
    const Case<T> c = random_case<T>(rng);
    const T pad = trial % 2 ? -std::numeric_limits<T>::infinity() : T(0);
    EXPECT_EQ(gather(c, true, pad), naive_gather(c, true, pad)) << "trial " << trial;
    EXPECT_EQ(gather(c, false, pad), naive_gather(c, false, pad)) << "trial " << trial;
  }
}

TYPED_TEST(FeatureWindows, GatherOfLargeWorkRunsInParallelAndStaysExact) {
  using T = TypeParam;
  Rng rng(7);
  Case<T> c;
  c.shape = {64, 40, 40};
  c.map_count = 2;
  c.count = 33;
  c.maps = random_values<T>(rng, c.map_count * c.map_size());
  c.wh = c.ww = 36;
  c.ph = c.pw = 9;
  c.patches = random_values<T>(rng, c.count * 64 * 81);
  for (std::int64_t j = 0; j < c.count; ++j) {
    c.index.push_back(j % 2);
    c.window_origins.insert(c.window_origins.end(), {j - 10, 3 - j});
    c.patch_origins.insert(c.patch_origins.end(), {j % 31, (2 * j) % 31});
  }
  EXPECT_EQ(gather(c, true, T(0)), naive_gather(c, true, T(0)));
}

TYPED_TEST(FeatureWindows, SpliceEqualsTheNaiveLoopsWithAndWithoutState) {
  using T = TypeParam;
  Rng rng(202);
  for (int trial = 0; trial < 300; ++trial) {
    const Case<T> c = random_case<T>(rng);
    const std::int64_t capacity = std::max<std::int64_t>(1, c.count) + trial % 2;
    std::vector<T> out(static_cast<std::size_t>(capacity * c.map_size()), T(-5));
    fo::splice_windows<T>(c.maps.data(), c.map_count, c.shape, c.index.data(), c.patches.data(),
                          c.patch_boxes(), c.count, out.data(), capacity, nullptr);
    const std::vector<T> expected = naive_splice(c);
    EXPECT_TRUE(std::equal(expected.begin(), expected.end(), out.begin())) << trial;
    // Slots past count keep their content.
    EXPECT_TRUE(std::all_of(out.begin() + static_cast<std::ptrdiff_t>(expected.size()), out.end(),
                            [](T v) { return v == T(-5); }));
  }
}

// A persistent buffer driven like a sweep: every call moves some slots' boxes, changes the
// map of others, sometimes fewer slots (the last batch); the buffer always equals a fresh
// splice.
TYPED_TEST(FeatureWindows, IncrementalSpliceSessionsEqualAFreshSpliceEveryCall) {
  using T = TypeParam;
  Rng rng(303);
  for (int trial = 0; trial < 60; ++trial) {
    Case<T> c = random_case<T>(rng);
    const std::int64_t capacity = uniform_int(rng, 1, 6);
    std::vector<T> out(static_cast<std::size_t>(capacity * c.map_size()), T(-5));
    fo::SpliceState state;
    for (int call = 0; call < 12; ++call) {
      c.count = uniform_int(rng, 0, capacity);
      c.index.resize(static_cast<std::size_t>(c.count));
      c.patch_origins.resize(static_cast<std::size_t>(2 * c.count));
      c.patches = random_values<T>(rng, c.count * c.shape.channels * c.ph * c.pw);
      for (std::int64_t j = 0; j < c.count; ++j) {
        if (uniform_int(rng, 0, 4) == 0) c.index[j] = uniform_int(rng, 0, c.map_count - 1);
        c.patch_origins[2 * j] = uniform_int(rng, 0, c.shape.height - c.ph);
        c.patch_origins[2 * j + 1] = uniform_int(rng, 0, c.shape.width - c.pw);
      }
      fo::splice_windows<T>(c.maps.data(), c.map_count, c.shape, c.index.data(),
                            c.patches.data(), c.patch_boxes(), c.count, out.data(), capacity,
                            &state);
      const std::vector<T> expected = naive_splice(c);
      ASSERT_TRUE(std::equal(expected.begin(), expected.end(), out.begin()))
          << "trial " << trial << " call " << call;
    }
  }
}

TEST(FeatureWindowsState, AnotherPatchSizeOrBufferStartsOver) {
  fo::SpliceState state;
  const fo::MapShape shape{2, 5, 5};
  float maps[50] = {}, out_a[50] = {}, out_b[50] = {};
  EXPECT_FALSE(state.begin(maps, 1, shape, 2, 2, out_a, 1));
  EXPECT_TRUE(state.begin(maps, 1, shape, 2, 2, out_a, 1));
  EXPECT_FALSE(state.begin(maps, 1, shape, 3, 2, out_a, 1));
  EXPECT_FALSE(state.begin(maps, 1, shape, 3, 2, out_b, 1));
  EXPECT_FALSE(state.begin(maps, 1, {2, 5, 4}, 3, 2, out_b, 1));
  EXPECT_EQ(state.slot_maps()[0], -1);
  state.reset();
  EXPECT_FALSE(state.begin(maps, 1, {2, 5, 4}, 3, 2, out_b, 1));
}

TEST(FeatureWindowsErrors, InvalidArgumentsAreUserErrors) {
  const fo::MapShape shape{1, 4, 4};
  float maps[16] = {}, patches[4] = {}, out[64] = {};
  std::int64_t index[1] = {0}, origin[2] = {0, 0}, outside[2] = {3, 0};
  const fo::SlotBoxes windows{origin, 2, 2}, patch{origin, 2, 2}, bad_patch{outside, 2, 2};
  auto gather = [&](std::int64_t map_count, fo::MapShape s, const std::int64_t* idx,
                    fo::SlotBoxes w, fo::SlotBoxes p, std::int64_t count) {
    fo::gather_windows<float>(maps, map_count, s, idx, w, patches, p, 0.0f, count, out);
  };
  using test_support::user_error_message;
  EXPECT_NE(user_error_message([&] { gather(1, shape, index, windows, patch, -1); }).find("count"),
            std::string::npos);
  EXPECT_NE(user_error_message([&] { gather(0, shape, index, windows, patch, 1); }).find("map_count"),
            std::string::npos);
  EXPECT_NE(user_error_message([&] { gather(1, {0, 4, 4}, index, windows, patch, 1); }).find("maps"),
            std::string::npos);
  std::int64_t bad_index[1] = {1};
  EXPECT_NE(user_error_message([&] { gather(1, shape, bad_index, windows, patch, 1); }).find("map_index"),
            std::string::npos);
  EXPECT_NE(user_error_message([&] { gather(1, shape, index, windows, bad_patch, 1); }).find("patch box"),
            std::string::npos);
  EXPECT_NE(user_error_message([&] { gather(1, shape, index, {origin, 0, 2}, patch, 1); }).find("windows"),
            std::string::npos);
  std::int64_t far[2] = {std::int64_t{1} << 50, 0};
  EXPECT_NE(user_error_message([&] { gather(1, shape, index, {far, 2, 2}, patch, 1); }).find("origin"),
            std::string::npos);
  EXPECT_NE(user_error_message([&] {
              fo::splice_windows<float>(maps, 1, shape, index, patches, patch, 1, out, 0, nullptr);
            }).find("capacity"),
            std::string::npos);
  EXPECT_NE(user_error_message([&] {
              fo::splice_windows<float>(maps, 1, shape, index, nullptr, patch, 1, out, 1, nullptr);
            }).find("patches"),
            std::string::npos);
  // count 0 touches nothing and needs no pointers.
  fo::gather_windows<float>(nullptr, 1, shape, nullptr, {nullptr, 2, 2}, nullptr, patch, 0.0f, 0,
                            nullptr);
  fo::splice_windows<float>(nullptr, 1, shape, nullptr, nullptr, {nullptr, 2, 2}, 0, out, 1,
                            nullptr);
}

}  // namespace
