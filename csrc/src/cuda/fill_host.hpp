// Host side of the batch fills: argument checks, kernel parameters, launch geometry, the
// incremental planning, and the whole launcher logic as templates over a `Launch` policy.
// Private to csrc/src/cuda and free of CUDA launch syntax: fill.cu instantiates the
// launchers with a policy that launches the kernels; a host test program can instantiate
// them with one that runs the bodies of fill_device.cuh over an emulated grid, exercising
// exactly the checks, plans and grids of the shipped launchers.
//
// A Launch policy provides
//   template <int V, class Index> static void full(const FillParams&, GridSize, std::int64_t count, cudaStream_t);
//   template <int V, class Index> static void incremental(const FillParams&, const IncrementalPlan&, std::int64_t blocks, cudaStream_t);
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <cstring>
#include <limits>
#include <vector>

#include "fastocclusion/cuda/kernels.hpp"
#include "fastocclusion/errors.hpp"
#include "fill_device.cuh"

namespace fastocclusion::cuda::detail {

/// Most blocks given to one slot (grid-stride loops cover the rest).
constexpr std::int64_t kMaxBlocksPerSlot = 65535;
/// Most block rows of the full fill (CUDA's gridDim.y limit); slots beyond loop.
constexpr std::int64_t kMaxSlotRows = 65535;

inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

/// The core's check_fill_arguments (fill.hpp): a scalar baseline travels by value, other
/// kinds need their device pointer.
inline void check_fill_arguments(const float* inputs, const InputShape& shape,
                                 const PatchGrid& grid, const DeviceBaseline& baseline,
                                 std::int64_t start, std::int64_t count, const float* batch) {
  FASTOCCLUSION_ASSERT(grid.rows.count >= 1 && grid.cols.count >= 1 && grid.rows.stride >= 1 &&
                           grid.cols.stride >= 1 && grid.rows.patch >= 1 && grid.cols.patch >= 1,
                       "malformed patch grid");
  fastocclusion::check_fill_arguments(
      inputs, shape, grid, baseline.kind == BaselineKind::scalar || baseline.values != nullptr,
      start, count, batch);
}

inline FillParams make_fill_params(const float* inputs, const InputShape& shape,
                                   const PatchGrid& grid, const DeviceBaseline& baseline,
                                   std::int64_t start, float* batch) {
  FillParams p;
  p.inputs = inputs;
  p.batch = batch;
  p.baseline = baseline.values;
  p.baseline_kind = static_cast<int>(baseline.kind);
  p.scalar = baseline.scalar;
  p.image = shape.image_size();
  p.row_len = shape.w * shape.c;
  p.channels = shape.c;
  p.height = shape.h;
  p.width = shape.w;
  p.patch_h = grid.rows.patch;
  p.stride_h = grid.rows.stride;
  p.patch_w = grid.cols.patch;
  p.stride_w = grid.cols.stride;
  p.grid_cols = grid.cols.count;
  p.patches = grid.num_patches();
  p.start = start;
  return p;
}

/// 16-byte vectors when every slot and input starts 16-byte aligned.
inline bool use_vectors(const FillParams& p) {
  const auto aligned16 = [](const void* ptr) {
    return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0;
  };
  return p.image % 4 == 0 && aligned16(p.inputs) && aligned16(p.batch);
}

/// 32-bit in-image offsets: every offset and every grid-stride step stays below 2^32.
inline bool use_32bit_index(const FillParams& p) {
  return p.image <= std::numeric_limits<std::int32_t>::max();
}

struct GridSize {
  std::int64_t x = 1, y = 1;
};

/// Grid of the full fill with V floats per thread: x splits a slot, y walks the slots.
inline GridSize full_fill_grid(const FillParams& p, int vector_width, std::int64_t count) {
  const std::int64_t units = p.image / vector_width;
  return {std::min(ceil_div(units, kFillThreads), kMaxBlocksPerSlot),
          std::min(count, kMaxSlotRows)};
}

/// Sets the plan's blocks per slot and returns the number of blocks of its 1-D grid.
inline std::int64_t incremental_blocks(const FillParams& p, int vector_width,
                                       IncrementalPlan& plan) {
  const std::int64_t units = p.image / vector_width;
  const std::int64_t patch_floats = 2 * p.patch_h * p.patch_w * p.channels;  // two patches
  plan.blocks_per_full = static_cast<std::uint32_t>(
      std::clamp<std::int64_t>(ceil_div(units, kFillThreads), 1, kMaxBlocksPerSlot));
  plan.blocks_per_inc = static_cast<std::uint32_t>(
      std::clamp<std::int64_t>(ceil_div(patch_floats, kFillThreads), 1, kMaxBlocksPerSlot));
  return std::int64_t{plan.full_count} * plan.blocks_per_full +
         std::int64_t{plan.inc_count} * plan.blocks_per_inc;
}

/// The planning of an incremental call against the host mirror of the slots.
struct IncrementalFillAccess {
  /// Starts a call: when inputs, batch, baseline, sizes or grid differ from the session the
  /// state remembers, forgets every slot (they all get a full fill).
  static void begin(IncrementalFillState& state, const float* inputs, const InputShape& shape,
                    const PatchGrid& grid, const DeviceBaseline& baseline, const float* batch,
                    std::int64_t capacity) {
    const float scalar = baseline.kind == BaselineKind::scalar ? baseline.scalar : 0.0f;
    state.begin(inputs, shape, grid, baseline.kind, baseline.values, scalar, batch, capacity);
  }

