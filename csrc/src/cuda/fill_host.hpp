// Host side of the batch fills: argument checks, kernel parameters, launch geometry, the
// incremental planning, and the whole launcher logic as templates over a `Launch` policy.
// Private to csrc/src/cuda and free of CUDA launch syntax: fill.cu instantiates the
// launchers with a policy that launches the kernels; a host test program can instantiate
// them with one that runs the bodies of fill_device.cuh over an emulated grid, exercising
// exactly the checks, plans and grids of the shipped launchers.
//
// A Launch policy provides (GridSize: x blocks per slot, y slot rows; see fill_device.cuh)
//   template <int V, class Index, class T> static void copy(const BasicFillParams<T>&, GridSize, std::int64_t count, cudaStream_t);
//   template <class Index, class T> static void box(const BasicFillParams<T>&, GridSize, std::int64_t count, cudaStream_t);
//   template <int V, class Index, class T> static void plan_copy(const BasicFillParams<T>&, const IncrementalPlan&, std::int64_t blocks, cudaStream_t);
//   template <class Index, class T> static void plan_box(const BasicFillParams<T>&, const IncrementalPlan&, std::int64_t blocks, cudaStream_t);
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "fastocclusion/cuda/kernels.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "fill_device.cuh"

namespace fastocclusion::cuda::detail {

/// Most blocks given to one slot (grid-stride loops cover the rest).
constexpr std::int64_t kMaxBlocksPerSlot = 65535;
/// Most block rows of the full fill (CUDA's gridDim.y limit); slots beyond loop.
constexpr std::int64_t kMaxSlotRows = 65535;
/// Copy units (V values) per thread the copy grids aim at: a thread's per-slot set-up (the
/// slot's input, a 64-bit division) is shared by a few 16-byte moves.
constexpr std::int64_t kCopyUnitsPerThread = 4;

inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return a / b + (a % b != 0); }

/// The core's check_fill_arguments and check_baseline_type (fill.hpp): a scalar baseline
/// travels by value, other kinds need their device pointer; the computing kinds need float
/// or double values.
template <typename T>
void check_fill(const T* inputs, std::int64_t n, const WindowGrid& grid,
                const BasicDeviceBaseline<T>& baseline, std::int64_t start, std::int64_t count,
                const T* batch, std::int64_t stride, const DevicePairs& pairs) {
  FASTOCCLUSION_EXPECTS((pairs.host == nullptr) == (pairs.device == nullptr),
                        "pairs: expected both a host and a device copy of the pairs, or neither");
  fastocclusion::check_fill_arguments(
      inputs, n, grid, baseline.kind == BaselineKind::scalar || baseline.values != nullptr,
      start, count, batch, stride, StreamPairs{pairs.host, pairs.count});
  fastocclusion::check_baseline_type(baseline.kind, std::is_floating_point_v<T>, sizeof(T));
}

/// The kernel axes of a (checked) grid: every axis with one window covering it in full
/// (AxisGeometry::single_full_window) merged into its outer neighbour. Exact: a full axis
/// of length L turns the neighbour's (length, window, stride, region, last anchor) into L
/// times them, and the box of a merged axis is contiguous over the two, in the sample and
/// in a window-shaped mask alike; K and the window order are unchanged (the merged axis had
/// one window).
template <typename T>
void set_kernel_axes(BasicFillParams<T>& p, const WindowGrid& grid) {
  int rank = 0;
  for (int d = 0; d < grid.rank; ++d) {
    const AxisGeometry& a = grid.axes[d];
    // An axis with one window uses anchor 0 only, whatever its stride (which may be any
    // int64): it gets stride = length, so that the products below stay <= sample_size.
    // With more windows, stride <= length - 1 (the last anchor lies inside the axis).
    const std::int64_t stride = a.count == 1 ? a.length : a.stride;
    if (rank > 0 && a.single_full_window()) {
      p.length[rank - 1] *= a.length;
      p.window[rank - 1] *= a.length;
      p.stride[rank - 1] *= a.length;
      p.begin[rank - 1] *= a.length;
      p.end[rank - 1] *= a.length;
      p.last[rank - 1] *= a.length;
      continue;
    }
    p.length[rank] = a.length;
    p.window[rank] = a.window;
    p.stride[rank] = stride;
    p.count[rank] = a.count;
    p.begin[rank] = a.begin;
    p.end[rank] = a.end;
    p.last[rank] = a.last;
    ++rank;
  }
  p.rank = rank;
  std::int64_t step = 1;
  p.volume = 1;
  for (int d = rank - 1; d >= 0; --d) {
    p.step[d] = step;
    p.window_step[d] = p.volume;  // row-major over the kernel windows: the mask's layout
    step *= p.length[d];
    p.volume *= p.window[d];
  }
}

