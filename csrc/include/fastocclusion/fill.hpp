// Building occluded batches on the CPU (SPEC §1, §4).
//
// The perturbation stream of an occlusion run is the row-major sequence of
// (input n, patch k) pairs, n in [0, N), k in [0, K) with K = grid.num_patches():
// stream index s = n * K + k. A batch is a strided slice of that stream: slot j of the
// batch holds stream index s = start + j * stride, i.e. input s / K with patch s % K
// replaced by the baseline. stride = 1 (the default) is the plain slice
// [start, start + count). A sweep can instead cut the stream into `capacity` contiguous
// chunks of C pairs and give chunk j to slot j (batch b: start = b, stride = C): then a slot
// walks consecutive patches of one input, and changes input (a whole-image copy in the
// incremental fill) about N + capacity times in a sweep instead of N * capacity.
#pragma once

#include <cstdint>
#include <vector>

#include "fastocclusion/geometry.hpp"

namespace fastocclusion {

/// What replaces the occluded values.
enum class BaselineKind {
  scalar,       ///< one value:           values[0]
  per_channel,  ///< one per channel:     values[c],       c floats
  per_image,    ///< one (H, W, C) array: values[(y*W + x)*C + c], h*w*c floats
  per_input,    ///< one per input:       values[n*H*W*C + ...],   n*h*w*c floats
};

/// A non-owning view of baseline values, laid out as BaselineKind says.
struct Baseline {
  BaselineKind kind = BaselineKind::scalar;
  const float* values = nullptr;
};

/// Fills `count` occluded samples of the stream: slot j < count gets index start + j*stride.
///
/// inputs : NHWC float32, shape.n*h*w*c, contiguous; not modified.
/// baseline: as Baseline documents, sized for `shape`.
/// batch  : float32, count*h*w*c, contiguous, 64-byte alignment not required; slot j
///          receives input s/K with patch s%K set to the baseline, s = start + j*stride.
/// Throws user_error if shape is invalid, the grid does not match shape (h, w), stride < 1,
/// start < 0, count < 0, or a slot's index is past the stream (start + (count-1)*stride >=
/// shape.n * K when count > 0; start > shape.n * K), or a size overflows int64 (see
/// check_fill_arguments). Pointers must be non-null when count > 0. Synchronous; parallel
/// over slots (parallel.hpp) when the work is large.
void fill_occluded_batch(const float* inputs, const InputShape& shape, const PatchGrid& grid,
                         const Baseline& baseline, std::int64_t start, std::int64_t count,
                         float* batch, std::int64_t stride = 1);

/// Throws user_error unless the arguments describe a valid fill (shared by the CPU and CUDA
/// fills, so both reject the same calls with the same messages): a valid shape, a grid for
/// its (h, w) plane, stride >= 1, every slot index start + j*stride (j < count) inside the
/// stream of shape.n * K pairs (0 <= start <= shape.n * K), and when count > 0 non-null
/// inputs and batch and `baseline_present` (the baseline values the fill reads exist).
/// Sizes are checked, not assumed: K = rows * cols and shape.n * K (the grid may be built by
/// hand) and the batch's count * h*w*c floats (in bytes) must fit int64.
void check_fill_arguments(const float* inputs, const InputShape& shape, const PatchGrid& grid,
                          bool baseline_present, std::int64_t start, std::int64_t count,
                          const float* batch, std::int64_t stride = 1);

/// What each slot of a persistent batch buffer holds, for incremental filling; used by the
/// CPU fill below and, as the host mirror of a device batch, by the CUDA fill.
/// Create one per (inputs, grid, baseline, batch buffer) session; call reset() or use a new
/// one when any of them changes content. Changes of the pointers, sizes or the scalar are
/// detected and force a full fill; changes of the values behind unchanged pointers are not.
/// Not thread-safe: one call at a time per state.
class IncrementalFillState {
 public:
  /// Forgets every slot: the next call fills in full.
  void reset() noexcept;

  /// Starts a call: continues the session (returns true) when inputs, batch, baseline,
  /// sizes, grid and capacity are those of the previous call; otherwise forgets every slot.
  bool begin(const float* inputs, const InputShape& shape, const PatchGrid& grid,
             BaselineKind baseline_kind, const float* baseline_values, float baseline_scalar,
             const float* batch, std::int64_t capacity);

  /// Input and patch slot j holds (-1: unknown); j < capacity of the last begin().
  std::int64_t* slot_inputs() noexcept { return slot_input_.data(); }
  std::int64_t* slot_patches() noexcept { return slot_patch_.data(); }

 private:
  std::vector<std::int64_t> slot_input_;
  std::vector<std::int64_t> slot_patch_;
  const float* inputs_ = nullptr;
  const float* batch_ = nullptr;
  const float* baseline_values_ = nullptr;
  BaselineKind baseline_kind_ = BaselineKind::scalar;
  float baseline_scalar_ = 0.0f;
  InputShape shape_{};
  std::int64_t grid_rows_[3] = {0, 0, 0};  ///< patch, stride, count
  std::int64_t grid_cols_[3] = {0, 0, 0};
};

/// Same result as fill_occluded_batch, on a persistent batch buffer of `capacity` slots:
/// a slot that already holds the same input (from the previous call with this state) only
/// gets its previous patch region restored from `inputs` and the new patch written,
/// O(patch area * C) instead of O(H * W * C). Other slots are filled in full.
///
/// batch   : float32, capacity*h*w*c, contiguous; slots >= count keep their content.
/// Throws user_error as fill_occluded_batch, and if capacity < count or capacity < 1.
/// Synchronous; parallel over slots (parallel.hpp) when the work is large.
void fill_occluded_batch_incremental(const float* inputs, const InputShape& shape,
                                     const PatchGrid& grid, const Baseline& baseline,
                                     std::int64_t start, std::int64_t count, float* batch,
                                     std::int64_t capacity, IncrementalFillState& state,
                                     std::int64_t stride = 1);

}  // namespace fastocclusion
