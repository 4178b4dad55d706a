// gather_windows and splice_windows (feature-map windows of incremental inference) against
// naive per-element loops: random map shapes over 1 to 3 axes, windows past every edge,
// patches at the borders, both value types, persistent splice sessions, and the argument
// checks.
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

// A random case over 1 to 3 map axes: maps, one slot per window, patches inside the map.
template <typename T>
struct Case {
  fo::MapShape shape;
  std::int64_t map_count = 0, count = 0;
  std::vector<T> maps, patches;
  std::vector<std::int64_t> index, window_origins, patch_origins;
  fo::AxisSizes window{}, patch{};

  int axes() const { return shape.axes; }
  std::int64_t volume(const fo::AxisSizes& size) const {
    std::int64_t v = 1;
    for (int a = 0; a < axes(); ++a) v *= size[a];
    return v;
  }
  std::int64_t map_size() const { return shape.channels * volume(shape.size); }
  std::int64_t patch_size() const { return shape.channels * volume(patch); }
  fo::SlotBoxes windows() const { return {window_origins.data(), window}; }
  fo::SlotBoxes patch_boxes() const { return {patch_origins.data(), patch}; }
};

template <typename T>
std::vector<T> random_values(Rng& rng, std::int64_t size) {
  std::vector<T> values(static_cast<std::size_t>(size));
  for (T& v : values) v = static_cast<T>(uniform_int(rng, -1000, 1000)) / T(8);
  return values;
}

template <typename T>
Case<T> random_case(Rng& rng, int axes = 0) {
  Case<T> c;
  c.shape.channels = uniform_int(rng, 1, 4);
  c.shape.axes = axes > 0 ? axes : static_cast<int>(uniform_int(rng, 1, fo::kMaxMapAxes));
  const std::int64_t longest = c.shape.axes == 3 ? 7 : 13;
  for (int a = 0; a < c.axes(); ++a) {
    c.shape.size[a] = uniform_int(rng, 1, longest);
    c.window[a] = uniform_int(rng, 1, c.shape.size[a] + 4);
    c.patch[a] = uniform_int(rng, 1, c.shape.size[a]);
  }
  c.map_count = uniform_int(rng, 1, 3);
  c.count = uniform_int(rng, 0, 6);
  c.maps = random_values<T>(rng, c.map_count * c.map_size());
  c.patches = random_values<T>(rng, c.count * c.patch_size());
  for (std::int64_t j = 0; j < c.count; ++j) {
    c.index.push_back(uniform_int(rng, 0, c.map_count - 1));
    for (int a = 0; a < c.axes(); ++a) {
      c.window_origins.push_back(uniform_int(rng, -c.window[a] - 1, c.shape.size[a] + 1));
      c.patch_origins.push_back(uniform_int(rng, 0, c.shape.size[a] - c.patch[a]));
    }
  }
  return c;
}

// The row-major offset of position `at` in an array of `size` over `axes` axes.
std::int64_t offset(const fo::AxisSizes& at, const fo::AxisSizes& size, int axes) {
  std::int64_t o = 0;
  for (int a = 0; a < axes; ++a) o = o * size[a] + at[a];
  return o;
}

// Every position of a box of `size`, row-major.
std::vector<fo::AxisSizes> positions(const fo::AxisSizes& size, int axes) {
  std::vector<fo::AxisSizes> out(1, fo::AxisSizes{});
  for (int a = 0; a < axes; ++a) {
    std::vector<fo::AxisSizes> next;
    for (const fo::AxisSizes& p : out) {
      for (std::int64_t i = 0; i < size[a]; ++i) {
        fo::AxisSizes q = p;
        q[a] = i;
        next.push_back(q);
      }
    }
    out = next;
  }
  return out;
}

// The value of slot j's spliced map at (ch, *p): the patch inside its box, else the map.
template <typename T>
T spliced_value(const Case<T>& c, std::int64_t j, std::int64_t ch, const fo::AxisSizes& p,
                bool with_patches) {
  bool in_patch = with_patches;
  fo::AxisSizes local{};
  for (int a = 0; a < c.axes() && in_patch; ++a) {
    local[a] = p[a] - c.patch_origins[static_cast<std::size_t>(j * c.axes() + a)];
    in_patch = local[a] >= 0 && local[a] < c.patch[a];
  }
  if (in_patch) {
    return c.patches[static_cast<std::size_t>(j * c.patch_size() + ch * c.volume(c.patch) +
                                              offset(local, c.patch, c.axes()))];
  }
  return c.maps[static_cast<std::size_t>(c.index[j] * c.map_size() + ch * c.volume(c.shape.size) +
                                         offset(p, c.shape.size, c.axes()))];
}

