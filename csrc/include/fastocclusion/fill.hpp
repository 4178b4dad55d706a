// Building occluded batches on the CPU (design §1, §4, §7).
//
// The perturbation stream of an occlusion run is the row-major sequence of
// (input n, window k) pairs, n in [0, N), k in [0, K) with K = grid.num_windows():
// stream index s = n * K + k. A batch is a strided slice of that stream: slot j of the
// batch holds stream index s = start + j * stride, i.e. input s / K with window s % K
// replaced by the baseline. stride = 1 (the default) is the plain slice
// [start, start + count). A sweep can instead cut the stream into `capacity` contiguous
// chunks of C pairs and give chunk j to slot j (batch b: start = b, stride = C): then a slot
// walks consecutive windows of one input, and changes input (a whole-sample copy in the
// incremental fill) about N + capacity times in a sweep instead of N * capacity.
//
// Layouts: an input is a row-major array of the grid's sample shape (grid.sample_size()
// values); `inputs` holds N of them back to back, a batch `capacity`.
//
// Element types: the fills are templates over the element type T, instantiated for float
// and double and for the unsigned integers of 1, 2, 4 and 8 bytes, which carry every other
// dtype of those widths bit for bit (int8/uint8/bool, float16/bfloat16/int16, int32,
// int64): those fills only copy values (the input's and the baseline's, which the caller
// gives in the input's dtype), so batches are built in the model's own dtype. The
// baselines that compute (per_window_scale, window_mask) need float or double.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastocclusion/geometry.hpp"

namespace fastocclusion {

/// What replaces the occluded values (at sample offset p of input n, in window k).
enum class BaselineKind {
  scalar,      ///< one value:            values[0]
  per_sample,  ///< one sample-shaped array: values[p], grid.sample_size() floats
  per_input,   ///< one array per input:  values[n * sample_size + p], N * sample_size floats
  per_window,  ///< one value per (input, window) over its box: values[n * K + k], N * K
               ///< floats (e.g. window_means: the mean of the occluded region)
  per_window_scale,  ///< the input times one value per (input, window): input[p] *
                     ///< values[n * K + k], the float32 product (MONAI 1.6's "mean_patch",
                     ///< which multiplies the region by its mean)
  window_mask, ///< the input times a window-shaped mask: input[p] * values[p - anchor_k],
               ///< the mask row-major over the window's lengths (grid.axes[d].window),
               ///< their product of floats (a clipped window reads the mask's first
               ///< extents); the float32 product (MONAI's "gaussian")
};

/// Floats of the baseline values `kind` reads for n inputs (1 for a scalar).
std::int64_t baseline_size(BaselineKind kind, std::int64_t n, const WindowGrid& grid) noexcept;

/// A non-owning view of baseline values of the inputs' element type, laid out as
/// BaselineKind says.
template <typename T>
struct BasicBaseline {
  BaselineKind kind = BaselineKind::scalar;
  const T* values = nullptr;
};
using Baseline = BasicBaseline<float>;

/// True for the baseline kinds that compute with the inputs' values (per_window_scale,
/// window_mask): float and double inputs only.
bool baseline_computes(BaselineKind kind) noexcept;

/// Throws user_error when `kind` computes (baseline_computes) and the values are not
/// floating (`floating`: float or double; `value_bytes`: the element size, named in the
/// message). Shared by the CPU and CUDA fills.
void check_baseline_type(BaselineKind kind, bool floating, std::size_t value_bytes);

/// The stream of (input, window) pairs a fill walks: by default the grid's, n * K pairs,
/// index s = (input s / K, window s % K); or an explicit list of `count` pairs, pair s =
/// (pairs[2s], pairs[2s + 1]) (int64, count x 2, row-major: a sweep of some windows only,
/// e.g. a drill-down's chosen windows). Checked by check_fill_arguments.
struct StreamPairs {
  const std::int64_t* pairs = nullptr;
  std::int64_t count = 0;
};

/// Throws user_error unless the arguments describe a valid fill (shared by the CPU and CUDA
/// fills, so both reject the same calls with the same messages): n >= 1, a well-formed grid
/// (check_window_grid) with n * sample_size and n * K within int64, stride >= 1, every slot
/// index start + j*stride (j < count) inside the stream (0 <= start <= its length: n * K,
/// or stream.count pairs, each pair a slot reads an input in [0, n) and a window in
/// [0, K): O(count), the pairs of the call only), count * sample_size within int64, and
/// when count > 0 non-null inputs and batch and `baseline_present` (the baseline values
/// the fill reads exist).
void check_fill_arguments(const void* inputs, std::int64_t n, const WindowGrid& grid,
                          bool baseline_present, std::int64_t start, std::int64_t count,
                          const void* batch, std::int64_t stride = 1,
                          const StreamPairs& stream = {});

/// Fills `count` occluded samples of the stream: slot j < count gets index start + j*stride
/// of the grid's stream, or of `stream`'s pairs when given.
///
/// T       : float, double, std::uint8_t, std::uint16_t, std::uint32_t or std::uint64_t
///           (see "Element types" above).
/// inputs  : T, n * grid.sample_size(), contiguous; not modified.
/// baseline: as BasicBaseline documents, values of type T.
/// batch   : T, count * grid.sample_size(), contiguous, 64-byte alignment not required;
///           slot j receives input s/K with window s%K set to the baseline, s = start + j*stride.
/// Throws user_error as check_fill_arguments, and for a computing baseline kind
/// (baseline_computes) with integer T. Synchronous; parallel over slots (parallel.hpp) when
/// the work is large.
template <typename T>
void fill_occluded_batch(const T* inputs, std::int64_t n, const WindowGrid& grid,
                         const BasicBaseline<T>& baseline, std::int64_t start, std::int64_t count,
                         T* batch, std::int64_t stride = 1, const StreamPairs& stream = {});

/// fill_occluded_batch<float>, the float32 fill (what float pointers, or null ones, select).
inline void fill_occluded_batch(const float* inputs, std::int64_t n, const WindowGrid& grid,
                                const Baseline& baseline, std::int64_t start, std::int64_t count,
                                float* batch, std::int64_t stride = 1) {
  fill_occluded_batch<float>(inputs, n, grid, baseline, start, count, batch, stride);
}

/// The mean of every window's box, per input: out[i * K + k] = the T of the float64 mean of
/// input i over the box of window k (all its elements, channels included; a clipped
/// window's box only), summed in row-major order (the CUDA kernel sums in the same order:
/// equal bit for bit). The values of the per_window and per_window_scale baselines
/// (MONAI's "mean_patch").
///
/// T      : float or double.
/// inputs : T, n * grid.sample_size(), contiguous; not modified.
/// out    : T, n * grid.num_windows(); every element is written.
/// Work O(n * K * window volume). Throws user_error if n < 1, a pointer is null, the grid
/// is malformed or n * K exceeds int64. Synchronous; parallel over inputs and windows.
template <typename T>
void window_means(const T* inputs, std::int64_t n, const WindowGrid& grid, T* out);

/// What each slot of a persistent batch buffer holds, for incremental filling; used by the
/// CPU fill below and, as the host mirror of a device batch, by the CUDA fill.
/// Create one per (inputs, grid, baseline, batch buffer) session; call reset() or use a new
/// one when any of them changes content. Changes of the pointers, sizes, grid or the scalar
/// are detected and force a full fill; changes of the values behind unchanged pointers are
/// not. Not thread-safe: one call at a time per state.
class IncrementalFillState {
 public:
  /// Forgets every slot: the next call fills in full.
  void reset() noexcept;

