// Emulated CUDA launches for test_cuda_emulated*.cpp: Launch policies for the shipped
// launcher templates (csrc/src/cuda/fill_host.hpp, accumulate_host.hpp, blend_host.hpp) that
// run the kernels' per-thread bodies (fill_device.cuh, accumulate_device.cuh,
// blend_device.cuh) over an emulated grid on the host, block by block and thread by thread,
// exactly as the __global__ kernels of fill.cu, accumulate.cu and blend.cu forward
// blockIdx/threadIdx/gridDim to them. Launches run one after
// another, as kernels on one stream do.
//
// Beyond running the launch it was given, a policy can (per Config):
//  * launch a SMALLER grid than the launcher asked for, so the grid-stride loops of the
//    bodies wrap (the shipped caps, 65535 blocks per slot, wrap only on samples of gigabytes);
//  * run the 64-bit in-sample Index instantiation (the launcher picks it only past 2^31 floats);
//  * run the blocks in a shuffled order and the threads of odd blocks backwards, so two
//    threads writing one element with different values disagree with the CPU;
//  * fail (throw) at the n-th launch, to test the launcher's recovery.
// Every launch checks what a real device would enforce: grid limits, a non-empty grid, and
// 16-byte alignment whenever the vectorised (V = 4) copy is chosen. Violations throw
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
#include "blend_host.hpp"
#include "feature_windows_host.hpp"
#include "fill_host.hpp"

namespace cuda_emulation {

namespace fd = fastocclusion::cuda::detail;

constexpr std::int64_t kNoCap = std::numeric_limits<std::int64_t>::max();

/// Knobs of the next emulated launches (see the header comment). Defaults: the launcher's grid.
struct Config {
  std::int64_t max_grid_x = kNoCap;           ///< full fill: blocks per slot (gridDim.x)
  std::int64_t max_grid_y = kNoCap;           ///< full fill: slot rows (gridDim.y)
  std::int64_t max_blocks_per_slot = kNoCap;  ///< incremental: a plan's blocks per slot
  std::int64_t max_accumulate_blocks = kNoCap;  ///< accumulate: every pass
  bool widen_index = false;                   ///< run the std::uint64_t Index bodies
  std::uint64_t order_seed = 0;               ///< block order; 0 keeps ascending order
  std::int64_t fail_at_launch = -1;           ///< launch number (0-based) that throws
  cudaStream_t stream = nullptr;              ///< the stream every launch must receive
};

/// What the launches did since the last reset(): lets the tests assert their coverage.
struct Stats {
  std::int64_t launches = 0, copies = 0, boxes = 0, plan_copies = 0, plan_boxes = 0;
  std::int64_t vectorised = 0, scalar_width = 0;
  std::int64_t wide_index = 0;     ///< launches that ran the std::uint64_t Index bodies
  std::int64_t full_slots = 0;     ///< incremental: slots filled in full
  std::int64_t updated_slots = 0;  ///< incremental: slots whose box was updated in place
  std::int64_t copy_wraps = 0;     ///< a slot's units outran the blocks given to it
  std::int64_t box_wraps = 0;      ///< a box (or a box update) outran the blocks given to it
  std::int64_t slot_y_wraps = 0;   ///< full fill: more slots than slot rows
  std::int64_t scans = 0;          ///< accumulate: scan launches (one per active axis)
  std::int64_t accumulate_wraps = 0;  ///< accumulate: a pass outran its threads
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

/// Random knobs for the next launches, expecting `stream`: the launcher's grid, every cap at
/// 1, or small random caps (so the grid-stride loops wrap); the index width and the block
/// order at random.
template <typename Rng>
void randomize(Rng& rng, cudaStream_t stream) {
  const auto uniform = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  Config c;
  c.stream = stream;
  const std::int64_t mode = uniform(0, 2);
  if (mode > 0) {
    const auto cap = [&] { return mode == 1 ? 1 : uniform(1, 3); };
    c.max_grid_x = cap();
    c.max_grid_y = cap();
    c.max_blocks_per_slot = cap();
    c.max_accumulate_blocks = cap();
  }
  c.widen_index = uniform(0, 1) == 1;
  c.order_seed = uniform(0, 1) == 1 ? static_cast<std::uint64_t>(rng()) | 1u : 0u;
  config() = c;
}

/// `size` values of T starting `shift` values past a 16-byte boundary (shift 1: the launcher
/// must take the one-value copy even where the sample is whole 16-byte vectors).
template <typename T>
class Aligned {
 public:
  Aligned(std::int64_t size, std::int64_t shift, T fill)
      : storage_(static_cast<std::size_t>(size + 32), fill) {
    const auto misalign = reinterpret_cast<std::uintptr_t>(storage_.data()) % 16;
    data_ = storage_.data() + (16 - misalign) % 16 / sizeof(T) + shift;
  }
  Aligned(const Aligned&) = delete;
  Aligned& operator=(const Aligned&) = delete;
  T* data() { return data_; }

