// The CUDA kernels' logic without a GPU: the shipped launchers (run_fill,
// run_incremental_fill, run_accumulate of csrc/src/cuda/*_host.hpp) with the emulating Launch
// policies of cuda_emulation.hpp, which run the kernels' per-thread bodies on the host. The
// fills must equal the CPU fills bit for bit (they only copy floats); the maps must agree
// with the CPU accumulation (float64 in both, different summation order) to float rounding.
// Grids are also shrunk below what the launcher asks for, so every grid-stride loop wraps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cuda_emulation.hpp"
#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "test_support.hpp"

namespace {

namespace emu = cuda_emulation;

// The coverage counters in the test's XML record (--gtest_output=xml).
void record_coverage() {
  const emu::Stats& s = emu::stats();
  const std::pair<const char*, std::int64_t> counts[] = {
      {"launches", s.launches},         {"vectorised", s.vectorised},
      {"scalar_width", s.scalar_width}, {"wide_index", s.wide_index},
      {"updated_slots", s.updated_slots}, {"slot_x_wraps", s.slot_x_wraps},
      {"slot_y_wraps", s.slot_y_wraps}, {"update_wraps", s.update_wraps},
      {"multi_input_blocks", s.multi_input_blocks}, {"thread_wraps", s.thread_wraps},
      {"map_wraps", s.map_wraps}};
  for (const auto& [name, value] : counts) {
    ::testing::Test::RecordProperty(name, std::to_string(value));
  }
}
namespace fd = fastocclusion::cuda::detail;
using fastocclusion::IncrementalFillState;
using fastocclusion::user_error;
using test_support::FillCase;
using test_support::Rng;
using test_support::uniform_int;

constexpr float kPoison = -777.0f;

cudaStream_t test_stream() { return reinterpret_cast<cudaStream_t>(std::uintptr_t{0x5eed0}); }

// Floats starting `shift` floats past a 16-byte boundary (shift 1: the launcher must take
// the scalar path even when h*w*c % 4 == 0).
class Floats {
 public:
  Floats(std::int64_t size, std::int64_t shift, float fill)
      : storage_(static_cast<std::size_t>(size + 8), fill) {
    const auto misalign = reinterpret_cast<std::uintptr_t>(storage_.data()) % 16;
    data_ = storage_.data() + (16 - misalign) % 16 / sizeof(float) + shift;
  }
  Floats(const Floats&) = delete;
  Floats& operator=(const Floats&) = delete;
  float* data() { return data_; }

