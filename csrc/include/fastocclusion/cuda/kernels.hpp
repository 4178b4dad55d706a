// The CUDA kernels' launchers: occluded batches and sensitivity maps on the device.
//
// Same semantics as the CPU functions of fill.hpp and accumulate.hpp (the CPU is the oracle
// of the GPU tests); only the memory is device memory. Layouts are those of the CPU
// functions: a sample is a row-major array of grid.sample_size() values over the grid's axes
// (up to kMaxAxes), inputs and batches hold samples back to back; the fills take every
// element type of the CPU fills, the other launchers the types they name.
//
// Common contract of every launcher here:
//  * Pointers are device pointers of the CURRENT device (cudaSetDevice / DeviceGuard), and
//    `stream` belongs to that device. 0 is the legacy default stream (this library is not
//    built with --default-stream per-thread); cudaStreamPerThread works too.
//  * Arguments are validated on the host, before anything is enqueued, by the core's own
//    checks (check_fill_arguments, map_size, check_window_grid), so the CPU and CUDA paths
//    reject the same calls with the same messages: fastocclusion::user_error (Python
//    ValueError).
//  * `_async`: the work is enqueued on `stream` and the call returns without waiting. The
//    buffers must stay allocated and must not be written by other streams until that work
//    is done; results are visible to later work on `stream`. A launch failure throws
//    cuda_error; a fault inside a kernel surfaces at the next synchronising call.
//  * Nothing is allocated and nothing is copied between host and device: no implicit
//    synchronisation. Kernel parameters (geometry, plans) travel by value.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/feature_windows.hpp"
#include "fastocclusion/fill.hpp"
#include "fastocclusion/geometry.hpp"