  /// Starts a call: continues the session (returns true) when inputs, n, grid, baseline,
  /// batch, capacity and the element size are those of the previous call; otherwise forgets
  /// every slot. baseline_scalar_bits: the bytes of a scalar baseline passed by value (the
  /// CUDA fill's, zero-extended), compared bit for bit; 0 where the scalar is read through
  /// a pointer. value_bytes: sizeof the element type.
  bool begin(const void* inputs, std::int64_t n, const WindowGrid& grid,
             BaselineKind baseline_kind, const void* baseline_values,
             std::uint64_t baseline_scalar_bits, const void* batch, std::int64_t capacity,
             std::size_t value_bytes);

  /// Input and window slot j holds (-1: unknown); j < capacity of the last begin().
  std::int64_t* slot_inputs() noexcept { return slot_input_.data(); }
  std::int64_t* slot_windows() noexcept { return slot_window_.data(); }

 private:
  std::vector<std::int64_t> slot_input_;
  std::vector<std::int64_t> slot_window_;
  const void* inputs_ = nullptr;
  const void* batch_ = nullptr;
  const void* baseline_values_ = nullptr;
  BaselineKind baseline_kind_ = BaselineKind::scalar;
  std::uint64_t baseline_scalar_bits_ = 0;
  std::size_t value_bytes_ = 0;
  std::int64_t n_ = 0;
  WindowGrid grid_{};
};

/// Same result as fill_occluded_batch, on a persistent batch buffer of `capacity` slots:
/// a slot that already holds the same input (from the previous call with this state) only
/// gets its previous window restored from `inputs` and the new window written,
/// O(window volume) instead of O(sample size). Other slots are filled in full.
///
/// T     : as for fill_occluded_batch.
/// batch : T, capacity * grid.sample_size(), contiguous; slots >= count keep their content.
/// Throws user_error as fill_occluded_batch, and if capacity < max(1, count) or
/// capacity * sample_size exceeds int64. Synchronous; parallel over slots (parallel.hpp)
/// when the work is large.
template <typename T>
void fill_occluded_batch_incremental(const T* inputs, std::int64_t n, const WindowGrid& grid,
                                     const BasicBaseline<T>& baseline, std::int64_t start,
                                     std::int64_t count, T* batch, std::int64_t capacity,
                                     IncrementalFillState& state, std::int64_t stride = 1,
                                     const StreamPairs& stream = {});

/// fill_occluded_batch_incremental<float>, the float32 fill (what float pointers, or null
/// ones, select).
inline void fill_occluded_batch_incremental(const float* inputs, std::int64_t n,
                                            const WindowGrid& grid, const Baseline& baseline,
                                            std::int64_t start, std::int64_t count, float* batch,
                                            std::int64_t capacity, IncrementalFillState& state,
                                            std::int64_t stride = 1) {
  fill_occluded_batch_incremental<float>(inputs, n, grid, baseline, start, count, batch,
                                         capacity, state, stride);
}

}  // namespace fastocclusion
