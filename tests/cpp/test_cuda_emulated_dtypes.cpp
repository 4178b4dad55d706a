// The CUDA fills of every element type without a GPU: the shipped launchers (run_fill,
// run_incremental_fill of csrc/src/cuda/fill_host.hpp) with the emulating Launch policy of
// cuda_emulation.hpp, instantiated for float, double and the unsigned integers of 1, 2, 4
// and 8 bytes (fill.hpp, "Element types": float16, bfloat16, integers and bool travel as
// the unsigned integer of their width), against the CPU's typed fills (the oracle), bit for
// bit: random grids of rank 1..5 with "valid", "cover" and "shift" axes and regions, every
// baseline kind the type allows, full and incremental (chunked slot order), inputs and
// batches 16-byte aligned or one element off (the 16-byte vector copy and the scalar copy),
// launch grids shrunk so every loop wraps. The computing baselines with integer values are
// refused before any launch, as on the CPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda_emulation.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "fastocclusion/geometry.hpp"
#include "window_ops_support.hpp"

namespace {

namespace emu = cuda_emulation;
namespace fd = fastocclusion::cuda::detail;
namespace fo = fastocclusion;
using fo::BaselineKind;
using window_ops::Rng;
using window_ops::uniform_int;

cudaStream_t test_stream() { return reinterpret_cast<cudaStream_t>(std::uintptr_t{0x5eed2}); }

template <typename T>
class EmulatedFillDtypes : public ::testing::Test {};

using ElementTypes =
    ::testing::Types<float, double, std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t>;
TYPED_TEST_SUITE(EmulatedFillDtypes, ElementTypes);

// Random values of T: floats in [lo, hi]; for the integer types random bit patterns (the
// fills copy them; a collision of an input with a baseline value is fine: the comparison
// is with the CPU fill of the same values).
template <typename T>
std::vector<T> random_values(Rng& rng, std::int64_t size, double lo, double hi) {
  std::vector<T> v(static_cast<std::size_t>(size));
  for (T& x : v) {
    if constexpr (std::is_floating_point_v<T>) {
      x = static_cast<T>(std::uniform_real_distribution<double>(lo, hi)(rng));
    } else {
      x = static_cast<T>(rng());
    }
  }
  return v;
}

template <typename T>
::testing::AssertionResult same_bits(const T* got, const T* expected, std::int64_t size) {
  for (std::int64_t i = 0; i < size; ++i) {
    if (std::memcmp(got + i, expected + i, sizeof(T)) != 0) {
      return ::testing::AssertionFailure() << "element " << i << " differs";
    }
  }
  return ::testing::AssertionSuccess();
}

void randomize_launches(Rng& rng) { emu::randomize(rng, test_stream()); }

// The kinds a T allows: the copying ones always, the computing ones for float and double.
template <typename T>
std::vector<BaselineKind> kinds() {
  std::vector<BaselineKind> k = {BaselineKind::scalar, BaselineKind::per_sample,
                                 BaselineKind::per_input, BaselineKind::per_window};
  if constexpr (std::is_floating_point_v<T>) {
    k.push_back(BaselineKind::per_window_scale);
    k.push_back(BaselineKind::window_mask);
  }
  return k;
}

template <typename T>
struct Problem {
  window_ops::GridCase c;
  fo::WindowGrid grid;
  std::int64_t n = 1;
  BaselineKind kind = BaselineKind::scalar;
  std::vector<T> inputs, values;