template <typename T>
BasicFillParams<T> make_fill_params(const T* inputs, const WindowGrid& grid,
                                    const BasicDeviceBaseline<T>& baseline, std::int64_t start,
                                    std::int64_t stride, T* batch,
                                    const std::int64_t* device_pairs = nullptr) {
  BasicFillParams<T> p;
  p.pairs = device_pairs;
  p.inputs = inputs;
  p.batch = batch;
  p.baseline_kind = static_cast<int>(baseline.kind);
  p.baseline = baseline.kind == BaselineKind::scalar ? nullptr : baseline.values;
  p.scalar = baseline.kind == BaselineKind::scalar ? baseline.scalar : T{};
  set_kernel_axes(p, grid);
  p.sample = grid.sample_size();
  p.windows = grid.num_windows();
  p.start = start;
  p.slot_stride = stride;
  return p;
}

/// 16-byte vectors when every slot and input starts 16-byte aligned.
template <typename T>
bool use_vectors(const BasicFillParams<T>& p) {
  const auto aligned16 = [](const void* ptr) {
    return reinterpret_cast<std::uintptr_t>(ptr) % kVectorBytes == 0;
  };
  return p.sample % kVectorWidth<T> == 0 && aligned16(p.inputs) && aligned16(p.batch);
}

/// 32-bit in-sample indices: every offset, box element and grid-stride step stays below 2^32.
template <typename T>
bool use_32bit_index(const BasicFillParams<T>& p) {
  return p.sample <= std::numeric_limits<std::int32_t>::max();
}

struct GridSize {
  std::int64_t x = 1, y = 1;
};

/// Grid of the full fill's copy, units of V values, about kCopyUnitsPerThread per thread:
/// x splits a slot, y walks the slots.
template <typename T>
GridSize copy_grid(const BasicFillParams<T>& p, int width, std::int64_t count) {
  return {std::clamp<std::int64_t>(
              ceil_div(p.sample / width, kThreads * kCopyUnitsPerThread), 1,
              kMaxBlocksPerSlot),
          std::min(count, kMaxSlotRows)};
}

/// Grid of the full fill's box pass: x splits the largest box, y walks the slots.
template <typename T>
GridSize box_grid(const BasicFillParams<T>& p, std::int64_t count) {
  return {std::clamp<std::int64_t>(ceil_div(p.volume, kThreads), 1, kMaxBlocksPerSlot),
          std::min(count, kMaxSlotRows)};
}

/// Blocks of a plan's two launches.
struct PlanBlocks {
  std::int64_t copy = 0, box = 0;
};

/// Sets the plan's blocks per slot and returns the sizes of its two 1-D grids (0: no launch).
template <typename T>
PlanBlocks plan_blocks(const BasicFillParams<T>& p, int width, IncrementalPlan& plan) {
  const auto blocks_for = [](std::int64_t units) {
    return static_cast<std::uint32_t>(
        std::clamp<std::int64_t>(ceil_div(units, kThreads), 1, kMaxBlocksPerSlot));
  };
  plan.blocks_per_copy = blocks_for(ceil_div(p.sample / width, kCopyUnitsPerThread));
  plan.blocks_per_box = blocks_for(p.volume);
  plan.blocks_per_update = blocks_for(2 * p.volume);  // 2 * volume <= 2 * sample: no overflow
  return {std::int64_t{plan.full_count} * plan.blocks_per_copy,
          std::int64_t{plan.full_count} * plan.blocks_per_box +
              std::int64_t{plan.update_count} * plan.blocks_per_update};
}

