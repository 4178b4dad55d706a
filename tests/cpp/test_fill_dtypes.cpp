// The fills of every element type (fill.hpp, "Element types"): float, double and the
// unsigned integers of 1, 2, 4 and 8 bytes, full and incremental, against the float oracle.
//
// The oracle fills float "labels": input element i is labelled i, baseline value j is
// labelled -(j + 1). A fill of type T must put, at every position, the T value the label
// names (inputs[i] or baseline[j]): a copy of that value bit for bit, whatever T is.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "test_support.hpp"

namespace {

namespace fo = fastocclusion;
using test_support::FillCase;

template <typename T>
class FillDtypes : public ::testing::Test {};

using ElementTypes =
    ::testing::Types<float, double, std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t>;
TYPED_TEST_SUITE(FillDtypes, ElementTypes);

// Distinct T values for index i, with every byte of a wide T in use (bit patterns that
// are not numbers as floats of that width are fine: the fills copy).
template <typename T>
T value_of(std::uint64_t i) {
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(i) * static_cast<T>(0.5) + static_cast<T>(0.25);
  } else {
    const std::uint64_t mixed = (i + 1) * 0x9E3779B97F4A7C15ull;
    return static_cast<T>(mixed >> (64 - 8 * sizeof(T)));
  }
}

// A case relabelled: float labels for the oracle, T values for the fill.
template <typename T>
struct TypedCase {
  FillCase labels;
  std::vector<T> inputs, baseline;

  explicit TypedCase(FillCase fc) : labels(std::move(fc)) {
    for (std::size_t i = 0; i < labels.inputs.size(); ++i) {
      labels.inputs[i] = static_cast<float>(i);
      inputs.push_back(value_of<T>(i));
    }
    for (std::size_t j = 0; j < labels.baseline.size(); ++j) {
      labels.baseline[j] = -static_cast<float>(j + 1);
      baseline.push_back(value_of<T>(1000003 + j));
    }
  }

  fo::BasicBaseline<T> core_baseline() const {
    return {labels.core_baseline().kind, baseline.data()};
  }

  // The T values the oracle's labels name.
  std::vector<T> expected(std::int64_t start, std::int64_t count, std::int64_t stride) const {
    std::vector<T> out;
    for (float label : labels.expected(start, count, stride)) {
      const auto index = static_cast<std::int64_t>(label);
      out.push_back(index >= 0 ? inputs[static_cast<std::size_t>(index)]
                               : baseline[static_cast<std::size_t>(-index - 1)]);
    }
    return out;
  }
};

template <typename T>
bool same_bits(const std::vector<T>& a, const T* b, std::size_t count) {
  return std::memcmp(a.data(), b, count * sizeof(T)) == 0;
}

TYPED_TEST(FillDtypes, FullAndIncrementalFillsCopyTheValuesTheOracleNames) {
  using T = TypeParam;
  test_support::Rng rng(20261207);
  for (int trial = 0; trial < 90; ++trial) {
    const auto layout = test_support::kAllLayouts[trial % 3];
    const TypedCase<T> tc(test_support::random_case(rng, layout, 1 + trial / 3 % 4));
    SCOPED_TRACE(tc.labels.describe());
    ASSERT_LT(tc.inputs.size() + tc.baseline.size(), std::size_t{1} << 24);  // exact labels
    const std::int64_t sample = tc.labels.sample();
    const std::int64_t total = tc.labels.stream_size();
    const std::int64_t capacity = test_support::uniform_int(rng, 1, 7);
    const std::int64_t chunk = (total + capacity - 1) / capacity;
    std::vector<T> full(static_cast<std::size_t>(capacity * sample));
    std::vector<T> incremental(full.size());
    fo::IncrementalFillState state;
    // The chunked sweep of engine.sweep: batch b holds stream indices b + j * chunk.
    for (std::int64_t b = 0; b < chunk; ++b) {
      const std::int64_t count = (total - b + chunk - 1) / chunk;
      fo::fill_occluded_batch<T>(tc.inputs.data(), tc.labels.n, tc.labels.grid(),
                                 tc.core_baseline(), b, count, full.data(), chunk);
      fo::fill_occluded_batch_incremental<T>(tc.inputs.data(), tc.labels.n, tc.labels.grid(),
                                             tc.core_baseline(), b, count, incremental.data(),
                                             capacity, state, chunk);
      const std::vector<T> expected = tc.expected(b, count, chunk);
      const auto size = static_cast<std::size_t>(count * sample);
      ASSERT_TRUE(same_bits(expected, full.data(), size)) << "full fill, batch " << b;
      ASSERT_TRUE(same_bits(expected, incremental.data(), size)) << "incremental, batch " << b;
    }
  }
}

TYPED_TEST(FillDtypes, ComputingBaselinesNeedFloatingPointValues) {
  using T = TypeParam;
  const fo::WindowGrid grid = test_support::make_grid({4, 4}, {2, 2}, {2, 2}, {false, false});
  const std::vector<T> inputs(16, value_of<T>(3));
  std::vector<T> batch(16 * 4, value_of<T>(0));
  const std::vector<T> mask(4, value_of<T>(1));
  const fo::BasicBaseline<T> baseline{fo::BaselineKind::window_mask, mask.data()};
  if constexpr (std::is_floating_point_v<T>) {
    fo::fill_occluded_batch<T>(inputs.data(), 1, grid, baseline, 0, 4, batch.data());
    EXPECT_EQ(batch[0], inputs[0] * mask[0]);
  } else {
    const std::vector<T> before = batch;
    EXPECT_THROW(fo::fill_occluded_batch<T>(inputs.data(), 1, grid, baseline, 0, 4, batch.data()),
                 fo::user_error);
    EXPECT_EQ(batch, before) << "wrote before refusing";
    fo::IncrementalFillState state;
    EXPECT_THROW(fo::fill_occluded_batch_incremental<T>(inputs.data(), 1, grid, baseline, 0, 4,
                                                        batch.data(), 4, state),
                 fo::user_error);
  }
}

}  // namespace