  fo::BasicBaseline<T> core() const { return {kind, values.data()}; }
  fo::cuda::BasicDeviceBaseline<T> device() const {
    fo::cuda::BasicDeviceBaseline<T> b;
    b.kind = kind;
    b.scalar = values[0];
    b.values = kind == BaselineKind::scalar ? nullptr : values.data();
    return b;
  }
  std::string describe() const {
    return c.describe() + " n=" + std::to_string(n) + " kind=" +
           std::to_string(static_cast<int>(kind)) + " T=" + std::to_string(sizeof(T)) +
           (std::is_floating_point_v<T> ? "-byte float" : "-byte unsigned");
  }
};

template <typename T>
Problem<T> random_problem(Rng& rng, int trial, BaselineKind kind) {
  Problem<T> p;
  p.c = window_ops::random_grid_case(rng, trial);
  p.grid = p.c.grid();
  p.n = uniform_int(rng, 1, 3);
  p.kind = kind;
  p.inputs = random_values<T>(rng, p.n * p.c.sample(), -1.0, 1.0);
  const bool factor = fo::baseline_computes(kind);
  p.values = random_values<T>(rng, fo::baseline_size(kind, p.n, p.grid), factor ? 0.0 : 2.0,
                              factor ? 1.0 : 3.0);
  return p;
}

TYPED_TEST(EmulatedFillDtypes, FullFillsMatchTheCpuBitForBit) {
  using T = TypeParam;
  Rng rng(91 + sizeof(T));
  emu::reset();
  const std::vector<BaselineKind> allowed = kinds<T>();
  for (int trial = 0; trial < 300; ++trial) {
    const Problem<T> p = random_problem<T>(rng, trial, allowed[trial % allowed.size()]);
    const std::int64_t sample = p.c.sample(), total = p.n * p.grid.num_windows();
    randomize_launches(rng);
    const std::int64_t stride = uniform_int(rng, 1, 3), start = uniform_int(rng, 0, total - 1);
    const std::int64_t count = std::min<std::int64_t>((total - 1 - start) / stride + 1, 24);
    std::vector<T> expected(static_cast<std::size_t>((count + 1) * sample), T{7});
    fo::fill_occluded_batch<T>(p.inputs.data(), p.n, p.grid, p.core(), start, count,
                               expected.data(), stride);
    // Inputs and batch 16-byte aligned (the vector copy where the sample is whole vectors)
    // or one element off (the scalar copy).
    const std::int64_t shift = uniform_int(rng, 0, 1);
    emu::Aligned<T> inputs(p.n * sample, uniform_int(rng, 0, 1), T{});
    std::copy(p.inputs.begin(), p.inputs.end(), inputs.data());
    emu::Aligned<T> batch((count + 1) * sample, shift, T{7});
    fd::run_fill<emu::Fill>(static_cast<const T*>(inputs.data()), p.n, p.grid, p.device(), start,
                            count, batch.data(), stride, test_stream());
    ASSERT_TRUE(same_bits(batch.data(), expected.data(), (count + 1) * sample))
        << p.describe() << " start=" << start << " count=" << count << " stride=" << stride;
  }
  const emu::Stats& s = emu::stats();
  EXPECT_GT(s.vectorised, 0);
  EXPECT_GT(s.scalar_width, 0);
  EXPECT_GT(s.copy_wraps + s.box_wraps, 0);
}

TYPED_TEST(EmulatedFillDtypes, IncrementalChunkedSweepsMatchTheCpuBitForBit) {
  using T = TypeParam;
  Rng rng(191 + sizeof(T));
  emu::reset();
  const std::vector<BaselineKind> allowed = kinds<T>();
  for (int trial = 0; trial < 120; ++trial) {
    const Problem<T> p = random_problem<T>(rng, trial, allowed[trial % allowed.size()]);
    const std::int64_t sample = p.c.sample(), total = p.n * p.grid.num_windows();
    const std::int64_t capacity = uniform_int(rng, 1, 6);
    const std::int64_t chunk = (total + capacity - 1) / capacity;
    std::vector<T> expected(static_cast<std::size_t>(capacity * sample));
    emu::Aligned<T> batch(capacity * sample, uniform_int(rng, 0, 1), T{});
    fo::IncrementalFillState cpu_state, device_state;
    // The chunked sweep of engine.sweep: batch b holds stream indices b + j * chunk.
    for (std::int64_t b = 0; b < chunk; ++b) {
      randomize_launches(rng);
      const std::int64_t count = (total - b + chunk - 1) / chunk;
      fo::fill_occluded_batch_incremental<T>(p.inputs.data(), p.n, p.grid, p.core(), b, count,
                                             expected.data(), capacity, cpu_state, chunk);
      fd::run_incremental_fill<emu::Fill>(p.inputs.data(), p.n, p.grid, p.device(), b, count,
                                          batch.data(), capacity, device_state, chunk,
                                          test_stream());
      ASSERT_TRUE(same_bits(batch.data(), expected.data(), count * sample))
          << p.describe() << " batch " << b << " of " << chunk;
    }
  }
  EXPECT_GT(emu::stats().updated_slots, 0);
  EXPECT_GT(emu::stats().full_slots, 0);
}

TYPED_TEST(EmulatedFillDtypes, ExplicitPairStreamsMatchTheCpuBitForBit) {
  // A sweep of some (input, window) pairs only (a drill-down's): random pairs, repeats and
  // any order included, full and incremental (chunked order), against the CPU's fill of the
  // same pairs. The emulation's "device" copy is a second host array: the kernels must read
  // it, the planning the host copy.
  using T = TypeParam;
  Rng rng(291 + sizeof(T));
  emu::reset();
  const std::vector<BaselineKind> allowed = kinds<T>();
  for (int trial = 0; trial < 120; ++trial) {
    const Problem<T> p = random_problem<T>(rng, trial, allowed[trial % allowed.size()]);
    const std::int64_t sample = p.c.sample(), windows = p.grid.num_windows();
    const std::int64_t count_pairs = uniform_int(rng, 1, 2 * p.n * windows);
    std::vector<std::int64_t> host;
    for (std::int64_t i = 0; i < count_pairs; ++i) {
      host.push_back(uniform_int(rng, 0, p.n - 1));
      host.push_back(uniform_int(rng, 0, windows - 1));
    }
    const std::vector<std::int64_t> device = host;
    const fo::cuda::DevicePairs pairs{host.data(), device.data(), count_pairs};
    const fo::StreamPairs cpu_pairs{host.data(), count_pairs};
    const std::int64_t capacity = uniform_int(rng, 1, 6);
    const std::int64_t chunk = (count_pairs + capacity - 1) / capacity;
    std::vector<T> expected(static_cast<std::size_t>(capacity * sample));
    std::vector<T> full_expected(expected.size());
    emu::Aligned<T> batch(capacity * sample, uniform_int(rng, 0, 1), T{});
    emu::Aligned<T> full(capacity * sample, uniform_int(rng, 0, 1), T{});
    fo::IncrementalFillState cpu_state, device_state;
    for (std::int64_t b = 0; b < chunk; ++b) {
      randomize_launches(rng);
      const std::int64_t count = (count_pairs - b + chunk - 1) / chunk;
      fo::fill_occluded_batch_incremental<T>(p.inputs.data(), p.n, p.grid, p.core(), b, count,
                                             expected.data(), capacity, cpu_state, chunk,
                                             cpu_pairs);
      fd::run_incremental_fill<emu::Fill>(p.inputs.data(), p.n, p.grid, p.device(), b, count,
                                          batch.data(), capacity, device_state, chunk,
                                          test_stream(), pairs);
      ASSERT_TRUE(same_bits(batch.data(), expected.data(), count * sample))
          << p.describe() << " incremental, batch " << b << " of " << chunk;
      fo::fill_occluded_batch<T>(p.inputs.data(), p.n, p.grid, p.core(), b, count,
                                 full_expected.data(), chunk, cpu_pairs);
      fd::run_fill<emu::Fill>(p.inputs.data(), p.n, p.grid, p.device(), b, count, full.data(),
                              chunk, test_stream(), pairs);
      ASSERT_TRUE(same_bits(full.data(), full_expected.data(), count * sample))
          << p.describe() << " full, batch " << b << " of " << chunk;
    }
  }
  EXPECT_GT(emu::stats().updated_slots, 0);
}

TEST(EmulatedFillPairs, TheKernelsReadTheDeviceCopyAndBadPairsAreRefusedBeforeAnyLaunch) {
  const fo::WindowGrid grid =
      window_ops::GridCase{{4, 4}, {2, 2}, {2, 2}, {0, 0}, {4, 4},
                           {naive::Edges::valid, naive::Edges::valid}}
          .grid();  // 4 windows
  std::vector<float> inputs(2 * 16);
  for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i] = static_cast<float>(i);
  const fo::cuda::DeviceBaseline zero{BaselineKind::scalar, nullptr, -1.0f};
  std::vector<float> batch(2 * 16, 0.0f);
  emu::reset();
  emu::config().stream = test_stream();
  // The host copy says (0, 0), (1, 3); the "device" copy (1, 2), (0, 1): the batch must hold
  // the device's pairs (the kernels read device memory), the plan the host's count.
  const std::vector<std::int64_t> host = {0, 0, 1, 3}, device = {1, 2, 0, 1};
  fd::run_fill<emu::Fill>(inputs.data(), 2, grid, zero, 0, 2, batch.data(), 1, test_stream(),
                          fo::cuda::DevicePairs{host.data(), device.data(), 2});
  std::vector<float> expected(2 * 16);
  const std::vector<std::int64_t> device_stream = device;
  fo::fill_occluded_batch<float>(inputs.data(), 2, grid, {BaselineKind::scalar, &zero.scalar},
                                 0, 2, expected.data(), 1, fo::StreamPairs{device_stream.data(), 2});
  EXPECT_EQ(batch, expected);
  const std::int64_t launches = emu::stats().launches;
  const std::vector<std::int64_t> bad = {0, 4};  // window 4 of 4
  EXPECT_THROW(fd::run_fill<emu::Fill>(inputs.data(), 2, grid, zero, 0, 1, batch.data(), 1,
                                       test_stream(),
                                       fo::cuda::DevicePairs{bad.data(), bad.data(), 1}),
               fo::user_error);
  EXPECT_THROW(fd::run_fill<emu::Fill>(inputs.data(), 2, grid, zero, 0, 1, batch.data(), 1,
                                       test_stream(),
                                       fo::cuda::DevicePairs{host.data(), nullptr, 2}),
               fo::user_error);
  EXPECT_THROW(fd::run_fill<emu::Fill>(inputs.data(), 2, grid, zero, 0, 3, batch.data(), 1,
                                       test_stream(),
                                       fo::cuda::DevicePairs{host.data(), device.data(), 2}),
               fo::user_error);  // 3 slots of a stream of 2 pairs
  EXPECT_EQ(emu::stats().launches, launches);
}

