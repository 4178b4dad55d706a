// Emulated CUDA launches for test_cuda_emulated.cpp: Launch policies for the shipped launcher
// templates (csrc/src/cuda/fill_host.hpp, accumulate_host.hpp) that run the kernels'
// per-thread bodies (fill_device.cuh, accumulate_device.cuh) over an emulated grid on the
// host, block by block and thread by thread, exactly as the __global__ kernels of fill.cu
// and accumulate.cu forward blockIdx/threadIdx/gridDim to them.
//
// Beyond running the launch it was given, a policy can (per Config):
//  * launch a SMALLER grid than the launcher asked for, so the grid-stride loops of the
//    bodies wrap (the shipped caps, 65535 blocks, wrap only on images of gigabytes);
//  * run the 64-bit in-image Index instantiation (the launcher picks it only past 2^31 floats);
//  * run the blocks in a shuffled order and the threads of odd blocks backwards, so two
//    threads writing one element with different values disagree with the CPU;
//  * fail (throw) at the n-th launch, to test the launcher's recovery.
// Every launch checks what a real device would enforce: grid limits, a non-empty grid, and
// 16-byte alignment whenever the vectorised (V = 4) bodies are chosen. Violations throw
// contract_violation. Nothing here touches the CUDA runtime: only cudaStream_t comes from
// the toolkit headers (kernels.hpp includes cuda_runtime_api.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "accumulate_host.hpp"
#include "fill_host.hpp"

