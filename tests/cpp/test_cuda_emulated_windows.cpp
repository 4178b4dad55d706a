// The CUDA kernels' logic for MONAI's occlusion sensitivity, without a GPU: the shipped
// launchers (fill_host.hpp, accumulate_host.hpp, blend_host.hpp) over the emulating Launch
// policies of cuda_emulation.hpp, against the CPU core functions (the oracle), on random
// grids with "shift" axes and regions: fills with every baseline kind (per_window,
// per_window_scale and window_mask included; full and incremental, bit for bit), window means and the weighted
// blend (bit for bit: the same float64 sums in the same order), and the summed-area maps
// over shifted grids (float rounding). Grids are shrunk at random so the loops wrap.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_emulation.hpp"
#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "fastocclusion/geometry.hpp"
#include "window_ops_support.hpp"

namespace {

namespace emu = cuda_emulation;
namespace fd = fastocclusion::cuda::detail;
namespace fo = fastocclusion;
using fo::BaselineKind;
using window_ops::GridCase;
using window_ops::Rng;
using window_ops::uniform_int;

cudaStream_t test_stream() { return reinterpret_cast<cudaStream_t>(std::uintptr_t{0x5eed1}); }

::testing::AssertionResult same_bits(const float* got, const float* expected, std::int64_t size) {
  for (std::int64_t i = 0; i < size; ++i) {
    if (std::memcmp(got + i, expected + i, sizeof(float)) != 0) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << got[i] << ", expected " << expected[i];
    }
  }
  return ::testing::AssertionSuccess();
}

void randomize_launches(Rng& rng) { emu::randomize(rng, test_stream()); }

constexpr BaselineKind kKinds[] = {BaselineKind::scalar,     BaselineKind::per_sample,
                                   BaselineKind::per_input,  BaselineKind::per_window,
                                   BaselineKind::per_window_scale, BaselineKind::window_mask};

// A fill problem: inputs in [-1, 1], baseline values of `kind` (per_window: the window
// means, per_window_scale and window_mask: factors in [0, 1], others in [2, 3]).
struct Problem {
  GridCase c;
  fo::WindowGrid grid;
  std::int64_t n = 1;
  BaselineKind kind = BaselineKind::scalar;
  std::vector<float> inputs, values;

  fo::Baseline core() const { return {kind, values.data()}; }
  fo::cuda::DeviceBaseline device() const {
    fo::cuda::DeviceBaseline b;
    b.kind = kind;
    b.scalar = values[0];
    b.values = kind == BaselineKind::scalar ? nullptr : values.data();
    return b;
  }
  std::string describe() const {
    return c.describe() + " n=" + std::to_string(n) + " kind=" +
           std::to_string(static_cast<int>(kind));
  }
};

Problem random_problem(Rng& rng, int trial, BaselineKind kind) {
  Problem p;
  p.c = window_ops::random_grid_case(rng, trial);
  p.grid = p.c.grid();
  p.n = uniform_int(rng, 1, 3);
  p.kind = kind;
  p.inputs = window_ops::random_floats(rng, p.n * p.c.sample(), -1.0f, 1.0f);
  const std::int64_t size = fo::baseline_size(kind, p.n, p.grid);
  const bool factor = kind == BaselineKind::window_mask || kind == BaselineKind::per_window_scale;
  if (kind == BaselineKind::per_window) {
    p.values.resize(static_cast<std::size_t>(size));
    fo::window_means(p.inputs.data(), p.n, p.grid, p.values.data());
  } else {
    p.values = window_ops::random_floats(rng, size, factor ? 0.0f : 2.0f, factor ? 1.0f : 3.0f);
  }
  return p;
}

TEST(EmulatedWindowFill, FullFillsMatchTheCpuBitForBit) {
  Rng rng(81);
  emu::reset();
  for (int trial = 0; trial < 500; ++trial) {
    const Problem p = random_problem(rng, trial, kKinds[trial % 6]);
    const std::int64_t sample = p.c.sample(), total = p.n * p.grid.num_windows();
    randomize_launches(rng);
    const std::int64_t stride = uniform_int(rng, 1, 3), start = uniform_int(rng, 0, total - 1);
    const std::int64_t count = std::min<std::int64_t>((total - 1 - start) / stride + 1, 24);
    std::vector<float> expected(static_cast<std::size_t>(count * sample), -777.0f);
    fo::fill_occluded_batch(p.inputs.data(), p.n, p.grid, p.core(), start, count,
                            expected.data(), stride);
    // One float of offset in one case of two: the launcher must take the scalar copy.
    const std::size_t shift = static_cast<std::size_t>(trial % 2);
    std::vector<float> storage(static_cast<std::size_t>(count * sample) + 1, -777.0f);
    fd::run_fill<emu::Fill>(p.inputs.data(), p.n, p.grid, p.device(), start, count,
                            storage.data() + shift, stride, test_stream());
    ASSERT_TRUE(same_bits(storage.data() + shift, expected.data(), count * sample))
        << p.describe() << " start=" << start << " count=" << count << " stride=" << stride;
  }
  EXPECT_GT(emu::stats().box_wraps, 0);
}

