// Turning window deltas into sensitivity maps on the CPU (design §1, §4, §5, §7).
#pragma once

#include <cstdint>
#include <string_view>

#include "fastocclusion/geometry.hpp"

namespace fastocclusion {

/// How the deltas of the windows covering a position combine.
///  sum  : phi[x] = sum of the covering windows' deltas (reference).
///  mean : that sum divided by the number of covering windows; 0 where none covers.
enum class Reduction { sum, mean };

/// Parses "sum" / "mean", the whole view. Throws user_error naming `reduction` otherwise.
Reduction parse_reduction(std::string_view name);

/// The map of one input over the grid's sample axes, except the axes in `collapsed_axes`
/// (bit d: axis d), which the map keeps with length 1. Only an axis that one window covers
/// in full (AxisGeometry::single_full_window) may be collapsed: its map values would be the
/// same all along it. Images (H, W, C) with windows (ph, pw, C) collapse C: (H, W, 1) maps.
/// Throws user_error naming `collapsed_axes` otherwise (or for bits >= grid.rank).
std::int64_t map_size(const WindowGrid& grid, std::uint32_t collapsed_axes);

/// Writes one map per input from its grid of window deltas.
///
/// deltas : float64, n * K, K = grid.num_windows(), row-major per input
///          (delta of window k of input i at deltas[i*K + k]).
/// maps   : float32, n * map_size(grid, collapsed_axes), row-major per input (the sample
///          shape with the collapsed axes of length 1); every element is written.
/// Work: O(1) per window per axis plus O(map size) per axis and input (one difference pass
/// and one prefix sum per axis, in float64). Throws user_error if n < 1, a pointer is null,
/// the grid is malformed, collapsed_axes is invalid (see map_size) or n * map size exceeds
/// int64; std::bad_alloc for its scratch (2 x map size float64 per thread). Synchronous;
/// parallel over inputs (parallel.hpp) when the work is large.
void accumulate_window_deltas(const double* deltas, std::int64_t n, const WindowGrid& grid,
                              std::uint32_t collapsed_axes, Reduction reduction, float* maps);

/// Elements of a window-shaped importance over the map axes: the product of the windows'
/// lengths over the axes that are not collapsed (a collapsed axis has length 1 there).
/// Throws as map_size.
std::int64_t importance_size(const WindowGrid& grid, std::uint32_t collapsed_axes);

/// Throws user_error naming `importance` unless its `size` weights are finite and > 0.
void check_importance(const float* importance, std::int64_t size);

/// Blends per-window values into maps with window-shaped weights (MONAI's sliding-window
/// inference with "gaussian" blending): for every map element x of input i,
///   maps[i, x] = sum_k importance[x - anchor_k] * values[i, k] / sum_k importance[x - anchor_k]
/// over the windows k covering x (0 where none does). With a constant importance this is
/// accumulate_window_deltas with Reduction::mean, which is O(1) per window: use that.
///
/// values     : float64, n * K, row-major per input (value of window k of input i at
///              values[i*K + k]).
/// importance : float32, importance_size(grid, collapsed_axes), row-major over the map axes
///              with the window's lengths (offset x - anchor_k of the window); finite, > 0.
/// maps       : float32, n * map_size(grid, collapsed_axes), row-major per input; every
///              element is written.
/// Both sums in float64, each element's in increasing window order (so the CUDA kernel,
/// which gathers in that order, agrees to float rounding). Work: O(window volume) per
/// window and input (a weighted scatter), plus the weight sums once. Throws user_error if
/// n < 1, a pointer is null, the grid is malformed, collapsed_axes is invalid, n * map size
/// exceeds int64 or an importance weight is not finite and > 0; std::bad_alloc for its
/// scratch (2 x map size float64). Synchronous; parallel over inputs when the work is large.
void blend_window_values(const double* values, std::int64_t n, const WindowGrid& grid,
                         std::uint32_t collapsed_axes, const float* importance, float* maps);

}  // namespace fastocclusion