/// The planning of an incremental call against the host mirror of the slots.
struct IncrementalFillAccess {
  /// Starts a call: when inputs, batch, baseline (kind, pointer, scalar), n, grid or
  /// capacity differ from the session the state remembers, forgets every slot.
  template <typename T>
  static void begin(IncrementalFillState& state, const T* inputs, std::int64_t n,
                    const WindowGrid& grid, const BasicDeviceBaseline<T>& baseline,
                    const T* batch, std::int64_t capacity) {
    const bool scalar = baseline.kind == BaselineKind::scalar;
    std::uint64_t bits = 0;  // the scalar's bytes, compared bit for bit
    if (scalar) std::memcpy(&bits, &baseline.scalar, sizeof(T));
    state.begin(inputs, n, grid, baseline.kind, scalar ? nullptr : baseline.values, bits,
                batch, capacity, sizeof(T));
  }

  /// One plan per kPlanSlots slots of [0, count): a slot holding another input (or nothing
  /// known) is filled in full, one holding the same input with another window is updated,
  /// one already holding (input, window) is left out.
  static std::vector<IncrementalPlan> plan(IncrementalFillState& state, std::int64_t start,
                                           std::int64_t count, std::int64_t stride,
                                           std::int64_t windows,
                                           const DevicePairs& pairs = {}) {
    std::vector<IncrementalPlan> plans;
    std::vector<std::int32_t> full, update;
    std::vector<std::int64_t> update_prev;
    const std::int64_t* slot_input = state.slot_inputs();
    const std::int64_t* slot_window = state.slot_windows();
    for (std::int64_t chunk = 0; chunk < count; chunk += kPlanSlots) {
      const std::int64_t end = std::min<std::int64_t>(count, chunk + kPlanSlots);
      full.clear();
      update.clear();
      update_prev.clear();
      for (std::int64_t j = chunk; j < end; ++j) {
        const auto [input, k] = pair_of(start + j * stride, windows, pairs);
        if (slot_input[j] != input) {
          full.push_back(static_cast<std::int32_t>(j));
        } else if (slot_window[j] != k) {
          update.push_back(static_cast<std::int32_t>(j));
          update_prev.push_back(slot_window[j]);
        }
      }
      IncrementalPlan& plan = plans.emplace_back();  // value-initialised: arrays zeroed
      plan.full_count = static_cast<std::int32_t>(full.size());
      plan.update_count = static_cast<std::int32_t>(update.size());
      std::copy(full.begin(), full.end(), plan.slot);
      std::copy(update.begin(), update.end(), plan.slot + full.size());
      std::copy(update_prev.begin(), update_prev.end(), plan.prev_window + full.size());
    }
    return plans;
  }

  /// Records what slots [0, count) hold once the call's work is enqueued.
  static void commit(IncrementalFillState& state, std::int64_t start, std::int64_t count,
                     std::int64_t stride, std::int64_t windows,
                     const DevicePairs& pairs = {}) {
    std::int64_t* slot_input = state.slot_inputs();
    std::int64_t* slot_window = state.slot_windows();
    for (std::int64_t j = 0; j < count; ++j) {
      const auto [input, k] = pair_of(start + j * stride, windows, pairs);
      slot_input[j] = input;
      slot_window[j] = k;
    }
  }

  /// The (input, window) of stream index s, from the host copy of the pairs when given.
  static std::pair<std::int64_t, std::int64_t> pair_of(std::int64_t s, std::int64_t windows,
                                                       const DevicePairs& pairs) {
    if (pairs.host != nullptr) return {pairs.host[2 * s], pairs.host[2 * s + 1]};
    return {s / windows, s % windows};
  }
};