TEST(EmulatedWindowFill, IncrementalSessionsMatchTheCpuBitForBit) {
  Rng rng(82);
  emu::reset();
  for (int trial = 0; trial < 300; ++trial) {
    const Problem p = random_problem(rng, trial, kKinds[trial % 6]);
    const std::int64_t sample = p.c.sample(), total = p.n * p.grid.num_windows();
    const std::int64_t capacity = uniform_int(rng, 1, std::min<std::int64_t>(total, 12));
    const std::int64_t chunk = (total + capacity - 1) / capacity;
    std::vector<float> cpu(static_cast<std::size_t>(capacity * sample), -777.0f);
    std::vector<float> device(cpu.size(), -777.0f);
    fo::IncrementalFillState cpu_state, device_state;
    for (std::int64_t call = 0; call < chunk + 3; ++call) {
      randomize_launches(rng);
      std::int64_t start = call, stride = chunk;
      if (call >= chunk) {
        stride = uniform_int(rng, 1, 3);
        start = uniform_int(rng, 0, total - 1);
      }
      const std::int64_t count = std::min(capacity, (total - 1 - start) / stride + 1);
      fo::fill_occluded_batch_incremental(p.inputs.data(), p.n, p.grid, p.core(), start, count,
                                          cpu.data(), capacity, cpu_state, stride);
      fd::run_incremental_fill<emu::Fill>(p.inputs.data(), p.n, p.grid, p.device(), start, count,
                                          device.data(), capacity, device_state, stride,
                                          test_stream());
      ASSERT_TRUE(same_bits(device.data(), cpu.data(), capacity * sample))
          << p.describe() << " call=" << call << " start=" << start << " stride=" << stride;
    }
  }
  EXPECT_GT(emu::stats().updated_slots, 0);
}

TEST(EmulatedWindowMeans, MatchTheCpuBitForBit) {
  Rng rng(83);
  emu::reset();
  for (int trial = 0; trial < 300; ++trial) {
    const Problem p = random_problem(rng, trial, BaselineKind::per_window);
    randomize_launches(rng);
    std::vector<float> means(p.values.size(), -777.0f);
    fd::run_window_means<emu::Blend>(p.inputs.data(), p.n, p.grid, means.data(), test_stream());
    ASSERT_TRUE(same_bits(means.data(), p.values.data(), static_cast<std::int64_t>(means.size())))
        << p.describe();
  }
  EXPECT_GT(emu::stats().accumulate_wraps, 0);
  EXPECT_GT(emu::stats().wide_index, 0);
}

TEST(EmulatedWindowMeans, Float64MeansMatchTheCpuBitForBit) {
  Rng rng(85);
  emu::reset();
  for (int trial = 0; trial < 200; ++trial) {
    const Problem p = random_problem(rng, trial, BaselineKind::per_window);
    randomize_launches(rng);
    const std::vector<double> inputs = window_ops::random_doubles(
        rng, static_cast<std::int64_t>(p.inputs.size()), -1.0, 1.0);
    std::vector<double> expected(p.values.size()), means(p.values.size(), -777.0);
    fo::window_means(inputs.data(), p.n, p.grid, expected.data());
    fd::run_window_means<emu::Blend>(inputs.data(), p.n, p.grid, means.data(), test_stream());
    ASSERT_EQ(means, expected) << p.describe();
  }
  EXPECT_GT(emu::stats().accumulate_wraps, 0);
}