TYPED_TEST(EmulatedFillDtypes, ComputingBaselinesWithIntegerValuesAreRefusedBeforeAnyLaunch) {
  using T = TypeParam;
  if constexpr (!std::is_floating_point_v<T>) {
    emu::reset();
    emu::config().stream = test_stream();
    const fo::WindowGrid grid = window_ops::GridCase{{4, 4}, {2, 2}, {2, 2}, {0, 0}, {4, 4},
                                                     {naive::Edges::valid, naive::Edges::valid}}
                                    .grid();
    const std::vector<T> inputs(16, T{3});
    const std::vector<T> values(16, T{1});
    std::vector<T> batch(16 * 4, T{0});
    for (const BaselineKind kind : {BaselineKind::per_window_scale, BaselineKind::window_mask}) {
      const fo::cuda::BasicDeviceBaseline<T> baseline{kind, values.data(), T{}};
      std::string cpu_message, device_message;
      try {
        fo::fill_occluded_batch<T>(inputs.data(), 1, grid, {kind, values.data()}, 0, 4,
                                   batch.data());
      } catch (const fo::user_error& e) {
        cpu_message = e.what();
      }
      try {
        fd::run_fill<emu::Fill>(inputs.data(), 1, grid, baseline, 0, 4, batch.data(), 1,
                                test_stream());
      } catch (const fo::user_error& e) {
        device_message = e.what();
      }
      EXPECT_FALSE(cpu_message.empty());
      EXPECT_EQ(device_message, cpu_message);
      fo::IncrementalFillState state;
      EXPECT_THROW(fd::run_incremental_fill<emu::Fill>(inputs.data(), 1, grid, baseline, 0, 4,
                                                       batch.data(), 4, state, 1, test_stream()),
                   fo::user_error);
    }
    EXPECT_EQ(emu::stats().launches, 0);
    EXPECT_EQ(batch, std::vector<T>(16 * 4, T{0}));
  }
}