/// Calls f(std::integral_constant<int, V>, Index{}) with the copy's vector width
/// (kVectorWidth<T> when aligned, else 1) and the in-sample index type (32-bit when it
/// fits) for `p`.
template <typename T, typename F>
void with_layout(const BasicFillParams<T>& p, F&& f) {
  using Four = std::integral_constant<int, kVectorWidth<T>>;
  using One = std::integral_constant<int, 1>;
  const bool vectors = use_vectors(p);
  if (use_32bit_index(p)) {
    if (vectors) f(Four{}, std::uint32_t{});
    else f(One{}, std::uint32_t{});
  } else {
    if (vectors) f(Four{}, std::uint64_t{});
    else f(One{}, std::uint64_t{});
  }
}

/// fill_occluded_batch_async over a Launch policy: the copy, then the box pass.
template <typename Launch, typename T>
void run_fill(const T* inputs, std::int64_t n, const WindowGrid& grid,
              const BasicDeviceBaseline<T>& baseline, std::int64_t start, std::int64_t count,
              T* batch, std::int64_t stride, cudaStream_t stream,
              const DevicePairs& pairs = {}) {
  check_fill(inputs, n, grid, baseline, start, count, batch, stride, pairs);
  if (count == 0) return;
  const BasicFillParams<T> p =
      make_fill_params(inputs, grid, baseline, start, stride, batch, pairs.device);
  with_layout(p, [&](auto width, auto index) {
    constexpr int V = decltype(width)::value;
    using Index = decltype(index);
    Launch::template copy<V, Index>(p, copy_grid(p, V, count), count, stream);
    Launch::template box<Index>(p, box_grid(p, count), count, stream);
  });
}

/// fill_occluded_batch_incremental_async over a Launch policy.
template <typename Launch, typename T>
void run_incremental_fill(const T* inputs, std::int64_t n, const WindowGrid& grid,
                          const BasicDeviceBaseline<T>& baseline, std::int64_t start,
                          std::int64_t count, T* batch, std::int64_t capacity,
                          IncrementalFillState& state, std::int64_t stride,
                          cudaStream_t stream, const DevicePairs& pairs = {}) {
  check_fill(inputs, n, grid, baseline, start, count, batch, stride, pairs);
  std::int64_t values = 0;
  // The CPU incremental fill's capacity check, message included.
  FASTOCCLUSION_EXPECTS(capacity >= 1 && capacity >= count &&
                            checked_multiply(capacity, grid.sample_size(), values),
                        "batch capacity=" << capacity << " is invalid, expected >= max(1, count="
                                          << count << ") and a buffer within int64");
  FASTOCCLUSION_EXPECTS(capacity <= std::numeric_limits<std::int32_t>::max(),
                        "batch capacity=" << capacity << " is too large, expected < 2^31");
  IncrementalFillAccess::begin(state, inputs, n, grid, baseline, batch, capacity);
  if (count == 0) return;
  const BasicFillParams<T> p =
      make_fill_params(inputs, grid, baseline, start, stride, batch, pairs.device);
  std::vector<IncrementalPlan> plans =
      IncrementalFillAccess::plan(state, start, count, stride, p.windows, pairs);
  try {
    with_layout(p, [&](auto width, auto index) {
      constexpr int V = decltype(width)::value;
      using Index = decltype(index);
      for (IncrementalPlan& plan : plans) {
        const PlanBlocks blocks = plan_blocks(p, V, plan);
        // Within int32 by construction: <= kPlanSlots * kMaxBlocksPerSlot blocks.
        if (blocks.copy > 0) Launch::template plan_copy<V, Index>(p, plan, blocks.copy, stream);
        if (blocks.box > 0) Launch::template plan_box<Index>(p, plan, blocks.box, stream);
      }
    });
  } catch (...) {
    state.reset();  // some launches may have run: the mirror no longer knows the slots
    throw;
  }
  IncrementalFillAccess::commit(state, start, count, stride, p.windows, pairs);
}

}  // namespace fastocclusion::cuda::detail
