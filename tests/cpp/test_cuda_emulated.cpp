// The CUDA kernels' logic without a GPU: the shipped launchers (run_fill,
// run_incremental_fill, run_accumulate of csrc/src/cuda/*_host.hpp) with the emulating Launch
// policies of cuda_emulation.hpp, which run the kernels' per-thread bodies on the host,
// against the CPU core functions (the oracle). The fills must equal the CPU fills bit for bit
// (they only copy floats); the maps must agree with the CPU accumulation (float64 in both,
// different summation order) to float rounding. Grids are also shrunk below what the
// launcher asks for, so every grid-stride loop wraps.
//
// One file (tests/cpp/CMakeLists.txt builds this one executable), in five parts: random
// N-d cases, full fills, incremental fills (strided and chunked slot orders included), launch
// planning, maps. Self-contained: only the core's public API and the CUDA sources.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cuda_emulation.hpp"
#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "fastocclusion/geometry.hpp"

namespace {

namespace emu = cuda_emulation;
namespace fd = fastocclusion::cuda::detail;
namespace fo = fastocclusion;
using fo::BaselineKind;
using fo::EdgeMode;
using fo::IncrementalFillState;
using fo::user_error;
using fo::WindowGrid;
using Rng = std::mt19937_64;

constexpr float kPoison = -777.0f;

std::int64_t uniform_int(Rng& rng, std::int64_t lo, std::int64_t hi) {
  return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
}

cudaStream_t test_stream() { return reinterpret_cast<cudaStream_t>(std::uintptr_t{0x5eed0}); }

// The coverage counters in the test's XML record (--gtest_output=xml).
void record_coverage() {
  const emu::Stats& s = emu::stats();
  const std::pair<const char*, std::int64_t> counts[] = {
      {"launches", s.launches},       {"vectorised", s.vectorised},
      {"scalar_width", s.scalar_width}, {"wide_index", s.wide_index},
      {"full_slots", s.full_slots},   {"updated_slots", s.updated_slots},
      {"copy_wraps", s.copy_wraps},   {"box_wraps", s.box_wraps},
      {"slot_y_wraps", s.slot_y_wraps}, {"scans", s.scans},
      {"accumulate_wraps", s.accumulate_wraps}};
  for (const auto& [name, value] : counts) {
    ::testing::Test::RecordProperty(name, std::to_string(value));
  }
}

// Bitwise equality, naming the first differing slot and element.
::testing::AssertionResult same_bits(const float* got, const float* expected, std::int64_t size,
                                     std::int64_t sample) {
  for (std::int64_t i = 0; i < size; ++i) {
    if (std::memcmp(got + i, expected + i, sizeof(float)) != 0) {
      return ::testing::AssertionFailure() << "slot " << i / sample << " element " << i % sample
                                           << ": got " << got[i] << ", expected " << expected[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// ---- random N-d cases ------------------------------------------------------------------------

struct Axis {
  std::int64_t length, window, stride;
  EdgeMode mode = EdgeMode::valid;
  std::int64_t begin = 0, end = -1;  // region of interest (end < 0: the whole axis)
};

WindowGrid grid_of(const std::vector<Axis>& axes) {
  std::vector<std::int64_t> lengths, windows, strides, begins, ends;
  std::vector<EdgeMode> modes;
  for (const Axis& a : axes) {
    lengths.push_back(a.length);
    windows.push_back(a.window);
    strides.push_back(a.stride);
    modes.push_back(a.mode);
    begins.push_back(a.begin);
    ends.push_back(a.end < 0 ? a.length : a.end);
  }
  return fo::make_window_grid(static_cast<int>(axes.size()), lengths.data(), windows.data(),
                              strides.data(), modes.data(), begins.data(), ends.data());
}

std::string describe(const WindowGrid& g) {
  std::ostringstream os;
  os << "grid[";
  for (int d = 0; d < g.rank; ++d) {
    const fo::AxisGeometry& a = g.axes[d];
    os << (d ? " " : "") << a.length << "[" << a.begin << "," << a.end << ")/" << a.window
       << "/" << a.stride << "/" << fo::edge_mode_name(a.mode) << "x" << a.count;
  }
  return os.str() + "] (length[region)/window/stride/edges x count)";
}

// Rank 1 + trial % 5; then by trial / 5 % 8: tiny axes, general, full-window axes (merged by
// the kernels), large samples (several blocks per slot), gaps (stride > window, or a stride
// past the axis), one window over everything, clipped "cover" windows, length-1 axes.
WindowGrid random_grid(Rng& rng, int trial) {
  const int rank = 1 + trial % 5;
  const int pick = trial / 5 % 8;
  const std::int64_t cap = pick == 3 ? 12000 : 400;
  const auto side = std::max<std::int64_t>(
      1, std::llround(std::pow(static_cast<double>(cap), 1.0 / rank)));
  std::vector<Axis> axes(static_cast<std::size_t>(rank));
  std::int64_t size = 1;
  for (Axis& a : axes) {
    a.length = pick == 0 ? uniform_int(rng, 1, 3) : uniform_int(rng, 1, 2 * side);
    if (pick == 7 && uniform_int(rng, 0, 1) == 1) a.length = 1;
    size *= a.length;
  }
  while (size > 2 * cap) {  // shrink the longest axis
    Axis& a = *std::max_element(axes.begin(), axes.end(),
                                [](const Axis& x, const Axis& y) { return x.length < y.length; });
    size /= a.length;
    a.length = (a.length + 1) / 2;
    size *= a.length;
  }
  // One grid in four restricts its windows to a region of interest.
  const bool region = uniform_int(rng, 0, 3) == 0;
  for (std::size_t d = 0; d < axes.size(); ++d) {
    Axis& a = axes[d];
    const bool full = pick == 5 || (pick == 2 && (d + 1 == axes.size() || uniform_int(rng, 0, 1) == 1));
    if (region && !full) {
      a.begin = uniform_int(rng, 0, a.length - 1);
      a.end = uniform_int(rng, a.begin + 1, a.length);
    }
    a.window = uniform_int(rng, 1, (a.end < 0 ? a.length : a.end) - a.begin);
    if (full) a.window = a.length;
    a.stride = uniform_int(rng, 1, a.window + 3);
    if (pick == 4) {
      a.stride = d == 0 && uniform_int(rng, 0, 2) == 0 ? std::int64_t{1} << 60
                                                       : a.window + uniform_int(rng, 1, 3);
    }
    a.mode = pick == 6 || uniform_int(rng, 0, 1) == 1 ? EdgeMode::cover : EdgeMode::valid;
  }
  return grid_of(axes);
}

std::vector<float> random_floats(Rng& rng, std::int64_t size, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<std::size_t>(size));
  for (float& x : v) x = dist(rng);
  return v;
}

constexpr BaselineKind kKinds[] = {BaselineKind::scalar, BaselineKind::per_sample,
                                   BaselineKind::per_input};

const char* kind_name(BaselineKind kind) {
  return kind == BaselineKind::scalar ? "scalar"
                                      : kind == BaselineKind::per_sample ? "per_sample"
                                                                         : "per_input";
}

// One occlusion problem: n inputs over a grid and a baseline. Baseline values lie outside
// the inputs' [-1, 1], so an occluded element never equals its input by chance.
struct Case {
  WindowGrid grid;
  std::int64_t n = 1;
  BaselineKind kind = BaselineKind::scalar;
  std::vector<float> inputs, baseline;

  std::int64_t sample() const { return grid.sample_size(); }
  std::int64_t total() const { return n * grid.num_windows(); }
  fo::Baseline core_baseline() const { return {kind, baseline.data()}; }
  // The device view: a scalar travels by value (no pointer).
  fo::cuda::DeviceBaseline device_baseline(const float* values) const {
    fo::cuda::DeviceBaseline b;
    b.kind = kind;
    b.scalar = baseline[0];
    b.values = kind == BaselineKind::scalar ? nullptr : values;
    return b;
  }
  std::string describe() const {
    return ::describe(grid) + " n=" + std::to_string(n) + " baseline=" + kind_name(kind);
  }
};

Case make_case(Rng& rng, const WindowGrid& grid, std::int64_t n, BaselineKind kind) {
  Case c;
  c.grid = grid;
  c.n = n;
  c.kind = kind;
  c.inputs = random_floats(rng, n * grid.sample_size(), -1.0f, 1.0f);
  const std::int64_t values = kind == BaselineKind::scalar       ? 1
                              : kind == BaselineKind::per_sample ? grid.sample_size()
                                                                 : n * grid.sample_size();
  c.baseline = random_floats(rng, values, 2.0f, 3.0f);
  return c;
}

Case random_case(Rng& rng, int trial) {
  const WindowGrid grid = random_grid(rng, trial);
  return make_case(rng, grid, uniform_int(rng, 1, 3), kKinds[trial / 40 % 3]);
}

void randomize_launches(Rng& rng) { emu::randomize(rng, test_stream()); }

// Slots of the stream from `start` with `stride`: at most this many fit.
std::int64_t most_slots(std::int64_t total, std::int64_t start, std::int64_t stride) {
  return start < total ? (total - 1 - start) / stride + 1 : 0;
}

// ---- full fills -------------------------------------------------------------------------------

void device_fill(const Case& c, const float* inputs, std::int64_t start, std::int64_t count,
                 float* batch, std::int64_t stride) {
  fd::run_fill<emu::Fill>(inputs, c.n, c.grid, c.device_baseline(c.baseline.data()), start,
                          count, batch, stride, test_stream());
}

TEST(EmulatedFill, MatchesCpuFillBitForBit) {
  Rng rng(71);
  emu::reset();
  std::int64_t merged = 0;
  for (int trial = 0; trial < 1200; ++trial) {
    const Case c = random_case(rng, trial);
    const std::int64_t sample = c.sample(), total = c.total();
    if (fd::make_fill_params<float>(nullptr, c.grid, {}, 0, 1, nullptr).rank < c.grid.rank) ++merged;
    emu::Aligned<float> inputs(c.n * sample, uniform_int(rng, 0, 1), 0.0f);
    std::copy(c.inputs.begin(), c.inputs.end(), inputs.data());
    for (int rep = 0; rep < 3; ++rep) {
      randomize_launches(rng);
      // rep 0: the end of the stream; rep 1: small strides; rep 2: any stride (of at most
      // 64 slots: memory).
      const std::int64_t stride =
          rep == 0 ? 1 : rep == 1 ? uniform_int(rng, 1, 4) : uniform_int(rng, 1, total + 2);
      const std::int64_t start =
          rep == 0 ? std::max<std::int64_t>(total - 64, 0) : uniform_int(rng, 0, total);
      const std::int64_t most = most_slots(total, start, stride);
      const std::int64_t count =
          rep == 0 ? most : uniform_int(rng, 0, std::min<std::int64_t>(most, 64));
      const std::int64_t size = (count + 1) * sample;  // one slot more: must stay untouched
      std::vector<float> expected(static_cast<std::size_t>(size), kPoison);
      fo::fill_occluded_batch(c.inputs.data(), c.n, c.grid, c.core_baseline(), start, count,
                              expected.data(), stride);
      emu::Aligned<float> batch(size, uniform_int(rng, 0, 1), kPoison);
      device_fill(c, inputs.data(), start, count, batch.data(), stride);
      ASSERT_TRUE(same_bits(batch.data(), expected.data(), size, sample))
          << c.describe() << " start=" << start << " count=" << count << " stride=" << stride;
    }
  }
  record_coverage();
  const emu::Stats& s = emu::stats();
  EXPECT_GT(merged, 0);
  EXPECT_GT(s.vectorised, 0);
  EXPECT_GT(s.scalar_width, 0);
  EXPECT_GT(s.wide_index, 0);
  EXPECT_LT(s.wide_index, s.launches);
  EXPECT_GT(s.copy_wraps, 0);
  EXPECT_GT(s.box_wraps, 0);
  EXPECT_GT(s.slot_y_wraps, 0);
  EXPECT_EQ(s.copies, s.boxes);
}

TEST(EmulatedFill, SlotsBeyondTheGridYLimitLoop) {
  // 70000 slots of 2 floats: the launcher caps gridDim.y at 65535, the rest loop.
  Rng rng(72);
  emu::reset();
  emu::config().stream = test_stream();
  const Case c = make_case(rng, grid_of({{2, 1, 1}}), 35000, BaselineKind::per_input);
  const std::int64_t total = c.total();
  ASSERT_EQ(total, 70000);
  std::vector<float> expected(static_cast<std::size_t>(total * 2));
  fo::fill_occluded_batch(c.inputs.data(), c.n, c.grid, c.core_baseline(), 0, total,
                          expected.data());
  emu::Aligned<float> batch(total * 2, 0, kPoison);
  device_fill(c, c.inputs.data(), 0, total, batch.data(), 1);
  EXPECT_TRUE(same_bits(batch.data(), expected.data(), total * 2, 2));
  EXPECT_EQ(emu::stats().slot_y_wraps, 2);  // the copy and the box pass
}

// ---- incremental fills ------------------------------------------------------------------------

TEST(EmulatedFill, IncrementalMatchesCpuIncrementalBitForBit) {
  Rng rng(73);
  emu::reset();
  std::int64_t multi_plan_calls = 0, skipped_calls = 0, chunked_calls = 0;
  const int trials = 600;
  for (int trial = 0; trial < trials; ++trial) {
    const bool many = trial % 10 == 0;  // > kPlanSlots slots: one plan per 256 slots
    const std::int64_t channels = 1 + trial % 3;
    Case c = many ? make_case(rng, grid_of({{14, 2, 1}, {14, 3, 1}, {channels, channels, channels}}),
                              4, kKinds[trial / 10 % 3])
                  : random_case(rng, trial);
    const std::int64_t sample = c.sample(), total = c.total();
    const std::int64_t capacity = many ? uniform_int(rng, 257, 700)
                                       : uniform_int(rng, 1, std::min<std::int64_t>(total + 2, 40));
    emu::Aligned<float> inputs(c.n * sample, uniform_int(rng, 0, 1), 0.0f);
    std::copy(c.inputs.begin(), c.inputs.end(), inputs.data());
    emu::Aligned<float> batch(capacity * sample, uniform_int(rng, 0, 1), kPoison);
    std::vector<float> expected(static_cast<std::size_t>(capacity * sample), kPoison);
    IncrementalFillState cpu_state, device_state;
    std::int64_t start = 0, count = 0, stride = 1;
    // The chunked sweep order (fill.hpp): C pairs per slot, batch b at start b, stride C.
    const std::int64_t chunk = (total + capacity - 1) / capacity;
    for (int call = 0; call < 11; ++call) {
      randomize_launches(rng);
      if (call < 4) {  // consecutive slices
        start = start + count >= total ? 0 : start + count;
        stride = 1;
        count = std::min(capacity, total - start);
      } else if (call == 5 || call == 6) {  // anywhere, any stride
        stride = uniform_int(rng, 1, 5);
        start = uniform_int(rng, 0, total);
        count = uniform_int(rng, 0, std::min(capacity, most_slots(total, start, stride)));
      } else if (call >= 7) {  // consecutive batches of the chunked order
        stride = chunk;
        start = (call - 7) % chunk;
        count = most_slots(total, start, stride);
        ++chunked_calls;
      }  // call 4 repeats call 3: every slot already holds its sample
      // A new scalar: the CPU reads it through its pointer and must be told (reset); the
      // device state compares the scalar it receives by value and needs no telling.
      if (call == 6 && c.kind == BaselineKind::scalar) {
        c.baseline[0] += 1.0f;
        cpu_state.reset();
      }
      const std::int64_t before = emu::stats().launches;
      fo::fill_occluded_batch_incremental(c.inputs.data(), c.n, c.grid, c.core_baseline(), start,
                                          count, expected.data(), capacity, cpu_state, stride);
      fd::run_incremental_fill<emu::Fill>(inputs.data(), c.n, c.grid,
                                          c.device_baseline(c.baseline.data()), start, count,
                                          batch.data(), capacity, device_state, stride,
                                          test_stream());
      ASSERT_TRUE(same_bits(batch.data(), expected.data(), capacity * sample, sample))
          << c.describe() << " capacity=" << capacity << " call=" << call << " start=" << start
          << " count=" << count << " stride=" << stride;
      // Independently of the CPU incremental fill: the slots equal a fresh full fill.
      std::vector<float> full(static_cast<std::size_t>((count + 1) * sample));
      fo::fill_occluded_batch(c.inputs.data(), c.n, c.grid, c.core_baseline(), start, count,
                              full.data(), stride);
      ASSERT_TRUE(same_bits(batch.data(), full.data(), count * sample, sample)) << c.describe();
      if (call == 4) {
        EXPECT_EQ(emu::stats().launches, before) << "a repeated slice must launch nothing";
        ++skipped_calls;
      }
      if (count > fd::kPlanSlots) ++multi_plan_calls;  // one plan per 256 slots
    }
  }
  record_coverage();
  const emu::Stats& s = emu::stats();
  EXPECT_GT(s.updated_slots, 0);
  EXPECT_GT(s.box_wraps, 0);
  EXPECT_GT(s.copy_wraps, 0);
  EXPECT_GT(s.vectorised, 0);
  EXPECT_GT(s.scalar_width, 0);
  EXPECT_GT(s.wide_index, 0);
  EXPECT_GT(multi_plan_calls, 0);
  EXPECT_EQ(skipped_calls, trials);
  EXPECT_EQ(chunked_calls, 4 * trials);
}

// The one sweep's order: each slot walks consecutive windows of one input, so a whole
// sweep fills in full only where a slot starts or crosses into the next input.
TEST(EmulatedFill, ChunkedSweepUpdatesInPlace) {
  Rng rng(77);
  emu::reset();
  emu::config().stream = test_stream();
  // K = 7 * 7 = 49 windows, 3 inputs: 147 pairs; 16 slots of C = 10 pairs (15 used).
  const Case c = make_case(rng, grid_of({{8, 2, 1}, {8, 2, 1}, {3, 3, 3}}), 3,
                           BaselineKind::per_input);
  const std::int64_t sample = c.sample(), total = c.total(), capacity = 16;
  ASSERT_EQ(total, 147);
  const std::int64_t chunk = (total + capacity - 1) / capacity;
  ASSERT_EQ(chunk, 10);
  emu::Aligned<float> batch(capacity * sample, 0, kPoison);
  IncrementalFillState state;
  std::vector<int> seen(static_cast<std::size_t>(total), 0);
  for (std::int64_t b = 0; b < chunk; ++b) {
    const std::int64_t count = most_slots(total, b, chunk);
    fd::run_incremental_fill<emu::Fill>(c.inputs.data(), c.n, c.grid,
                                        c.device_baseline(c.baseline.data()), b, count,
                                        batch.data(), capacity, state, chunk, test_stream());
    std::vector<float> expected(static_cast<std::size_t>(count * sample));
    fo::fill_occluded_batch(c.inputs.data(), c.n, c.grid, c.core_baseline(), b, count,
                            expected.data(), chunk);
    ASSERT_TRUE(same_bits(batch.data(), expected.data(), count * sample, sample)) << "b=" << b;
    for (std::int64_t j = 0; j < count; ++j) ++seen[static_cast<std::size_t>(b + j * chunk)];
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 1; }));
  // 15 first fills, and slots 4 and 9 cross into the next input (at 49 and 98).
  EXPECT_EQ(emu::stats().full_slots, 17);
  EXPECT_EQ(emu::stats().updated_slots, total - 17);
}

TEST(EmulatedFill, FailedIncrementalLaunchForgetsTheSlots) {
  Rng rng(74);
  emu::reset();
  emu::config().stream = test_stream();
  const Case c = make_case(rng, grid_of({{12, 2, 1}, {12, 2, 1}}), 3, BaselineKind::per_sample);
  const std::int64_t sample = c.sample(), capacity = 300;
  ASSERT_EQ(c.total(), 363);
  emu::Aligned<float> batch(capacity * sample, 0, kPoison);
  IncrementalFillState state;
  const auto fill = [&](std::int64_t start) {
    fd::run_incremental_fill<emu::Fill>(c.inputs.data(), c.n, c.grid,
                                        c.device_baseline(c.baseline.data()), start, capacity,
                                        batch.data(), capacity, state, 1, test_stream());
  };
  fill(0);
  EXPECT_EQ(emu::stats().launches, 4);  // two plans (256 + 44 slots), a copy and a box each
  // The second slice: plan 1 copies and writes boxes, plan 2 (updates only) one box launch,
  // which fails after plan 1 has rewritten slots [0, 256).
  emu::config().fail_at_launch = emu::stats().launches + 2;
  EXPECT_THROW(fill(50), emu::launch_failure);
  EXPECT_EQ(emu::stats().launches, 7);
  emu::config().fail_at_launch = -1;
  // The first slice again: a state still believing its slots held it would launch nothing.
  fill(0);
  std::vector<float> expected(static_cast<std::size_t>(capacity * sample));
  fo::fill_occluded_batch(c.inputs.data(), c.n, c.grid, c.core_baseline(), 0, capacity,
                          expected.data());
  EXPECT_TRUE(same_bits(batch.data(), expected.data(), capacity * sample, sample));
}

// The CUDA fills reject what the CPU fills reject, with the same message, before launching.
TEST(EmulatedFill, RejectsWhatTheCpuRejectsWithoutLaunching) {
  Rng rng(75);
  emu::reset();
  emu::config().stream = test_stream();
  const Case c = make_case(rng, grid_of({{6, 2, 2}, {6, 2, 2}, {3, 3, 3}}), 2,
                           BaselineKind::per_sample);
  const std::int64_t total = c.total();
  ASSERT_EQ(total, 18);
  std::vector<float> batch(static_cast<std::size_t>((total + 1) * c.sample()));
  WindowGrid malformed = c.grid;
  malformed.axes[1].count = 4;  // > (length - 1) / stride + 1
  WindowGrid rankless = c.grid;
  rankless.rank = 0;
  struct Bad {
    const float* inputs;
    const float* baseline;
    std::int64_t n, start, count, stride;
    float* batch;
    const WindowGrid* grid;
  };
  const float* in = c.inputs.data();
  const float* base = c.baseline.data();
  float* out = batch.data();
  const Bad cases[] = {
      {in, base, 2, -1, 1, 1, out, &c.grid},        {in, base, 2, total + 1, 0, 1, out, &c.grid},
      {in, base, 2, 3, total - 2, 1, out, &c.grid}, {in, base, 2, 0, -1, 1, out, &c.grid},
      {in, base, 2, 0, 2, total, out, &c.grid},     {in, base, 2, 1, 1, 0, out, &c.grid},
      {in, base, 2, 1, 1, -3, out, &c.grid},        {nullptr, base, 2, 0, 1, 1, out, &c.grid},
      {in, nullptr, 2, 0, 1, 1, out, &c.grid},      {in, base, 2, 0, 1, 1, nullptr, &c.grid},
      {in, base, 0, 0, 1, 1, out, &c.grid},         {in, base, 2, 0, 1, 1, out, &malformed},
      {in, base, 2, 0, 1, 1, out, &rankless}};
  for (const Bad& b : cases) {
    std::string cpu, device, incremental;
    try {
      fo::fill_occluded_batch(b.inputs, b.n, *b.grid, {c.kind, b.baseline}, b.start, b.count,
                              b.batch, b.stride);
    } catch (const user_error& e) {
      cpu = e.what();
    }
    const fo::cuda::DeviceBaseline db = c.device_baseline(b.baseline);
    try {
      fd::run_fill<emu::Fill>(b.inputs, b.n, *b.grid, db, b.start, b.count, b.batch, b.stride,
                              test_stream());
    } catch (const user_error& e) {
      device = e.what();
    }
    IncrementalFillState state;
    try {
      fd::run_incremental_fill<emu::Fill>(b.inputs, b.n, *b.grid, db, b.start, b.count, b.batch,
                                          total + 1, state, b.stride, test_stream());
    } catch (const user_error& e) {
      incremental = e.what();
    }
    EXPECT_FALSE(cpu.empty()) << "start=" << b.start << " count=" << b.count
                              << " stride=" << b.stride;
    EXPECT_EQ(device, cpu);
    EXPECT_EQ(incremental, cpu);
  }
  // Capacity: the CPU's message below count; and at most 2^31 - 1 slots (one plan index).
  const fo::cuda::DeviceBaseline db = c.device_baseline(c.baseline.data());
  std::string cpu, device;
  IncrementalFillState cpu_state, state;
  try {
    fo::fill_occluded_batch_incremental(in, 2, c.grid, c.core_baseline(), 0, 5, out, 4,
                                        cpu_state);
  } catch (const user_error& e) {
    cpu = e.what();
  }
  try {
    fd::run_incremental_fill<emu::Fill>(in, 2, c.grid, db, 0, 5, out, 4, state, 1, test_stream());
  } catch (const user_error& e) {
    device = e.what();
  }
  EXPECT_FALSE(cpu.empty());
  EXPECT_EQ(device, cpu);
  EXPECT_THROW(fd::run_incremental_fill<emu::Fill>(in, 2, c.grid, db, 0, 0, out,
                                                   std::int64_t{1} << 31, state, 1,
                                                   test_stream()),
               user_error);
  EXPECT_EQ(emu::stats().launches, 0);
  // Empty slices (null pointers allowed) launch nothing; a scalar baseline needs no values.
  fd::run_fill<emu::Fill, float>(nullptr, 2, c.grid, {}, total, 0, nullptr, 1, test_stream());
  EXPECT_EQ(emu::stats().launches, 0);
  fo::cuda::DeviceBaseline scalar;
  scalar.scalar = 2.5f;
  fd::run_fill<emu::Fill>(in, 2, c.grid, scalar, 0, 1, out, 1, test_stream());
  EXPECT_EQ(emu::stats().launches, 2);  // the copy and the box pass
  EXPECT_EQ(out[0], 2.5f);
}

// ---- launch planning --------------------------------------------------------------------------

fd::FillParams params_of(const WindowGrid& grid) {
  return fd::make_fill_params<float>(nullptr, grid, {}, 0, 1, nullptr);
}

TEST(EmulatedLaunchPlanning, FullWindowAxesMergeIntoTheirOuterNeighbour) {
  // An image window (ph, pw, C): ph rows of pw*C floats.
  fd::FillParams p = params_of(grid_of({{5, 2, 1}, {7, 3, 2}, {3, 3, 3}}));
  EXPECT_EQ(p.rank, 2);
  EXPECT_EQ(p.length[1], 21);
  EXPECT_EQ(p.window[1], 9);
  EXPECT_EQ(p.stride[1], 6);
  EXPECT_EQ(p.count[0], 4);
  EXPECT_EQ(p.count[1], 3);
  EXPECT_EQ(p.step[0], 21);
  EXPECT_EQ(p.step[1], 1);
  EXPECT_EQ(p.volume, 18);
  EXPECT_EQ(p.windows, 12);
  // A volume window over whole slices: one axis of 2 windows of half the volume.
  p = params_of(grid_of({{4, 2, 2}, {5, 5, 1}, {6, 6, 1}, {3, 3, 1}}));
  EXPECT_EQ(p.rank, 1);
  EXPECT_EQ(p.length[0], 360);
  EXPECT_EQ(p.window[0], 180);
  EXPECT_EQ(p.stride[0], 180);
  EXPECT_EQ(p.count[0], 2);
  // A full first axis stays (nothing outside it to merge into).
  p = params_of(grid_of({{3, 3, 1}, {8, 2, 2}}));
  EXPECT_EQ(p.rank, 2);
  EXPECT_EQ(p.count[0], 1);
  EXPECT_EQ(p.stride[0], 3);
  // A stride past the axis (one window) cannot overflow when merged.
  p = params_of(grid_of({{5, 3, std::int64_t{1} << 60}, {3, 3, 1}}));
  EXPECT_EQ(p.rank, 1);
  EXPECT_EQ(p.length[0], 15);
  EXPECT_EQ(p.window[0], 9);
  EXPECT_EQ(p.stride[0], 15);
  EXPECT_EQ(p.count[0], 1);
}

TEST(EmulatedLaunchPlanning, GridSizesAreCappedAndNeverEmpty) {
  fd::FillParams p;
  p.sample = 1;
  p.volume = 1;
  EXPECT_EQ(fd::copy_grid(p, 1, 1).x, 1);
  EXPECT_EQ(fd::copy_grid(p, 1, 1).y, 1);
  EXPECT_EQ(fd::box_grid(p, 1).x, 1);
  p.sample = 257 * 4;  // 4 units per thread: 257 float4 units in one block, 1028 floats in two
  EXPECT_EQ(fd::copy_grid(p, 4, 3).x, 1);
  EXPECT_EQ(fd::copy_grid(p, 1, 3).x, 2);
  p.sample = std::int64_t{1} << 40;
  p.volume = std::int64_t{1} << 36;
  EXPECT_EQ(fd::copy_grid(p, 4, 70000).x, fd::kMaxBlocksPerSlot);
  EXPECT_EQ(fd::copy_grid(p, 4, 70000).y, fd::kMaxSlotRows);
  EXPECT_EQ(fd::box_grid(p, 5).x, fd::kMaxBlocksPerSlot);
  EXPECT_EQ(fd::box_grid(p, 5).y, 5);
  // Index width: 32-bit up to INT32_MAX floats per sample.
  p.sample = std::numeric_limits<std::int32_t>::max();
  EXPECT_TRUE(fd::use_32bit_index(p));
  p.sample += 1;
  EXPECT_FALSE(fd::use_32bit_index(p));
  // A plan's blocks: copy per sample / V (4 units per thread), box per volume, update per
  // 2 x volume (one element per thread).
  p.sample = 1000;
  p.volume = 300;
  fd::IncrementalPlan plan{};
  plan.full_count = 2;
  plan.update_count = 3;
  const fd::PlanBlocks blocks = fd::plan_blocks(p, 4, plan);
  EXPECT_EQ(plan.blocks_per_copy, 1u);
  EXPECT_EQ(plan.blocks_per_box, 2u);
  EXPECT_EQ(plan.blocks_per_update, 3u);
  EXPECT_EQ(blocks.copy, 2);
  EXPECT_EQ(blocks.box, 2 * 2 + 3 * 3);
  plan.full_count = 0;
  plan.update_count = 0;
  EXPECT_EQ(fd::plan_blocks(p, 4, plan).box, 0);
  // Accumulation: one block at least, 2^20 at most.
  EXPECT_EQ(fd::accumulate_blocks(1), 1);
  EXPECT_EQ(fd::accumulate_blocks(257), 2);
  EXPECT_EQ(fd::accumulate_blocks(std::int64_t{1} << 40), fd::kMaxAccumulateBlocks);
}

TEST(EmulatedLaunchPlanning, OnePlanPer256SlotsAndOnlyChangedSlots) {
  const WindowGrid grid = grid_of({{10, 1, 1}, {10, 1, 1}});  // K = 100
  IncrementalFillState state;
  const float* some = reinterpret_cast<const float*>(std::uintptr_t{64});
  fd::IncrementalFillAccess::begin(state, some, 7, grid, {}, const_cast<float*>(some), 600);
  std::vector<fd::IncrementalPlan> plans = fd::IncrementalFillAccess::plan(state, 0, 600, 1, 100);
  ASSERT_EQ(plans.size(), 3u);
  EXPECT_EQ(plans[0].full_count, 256);
  EXPECT_EQ(plans[1].full_count, 256);
  EXPECT_EQ(plans[2].full_count, 88);
  EXPECT_EQ(plans[2].slot[0], 512);
  fd::IncrementalFillAccess::commit(state, 0, 600, 1, 100);
  // One pair further: slots stay on their input except where they cross a multiple of 100.
  plans = fd::IncrementalFillAccess::plan(state, 1, 600, 1, 100);
  std::int64_t full = 0, updated = 0;
  for (const fd::IncrementalPlan& plan : plans) {
    full += plan.full_count;
    updated += plan.update_count;
  }
  EXPECT_EQ(full, 6);  // slots 99, 199, ..., 599
  EXPECT_EQ(updated, 594);
  EXPECT_EQ(plans[0].slot[0], 99);
  EXPECT_EQ(plans[0].slot[2], 0);  // updates follow the full slots
  EXPECT_EQ(plans[0].prev_window[2], 0);
  // The strided mapping: slot j holds start + j * stride.
  fd::IncrementalFillAccess::commit(state, 3, 200, 2, 100);
  EXPECT_EQ(state.slot_inputs()[199], (3 + 199 * 2) / 100);
  EXPECT_EQ(state.slot_windows()[199], (3 + 199 * 2) % 100);
  plans = fd::IncrementalFillAccess::plan(state, 3, 200, 2, 100);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].full_count + plans[0].update_count, 0);
}