TYPED_TEST(EmulatedFillDtypes, VectorsAreSixteenBytesOfT) {
  using T = TypeParam;
  // A 1-D sample of 4 vectors' worth of T: aligned, the copy moves 16-byte units; one
  // element off, single values.
  const std::int64_t length = 4 * fd::kVectorWidth<T>;
  const fo::WindowGrid grid = window_ops::GridCase{{length}, {1}, {1}, {0}, {length},
                                                   {naive::Edges::valid}}
                                  .grid();
  Rng rng(7);
  const std::vector<T> inputs = random_values<T>(rng, length, -1.0, 1.0);
  for (const std::int64_t shift : {0, 1}) {
    emu::reset();
    emu::config().stream = test_stream();
    emu::Aligned<T> in(length, shift, T{});
    std::copy(inputs.begin(), inputs.end(), in.data());
    emu::Aligned<T> batch(2 * length, shift, T{});
    fd::run_fill<emu::Fill>(static_cast<const T*>(in.data()), 1, grid,
                            fo::cuda::BasicDeviceBaseline<T>{}, 0, 2, batch.data(), 1,
                            test_stream());
    // Slot j: the input with element j set to the scalar baseline (zero).
    for (std::int64_t j = 0; j < 2; ++j) {
      for (std::int64_t i = 0; i < length; ++i) {
        const T got = batch.data()[j * length + i];
        EXPECT_EQ(got, i == j ? T{} : inputs[static_cast<std::size_t>(i)]);
      }
    }
    EXPECT_EQ(emu::stats().vectorised, shift == 0 ? 1 : 0);
    EXPECT_EQ(emu::stats().scalar_width, shift == 0 ? 0 : 1);
  }
}

}  // namespace