// The naive gather: one element at a time, as the contract says.
template <typename T>
std::vector<T> naive_gather(const Case<T>& c, bool with_patches, T pad) {
  std::vector<T> out;
  for (std::int64_t j = 0; j < c.count; ++j) {
    for (std::int64_t ch = 0; ch < c.shape.channels; ++ch) {
      for (const fo::AxisSizes& w : positions(c.window, c.axes())) {
        fo::AxisSizes p{};
        bool inside = true;
        for (int a = 0; a < c.axes(); ++a) {
          p[a] = c.window_origins[static_cast<std::size_t>(j * c.axes() + a)] + w[a];
          inside = inside && p[a] >= 0 && p[a] < c.shape.size[a];
        }
        out.push_back(inside ? spliced_value(c, j, ch, p, with_patches) : pad);
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
      for (const fo::AxisSizes& p : positions(c.shape.size, c.axes())) {
        out.push_back(spliced_value(c, j, ch, p, true));
      }
    }
  }
  return out;
}

template <typename T>
std::vector<T> gather(const Case<T>& c, bool with_patches, T pad) {
  std::vector<T> out(static_cast<std::size_t>(c.count * c.shape.channels * c.volume(c.window)),
                     T(-5));
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
  for (int trial = 0; trial < 600; ++trial) {
    const Case<T> c = random_case<T>(rng, 1 + trial % fo::kMaxMapAxes);
    const T pad = trial % 2 ? -std::numeric_limits<T>::infinity() : T(0);
    EXPECT_EQ(gather(c, true, pad), naive_gather(c, true, pad)) << "trial " << trial;
    EXPECT_EQ(gather(c, false, pad), naive_gather(c, false, pad)) << "trial " << trial;
  }
}

TYPED_TEST(FeatureWindows, GatherOfLargeWorkRunsInParallelAndStaysExact) {
  using T = TypeParam;
  Rng rng(7);
  for (int axes = 2; axes <= 3; ++axes) {
    Case<T> c;
    c.shape = {axes == 2 ? 64 : 8, axes, axes == 2 ? fo::AxisSizes{40, 40} : fo::AxisSizes{20, 20, 20}};
    c.map_count = 2;
    c.count = 33;
    c.maps = random_values<T>(rng, c.map_count * c.map_size());
    c.window = axes == 2 ? fo::AxisSizes{36, 36} : fo::AxisSizes{16, 17, 18};
    c.patch = axes == 2 ? fo::AxisSizes{9, 9} : fo::AxisSizes{5, 6, 7};
    c.patches = random_values<T>(rng, c.count * c.patch_size());
    for (std::int64_t j = 0; j < c.count; ++j) {
      c.index.push_back(j % 2);
      for (int a = 0; a < axes; ++a) {
        c.window_origins.push_back(a == 0 ? j - 10 : 3 - j + a);
        c.patch_origins.push_back((j * (a + 1)) % (c.shape.size[a] - c.patch[a] + 1));
      }
    }
    EXPECT_EQ(gather(c, true, T(0)), naive_gather(c, true, T(0))) << axes << " axes";
  }
}

TYPED_TEST(FeatureWindows, SpliceEqualsTheNaiveLoopsWithAndWithoutState) {
  using T = TypeParam;
  Rng rng(202);
  for (int trial = 0; trial < 450; ++trial) {
    const Case<T> c = random_case<T>(rng, 1 + trial % fo::kMaxMapAxes);
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
  for (int trial = 0; trial < 90; ++trial) {
    Case<T> c = random_case<T>(rng, 1 + trial % fo::kMaxMapAxes);
    const std::int64_t capacity = uniform_int(rng, 1, 6);
    std::vector<T> out(static_cast<std::size_t>(capacity * c.map_size()), T(-5));
    fo::SpliceState state;
    for (int call = 0; call < 12; ++call) {
      c.count = uniform_int(rng, 0, capacity);
      c.index.resize(static_cast<std::size_t>(c.count));
      c.patch_origins.resize(static_cast<std::size_t>(c.axes() * c.count));
      c.patches = random_values<T>(rng, c.count * c.patch_size());
      for (std::int64_t j = 0; j < c.count; ++j) {
        if (uniform_int(rng, 0, 4) == 0) c.index[j] = uniform_int(rng, 0, c.map_count - 1);
        for (int a = 0; a < c.axes(); ++a) {
          c.patch_origins[static_cast<std::size_t>(j * c.axes() + a)] =
              uniform_int(rng, 0, c.shape.size[a] - c.patch[a]);
        }
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
  const fo::MapShape shape{2, 2, {5, 5}};
  float maps[50] = {}, out_a[50] = {}, out_b[50] = {};
  EXPECT_FALSE(state.begin(maps, 1, shape, {2, 2}, out_a, 1));
  EXPECT_TRUE(state.begin(maps, 1, shape, {2, 2}, out_a, 1));
  // Sizes past the map's axes do not count.
  EXPECT_TRUE(state.begin(maps, 1, {2, 2, {5, 5, 9}}, {2, 2, 7}, out_a, 1));
  EXPECT_FALSE(state.begin(maps, 1, shape, {3, 2}, out_a, 1));
  EXPECT_FALSE(state.begin(maps, 1, shape, {3, 2}, out_b, 1));
  EXPECT_FALSE(state.begin(maps, 1, {2, 2, {5, 4}}, {3, 2}, out_b, 1));
  EXPECT_FALSE(state.begin(maps, 1, {2, 3, {1, 5, 4}}, {1, 3, 2}, out_b, 1));
  EXPECT_EQ(state.slot_maps()[0], -1);
  state.reset();
  EXPECT_FALSE(state.begin(maps, 1, {2, 2, {5, 4}}, {3, 2}, out_b, 1));
}

TEST(FeatureWindowsErrors, InvalidArgumentsAreUserErrors) {
  const fo::MapShape shape{1, 2, {4, 4}};
  float maps[16] = {}, patches[4] = {}, out[64] = {};
  std::int64_t index[1] = {0}, origin[2] = {0, 0}, outside[2] = {3, 0};
  const fo::SlotBoxes windows{origin, {2, 2}}, patch{origin, {2, 2}}, bad_patch{outside, {2, 2}};
  auto gather = [&](std::int64_t map_count, fo::MapShape s, const std::int64_t* idx,
                    fo::SlotBoxes w, fo::SlotBoxes p, std::int64_t count) {
    fo::gather_windows<float>(maps, map_count, s, idx, w, patches, p, 0.0f, count, out);
  };
  using test_support::user_error_message;
  EXPECT_NE(user_error_message([&] { gather(1, shape, index, windows, patch, -1); }).find("count"),
            std::string::npos);
  EXPECT_NE(user_error_message([&] { gather(0, shape, index, windows, patch, 1); }).find("map_count"),
            std::string::npos);
  EXPECT_NE(user_error_message([&] { gather(1, {0, 2, {4, 4}}, index, windows, patch, 1); }).find("maps"),
            std::string::npos);
  std::int64_t bad_index[1] = {1};
  EXPECT_NE(user_error_message([&] { gather(1, shape, bad_index, windows, patch, 1); }).find("map_index"),
            std::string::npos);
  EXPECT_NE(user_error_message([&] { gather(1, shape, index, windows, bad_patch, 1); }).find("patch box"),
            std::string::npos);
  EXPECT_NE(user_error_message([&] { gather(1, shape, index, {origin, {0, 2}}, patch, 1); }).find("windows"),
            std::string::npos);
  std::int64_t far[2] = {std::int64_t{1} << 50, 0};
  EXPECT_NE(user_error_message([&] { gather(1, shape, index, {far, {2, 2}}, patch, 1); }).find("origin"),
            std::string::npos);
  EXPECT_NE(user_error_message([&] {
              fo::splice_windows<float>(maps, 1, shape, index, patches, patch, 1, out, 0, nullptr);
            }).find("capacity"),
            std::string::npos);
  EXPECT_NE(user_error_message([&] {
              fo::splice_windows<float>(maps, 1, shape, index, nullptr, patch, 1, out, 1, nullptr);
            }).find("patches"),
            std::string::npos);
  for (int axes : {0, 4}) {
    EXPECT_NE(user_error_message([&] { gather(1, {1, axes, {4, 4, 4}}, index, windows, patch, 1); })
                  .find("axes"),
              std::string::npos);
  }
  // count 0 touches nothing and needs no pointers.
  fo::gather_windows<float>(nullptr, 1, shape, nullptr, {nullptr, {2, 2}}, nullptr, patch, 0.0f,
                            0, nullptr);
  fo::splice_windows<float>(nullptr, 1, shape, nullptr, nullptr, {nullptr, {2, 2}}, 0, out, 1,
                            nullptr);
}

}  // namespace