// ---- maps -------------------------------------------------------------------------------------

// Whether window positions cover x along an axis, by walking its anchors (independent of
// the kernels' closed form).
bool covered(const fo::AxisGeometry& a, std::int64_t x) {
  for (std::int64_t i = 0; i < a.count; ++i) {
    if (a.anchor(i) <= x && x < a.anchor(i) + a.extent(i)) return true;
  }
  return false;
}

// Collapses a random subset of the axes that one window covers in full.
std::uint32_t random_collapse(Rng& rng, const WindowGrid& grid) {
  std::uint32_t mask = 0;
  for (int d = 0; d < grid.rank; ++d) {
    if (grid.axes[d].single_full_window() && uniform_int(rng, 0, 1) == 1) mask |= 1U << d;
  }
  return mask;
}

// Pass-1/2/3 blocks are shrunk at random so every loop wraps.
TEST(EmulatedAccumulate, MatchesCpuMapsToFloatRounding) {
  Rng rng(76);
  emu::reset();
  std::int64_t collapsed_runs = 0, no_active = 0, five_active = 0;
  for (int trial = 0; trial < 1000; ++trial) {
    const WindowGrid grid =
        trial % 50 == 49 ? grid_of({{4, 2, 1}, {3, 2, 1}, {5, 3, 2}, {4, 1, 1}, {3, 1, 2}})
                         : random_grid(rng, trial);
    const std::uint32_t mask = random_collapse(rng, grid);
    collapsed_runs += mask != 0;
    const std::int64_t n = uniform_int(rng, 1, 4), size = fo::map_size(grid, mask);
    const std::int64_t windows = grid.num_windows();
    const fd::AccumulateParams shape = fd::make_accumulate_params(nullptr, n, grid, mask,
                                                                  fo::Reduction::sum, nullptr,
                                                                  nullptr);
    no_active += shape.active == 0;
    five_active += shape.active == 5;
    std::vector<double> deltas(static_cast<std::size_t>(n * windows));
    std::uniform_real_distribution<double> unit(-1.0, 1.0);
    for (double& d : deltas) d = unit(rng) * std::pow(10.0, static_cast<double>(uniform_int(rng, -3, 3)));
    std::vector<double> scales(static_cast<std::size_t>(n), 0.0);  // bounds every partial sum
    for (std::int64_t k = 0; k < n * windows; ++k) {
      scales[static_cast<std::size_t>(k / windows)] += std::fabs(deltas[static_cast<std::size_t>(k)]);
    }
    for (const auto reduction : {fo::Reduction::sum, fo::Reduction::mean}) {
      randomize_launches(rng);
      std::vector<float> expected(static_cast<std::size_t>(n * size));
      fo::accumulate_window_deltas(deltas.data(), n, grid, mask, reduction, expected.data());
      const std::size_t bytes = fd::workspace_bytes(n, grid);
      std::vector<double> workspace(bytes / sizeof(double), std::nan(""));
      std::vector<float> maps(static_cast<std::size_t>(n * size), std::nanf(""));
      fd::run_accumulate<emu::Accumulate>(deltas.data(), n, grid, mask, reduction, maps.data(),
                                          workspace.data(), bytes, test_stream());
      for (std::int64_t i = 0; i < n * size; ++i) {
        const double scale = scales[static_cast<std::size_t>(i / size)];
        // The element's position; uncovered anywhere -> exactly 0 on the device.
        bool any = true;
        std::int64_t rest = i % size;
        for (int d = grid.rank - 1; d >= 0; --d) {
          const std::int64_t length = ((mask >> d) & 1U) != 0 ? 1 : grid.axes[d].length;
          any = any && covered(grid.axes[d], rest % length);
          rest /= length;
        }
        const double e = expected[static_cast<std::size_t>(i)];
        const double g = maps[static_cast<std::size_t>(i)];
        const double tolerance = std::fabs(e) * 0x1p-23 + scale * 1e-13;
        ASSERT_TRUE(any ? std::fabs(g - e) <= tolerance : (g == 0.0 && std::fabs(e) <= tolerance))
            << describe(grid) << " collapsed=" << mask << " n=" << n
            << " mean=" << (reduction == fo::Reduction::mean) << " map element " << i
            << ": got " << g << ", expected " << e;
      }
    }
  }
  record_coverage();
  const emu::Stats& s = emu::stats();
  EXPECT_GT(collapsed_runs, 0);
  EXPECT_GT(no_active, 0);
  EXPECT_GT(five_active, 0);
  EXPECT_GT(s.scans, 0);
  EXPECT_GT(s.accumulate_wraps, 0);
}