  /// One plan per kPlanSlots slots of [0, count): a slot holding another input (or nothing
  /// known) is filled in full, one holding the same input with another patch is updated,
  /// one already holding (input, patch) is left out.
  static std::vector<IncrementalPlan> plan(IncrementalFillState& state, std::int64_t start,
                                           std::int64_t count, std::int64_t patches) {
    std::vector<IncrementalPlan> plans;
    std::vector<std::int32_t> full, inc;
    std::vector<std::int64_t> inc_prev;
    const std::int64_t* slot_input = state.slot_inputs();
    const std::int64_t* slot_patch = state.slot_patches();
    for (std::int64_t chunk = 0; chunk < count; chunk += kPlanSlots) {
      const std::int64_t end = std::min<std::int64_t>(count, chunk + kPlanSlots);
      full.clear();
      inc.clear();
      inc_prev.clear();
      for (std::int64_t j = chunk; j < end; ++j) {
        const std::int64_t n = (start + j) / patches, k = (start + j) % patches;
        if (slot_input[j] != n) {
          full.push_back(static_cast<std::int32_t>(j));
        } else if (slot_patch[j] != k) {
          inc.push_back(static_cast<std::int32_t>(j));
          inc_prev.push_back(slot_patch[j]);
        }
      }
      IncrementalPlan& plan = plans.emplace_back();  // value-initialised: arrays zeroed
      plan.full_count = static_cast<std::int32_t>(full.size());
      plan.inc_count = static_cast<std::int32_t>(inc.size());
      std::copy(full.begin(), full.end(), plan.slot);
      std::copy(inc.begin(), inc.end(), plan.slot + full.size());
      std::copy(inc_prev.begin(), inc_prev.end(), plan.prev_patch + full.size());
    }
    return plans;
  }

  /// Records what slots [0, count) hold once the call's work is enqueued.
  static void commit(IncrementalFillState& state, std::int64_t start, std::int64_t count,
                     std::int64_t patches) {
    std::int64_t* slot_input = state.slot_inputs();
    std::int64_t* slot_patch = state.slot_patches();
    for (std::int64_t j = 0; j < count; ++j) {
      slot_input[j] = (start + j) / patches;
      slot_patch[j] = (start + j) % patches;
    }
  }
};

/// Calls f(std::integral_constant<int, V>, Index{}) with the vector width (4 when aligned)
/// and the in-image index type (32-bit when it fits) for `p`.
template <typename F>
void with_layout(const FillParams& p, F&& f) {
  using Four = std::integral_constant<int, 4>;
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

/// fill_occluded_batch_async over a Launch policy.
template <typename Launch>
void run_fill(const float* inputs, const InputShape& shape, const PatchGrid& grid,
              const DeviceBaseline& baseline, std::int64_t start, std::int64_t count,
              float* batch, cudaStream_t stream) {
  check_fill_arguments(inputs, shape, grid, baseline, start, count, batch);
  if (count == 0) return;
  const FillParams p = make_fill_params(inputs, shape, grid, baseline, start, batch);
  with_layout(p, [&](auto width, auto index) {
    constexpr int V = decltype(width)::value;
    Launch::template full<V, decltype(index)>(p, full_fill_grid(p, V, count), count, stream);
  });
}

/// fill_occluded_batch_incremental_async over a Launch policy.
template <typename Launch>
void run_incremental_fill(const float* inputs, const InputShape& shape, const PatchGrid& grid,
                          const DeviceBaseline& baseline, std::int64_t start, std::int64_t count,
                          float* batch, std::int64_t capacity, IncrementalFillState& state,
                          cudaStream_t stream) {
  check_fill_arguments(inputs, shape, grid, baseline, start, count, batch);
  FASTOCCLUSION_EXPECTS(capacity >= 1 && capacity >= count,
                        "batch capacity=" << capacity << " is invalid, expected >= max(1, count="
                                          << count << ")");
  FASTOCCLUSION_EXPECTS(capacity <= std::numeric_limits<std::int32_t>::max(),
                        "batch capacity=" << capacity << " is too large, expected < 2^31");
  IncrementalFillAccess::begin(state, inputs, shape, grid, baseline, batch, capacity);
  if (count == 0) return;
  const FillParams p = make_fill_params(inputs, shape, grid, baseline, start, batch);
  std::vector<IncrementalPlan> plans = IncrementalFillAccess::plan(state, start, count, p.patches);
  try {
    with_layout(p, [&](auto width, auto index) {
      constexpr int V = decltype(width)::value;
      for (IncrementalPlan& plan : plans) {
        const std::int64_t blocks = incremental_blocks(p, V, plan);
        if (blocks == 0) continue;  // every slot of the chunk already holds its sample
        FASTOCCLUSION_ASSERT(blocks <= std::numeric_limits<std::int32_t>::max(), "grid too large");
        Launch::template incremental<V, decltype(index)>(p, plan, blocks, stream);
      }
    });
  } catch (...) {
    state.reset();  // some launches may have run: the mirror no longer knows the slots
    throw;
  }
  IncrementalFillAccess::commit(state, start, count, p.patches);
}

}  // namespace fastocclusion::cuda::detail