namespace fastocclusion::cuda {

/// What replaces the occluded values, for the device launchers (BaselineKind of fill.hpp),
/// in the inputs' element type T:
///  scalar      : `scalar`, passed by value; `values` is ignored and may be null
///  per_sample  : values[offset],                   grid.sample_size() values, device memory
///  per_input   : values[n * sample_size + offset], n * grid.sample_size() values, device
///  per_window  : values[n * K + k],                n * K values, device memory
///                (window_means_async writes the window means, in T)
///  per_window_scale : input times values[n * K + k], n * K values, device memory
///  window_mask : input times values[offset in the window], the product of the windows'
///                lengths of values, device memory
/// The last two multiply (the product in T): float and double only.
template <typename T>
struct BasicDeviceBaseline {
  BaselineKind kind = BaselineKind::scalar;
  const T* values = nullptr;
  T scalar{};
};
using DeviceBaseline = BasicDeviceBaseline<float>;

/// The explicit (input, window) pairs of a stream (fill.hpp's StreamPairs: a sweep of some
/// windows only, e.g. a drill-down's chosen windows), in two copies of the same `count` x 2
/// int64 row-major values: `host` (checked and planned on the host, as the CPU fill checks
/// them) and `device` (read by the kernels: device memory of the current device, unchanged
/// until the fills that read it have run). Both null (the default): the grid's stream.
struct DevicePairs {
  const std::int64_t* host = nullptr;
  const std::int64_t* device = nullptr;
  std::int64_t count = 0;
};

/// Enqueues the fill of `count` occluded samples of the (input, window) stream: slot j of
/// `batch` receives stream index s = start + j * stride, i.e. input s / K with window s % K
/// (K = grid.num_windows(), row-major windows) set to the baseline, or pair s of `pairs`
/// when given. Same result, bit for bit, as fastocclusion::fill_occluded_batch<T>. stride
/// = 1 is the slice [start, start+count); a chunked sweep (fill.hpp) passes start = b,
/// stride = C.
///
/// T       : float, double, std::uint8_t, std::uint16_t, std::uint32_t or std::uint64_t, as
///           the CPU fill (fill.hpp, "Element types": the unsigned integers carry every other
///           dtype of their width bit for bit: float16, bfloat16, int8, bool, int32, int64).
/// inputs  : T, n * grid.sample_size(), contiguous, device; read only.
/// baseline: as BasicDeviceBaseline documents.
/// batch   : T, count * grid.sample_size(), contiguous, device; must not overlap
///           inputs or baseline. 16-byte-aligned inputs and batch with a sample of a whole
///           number of 16-byte vectors take the vectorised copy.
/// Work: two kernels on `stream`, a copy of each slot's input (2 x sample values of
/// traffic per slot) and then the write of its window's box (box values, plus as many
/// baseline reads for an array baseline).
/// Throws user_error as fastocclusion::check_fill_arguments (n, grid, stride, start,
/// count, null pointers when count > 0; a scalar baseline needs no pointer) and as
/// check_baseline_type (a computing baseline with integer T).
/// count == 0 enqueues nothing. Asynchronous (see the header comment).
template <typename T>
void fill_occluded_batch_async(const T* inputs, std::int64_t n, const WindowGrid& grid,
                               const BasicDeviceBaseline<T>& baseline, std::int64_t start,
                               std::int64_t count, T* batch, std::int64_t stride = 1,
                               cudaStream_t stream = 0, const DevicePairs& pairs = {});

/// What each slot of a persistent device batch holds is kept on the HOST, in the core's
/// fastocclusion::IncrementalFillState (fill.hpp): the launcher knows it without reading the
/// device, plans each call on the host and passes the plan as kernel parameters (no upload,
/// no synchronisation). Valid as long as the calls that use it execute in call order: one
/// stream, or streams the caller orders. The baseline scalar is part of the session (a new
/// scalar forces a full fill); new values behind unchanged pointers need state.reset().
using fastocclusion::IncrementalFillState;

/// Same result as fill_occluded_batch_async (and as the CPU's incremental fill), on a
/// persistent batch of `capacity` slots with the same strided slot mapping: a slot that
/// already holds the same input (after the previous call with this state) only gets its
/// previous window's box restored from `inputs` and the new box written (each element of
/// the two boxes once: <= 2 x window volume writes); a slot already holding its
/// (input, window) is untouched; other slots are filled in full (copy + box). Slots >= count
/// keep their content. Per 256 slots of the call (one plan, a kernel parameter): one copy
/// kernel when some slot needs a full fill, one box kernel when some slot changes.
///
/// T     : as for fill_occluded_batch_async.
/// batch : T, capacity * grid.sample_size(), contiguous, device.
/// Throws user_error as fill_occluded_batch_async, and if capacity < max(1, count),
/// capacity * sample_size exceeds int64 or capacity >= 2^31. If a launch fails the state is
/// reset (the next call fills in full) and cuda_error propagates. Asynchronous.
template <typename T>
void fill_occluded_batch_incremental_async(const T* inputs, std::int64_t n,
                                           const WindowGrid& grid,
                                           const BasicDeviceBaseline<T>& baseline,
                                           std::int64_t start, std::int64_t count, T* batch,
                                           std::int64_t capacity, IncrementalFillState& state,
                                           std::int64_t stride = 1, cudaStream_t stream = 0,
                                           const DevicePairs& pairs = {});

/// Per-slot int64 values (a map index, or count x axes origins) in two copies of the same
/// values: `host`, checked on the host as the CPU kernels check them, and `device`, read by
/// the kernels (device memory of the current device, unchanged until they have run).
struct DeviceIndices {
  const std::int64_t* host = nullptr;
  const std::int64_t* device = nullptr;
};

/// Enqueues fastocclusion::gather_windows on the device (feature_windows.hpp: same
/// arguments and layouts, the maps, patches and out in device memory, the per-slot values
/// as DeviceIndices); same result, bit for bit (it only copies). One thread per output
/// element, one kernel on `stream`.
/// T : float or double. Throws user_error as check_gather_arguments, and when a device copy
/// is missing. Asynchronous (see the header comment).
template <typename T>
void gather_windows_async(const T* maps, std::int64_t map_count, const MapShape& shape,
                          const DeviceIndices& map_index, const DeviceIndices& window_origins,
                          const AxisSizes& window_size, const T* patches,
                          const DeviceIndices& patch_origins, const AxisSizes& patch_size,
                          T pad_value, std::int64_t count, T* out, cudaStream_t stream = 0);

/// Enqueues fastocclusion::splice_windows with no state (every slot written in full: its
/// base map with its patch over its box) on the device; same result, bit for bit. One
/// thread per output element, one kernel on `stream`; slots >= count keep their content.
/// T : float or double. Throws user_error as check_splice_arguments, and when a device copy
/// is missing. Asynchronous (see the header comment).
template <typename T>
void splice_windows_async(const T* maps, std::int64_t map_count, const MapShape& shape,
                          const DeviceIndices& map_index, const T* patches,
                          const DeviceIndices& box_origins, const AxisSizes& box_size,
                          std::int64_t count, T* out, std::int64_t capacity,
                          cudaStream_t stream = 0);

/// Bytes of device workspace accumulate_window_deltas_async needs for `n` inputs:
/// n * prod over the axes with count > 1 of (count + 1) float64 (each input's prefix sum
/// of its delta grid, zero-padded in front along every such axis).
/// Throws user_error if n < 1, the grid is malformed or the size exceeds int64.
std::size_t accumulate_workspace_bytes(std::int64_t n, const WindowGrid& grid);

/// Enqueues the maps of `n` inputs from their window deltas; same result as
/// fastocclusion::accumulate_window_deltas up to float64 summation order (the float32 maps
/// agree to float rounding plus ~1e-13 of the sum of |deltas| of the input).
///
/// deltas    : float64, n * K, device, row-major per input over grid counts (delta of
///             window k of input i at deltas[i*K + k]).
/// maps      : float32, n * map_size(grid, collapsed_axes), device, row-major per input
///             over the sample shape with the collapsed axes of length 1; every element
///             is written.
/// workspace : device, >= accumulate_workspace_bytes(n, grid) bytes, 8-byte aligned;
///             scratch, overwritten.
/// Method: per input an inclusive prefix sum P of the delta grid over the axes with
/// count > 1 (one kernel to pad, one scan kernel per such axis); then each map element
/// finds, per axis, the range [lo, hi] of windows covering it (closed form from the anchors,
/// empty -> 0) and sums their deltas from the 2^m corners of P (inclusion-exclusion over the
/// m axes with count > 1): O(1) per window and O(2^m) per map element. mean divides by the
/// product of the per-axis numbers of covering windows.
/// Throws user_error as the CPU function (n < 1, null pointers, a malformed grid, invalid
/// collapsed_axes, sizes past int64) and if the workspace is too small or misaligned.
/// Asynchronous (see the header comment).
void accumulate_window_deltas_async(const double* deltas, std::int64_t n, const WindowGrid& grid,
                                    std::uint32_t collapsed_axes, Reduction reduction,
                                    float* maps, void* workspace, std::size_t workspace_bytes,
                                    cudaStream_t stream = 0);

/// Enqueues the mean of every window's box, per input: out[i * K + k]; same result, bit
/// for bit, as fastocclusion::window_means<T> (one thread per (input, window) sums its box
/// in the CPU's order, in float64). The values of the per_window(_scale) baselines.
///
/// T      : float or double.
/// inputs : T, n * grid.sample_size(), contiguous, device; read only.
/// out    : T, n * grid.num_windows(), device; every element is written.
/// Work O(n * K * window volume), one kernel on `stream`. Throws user_error as
/// fastocclusion::window_means (n < 1, null pointers, a malformed grid, sizes past int64).
/// Asynchronous (see the header comment).
template <typename T>
void window_means_async(const T* inputs, std::int64_t n, const WindowGrid& grid, T* out,
                        cudaStream_t stream = 0);

/// Enqueues the blend of per-window values into maps with window-shaped weights; same
/// result, bit for bit, as fastocclusion::blend_window_values (accumulate.hpp): each map
/// element gathers its covering windows in increasing window order, float64 sums, products
/// never fused with the additions.
///
/// values     : float64, n * K, device, row-major per input.
/// importance : float32, fastocclusion::importance_size(grid, collapsed_axes), device;
///              its values are NOT checked here (they live on the device): check them with
///              fastocclusion::check_importance before the upload (weights that sum to 0
///              give NaN).
/// maps       : float32, n * map_size(grid, collapsed_axes), device; every element written.
/// Work: per map element, the windows covering it (O(window volume) per window in all), one
/// kernel on `stream`, no workspace. Throws user_error as the CPU function (n < 1, null
/// pointers, a malformed grid, invalid collapsed_axes, sizes past int64). Asynchronous.
void blend_window_values_async(const double* values, std::int64_t n, const WindowGrid& grid,
                               std::uint32_t collapsed_axes, const float* importance,
                               float* maps, cudaStream_t stream = 0);

}  // namespace fastocclusion::cuda