 private:
  std::vector<T> storage_;
  T* data_ = nullptr;
};

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

/// Runs body(tid) for the kThreads threads of block b (odd blocks backwards).
template <typename Body>
void run_block(std::int64_t b, Body&& body) {
  for (unsigned i = 0; i < fd::kThreads; ++i) body(b % 2 == 0 ? i : fd::kThreads - 1 - i);
}

template <typename T>
void check_vector_layout(int v, const fd::BasicFillParams<T>& p) {
  if (v == 1) {
    ++stats().scalar_width;
    return;
  }
  ++stats().vectorised;
  const auto aligned16 = [](const void* ptr) {
    return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0;
  };
  expect(v == fd::kVectorWidth<T> && v * static_cast<int>(sizeof(T)) == 16,
         "a vector that is not 16 bytes of T");
  expect(p.sample % v == 0 && aligned16(p.inputs) && aligned16(p.batch),
         "16-byte vector path chosen for a misaligned layout");
}

/// Runs run(Index{}) with the launcher's Index, or std::uint64_t when widened.
template <typename Index, typename Run>
void with_index(Run&& run) {
  if (config().widen_index || sizeof(Index) == 8) ++stats().wide_index;
  if (config().widen_index) run(std::uint64_t{});
  else run(Index{});
}

/// Launch policy of run_fill / run_incremental_fill.
struct Fill {
  /// A 2-D launch of the full fill (copy or box): (gx, gy) after the caps; counts wraps.
  static fd::GridSize full_grid(fd::GridSize grid, std::int64_t count, std::int64_t units,
                                std::int64_t& wraps) {
    expect(grid.x >= 1 && grid.x <= std::numeric_limits<std::int32_t>::max(),
           "gridDim.x out of range");
    expect(grid.y >= 1 && grid.y <= 65535, "gridDim.y out of range");
    expect(count >= 1, "empty fill launched");
    const fd::GridSize shrunk{std::min(grid.x, config().max_grid_x),
                              std::min(grid.y, config().max_grid_y)};
    if (shrunk.x * fd::kThreads < units) ++wraps;
    if (shrunk.y < count) ++stats().slot_y_wraps;
    return shrunk;
  }

  template <typename Body>
  static void run_2d(fd::GridSize g, Body&& body) {
    for (const std::int64_t b : block_order(g.x * g.y)) {
      const auto bx = static_cast<unsigned>(b % g.x), by = static_cast<unsigned>(b / g.x);
      run_block(b, [&](unsigned tid) {
        body(bx, by, static_cast<unsigned>(g.x), static_cast<unsigned>(g.y), tid);
      });
    }
  }