TEST(EmulatedBlend, MatchesTheCpuBitForBit) {
  Rng rng(84);
  emu::reset();
  std::int64_t collapsed = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const GridCase c = window_ops::random_grid_case(rng, trial, 400);
    const fo::WindowGrid grid = c.grid();
    const std::uint32_t mask = window_ops::random_collapse(rng, grid);
    collapsed += mask != 0;
    const std::int64_t n = uniform_int(rng, 1, 3), size = fo::map_size(grid, mask);
    const std::vector<double> values =
        window_ops::random_doubles(rng, n * grid.num_windows(), -2.0, 2.0);
    const std::vector<float> importance =
        window_ops::random_floats(rng, fo::importance_size(grid, mask), 1e-3f, 1.0f);
    std::vector<float> expected(static_cast<std::size_t>(n * size));
    fo::blend_window_values(values.data(), n, grid, mask, importance.data(), expected.data());
    randomize_launches(rng);
    std::vector<float> maps(expected.size(), -777.0f);
    fd::run_blend<emu::Blend>(values.data(), n, grid, mask, importance.data(), maps.data(),
                              test_stream());
    ASSERT_TRUE(same_bits(maps.data(), expected.data(), n * size))
        << c.describe() << " collapsed=" << mask;
  }
  EXPECT_GT(collapsed, 0);
  EXPECT_GT(emu::stats().accumulate_wraps, 0);
}

TEST(EmulatedAccumulate, ShiftedGridsMatchTheCpuToFloatRounding) {
  Rng rng(85);
  emu::reset();
  for (int trial = 0; trial < 400; ++trial) {
    const GridCase c = window_ops::random_grid_case(rng, trial, 400);
    const fo::WindowGrid grid = c.grid();
    const std::uint32_t mask = window_ops::random_collapse(rng, grid);
    const std::int64_t n = uniform_int(rng, 1, 3), size = fo::map_size(grid, mask);
    const std::vector<double> deltas =
        window_ops::random_doubles(rng, n * grid.num_windows(), -1.0, 1.0);
    for (const auto reduction : {fo::Reduction::sum, fo::Reduction::mean}) {
      std::vector<float> expected(static_cast<std::size_t>(n * size));
      fo::accumulate_window_deltas(deltas.data(), n, grid, mask, reduction, expected.data());
      randomize_launches(rng);
      const std::size_t bytes = fd::workspace_bytes(n, grid);
      std::vector<double> workspace(bytes / sizeof(double) + 1, std::nan(""));
      std::vector<float> maps(expected.size(), std::nanf(""));
      fd::run_accumulate<emu::Accumulate>(deltas.data(), n, grid, mask, reduction, maps.data(),
                                          workspace.data(), bytes, test_stream());
      for (std::size_t i = 0; i < maps.size(); ++i) {
        // |sum of deltas| <= K per input: rounding of float64 sums of <= K terms.
        const double tolerance = std::fabs(expected[i]) * 0x1p-23 +
                                 static_cast<double>(grid.num_windows()) * 1e-13;
        ASSERT_NEAR(maps[i], expected[i], tolerance)
            << c.describe() << " collapsed=" << mask << " element " << i;
      }
    }
  }
}

TEST(EmulatedWindowOps, RejectWhatTheCpuRejectsWithoutLaunching) {
  emu::reset();
  emu::config().stream = test_stream();
  const fo::EdgeMode modes[2] = {fo::EdgeMode::shift, fo::EdgeMode::shift};
  const std::int64_t lengths[2] = {6, 5}, windows[2] = {3, 2}, strides[2] = {2, 2};
  const fo::WindowGrid grid = fo::make_window_grid(2, lengths, windows, strides, modes);
  std::vector<float> inputs(30, 1.0f), out(static_cast<std::size_t>(grid.num_windows()));
  ASSERT_EQ(grid.num_windows(), 9);
  const double values[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};  // (an array: GCC 12 misreads a vector here)
  std::vector<float> importance(6, 1.0f), maps(30);
  const auto cpu_message = [](auto&& fn) {
    try {
      fn();
    } catch (const fo::user_error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(cpu_message([&] { fd::run_window_means<emu::Blend>(inputs.data(), 0, grid, out.data(), test_stream()); }),
            cpu_message([&] { fo::window_means(inputs.data(), 0, grid, out.data()); }));
  EXPECT_EQ(cpu_message([&] { fd::run_blend<emu::Blend>(values, 1, grid, 1U, importance.data(), maps.data(), test_stream()); }),
            cpu_message([&] { fo::blend_window_values(values, 1, grid, 1U, importance.data(), maps.data()); }));
  EXPECT_THROW(fd::run_blend<emu::Blend>(nullptr, 1, grid, 0, importance.data(), maps.data(),
                                         test_stream()),
               fo::user_error);
  EXPECT_EQ(emu::stats().launches, 0);
}

}  // namespace
