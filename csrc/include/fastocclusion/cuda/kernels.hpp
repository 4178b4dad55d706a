// The CUDA kernels' launchers: occluded batches and sensitivity maps on the device.
//
// Same semantics as the CPU functions of fill.hpp and accumulate.hpp (the CPU is the oracle
// of the GPU tests); only the memory is device memory.
//
// Common contract of every launcher here:
//  * Pointers are device pointers of the CURRENT device (cudaSetDevice / DeviceGuard), and
//    `stream` belongs to that device. 0 is the legacy default stream (this library is not
//    built with --default-stream per-thread); cudaStreamPerThread works too.
//  * Arguments are validated on the host, before anything is enqueued, with the same checks
//    and messages as the CPU functions: fastocclusion::user_error (Python ValueError).
//  * `_async`: the work is enqueued on `stream` and the call returns without waiting. The
//    buffers must stay allocated and must not be written by other streams until that work
//    is done; results are visible to later work on `stream`. A launch failure throws
//    cuda_error; a fault inside a kernel surfaces at the next synchronising call.
//  * Nothing is allocated: no implicit synchronisation.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/fill.hpp"
#include "fastocclusion/geometry.hpp"

namespace fastocclusion::cuda {

/// What replaces the occluded values, for the device launchers.
///  scalar      : `scalar` (passed by value; `values` is ignored and may be null)
///  per_channel : values[c],                     c floats, device memory
///  per_image   : values[(y*W + x)*C + c],       h*w*c floats, device memory
///  per_input   : values[n*H*W*C + ...],         n*h*w*c floats, device memory
struct DeviceBaseline {
  BaselineKind kind = BaselineKind::scalar;
  const float* values = nullptr;
  float scalar = 0.0f;
};

/// Enqueues the fill of `count` occluded samples of the stream slice [start, start + count):
/// slot j of `batch` receives input (start+j)/K with patch (start+j)%K (K = grid.num_patches(),
/// row-major patches) set to the baseline. Same result as fastocclusion::fill_occluded_batch.
///
/// inputs : NHWC float32, shape.n*h*w*c, contiguous, device; read only.
/// baseline: as DeviceBaseline documents, sized for `shape`.
/// batch  : float32, count*h*w*c, contiguous, device; must not overlap inputs or baseline.
///          16-byte-aligned pointers and h*w*c % 4 == 0 take the vectorised path.
/// Throws user_error if shape is invalid, the grid does not match (h, w), start < 0,
/// count < 0, start + count > shape.n * K, or a needed pointer is null (count > 0).
/// count == 0 enqueues nothing. Asynchronous (see the header comment).
void fill_occluded_batch_async(const float* inputs, const InputShape& shape, const PatchGrid& grid,
                               const DeviceBaseline& baseline, std::int64_t start,
                               std::int64_t count, float* batch, cudaStream_t stream = 0);

/// What each slot of a persistent device batch holds is kept on the HOST, in the core's
/// fastocclusion::IncrementalFillState (fill.hpp): the launcher knows it without reading the
/// device, plans each call on the host and passes the plan as kernel parameters (no upload,
/// no synchronisation). Valid as long as the calls that use it execute in call order: one
/// stream, or streams the caller orders. The baseline scalar is part of the session.
using fastocclusion::IncrementalFillState;

/// Same result as fill_occluded_batch_async, on a persistent batch of `capacity` slots:
/// a slot that already holds the same input (after the previous call with this state) only
/// gets its previous patch region restored from `inputs` and the new patch written; other
/// slots are filled in full; a slot that already holds the same (input, patch) is untouched.
/// Slots >= count keep their content. One kernel per 256 slots of the call.
///
/// batch  : float32, capacity*h*w*c, contiguous, device.
/// Throws user_error as fill_occluded_batch_async, and if capacity < max(1, count) or
/// capacity >= 2^31. If a launch fails the state is reset (the next call fills in full).
/// Asynchronous (see the header comment).
void fill_occluded_batch_incremental_async(const float* inputs, const InputShape& shape,
                                           const PatchGrid& grid, const DeviceBaseline& baseline,
                                           std::int64_t start, std::int64_t count, float* batch,
                                           std::int64_t capacity, IncrementalFillState& state,
                                           cudaStream_t stream = 0);

/// Bytes of device workspace accumulate_patch_deltas_async needs for `n` inputs:
/// n * (rows + 1) * (cols + 1) float64 (each input's 2-D prefix sum of its delta grid).
/// Throws user_error if n < 1.
std::size_t accumulate_workspace_bytes(std::int64_t n, const PatchGrid& grid);

/// Enqueues the maps of `n` inputs from their patch deltas; same result as
/// fastocclusion::accumulate_patch_deltas up to float64 summation order (the float32 maps
/// agree to about 1e-7 relative to the largest partial sum).
///
/// deltas    : float64, n*rows*cols, device (delta of patch k of input i at deltas[i*K + k]).
/// maps      : float32, n*h*w, device; every element is written.
/// workspace : device, >= accumulate_workspace_bytes(n, grid) bytes, 8-byte aligned;
///             scratch, overwritten.
/// Method: per input a 2-D inclusive prefix sum S of the delta grid (one block per input);
/// then each pixel reads the range of patch rows [i0, i1] and columns [j0, j1] covering it
/// (closed form from the anchors) and takes the rectangle sum from 4 entries of S: O(1)
/// per pixel and O(1) per patch. Mean divides by (i1-i0+1)*(j1-j0+1); 0 where none covers.
/// Throws user_error if n < 1, a pointer is null or the workspace is too small.
/// Asynchronous (see the header comment).
void accumulate_patch_deltas_async(const double* deltas, std::int64_t n, const PatchGrid& grid,
                                   Reduction reduction, float* maps, void* workspace,
                                   std::size_t workspace_bytes, cudaStream_t stream = 0);

}  // namespace fastocclusion::cuda