  template <int V, typename Index, typename T>
  static void copy(const fd::BasicFillParams<T>& p, fd::GridSize grid, std::int64_t count,
                   cudaStream_t stream) {
    begin_launch(stream);
    ++stats().copies;
    check_vector_layout(V, p);
    const fd::GridSize g = full_grid(grid, count, p.sample / V, stats().copy_wraps);
    with_index<Index>([&](auto index) {
      using I = decltype(index);
      run_2d(g, [&](unsigned bx, unsigned by, unsigned gx, unsigned gy, unsigned tid) {
        fd::copy_thread<V, I>(p, count, bx, by, gx, gy, tid);
      });
    });
  }

  template <typename Index, typename T>
  static void box(const fd::BasicFillParams<T>& p, fd::GridSize grid, std::int64_t count,
                  cudaStream_t stream) {
    begin_launch(stream);
    ++stats().boxes;
    const fd::GridSize g = full_grid(grid, count, p.volume, stats().box_wraps);
    with_index<Index>([&](auto index) {
      using I = decltype(index);
      run_2d(g, [&](unsigned bx, unsigned by, unsigned gx, unsigned gy, unsigned tid) {
        fd::box_thread<I>(p, count, bx, by, gx, gy, tid);
      });
    });
  }

  /// The plan with its blocks per slot capped; checks the plan's counts.
  static fd::IncrementalPlan shrink(const fd::IncrementalPlan& plan) {
    expect(plan.full_count >= 0 && plan.update_count >= 0 &&
               plan.full_count + plan.update_count <= fd::kPlanSlots,
           "plan counts out of range");
    fd::IncrementalPlan shrunk = plan;
    const auto cap = [](std::uint32_t blocks) {
      expect(blocks >= 1 && blocks <= 65535, "blocks per slot out of range");
      return static_cast<std::uint32_t>(
          std::min<std::int64_t>(blocks, config().max_blocks_per_slot));
    };
    shrunk.blocks_per_copy = cap(plan.blocks_per_copy);
    shrunk.blocks_per_box = cap(plan.blocks_per_box);
    shrunk.blocks_per_update = cap(plan.blocks_per_update);
    return shrunk;
  }

  template <int V, typename Index, typename T>
  static void plan_copy(const fd::BasicFillParams<T>& p, const fd::IncrementalPlan& plan,
                        std::int64_t blocks, cudaStream_t stream) {
    begin_launch(stream);
    ++stats().plan_copies;
    check_vector_layout(V, p);
    expect(plan.full_count >= 1 && blocks == std::int64_t{plan.full_count} * plan.blocks_per_copy,
           "copy grid does not match the plan");
    const fd::IncrementalPlan shrunk = shrink(plan);
    stats().full_slots += plan.full_count;
    if (std::int64_t{shrunk.blocks_per_copy} * fd::kThreads < p.sample / V) ++stats().copy_wraps;
    with_index<Index>([&](auto index) {
      using I = decltype(index);
      for (const std::int64_t b :
           block_order(std::int64_t{shrunk.full_count} * shrunk.blocks_per_copy)) {
        run_block(b, [&](unsigned tid) {
          fd::plan_copy_thread<V, I>(p, shrunk, static_cast<unsigned>(b), tid);
        });
      }
    });
  }

