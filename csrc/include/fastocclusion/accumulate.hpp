// Turning patch deltas into sensitivity maps on the CPU (SPEC §1, §4, §5).
#pragma once

#include <cstdint>
#include <string_view>

#include "fastocclusion/geometry.hpp"

namespace fastocclusion {

/// How the deltas of the patches covering a pixel combine.
///  sum  : phi[y, x] = sum of the covering patches' deltas (reference).
///  mean : that sum divided by the number of covering patches; 0 where none covers.
enum class Reduction { sum, mean };

/// Parses "sum" / "mean", the whole view: "sum\0junk" is not "sum". Throws user_error
/// naming `reduction` (the value escaped, so a NUL byte shows as \x00) otherwise.
Reduction parse_reduction(std::string_view name);
/// The same for a NUL-terminated name; also throws user_error when name is null.
Reduction parse_reduction(const char* name);

/// Writes one (H, W) map per input from its grid of patch deltas.
///
/// deltas : float64, n * grid.rows.count * grid.cols.count, row-major per input
///          (delta of patch k of input i at deltas[i*K + k]).
/// maps   : float32, n * grid.height() * grid.width(), row-major per input; every element
///          is written.
/// Work: O(1) per patch plus O(H * W) per input (a difference grid and a 2-D prefix sum,
/// in float64, one (H+1)*(W+1) scratch grid per thread). Throws user_error if n < 1, a
/// pointer is null, or n * K deltas, n * H * W map values or the scratch grid's bytes
/// exceed int64; std::bad_alloc when the scratch cannot be allocated (on any thread; every
/// thread is joined first). Synchronous; parallel over inputs (parallel.hpp) when the work
/// is large.
void accumulate_patch_deltas(const double* deltas, std::int64_t n, const PatchGrid& grid,
                             Reduction reduction, float* maps);

}  // namespace fastocclusion
