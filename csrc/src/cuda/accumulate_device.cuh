// Device side of the map accumulation: parameters and per-element bodies, private to
// csrc/src/cuda (__host__ __device__, see device_support.cuh; the kernels of accumulate.cu
// run them in 64-bit grid-stride loops).
//
// Only the m axes with more than one window ("active" axes) take part in the prefix sums:
// an axis with count 1 contributes index 0 to every window, and a map position along it is
// covered by that window or by none. Three passes:
//  1. pad : per input, P = its delta grid over the active axes, with a zero slice in front
//           along each of them (dims count + 1): P[c] = delta[c - 1], 0 where some c_a = 0.
//  2. scan: one launch per active axis a, one thread per line along a: the running sum,
//           so that after the m launches P[c] = sum of deltas over the windows [0, c_a) per
//           axis (an inclusive prefix sum, shifted by the padding).
//  3. maps: per map element, per axis the range [lo, hi] of the windows covering it
//           (covering_windows: closed form from the anchors), 0 where a range is empty;
//           then the sum over the box [lo, hi] of windows from the 2^m corners of P
//           (inclusion-exclusion).
#pragma once

#include <cstdint>

#include "device_support.cuh"
#include "fastocclusion/geometry.hpp"

namespace fastocclusion::cuda::detail {

/// The windows [lo, hi] covering position x of an axis (anchors begin + i * stride for
/// i < count - 1, then `last`; extents min(window, end - anchor)); false when none does.
/// Closed form: window i on the stride covers x iff b + i*s <= x < b + i*s + w, for x in the
/// region [b, e) (the extents are clipped only where x cannot lie). A shifted last window
/// (last > b + (count - 2) * s and last != b + (count - 1) * s) covers x iff x >= last; it
/// follows the stride's windows, so the range stays contiguous: when it covers x, the
/// last stride window covering x, if any, is window count - 2.
FASTOCCLUSION_HD bool covering_windows(std::int64_t x, std::int64_t begin, std::int64_t end,
                                       std::int64_t window, std::int64_t stride,
                                       std::int64_t count, std::int64_t last, std::int64_t& lo,
                                       std::int64_t& hi) {
  if (x < begin || x >= end) return false;  // outside the region of interest
  const std::int64_t r = x - begin;         // relative to the region's first anchor
  const bool shifted = last != begin + (count - 1) * stride;
  const std::int64_t on_stride = shifted ? count - 1 : count;  // windows on the stride
  const std::int64_t first = r >= window ? (r - window) / stride + 1 : 0;
  const std::int64_t next = r / stride;  // the last stride anchor <= x
  lo = first;
  hi = next < on_stride - 1 ? next : on_stride - 1;
  if (shifted && x >= last) {
    hi = count - 1;
    lo = first < count - 1 ? first : count - 1;
  }
  return lo <= hi;
}

/// Everything an accumulation kernel needs, passed by value.
struct AccumulateParams {
  const double* deltas = nullptr;  ///< n * windows
  float* maps = nullptr;           ///< n * map_size
  double* sums = nullptr;          ///< workspace: n * padded_size
  std::int64_t n = 0;
  int rank = 0;
  int mean = 0;
  std::int64_t length[kMaxAxes] = {};  ///< per sample axis
  std::int64_t window[kMaxAxes] = {};
  std::int64_t stride[kMaxAxes] = {};
  std::int64_t count[kMaxAxes] = {};
  std::int64_t begin[kMaxAxes] = {};  ///< region of interest [begin, end) (anchors from begin)
  std::int64_t end[kMaxAxes] = {};
  std::int64_t last[kMaxAxes] = {};  ///< anchor of the last window
  std::int64_t map_length[kMaxAxes] = {};  ///< length, or 1 for a collapsed axis
  std::int64_t map_size = 0;               ///< map elements per input
  std::int64_t windows = 0;                ///< K
  int active = 0;                          ///< number of axes with count > 1
  std::int64_t padded[kMaxAxes] = {};       ///< count + 1 of active axis a (a < active)
  std::int64_t padded_step[kMaxAxes] = {};  ///< element stride of active axis a in P
  std::int64_t delta_step[kMaxAxes] = {};   ///< element stride of active axis a in the deltas
  std::int64_t map_step[kMaxAxes] = {};     ///< element stride in P of SAMPLE axis d (0: count 1)
  std::int64_t padded_size = 1;             ///< elements of P per input
};

/// Pass 1: element idx of the n * padded_size elements of P.
FASTOCCLUSION_HD void pad_element(const AccumulateParams& p, std::int64_t idx) {
  const std::int64_t input = idx / p.padded_size;
  std::int64_t rest = idx - input * p.padded_size;
  std::int64_t offset = 0;
  bool zero = false;
  FASTOCCLUSION_UNROLL
  for (int a = kMaxAxes - 1; a >= 0; --a) {
    if (a >= p.active) continue;
    const std::int64_t c = rest % p.padded[a];
    rest /= p.padded[a];
    zero = zero || c == 0;
    offset += (c - 1) * p.delta_step[a];
  }
  p.sums[idx] = zero ? 0.0 : p.deltas[input * p.windows + offset];
}

/// Lines of P along active axis a, over all inputs.
FASTOCCLUSION_HD std::int64_t scan_lines(const AccumulateParams& p, int a) {
  return p.n * (p.padded_size / p.padded[a]);
}

/// Pass 2 for active axis a: the running sum along line `line` (after pass 1 and the scans
/// of the axes before a).
FASTOCCLUSION_HD void scan_line(const AccumulateParams& p, int a, std::int64_t line) {
  const std::int64_t inner = p.padded_step[a], length = p.padded[a];
  const std::int64_t outer = line / inner;
  double* x = p.sums + (outer * length * inner + (line - outer * inner));
  double running = 0.0;  // x[0] is the zero slice
  for (std::int64_t c = 1; c < length; ++c) {
    running += x[c * inner];
    x[c * inner] = running;
  }
}

/// Pass 3: map element idx of the n * map_size elements. (Per-axis arrays are indexed by
/// the sample axis, a constant after unrolling: they stay in registers.)
FASTOCCLUSION_HD void map_element(const AccumulateParams& p, std::int64_t idx) {
  const std::int64_t input = idx / p.map_size;
  std::int64_t rest = idx - input * p.map_size;
  std::int64_t lo[kMaxAxes] = {}, hi[kMaxAxes] = {};
  bool covered = true;
  FASTOCCLUSION_UNROLL
  for (int d = kMaxAxes - 1; d >= 0; --d) {
    if (d >= p.rank) continue;
    const std::int64_t x = rest % p.map_length[d];  // a collapsed axis: 0, its one window
    rest /= p.map_length[d];
    covered = covering_windows(x, p.begin[d], p.end[d], p.window[d], p.stride[d], p.count[d],
                               p.last[d], lo[d], hi[d]) &&
              covered;
  }
  double value = 0.0;
  if (covered) {
    const double* P = p.sums + input * p.padded_size;
    const unsigned corners = 1u << p.active;
    for (unsigned corner = 0; corner < corners; ++corner) {
      std::int64_t offset = 0;
      bool negative = false;
      unsigned bit = 0;  // active axis a takes bit a of the corner
      FASTOCCLUSION_UNROLL
      for (int d = 0; d < kMaxAxes; ++d) {
        if (d >= p.rank || p.count[d] == 1) continue;
        const bool low = ((corner >> bit++) & 1u) != 0;
        offset += (low ? lo[d] : hi[d] + 1) * p.map_step[d];
        negative = negative != low;
      }
      value += negative ? -P[offset] : P[offset];
    }
    if (p.mean) {
      // The CPU's order: times 1 / (windows covering x) along each axis, first axis first.
      FASTOCCLUSION_UNROLL
      for (int d = 0; d < kMaxAxes; ++d) {
        if (d < p.rank && p.count[d] > 1) {
          value = value * (1.0 / static_cast<double>(hi[d] - lo[d] + 1));
        }
      }
    }
  }
  p.maps[idx] = static_cast<float>(value);
}

}  // namespace fastocclusion::cuda::detail