 private:
  std::vector<float> storage_;
  float* data_ = nullptr;
};

// Bitwise equality, naming the first differing slot and element.
::testing::AssertionResult same_bits(const float* got, const float* expected, std::int64_t size,
                                     std::int64_t image) {
  for (std::int64_t i = 0; i < size; ++i) {
    if (std::memcmp(got + i, expected + i, sizeof(float)) != 0) {
      return ::testing::AssertionFailure() << "slot " << i / image << " element " << i % image
                                           << ": got " << got[i] << ", expected " << expected[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// Random problems with the shapes that stress the index arithmetic: 1x1, single rows and
// columns, patch == input, stride > patch, larger planes (several blocks per slot).
FillCase random_fill_case(Rng& rng, int trial) {
  const std::int64_t channels[] = {1, 2, 3, 4, 16};
  const int pick = trial / 4 % 7;
  const std::int64_t big = pick == 3 ? 40 : 12;
  fastocclusion::InputShape s{uniform_int(rng, 1, 3), uniform_int(rng, 1, big),
                              uniform_int(rng, 1, big), channels[uniform_int(rng, 0, 4)]};
  if (pick == 0 || pick == 1) s.h = 1;
  if (pick == 0 || pick == 2) s.w = 1;
  std::int64_t ph = uniform_int(rng, 1, s.h), pw = uniform_int(rng, 1, s.w);
  if (pick == 4) ph = s.h, pw = s.w;
  std::int64_t sh = uniform_int(rng, 1, ph + 3), sw = uniform_int(rng, 1, pw + 3);
  if (pick == 5) sh = ph + uniform_int(rng, 1, 3), sw = pw + uniform_int(rng, 1, 3);
  return test_support::make_case(rng, s, ph, pw, sh, sw, uniform_int(rng, 0, 1) == 1,
                                 test_support::kAllLayouts[trial % 4]);
}

// The device view of a case's baseline: a scalar travels by value (no pointer).
fastocclusion::cuda::DeviceBaseline device_baseline(const FillCase& fc, const float* values) {
  fastocclusion::cuda::DeviceBaseline b;
  b.kind = test_support::to_kind(fc.layout);
  b.scalar = fc.baseline[0];
  b.values = b.kind == fastocclusion::BaselineKind::scalar ? nullptr : values;
  return b;
}

// The launcher's grid, every cap at 1, or small random caps; index width and block order random.
void randomize_launches(Rng& rng) {
  emu::Config c;
  c.stream = test_stream();
  const std::int64_t mode = uniform_int(rng, 0, 2);
  if (mode > 0) {
    const auto cap = [&] { return mode == 1 ? 1 : uniform_int(rng, 1, 3); };
    c.max_grid_x = cap();
    c.max_grid_y = cap();
    c.max_blocks_per_slot = cap();
    c.max_prefix_blocks = cap();
    c.max_map_blocks = cap();
    c.prefix_threads = mode == 1 ? 1u : 3u;
  }
  c.widen_index = uniform_int(rng, 0, 1) == 1;
  c.order_seed = uniform_int(rng, 0, 1) == 1 ? static_cast<std::uint64_t>(rng()) | 1u : 0u;
  emu::config() = c;
}

void fill_on_device(const float* inputs, const FillCase& fc, const float* baseline,
                    std::int64_t start, std::int64_t count, float* batch) {
  fd::run_fill<emu::Fill>(inputs, fc.shape, fc.grid(), device_baseline(fc, baseline), start,
                          count, batch, test_stream());
}

TEST(EmulatedFill, MatchesCpuFillBitForBit) {
  Rng rng(71);
  emu::reset();
  for (int trial = 0; trial < 600; ++trial) {
    const FillCase fc = random_fill_case(rng, trial);
    const std::int64_t image = fc.shape.image_size(), total = fc.stream_size();
    Floats inputs(fc.shape.n * image, uniform_int(rng, 0, 1), 0.0f);
    std::copy(fc.inputs.begin(), fc.inputs.end(), inputs.data());
    for (int rep = 0; rep < 3; ++rep) {
      randomize_launches(rng);
      // rep 0: the end of the stream; then random slices (of at most 64 slots: memory).
      const std::int64_t start =
          rep == 0 ? std::max<std::int64_t>(total - 64, 0) : uniform_int(rng, 0, total);
      const std::int64_t count =
          rep == 0 ? total - start : uniform_int(rng, 0, std::min<std::int64_t>(total - start, 64));
      const std::int64_t size = (count + 1) * image;  // one slot more: must stay untouched
      std::vector<float> expected(static_cast<std::size_t>(size), kPoison);
      fastocclusion::fill_occluded_batch(fc.inputs.data(), fc.shape, fc.grid(),
                                         fc.core_baseline(), start, count, expected.data());
      Floats batch(size, uniform_int(rng, 0, 1), kPoison);
      fill_on_device(inputs.data(), fc, fc.baseline.data(), start, count, batch.data());
      ASSERT_TRUE(same_bits(batch.data(), expected.data(), size, image))
          << fc.describe() << " start=" << start << " count=" << count;
    }
  }
  record_coverage();
  const emu::Stats& s = emu::stats();
  EXPECT_GT(s.vectorised, 0);
  EXPECT_GT(s.scalar_width, 0);
  EXPECT_GT(s.wide_index, 0);
  EXPECT_LT(s.wide_index, s.launches);
  EXPECT_GT(s.slot_x_wraps, 0);
  EXPECT_GT(s.slot_y_wraps, 0);
}

TEST(EmulatedFill, SlotsBeyondTheGridYLimitLoop) {
  // 70000 slots of 2 floats: the launcher caps gridDim.y at 65535, the rest loop.
  Rng rng(72);
  emu::reset();
  emu::config().stream = test_stream();
  const FillCase fc = test_support::make_case(rng, {35000, 1, 2, 1}, 1, 1, 1, 1, false,
                                              naive::BaselineLayout::per_input);
  const std::int64_t total = fc.stream_size();
  ASSERT_EQ(total, 70000);
  std::vector<float> expected(static_cast<std::size_t>(total * 2));
  fastocclusion::fill_occluded_batch(fc.inputs.data(), fc.shape, fc.grid(), fc.core_baseline(), 0,
                                     total, expected.data());
  Floats batch(total * 2, 0, kPoison);
  fill_on_device(fc.inputs.data(), fc, fc.baseline.data(), 0, total, batch.data());
  EXPECT_TRUE(same_bits(batch.data(), expected.data(), total * 2, 2));
  EXPECT_EQ(emu::stats().slot_y_wraps, 1);
}

TEST(EmulatedFill, IncrementalMatchesCpuIncrementalBitForBit) {
  Rng rng(73);
  emu::reset();
  std::int64_t multi_plan_calls = 0, skipped_calls = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const bool many = trial % 10 == 0;  // > kPlanSlots slots: one launch per 256 slots
    FillCase fc = many ? test_support::make_case(rng, {4, 14, 14, 1 + trial % 3}, 2, 3, 1, 1,
                                                 trial % 20 == 0,
                                                 test_support::kAllLayouts[trial / 10 % 4])
                       : random_fill_case(rng, trial);
    const std::int64_t image = fc.shape.image_size(), total = fc.stream_size();
    const std::int64_t capacity = many ? uniform_int(rng, 257, 700)
                                       : uniform_int(rng, 1, std::min<std::int64_t>(total + 2, 40));
    Floats inputs(fc.shape.n * image, uniform_int(rng, 0, 1), 0.0f);
    std::copy(fc.inputs.begin(), fc.inputs.end(), inputs.data());
    Floats batch(capacity * image, uniform_int(rng, 0, 1), kPoison);
    std::vector<float> expected(static_cast<std::size_t>(capacity * image), kPoison);
    IncrementalFillState cpu_state, device_state;
    std::int64_t start = 0, count = 0;
    for (int call = 0; call < 9; ++call) {
      randomize_launches(rng);
      if (call < 4) {
        start = start + count >= total ? 0 : start + count;
        count = std::min(capacity, total - start);
      } else if (call > 4) {  // call 4 repeats call 3: every slot already holds its sample
        start = uniform_int(rng, 0, total);
        count = uniform_int(rng, 0, std::min(capacity, total - start));
      }
      // A new scalar: the CPU reads it through its pointer and must be told (reset); the
      // device state compares the scalar it receives by value and needs no telling.
      if (call == 6 && fc.layout == naive::BaselineLayout::scalar) {
        fc.baseline[0] += 1.0f;
        cpu_state.reset();
      }
      const std::int64_t before = emu::stats().launches;
      fastocclusion::fill_occluded_batch_incremental(fc.inputs.data(), fc.shape, fc.grid(),
                                                     fc.core_baseline(), start, count,
                                                     expected.data(), capacity, cpu_state);
      fd::run_incremental_fill<emu::Fill>(inputs.data(), fc.shape, fc.grid(),
                                          device_baseline(fc, fc.baseline.data()), start, count,
                                          batch.data(), capacity, device_state, test_stream());
      ASSERT_TRUE(same_bits(batch.data(), expected.data(), capacity * image, image))
          << fc.describe() << " capacity=" << capacity << " call=" << call << " start=" << start
          << " count=" << count;
      // Independently of the CPU incremental fill: the slots equal a fresh full fill.
      std::vector<float> full(static_cast<std::size_t>((count + 1) * image));
      fastocclusion::fill_occluded_batch(fc.inputs.data(), fc.shape, fc.grid(), fc.core_baseline(),
                                         start, count, full.data());
      ASSERT_TRUE(same_bits(batch.data(), full.data(), count * image, image)) << fc.describe();
      if (call == 4) {
        EXPECT_EQ(emu::stats().launches, before) << "a repeated slice must launch nothing";
        ++skipped_calls;
      }
      if (emu::stats().launches - before >= 2) ++multi_plan_calls;
    }
  }
  record_coverage();
  const emu::Stats& s = emu::stats();
  EXPECT_GT(s.updated_slots, 0);
  EXPECT_GT(s.update_wraps, 0);
  EXPECT_GT(s.slot_x_wraps, 0);
  EXPECT_GT(s.vectorised, 0);
  EXPECT_GT(s.scalar_width, 0);
  EXPECT_GT(s.wide_index, 0);
  EXPECT_GT(multi_plan_calls, 0);
  EXPECT_EQ(skipped_calls, 400);
}

TEST(EmulatedFill, FailedIncrementalLaunchForgetsTheSlots) {
  Rng rng(74);
  emu::reset();
  emu::config().stream = test_stream();
  const FillCase fc = test_support::make_case(rng, {3, 12, 12, 1}, 2, 2, 1, 1, false,
                                              naive::BaselineLayout::per_channel);
  const std::int64_t image = fc.shape.image_size(), capacity = 300;
  ASSERT_EQ(fc.stream_size(), 363);
  Floats batch(capacity * image, 0, kPoison);
  IncrementalFillState state;
  const auto fill = [&](std::int64_t start) {
    fd::run_incremental_fill<emu::Fill>(fc.inputs.data(), fc.shape, fc.grid(),
                                        device_baseline(fc, fc.baseline.data()), start, capacity,
                                        batch.data(), capacity, state, test_stream());
  };
  fill(0);
  // The second slice takes two launches (256 + 44 slots); the second one fails after the
  // first has rewritten slots [0, 256).
  emu::config().fail_at_launch = emu::stats().launches + 1;
  EXPECT_THROW(fill(50), emu::launch_failure);
  EXPECT_EQ(emu::stats().launches, 4);
  emu::config().fail_at_launch = -1;
  // The first slice again: a state still believing its slots held it would launch nothing.
  fill(0);
  std::vector<float> expected(static_cast<std::size_t>(capacity * image));
  fastocclusion::fill_occluded_batch(fc.inputs.data(), fc.shape, fc.grid(), fc.core_baseline(), 0,
                                     capacity, expected.data());
  EXPECT_TRUE(same_bits(batch.data(), expected.data(), capacity * image, image));
}

// The CUDA fills reject what the CPU fills reject, with the same message, before launching.
TEST(EmulatedFill, RejectsWhatTheCpuRejectsWithoutLaunching) {
  Rng rng(75);
  emu::reset();
  emu::config().stream = test_stream();
  const FillCase fc = test_support::make_case(rng, {2, 6, 6, 3}, 2, 2, 2, 2, false,
                                              naive::BaselineLayout::per_channel);
  const std::int64_t total = fc.stream_size();
  std::vector<float> batch(static_cast<std::size_t>((total + 1) * fc.shape.image_size()));
  const auto other_grid =
      fastocclusion::make_patch_grid(7, 6, 2, 2, 2, 2, fastocclusion::EdgeMode::valid);
  struct Bad {
    const float* inputs;
    const float* baseline;
    std::int64_t start, count;
    float* batch;
    bool other_grid;
  };
  const float* in = fc.inputs.data();
  const float* base = fc.baseline.data();
  float* out = batch.data();
  const Bad cases[] = {{in, base, -1, 1, out, false},        {in, base, total + 1, 0, out, false},
                       {in, base, 3, total - 2, out, false}, {in, base, 0, -1, out, false},
                       {nullptr, base, 0, 1, out, false},    {in, nullptr, 0, 1, out, false},
                       {in, base, 0, 1, nullptr, false},     {in, base, 0, 1, out, true}};
  for (const Bad& b : cases) {
    const auto grid = b.other_grid ? other_grid : fc.grid();
    std::string cpu, device;
    try {
      fastocclusion::fill_occluded_batch(b.inputs, fc.shape, grid,
                                         {fc.core_baseline().kind, b.baseline}, b.start, b.count,
                                         b.batch);
    } catch (const user_error& e) {
      cpu = e.what();
    }
    fastocclusion::cuda::DeviceBaseline db = device_baseline(fc, b.baseline);
    try {
      fd::run_fill<emu::Fill>(b.inputs, fc.shape, grid, db, b.start, b.count, b.batch,
                              test_stream());
    } catch (const user_error& e) {
      device = e.what();
    }
    EXPECT_FALSE(cpu.empty()) << "start=" << b.start << " count=" << b.count;
    EXPECT_EQ(device, cpu);
    IncrementalFillState state;
    EXPECT_THROW(fd::run_incremental_fill<emu::Fill>(b.inputs, fc.shape, grid, db, b.start, b.count,
                                                     b.batch, total + 1, state, test_stream()),
                 user_error);
  }
  IncrementalFillState state;
  const auto db = device_baseline(fc, base);
  EXPECT_THROW(fd::run_incremental_fill<emu::Fill>(in, fc.shape, fc.grid(), db, 0, 5, out, 4,
                                                   state, test_stream()),
               user_error);  // capacity < count
  EXPECT_THROW(fd::run_incremental_fill<emu::Fill>(in, fc.shape, fc.grid(), db, 0, 0, out,
                                                   std::int64_t{1} << 31, state, test_stream()),
               user_error);  // capacity >= 2^31
  // Empty slices (null pointers allowed) and a scalar baseline without values launch nothing
  // or work.
  fd::run_fill<emu::Fill>(nullptr, fc.shape, fc.grid(), {}, total, 0, nullptr, test_stream());
  EXPECT_EQ(emu::stats().launches, 0);
  fastocclusion::cuda::DeviceBaseline scalar;
  scalar.scalar = 2.5f;
  fd::run_fill<emu::Fill>(in, fc.shape, fc.grid(), scalar, 0, 1, batch.data(), test_stream());
  EXPECT_EQ(emu::stats().launches, 1);
}

// Pass-1 blocks, pass-2 blocks and prefix threads are shrunk at random so every loop wraps.
TEST(EmulatedAccumulate, MatchesCpuMapsToFloatRounding) {
  Rng rng(76);
  emu::reset();
  for (int trial = 0; trial < 600; ++trial) {
    const FillCase fc = random_fill_case(rng, trial);  // only its geometry is used
    const auto grid = fc.grid();
    const std::int64_t n = uniform_int(rng, 1, 4), plane = grid.height() * grid.width();
    const std::int64_t patches = grid.num_patches();
    std::vector<double> deltas = test_support::random_doubles(rng, n * patches);
    for (double& d : deltas) d *= std::pow(10.0, static_cast<double>(uniform_int(rng, -3, 3)));
    for (const auto reduction : {fastocclusion::Reduction::sum, fastocclusion::Reduction::mean}) {
      randomize_launches(rng);
      std::vector<float> expected(static_cast<std::size_t>(n * plane));
      fastocclusion::accumulate_patch_deltas(deltas.data(), n, grid, reduction, expected.data());
      const std::size_t bytes = fd::workspace_bytes(n, grid);
      std::vector<double> workspace(bytes / sizeof(double), std::nan(""));
      std::vector<float> maps(static_cast<std::size_t>(n * plane), std::nanf(""));
      fd::run_accumulate<emu::Accumulate>(deltas.data(), n, grid, reduction, maps.data(),
                                          workspace.data(), bytes, test_stream());
      for (std::size_t i = 0; i < maps.size(); ++i) {
        const auto per_input = static_cast<std::size_t>(patches);
        const std::size_t first = i / static_cast<std::size_t>(plane) * per_input;
        double scale = 0.0;  // bound on every partial sum of this input
        for (std::size_t k = first; k < first + per_input; ++k) scale += std::fabs(deltas[k]);
        const double e = expected[i], g = maps[i];
        const double tolerance = std::fabs(e) * 0x1p-23 + scale * 1e-13;
        // Exactly 0 where no patch covers the pixel (the CPU's 0 is exact there).
        ASSERT_TRUE(e == 0.0 ? g == 0.0 : std::fabs(g - e) <= tolerance)
            << fc.describe() << " n=" << n
            << " mean=" << (reduction == fastocclusion::Reduction::mean) << " map element " << i
            << ": got " << g << ", expected " << e;
      }
    }
  }
  record_coverage();
  const emu::Stats& s = emu::stats();
  EXPECT_GT(s.multi_input_blocks, 0);
  EXPECT_GT(s.thread_wraps, 0);
  EXPECT_GT(s.map_wraps, 0);
}

TEST(EmulatedAccumulate, RejectsBadArgumentsWithoutLaunching) {
  emu::reset();
  emu::config().stream = test_stream();
  const auto grid =
      fastocclusion::make_patch_grid(6, 5, 2, 2, 1, 2, fastocclusion::EdgeMode::cover);
  std::vector<double> deltas(static_cast<std::size_t>(2 * grid.num_patches()), 1.0);
  std::vector<float> maps(60);
  const std::size_t bytes = fd::workspace_bytes(2, grid);
  EXPECT_EQ(bytes, 2u * 6u * 4u * sizeof(double));  // (rows + 1) x (cols + 1) per input
  std::vector<double> workspace(bytes / sizeof(double) + 1);
  const auto run = [&](const double* d, std::int64_t n, void* ws, std::size_t size) {
    fd::run_accumulate<emu::Accumulate>(d, n, grid, fastocclusion::Reduction::sum, maps.data(), ws,
                                        size, test_stream());
  };
  EXPECT_THROW(run(deltas.data(), 2, workspace.data(), bytes - 1), user_error);
  char* misaligned = reinterpret_cast<char*>(workspace.data()) + 4;
  EXPECT_THROW(run(deltas.data(), 2, misaligned, bytes), user_error);
  EXPECT_THROW(run(nullptr, 2, workspace.data(), bytes), user_error);
  EXPECT_THROW(run(deltas.data(), 0, workspace.data(), bytes), user_error);
  EXPECT_EQ(emu::stats().launches, 0);
  run(deltas.data(), 2, workspace.data(), bytes);
  EXPECT_EQ(emu::stats().launches, 2);
}

}  // namespace