  template <typename Index, typename T>
  static void plan_box(const fd::BasicFillParams<T>& p, const fd::IncrementalPlan& plan,
                       std::int64_t blocks, cudaStream_t stream) {
    begin_launch(stream);
    ++stats().plan_boxes;
    expect(blocks >= 1 && blocks <= std::numeric_limits<std::int32_t>::max() &&
               blocks == std::int64_t{plan.full_count} * plan.blocks_per_box +
                             std::int64_t{plan.update_count} * plan.blocks_per_update,
           "box grid does not match the plan");
    const fd::IncrementalPlan shrunk = shrink(plan);
    stats().updated_slots += plan.update_count;
    const std::int64_t threads = fd::kThreads;
    if ((shrunk.full_count > 0 && shrunk.blocks_per_box * threads < p.volume) ||
        (shrunk.update_count > 0 && shrunk.blocks_per_update * threads < 2 * p.volume)) {
      ++stats().box_wraps;
    }
    const std::int64_t launched = std::int64_t{shrunk.full_count} * shrunk.blocks_per_box +
                                  std::int64_t{shrunk.update_count} * shrunk.blocks_per_update;
    with_index<Index>([&](auto index) {
      using I = decltype(index);
      for (const std::int64_t b : block_order(launched)) {
        run_block(b, [&](unsigned tid) {
          fd::plan_box_thread<I>(p, shrunk, static_cast<unsigned>(b), tid);
        });
      }
    });
  }
};

/// Launch policy of run_accumulate: the grid-stride loops of pad_kernel, scan_kernel and
/// map_kernel (accumulate.cu) around the bodies.
struct Accumulate {
  template <typename Body>
  static void grid_stride(std::int64_t blocks, std::int64_t total, Body&& body) {
    expect(blocks >= 1 && blocks <= std::numeric_limits<std::int32_t>::max(),
           "grid out of range");
    const std::int64_t grid = std::min(blocks, config().max_accumulate_blocks);
    const std::int64_t step = grid * fd::kThreads;
    if (step < total) ++stats().accumulate_wraps;
    for (const std::int64_t b : block_order(grid)) {
      run_block(b, [&](unsigned t) {
        for (std::int64_t idx = b * fd::kThreads + t; idx < total; idx += step) body(idx);
      });
    }
  }

  static void pad(const fd::AccumulateParams& p, std::int64_t blocks, cudaStream_t stream) {
    begin_launch(stream);
    grid_stride(blocks, p.n * p.padded_size, [&](std::int64_t idx) { fd::pad_element(p, idx); });
  }

  static void scan(const fd::AccumulateParams& p, int axis, std::int64_t blocks,
                   cudaStream_t stream) {
    begin_launch(stream);
    ++stats().scans;
    expect(axis >= 0 && axis < p.active, "scan of an axis that is not active");
    grid_stride(blocks, fd::scan_lines(p, axis),
                [&](std::int64_t line) { fd::scan_line(p, axis, line); });
  }

  static void maps(const fd::AccumulateParams& p, std::int64_t blocks, cudaStream_t stream) {
    begin_launch(stream);
    grid_stride(blocks, p.n * p.map_size, [&](std::int64_t idx) { fd::map_element(p, idx); });
  }
};

/// Launch policy of run_window_means and run_blend: the grid-stride loops of means_kernel
/// and blend_kernel (blend.cu) around the bodies.
struct Blend {
  template <typename Index, typename T>
  static void means(const fd::BasicFillParams<T>& p, T* out, std::int64_t total,
                    std::int64_t blocks, cudaStream_t stream) {
    begin_launch(stream);
    with_index<Index>([&](auto index) {
      using I = decltype(index);
      Accumulate::grid_stride(blocks, total,
                              [&](std::int64_t s) { fd::window_mean_element<I>(p, out, s); });
    });
  }

  static void blend(const fd::BlendParams& p, std::int64_t blocks, cudaStream_t stream) {
    begin_launch(stream);
    Accumulate::grid_stride(blocks, p.n * p.map_size,
                            [&](std::int64_t idx) { fd::blend_element(p, idx); });
  }
};

/// Launch policy of run_gather and run_splice: the grid-stride loops of gather_kernel and
/// splice_kernel (feature_windows.cu) around the bodies.
struct Windows {
  template <typename T>
  static void gather(const fd::WindowParams<T>& p, std::int64_t total, std::int64_t blocks,
                     cudaStream_t stream) {
    begin_launch(stream);
    Accumulate::grid_stride(blocks, total, [&](std::int64_t idx) { fd::gather_element(p, idx); });
  }

  template <typename T>
  static void splice(const fd::WindowParams<T>& p, std::int64_t total, std::int64_t blocks,
                     cudaStream_t stream) {
    begin_launch(stream);
    Accumulate::grid_stride(blocks, total, [&](std::int64_t idx) { fd::splice_element(p, idx); });
  }
};

}  // namespace cuda_emulation
