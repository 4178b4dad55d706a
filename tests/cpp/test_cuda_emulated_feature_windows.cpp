// The CUDA feature-map window kernels without a GPU: the shipped launchers (run_gather,
// run_splice of csrc/src/cuda/feature_windows_host.hpp) with the emulating Launch policy of
// cuda_emulation.hpp, against the CPU's gather_windows and splice_windows (the oracle), bit
// for bit: random maps over 1 to 3 axes and 1 to 4 channels, windows reaching past every
// edge, with and without patches, float and double, grids shrunk so the loops wrap. The
// per-slot values are given in two copies: the kernels must read the "device" one. Bad
// arguments are refused with the CPU's messages before any launch.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda_emulation.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/feature_windows.hpp"

namespace {

namespace emu = cuda_emulation;
namespace fd = fastocclusion::cuda::detail;
namespace fo = fastocclusion;
using Rng = std::mt19937_64;

cudaStream_t test_stream() { return reinterpret_cast<cudaStream_t>(std::uintptr_t{0x5eed3}); }

std::int64_t uniform_int(Rng& rng, std::int64_t lo, std::int64_t hi) {
  return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
}

template <typename T>
class EmulatedFeatureWindows : public ::testing::Test {};
using ValueTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(EmulatedFeatureWindows, ValueTypes);

// One random problem: maps, slots, window and patch boxes; values distinct enough that a
// read from the wrong place shows.
template <typename T>
struct Problem {
  fo::MapShape shape;
  std::int64_t map_count = 0, count = 0;
  fo::AxisSizes window{}, patch{};
  std::vector<T> maps, patches;
  std::vector<std::int64_t> index, window_origins, patch_origins;