namespace cuda_emulation {

namespace fd = fastocclusion::cuda::detail;

constexpr std::int64_t kNoCap = std::numeric_limits<std::int64_t>::max();

/// Knobs of the next emulated launches (see the header comment). Defaults: the launcher's grid.
struct Config {
  std::int64_t max_grid_x = kNoCap;           ///< full fill: blocks per slot (gridDim.x)
  std::int64_t max_grid_y = kNoCap;           ///< full fill: slot rows (gridDim.y)
  std::int64_t max_blocks_per_slot = kNoCap;  ///< incremental: blocks_per_full / blocks_per_inc
  std::int64_t max_prefix_blocks = kNoCap;    ///< accumulate pass 1
  std::int64_t max_map_blocks = kNoCap;       ///< accumulate pass 2
  unsigned prefix_threads = fd::kPrefixThreads;  ///< accumulate pass 1 blockDim.x
  bool widen_index = false;                   ///< run the std::uint64_t Index bodies
  std::uint64_t order_seed = 0;               ///< block order; 0 keeps ascending order
  std::int64_t fail_at_launch = -1;           ///< launch number (0-based) that throws
  cudaStream_t stream = nullptr;              ///< the stream every launch must receive
};

/// What the launches did since the last reset(): lets the tests assert their coverage.
struct Stats {
  std::int64_t launches = 0, full = 0, incremental = 0, vectorised = 0, scalar_width = 0;
  std::int64_t wide_index = 0;     ///< launches that ran the std::uint64_t Index bodies
  std::int64_t updated_slots = 0;  ///< incremental: slots whose patch was updated in place
  std::int64_t slot_x_wraps = 0;   ///< a slot's units outran the blocks given to it
  std::int64_t slot_y_wraps = 0;   ///< full fill: more slots than slot rows
  std::int64_t update_wraps = 0;   ///< incremental: a patch update outran its blocks
  std::int64_t multi_input_blocks = 0, thread_wraps = 0, map_wraps = 0;  ///< accumulate
};

struct contract_violation : std::logic_error {
  using std::logic_error::logic_error;
};
struct launch_failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline Config& config() {
  static Config c;
  return c;
}
inline Stats& stats() {
  static Stats s;
  return s;
}
/// Back to the defaults and zero counts.
inline void reset() {
  config() = Config{};
  stats() = Stats{};
}

inline void expect(bool ok, const std::string& what) {
  if (!ok) throw contract_violation("emulated launch: " + what);
}

/// Common bookkeeping of every launch: counts it, checks the stream, fails on request.
inline void begin_launch(cudaStream_t stream) {
  expect(stream == config().stream, "the launcher did not forward the caller's stream");
  if (stats().launches++ == config().fail_at_launch) {
    throw launch_failure("emulated launch failure");
  }
}

/// Block ids [0, blocks) in the order the emulation runs them.
inline std::vector<std::int64_t> block_order(std::int64_t blocks) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(blocks));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  if (config().order_seed != 0) {
    std::mt19937_64 rng(config().order_seed + static_cast<std::uint64_t>(stats().launches));
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

/// Runs body(tid) for the kFillThreads threads of block b (odd blocks backwards).
template <typename Body>
void run_block(std::int64_t b, Body&& body) {
  for (unsigned i = 0; i < fd::kFillThreads; ++i) body(b % 2 == 0 ? i : fd::kFillThreads - 1 - i);
}

inline void check_vector_layout(int v, const fd::FillParams& p) {
  if (v != 4) {
    ++stats().scalar_width;
    return;
  }
  ++stats().vectorised;
  const auto aligned16 = [](const void* ptr) {
    return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0;
  };
  expect(p.image % 4 == 0 && aligned16(p.inputs) && aligned16(p.batch),
         "float4 path chosen for a misaligned layout");
}

/// Launch policy of run_fill / run_incremental_fill.
struct Fill {
  template <int V, typename Index>
  static void full(const fd::FillParams& p, fd::GridSize grid, std::int64_t count,
                   cudaStream_t stream) {
    begin_launch(stream);
    ++stats().full;
    check_vector_layout(V, p);
    expect(grid.x >= 1 && grid.x <= std::numeric_limits<std::int32_t>::max(),
           "gridDim.x out of range");
    expect(grid.y >= 1 && grid.y <= 65535, "gridDim.y out of range");
    expect(count >= 1, "empty fill launched");
    const std::int64_t gx = std::min(grid.x, config().max_grid_x);
    const std::int64_t gy = std::min(grid.y, config().max_grid_y);
    if (gx * fd::kFillThreads < p.image / V) ++stats().slot_x_wraps;
    if (gy < count) ++stats().slot_y_wraps;
    const auto run = [&](auto index) {
      using I = decltype(index);
      for (const std::int64_t b : block_order(gx * gy)) {
        const auto bx = static_cast<unsigned>(b % gx), by = static_cast<unsigned>(b / gx);
        run_block(b, [&](unsigned tid) {
          fd::fill_full_thread<V, I>(p, count, bx, by, static_cast<unsigned>(gx),
                                     static_cast<unsigned>(gy), tid);
        });
      }
    };
    if (config().widen_index || sizeof(Index) == 8) ++stats().wide_index;
    if (config().widen_index) run(std::uint64_t{});
    else run(Index{});
  }

  template <int V, typename Index>
  static void incremental(const fd::FillParams& p, const fd::IncrementalPlan& plan,
                          std::int64_t blocks, cudaStream_t stream) {
    begin_launch(stream);
    ++stats().incremental;
    check_vector_layout(V, p);
    expect(plan.full_count >= 0 && plan.inc_count >= 0 &&
               plan.full_count + plan.inc_count <= fd::kPlanSlots,
           "plan counts out of range");
    expect(blocks >= 1 && blocks <= std::numeric_limits<std::int32_t>::max() &&
               blocks == std::int64_t{plan.full_count} * plan.blocks_per_full +
                             std::int64_t{plan.inc_count} * plan.blocks_per_inc,
           "grid does not match the plan");
    stats().updated_slots += plan.inc_count;
    fd::IncrementalPlan shrunk = plan;
    shrunk.blocks_per_full = static_cast<std::uint32_t>(
        std::min<std::int64_t>(plan.blocks_per_full, config().max_blocks_per_slot));
    shrunk.blocks_per_inc = static_cast<std::uint32_t>(
        std::min<std::int64_t>(plan.blocks_per_inc, config().max_blocks_per_slot));
    const std::int64_t launched = std::int64_t{shrunk.full_count} * shrunk.blocks_per_full +
                                  std::int64_t{shrunk.inc_count} * shrunk.blocks_per_inc;
    const std::int64_t threads = fd::kFillThreads;
    if (shrunk.full_count > 0 && shrunk.blocks_per_full * threads < p.image / V) {
      ++stats().slot_x_wraps;
    }
    if (shrunk.inc_count > 0 &&
        shrunk.blocks_per_inc * threads < 2 * p.patch_h * p.patch_w * p.channels) {
      ++stats().update_wraps;
    }
    const auto run = [&](auto index) {
      using I = decltype(index);
      for (const std::int64_t b : block_order(launched)) {
        run_block(b, [&](unsigned tid) {
          fd::fill_incremental_thread<V, I>(p, shrunk, static_cast<unsigned>(b), tid);
        });
      }
    };
    if (config().widen_index || sizeof(Index) == 8) ++stats().wide_index;
    if (config().widen_index) run(std::uint64_t{});
    else run(Index{});
  }
};

/// Launch policy of run_accumulate: the loops of prefix_sum_kernel and map_kernel
/// (accumulate.cu) around the bodies, with __syncthreads() between the two halves of pass 1.
struct Accumulate {
  static void prefix(const fd::AccumulateParams& p, std::int64_t blocks, cudaStream_t stream) {
    begin_launch(stream);
    expect(blocks >= 1 && blocks <= 65535, "prefix grid out of range");
    const std::int64_t grid = std::min(blocks, config().max_prefix_blocks);
    const unsigned threads = config().prefix_threads;
    if (grid < p.n) ++stats().multi_input_blocks;
    if (threads < p.rows || threads < p.cols) ++stats().thread_wraps;
    for (const std::int64_t b : block_order(grid)) {
      for (std::int64_t i = b; i < p.n; i += grid) {
        for (unsigned t = 0; t < threads; ++t) fd::prefix_rows(p, i, t, threads);
        // __syncthreads(): every row is summed before any column.
        for (unsigned t = threads; t-- > 0;) fd::prefix_cols(p, i, t, threads);
      }
    }
  }

  static void maps(const fd::AccumulateParams& p, std::int64_t blocks, cudaStream_t stream) {
    begin_launch(stream);
    expect(blocks >= 1 && blocks <= std::numeric_limits<std::int32_t>::max(),
           "map grid out of range");
    const std::int64_t grid = std::min(blocks, config().max_map_blocks);
    const std::int64_t total = p.n * p.height * p.width;
    const std::int64_t stride = grid * fd::kMapThreads;
    if (stride < total) ++stats().map_wraps;
    for (const std::int64_t b : block_order(grid)) {
      for (unsigned t = 0; t < fd::kMapThreads; ++t) {
        for (std::int64_t idx = b * fd::kMapThreads + t; idx < total; idx += stride) {
          fd::map_pixel(p, idx);
        }
      }
    }
  }
};

}  // namespace cuda_emulation