TEST(EmulatedAccumulate, RejectsWhatTheCpuRejectsWithoutLaunching) {
  emu::reset();
  emu::config().stream = test_stream();
  const WindowGrid grid = grid_of({{6, 2, 1, EdgeMode::cover}, {5, 2, 2, EdgeMode::cover}, {3, 3, 3}});
  ASSERT_EQ(grid.axes[0].count, 5);
  ASSERT_EQ(grid.axes[1].count, 3);
  std::vector<double> deltas(static_cast<std::size_t>(2 * grid.num_windows()), 1.0);
  std::vector<float> maps(2 * 6 * 5 * 3);
  const std::size_t bytes = fd::workspace_bytes(2, grid);
  EXPECT_EQ(bytes, 2u * 6u * 4u * sizeof(double));  // (count + 1) per axis with count > 1
  EXPECT_EQ(fo::cuda::detail::workspace_bytes(3, grid_of({{4, 4, 1}, {2, 2, 1}})),
            3u * sizeof(double));  // no axis with count > 1: one value per input
  std::vector<double> workspace(bytes / sizeof(double) + 1);
  const auto run = [&](const double* d, std::int64_t n, std::uint32_t mask, void* ws,
                       std::size_t size) {
    fd::run_accumulate<emu::Accumulate>(d, n, grid, mask, fo::Reduction::sum, maps.data(), ws,
                                        size, test_stream());
  };
  // The checks the CPU makes too: the same messages.
  struct Bad {
    const double* deltas;
    std::int64_t n;
    std::uint32_t mask;
  };
  const Bad shared[] = {{deltas.data(), 0, 0}, {nullptr, 2, 0}, {deltas.data(), 2, 1U}, {deltas.data(), 2, 8U}};
  for (const Bad& b : shared) {
    std::string cpu, device;
    try {
      fo::accumulate_window_deltas(b.deltas, b.n, grid, b.mask, fo::Reduction::sum, maps.data());
    } catch (const user_error& e) {
      cpu = e.what();
    }
    try {
      run(b.deltas, b.n, b.mask, workspace.data(), bytes);
    } catch (const user_error& e) {
      device = e.what();
    }
    EXPECT_FALSE(cpu.empty());
    EXPECT_EQ(device, cpu);
  }
  EXPECT_THROW(run(deltas.data(), 2, 0, workspace.data(), bytes - 1), user_error);
  char* misaligned = reinterpret_cast<char*>(workspace.data()) + 4;
  EXPECT_THROW(run(deltas.data(), 2, 0, misaligned, bytes), user_error);
  EXPECT_THROW(run(deltas.data(), 2, 0, nullptr, bytes), user_error);
  EXPECT_THROW(fd::workspace_bytes(0, grid), user_error);
  // 4097^5 windows fit int64, their padded prefix sums in bytes do not.
  const std::int64_t side = 4097;
  EXPECT_THROW(fd::workspace_bytes(1, grid_of({{side, 1, 1}, {side, 1, 1}, {side, 1, 1},
                                               {side, 1, 1}, {side, 1, 1}})),
               user_error);
  EXPECT_EQ(emu::stats().launches, 0);
  run(deltas.data(), 2, 4U, workspace.data(), bytes);  // collapse the channel axis
  EXPECT_EQ(emu::stats().launches, 4);                 // pad, a scan per active axis, maps
  EXPECT_EQ(emu::stats().scans, 2);
}

}  // namespace