  std::int64_t volume(const fo::AxisSizes& size) const {
    std::int64_t v = 1;
    for (int a = 0; a < shape.axes; ++a) v *= size[a];
    return v;
  }
};

template <typename T>
Problem<T> random_problem(Rng& rng) {
  Problem<T> p;
  p.shape.channels = uniform_int(rng, 1, 4);
  p.shape.axes = static_cast<int>(uniform_int(rng, 1, fo::kMaxMapAxes));
  const std::int64_t longest = p.shape.axes == 3 ? 7 : 13;
  for (int a = 0; a < p.shape.axes; ++a) {
    p.shape.size[a] = uniform_int(rng, 1, longest);
    p.window[a] = uniform_int(rng, 1, p.shape.size[a] + 4);
    p.patch[a] = uniform_int(rng, 1, p.shape.size[a]);
  }
  p.map_count = uniform_int(rng, 1, 3);
  p.count = uniform_int(rng, 1, 6);
  const auto values = [&](std::int64_t size) {
    std::vector<T> v(static_cast<std::size_t>(size));
    for (T& x : v) x = static_cast<T>(uniform_int(rng, -100000, 100000)) / T(64);
    return v;
  };
  p.maps = values(p.map_count * p.shape.channels * p.volume(p.shape.size));
  p.patches = values(p.count * p.shape.channels * p.volume(p.patch));
  for (std::int64_t j = 0; j < p.count; ++j) {
    p.index.push_back(uniform_int(rng, 0, p.map_count - 1));
    for (int a = 0; a < p.shape.axes; ++a) {
      p.window_origins.push_back(uniform_int(rng, -p.window[a] - 1, p.shape.size[a] + 1));
      p.patch_origins.push_back(uniform_int(rng, 0, p.shape.size[a] - p.patch[a]));
    }
  }
  return p;
}

TYPED_TEST(EmulatedFeatureWindows, GathersMatchTheCpuBitForBit) {
  using T = TypeParam;
  Rng rng(401 + sizeof(T));
  emu::reset();
  for (int trial = 0; trial < 400; ++trial) {
    const Problem<T> p = random_problem<T>(rng);
    emu::randomize(rng, test_stream());
    const bool with_patches = trial % 3 != 0;
    const T* patches = with_patches ? p.patches.data() : nullptr;
    const T pad = trial % 2 == 0 ? T(0) : -std::numeric_limits<T>::infinity();
    const std::int64_t size = p.count * p.shape.channels * p.volume(p.window);
    std::vector<T> expected(static_cast<std::size_t>(size), T(-7));
    fo::gather_windows<T>(p.maps.data(), p.map_count, p.shape, p.index.data(),
                          {p.window_origins.data(), p.window}, patches,
                          {p.patch_origins.data(), p.patch}, pad, p.count, expected.data());
    // The "device" copies: the same values elsewhere (the kernels read these).
    const std::vector<std::int64_t> index = p.index, origins = p.window_origins,
                                    patch_origins = p.patch_origins;
    std::vector<T> got(static_cast<std::size_t>(size), T(-7));
    fd::run_gather<emu::Windows>(p.maps.data(), p.map_count, p.shape,
                                 fo::cuda::DeviceIndices{p.index.data(), index.data()},
                                 fo::cuda::DeviceIndices{p.window_origins.data(), origins.data()},
                                 p.window, patches,
                                 fo::cuda::DeviceIndices{p.patch_origins.data(),
                                                         patch_origins.data()},
                                 p.patch, pad, p.count, got.data(), test_stream());
    ASSERT_EQ(got, expected) << "trial " << trial;
  }
  EXPECT_GT(emu::stats().accumulate_wraps, 0);
}

TYPED_TEST(EmulatedFeatureWindows, SplicesMatchTheCpuBitForBit) {
  using T = TypeParam;
  Rng rng(501 + sizeof(T));
  emu::reset();
  for (int trial = 0; trial < 400; ++trial) {
    const Problem<T> p = random_problem<T>(rng);
    emu::randomize(rng, test_stream());
    const std::int64_t capacity = p.count + uniform_int(rng, 0, 2);
    const std::int64_t map_size = p.shape.channels * p.volume(p.shape.size);
    std::vector<T> expected(static_cast<std::size_t>(capacity * map_size), T(-7));
    fo::splice_windows<T>(p.maps.data(), p.map_count, p.shape, p.index.data(),
                          p.patches.data(), {p.patch_origins.data(), p.patch}, p.count,
                          expected.data(), capacity, nullptr);
    const std::vector<std::int64_t> index = p.index, origins = p.patch_origins;
    std::vector<T> got(expected.size(), T(-7));
    fd::run_splice<emu::Windows>(p.maps.data(), p.map_count, p.shape,
                                 fo::cuda::DeviceIndices{p.index.data(), index.data()},
                                 p.patches.data(),
                                 fo::cuda::DeviceIndices{p.patch_origins.data(), origins.data()},
                                 p.patch, p.count, got.data(), capacity, test_stream());
    ASSERT_EQ(got, expected) << "trial " << trial;  // slots >= count untouched in both
  }
  EXPECT_GT(emu::stats().accumulate_wraps, 0);
}

TEST(EmulatedFeatureWindowErrors, TheCpuChecksRefuseBeforeAnyLaunchAndDeviceCopiesAreRead) {
  const fo::MapShape shape{2, 2, {4, 4, 0}};
  std::vector<float> maps(2 * 2 * 16);  // 2 maps of 2 channels of 4 x 4
  for (std::size_t i = 0; i < maps.size(); ++i) maps[i] = static_cast<float>(i);
  std::vector<float> out(2 * 2 * 4, -1.0f);
  const fo::AxisSizes window{2, 2, 0};
  emu::reset();
  emu::config().stream = test_stream();
  const auto message = [](auto&& call) {
    try {
      call();
    } catch (const fo::user_error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  // map_index 1 of 1 map: the CPU's message, no launch.
  const std::vector<std::int64_t> bad_index{1}, origins{0, 0};
  const std::string cpu = message([&] {
    fo::gather_windows<float>(maps.data(), 1, shape, bad_index.data(), {origins.data(), window},
                              nullptr, {}, 0.0f, 1, out.data());
  });
  const std::string device = message([&] {
    fd::run_gather<emu::Windows>(maps.data(), 1, shape,
                                 fo::cuda::DeviceIndices{bad_index.data(), bad_index.data()},
                                 fo::cuda::DeviceIndices{origins.data(), origins.data()}, window,
                                 static_cast<const float*>(nullptr), fo::cuda::DeviceIndices{},
                                 fo::AxisSizes{}, 0.0f, 1, out.data(), test_stream());
  });
  EXPECT_NE(cpu.find("map_index[0]=1"), std::string::npos) << cpu;
  EXPECT_EQ(device, cpu);
  EXPECT_NE(message([&] {
              fd::run_gather<emu::Windows>(maps.data(), 1, shape,
                                           fo::cuda::DeviceIndices{origins.data(), nullptr},
                                           fo::cuda::DeviceIndices{origins.data(), origins.data()},
                                           window, static_cast<const float*>(nullptr),
                                           fo::cuda::DeviceIndices{}, fo::AxisSizes{}, 0.0f, 1,
                                           out.data(), test_stream());
            }).find("device copies"),
            std::string::npos);
  EXPECT_EQ(emu::stats().launches, 0);
  // The host copy says map 0, the device copy map 1: the kernel reads map 1.
  const std::vector<std::int64_t> host_index{0}, device_index{1};
  fd::run_gather<emu::Windows>(maps.data(), 2, shape,
                               fo::cuda::DeviceIndices{host_index.data(), device_index.data()},
                               fo::cuda::DeviceIndices{origins.data(), origins.data()}, window,
                               static_cast<const float*>(nullptr), fo::cuda::DeviceIndices{},
                               fo::AxisSizes{}, 0.0f, 1, out.data(), test_stream());
  EXPECT_EQ(out[0], 32.0f);  // map 1, channel 0, (0, 0)
}

}  // namespace
