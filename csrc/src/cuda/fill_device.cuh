// Device side of the batch fills: the parameters the kernels receive and the per-thread
// bodies, private to csrc/src/cuda (__host__ __device__, see device_support.cuh; the
// __global__ kernels in fill.cu only forward blockIdx/threadIdx/gridDim).
//
// A fill is two passes over each slot, on one stream: COPY the slot's input sample (a
// straight, coalesced copy, 16-byte vectors when aligned), then write the BOX of its window
// from the baseline. The box is small against the sample, so writing it a second time costs
// little (box values against 2 x sample values of copy traffic per slot) and keeps the copy
// free of per-element tests. An incremental update restores the previous box and writes the
// new one, each element of their union once.
//
// Geometry. The kernels see the grid with every axis that one window covers in full merged
// into its outer neighbour (fill_host.hpp: an image window (ph, pw, C) over (H, W, C) is a
// 2-D box of ph rows of pw*C values); K and the window order are unchanged. The box of
// window k is unravelled from k over the counts (row-major, first axis outer); element t of
// a box is unravelled over the box extents (last axis fastest, so consecutive threads write
// consecutive values). Anchors are begin + i * stride except the last, `last` (a "shift"
// window moved back to end at the region's end).
//
// Baselines (fill.hpp's BaselineKind): a box element reads its baseline value alone, so the
// per_window value (one per input and window, e.g. the window means of blend_device.cuh),
// per_window_scale (the element's input times that value) and the window_mask (the
// element's input times the mask at its offset in the window) need no reduction here.
//
// Slot mapping (fill.hpp): slot j holds stream index s = start + j * slot_stride, i.e.
// input s / K with window s % K, or the pair s of an explicit list (`pairs`).
//
// Element types: every body is a template over the element type T of fill.hpp ("Element
// types": float, double and the unsigned integers of 1, 2, 4 and 8 bytes, which carry every
// other dtype of those widths bit for bit). The copies move T values (or 16-byte units);
// only the computing baselines (per_window_scale, window_mask) multiply, for float and
// double (the host refuses them for integer T).
//
// Indexing: within one sample, offsets, box elements and grid-stride steps use `Index`
// (uint32 when the sample has <= INT32_MAX values: every offset, and offset + step with
// step < 2^24, stays below 2^32; else uint64); slot, input and stream offsets are int64.
#pragma once

#include <cstdint>
#include <type_traits>

#include "device_support.cuh"
#include "fastocclusion/fill.hpp"
#include "fastocclusion/geometry.hpp"

namespace fastocclusion::cuda::detail {

/// Slots one incremental plan covers (it travels as a kernel parameter, < 4 KB with FillParams).
constexpr int kPlanSlots = 256;

/// Everything a fill kernel needs, passed by value; T is the element type.
template <typename T>
struct BasicFillParams {
  const T* inputs = nullptr;    ///< n * sample values
  T* batch = nullptr;           ///< slots of `sample` values
  const T* baseline = nullptr;  ///< device values (unused for scalar)
  int baseline_kind = 0;        ///< static_cast<int>(BaselineKind)
  T scalar{};                   ///< the scalar baseline
  int rank = 0;                     ///< kernel axes (full-window axes merged), 1..kMaxAxes
  std::int64_t length[kMaxAxes] = {};  ///< per kernel axis
  std::int64_t window[kMaxAxes] = {};
  std::int64_t stride[kMaxAxes] = {};
  std::int64_t count[kMaxAxes] = {};
  std::int64_t begin[kMaxAxes] = {};  ///< region of interest [begin, end) (anchors from begin)
  std::int64_t end[kMaxAxes] = {};
  std::int64_t last[kMaxAxes] = {};  ///< anchor of the last window (shifted for "shift")
  std::int64_t step[kMaxAxes] = {};  ///< values between neighbours along the axis
  std::int64_t window_step[kMaxAxes] = {};  ///< window_mask: mask values between neighbours
  std::int64_t sample = 0;           ///< values per sample
  std::int64_t windows = 0;          ///< K
  std::int64_t volume = 0;           ///< values of the largest box (product of windows)
  std::int64_t start = 0;            ///< stream index of slot 0
  std::int64_t slot_stride = 1;      ///< stream index step between slots
  /// The stream's explicit (input, window) pairs, 2 int64 each in device memory (a sweep of
  /// some windows only: pair s at pairs[2s], pairs[2s + 1]); null: the grid's stream.
  const std::int64_t* pairs = nullptr;
};
/// The float32 parameters.
using FillParams = BasicFillParams<float>;

/// The planned slots of one incremental call (up to kPlanSlots of them), in two launches:
///  copy : blocks [0, full_count * blocks_per_copy), block b copies the input of slot
///         slot[b / blocks_per_copy];
///  box  : blocks [0, full_count * blocks_per_box) write the box of the full slots, then
///         blocks_per_update blocks per updated slot slot[full_count + i] restore the box of
///         prev_window[full_count + i] and write the new one.
struct IncrementalPlan {
  std::int32_t full_count = 0;
  std::int32_t update_count = 0;
  std::uint32_t blocks_per_copy = 1;
  std::uint32_t blocks_per_box = 1;
  std::uint32_t blocks_per_update = 1;
  std::int32_t slot[kPlanSlots];
  std::int64_t prev_window[kPlanSlots];
};

/// The (input, window) of stream index s: the pair s of `pairs`, else (s / K, s % K).
template <typename T>
FASTOCCLUSION_HD void pair_at(const BasicFillParams<T>& p, std::int64_t s, std::int64_t& input,
                              std::int64_t& k) {
  if (p.pairs != nullptr) {
    input = load_readonly(p.pairs + 2 * s);
    k = load_readonly(p.pairs + 2 * s + 1);
  } else {
    input = s / p.windows;
    k = s - input * p.windows;
  }
}

/// The box of one window in kernel axes: [begin[d], begin[d] + extent[d]) for d < rank.
template <typename Index>
struct Box {
  Index begin[kMaxAxes];
  Index extent[kMaxAxes];
  Index volume;
};

/// The box of window k, 0 <= k < K.
template <typename Index, typename T>
FASTOCCLUSION_HD Box<Index> window_box(const BasicFillParams<T>& p, std::int64_t k) {
  Box<Index> box;
  box.volume = 1;
  FASTOCCLUSION_UNROLL
  for (int d = kMaxAxes - 1; d >= 0; --d) {
    if (d >= p.rank) {
      box.begin[d] = 0;
      box.extent[d] = 1;
      continue;
    }
    const std::int64_t i = k % p.count[d];
    k /= p.count[d];
    const std::int64_t anchor = i == p.count[d] - 1 ? p.last[d] : p.begin[d] + i * p.stride[d];
    const std::int64_t rest = p.end[d] - anchor;
    box.begin[d] = static_cast<Index>(anchor);
    box.extent[d] = static_cast<Index>(rest < p.window[d] ? rest : p.window[d]);
    box.volume *= box.extent[d];
  }
  return box;
}

/// Element t (0 <= t < box.volume, last axis fastest) of `box`: its sample offset, and its
/// coordinates in `at`.
template <typename Index, typename T>
FASTOCCLUSION_HD Index box_element(const BasicFillParams<T>& p, const Box<Index>& box, Index t,
                                   Index (&at)[kMaxAxes]) {
  Index offset = 0;
  FASTOCCLUSION_UNROLL
  for (int d = kMaxAxes - 1; d >= 0; --d) {
    if (d >= p.rank) continue;
    Index c = t;
    if (d > 0) {
      c = t % box.extent[d];
      t /= box.extent[d];
    }
    at[d] = box.begin[d] + c;
    offset += at[d] * static_cast<Index>(p.step[d]);
  }
  return offset;
}

template <typename Index, typename T>
FASTOCCLUSION_HD bool inside(const BasicFillParams<T>& p, const Box<Index>& box,
                             const Index (&at)[kMaxAxes]) {
  bool in = true;
  FASTOCCLUSION_UNROLL
  for (int d = 0; d < kMaxAxes; ++d) {
    if (d < p.rank) in = in && at[d] >= box.begin[d] && at[d] - box.begin[d] < box.extent[d];
  }
  return in;
}

/// The baseline value at `offset` (coordinates `at`) of input n (its sample `src`) in the
/// box of window k. The computing kinds multiply in T (float or double: the float32 or
/// float64 product, as the CPU's); for integer T the host refuses them before any launch.
template <typename Index, typename T>
FASTOCCLUSION_HD T baseline_value(const BasicFillParams<T>& p, std::int64_t n, std::int64_t k,
                                  const Box<Index>& box, const Index (&at)[kMaxAxes],
                                  Index offset, const T* __restrict__ src) {
  switch (static_cast<BaselineKind>(p.baseline_kind)) {
    case BaselineKind::scalar:
      return p.scalar;
    case BaselineKind::per_sample:
      return load_readonly(p.baseline + offset);
    case BaselineKind::per_window:
      return load_readonly(p.baseline + n * p.windows + k);
    case BaselineKind::per_window_scale:
      if constexpr (std::is_floating_point_v<T>) {
        return load_readonly(src + offset) * load_readonly(p.baseline + n * p.windows + k);
      } else {
        return p.scalar;  // unreachable: refused on the host
      }
    case BaselineKind::window_mask:
      if constexpr (std::is_floating_point_v<T>) {
        Index window_offset = 0;  // < the window volume <= sample: fits Index
        FASTOCCLUSION_UNROLL
        for (int d = 0; d < kMaxAxes; ++d) {
          if (d < p.rank) {
            window_offset += (at[d] - box.begin[d]) * static_cast<Index>(p.window_step[d]);
          }
        }
        return load_readonly(src + offset) * load_readonly(p.baseline + window_offset);
      } else {
        return p.scalar;  // unreachable: refused on the host
      }
    case BaselineKind::per_input:
    default:
      return load_readonly(p.baseline + n * p.sample + static_cast<std::int64_t>(offset));
  }
}

/// Values of T per copy unit: 1, or a 16-byte vector (kVectorBytes / sizeof(T) values).
constexpr int kVectorBytes = 16;
template <typename T>
constexpr int kVectorWidth = kVectorBytes / static_cast<int>(sizeof(T));

/// Copies the sample `src` into `dst`, V values per unit: V = 1, or V = kVectorWidth<T>
/// (16-byte vectors: needs 16-byte-aligned dst/src and sample % V == 0). Units first,
/// first + step, ...
template <int V, typename Index, typename T>
FASTOCCLUSION_HD void copy_units(const BasicFillParams<T>& p, T* __restrict__ dst,
                                 const T* __restrict__ src, Index first, Index step) {
  static_assert(V == 1 || V == kVectorWidth<T>, "V is 1 or a 16-byte vector of T");
  const Index units = static_cast<Index>(p.sample / V);
  for (Index u = first; u < units; u += step) {
    if constexpr (V > 1) {
#if defined(__CUDA_ARCH__)
      reinterpret_cast<uint4*>(dst)[u] = __ldg(reinterpret_cast<const uint4*>(src) + u);
#else
      for (Index i = 0; i < static_cast<Index>(V); ++i) dst[u * V + i] = src[u * V + i];
#endif
    } else {
      dst[u] = load_readonly(src + u);
    }
  }
}

/// Writes the baseline over `box` (of window k) of `dst` (a slot holding input n).
/// Elements first, first + step, ...
template <typename Index, typename T>
FASTOCCLUSION_HD void write_box(const BasicFillParams<T>& p, T* __restrict__ dst, std::int64_t n,
                                std::int64_t k, const Box<Index>& box, Index first, Index step) {
  const T* src = p.inputs + n * p.sample;
  for (Index t = first; t < box.volume; t += step) {
    Index at[kMaxAxes] = {};
    const Index offset = box_element(p, box, t, at);
    dst[offset] = baseline_value(p, n, k, box, at, offset, src);
  }
}

/// Restores the elements of `prev` from `src` and writes those of `next` (window k) from
/// the baseline, each element of prev ∪ next once: elements first, first + step, ... of the
/// sequence prev then next (next's elements inside prev were written with prev's).
template <typename Index, typename T>
FASTOCCLUSION_HD void update_boxes(const BasicFillParams<T>& p, T* __restrict__ dst,
                                   const T* __restrict__ src, std::int64_t n,
                                   const Box<Index>& prev, std::int64_t k,
                                   const Box<Index>& next, std::int64_t first,
                                   std::int64_t step) {
  const auto prev_volume = static_cast<std::int64_t>(prev.volume);
  const std::int64_t total = prev_volume + static_cast<std::int64_t>(next.volume);
  for (std::int64_t t = first; t < total; t += step) {
    Index at[kMaxAxes] = {};
    if (t < prev_volume) {
      const Index offset = box_element(p, prev, static_cast<Index>(t), at);
      dst[offset] = inside(p, next, at) ? baseline_value(p, n, k, next, at, offset, src)
                                        : load_readonly(src + offset);
    } else {
      const Index offset = box_element(p, next, static_cast<Index>(t - prev_volume), at);
      if (!inside(p, prev, at)) dst[offset] = baseline_value(p, n, k, next, at, offset, src);
    }
  }
}

/// One thread of the full fill's copy: grid (gx, gy); block rows by, by + gy, ... are the
/// slots, block columns split each slot's units.
template <int V, typename Index, typename T>
FASTOCCLUSION_HD void copy_thread(const BasicFillParams<T>& p, std::int64_t count, unsigned bx,
                                  unsigned by, unsigned gx, unsigned gy, unsigned tid) {
  for (std::int64_t j = by; j < count; j += gy) {
    std::int64_t input, k;
    pair_at(p, p.start + j * p.slot_stride, input, k);
    copy_units<V, Index>(p, p.batch + j * p.sample, p.inputs + input * p.sample,
                         static_cast<Index>(bx) * kThreads + tid,
                         static_cast<Index>(gx) * kThreads);
  }
}

/// One thread of the full fill's box pass, on the grid layout of copy_thread.
template <typename Index, typename T>
FASTOCCLUSION_HD void box_thread(const BasicFillParams<T>& p, std::int64_t count, unsigned bx,
                                 unsigned by, unsigned gx, unsigned gy, unsigned tid) {
  for (std::int64_t j = by; j < count; j += gy) {
    std::int64_t input, k;
    pair_at(p, p.start + j * p.slot_stride, input, k);
    write_box<Index>(p, p.batch + j * p.sample, input, k, window_box<Index>(p, k),
                     static_cast<Index>(bx) * kThreads + tid, static_cast<Index>(gx) * kThreads);
  }
}

/// One thread of a plan's copy launch (1-D grid, block b; see IncrementalPlan).
template <int V, typename Index, typename T>
FASTOCCLUSION_HD void plan_copy_thread(const BasicFillParams<T>& p, const IncrementalPlan& plan,
                                       unsigned b, unsigned tid) {
  const std::uint32_t index = b / plan.blocks_per_copy;
  const std::uint32_t sub = b - index * plan.blocks_per_copy;
  if (index >= static_cast<std::uint32_t>(plan.full_count)) return;
  const std::int64_t j = plan.slot[index];
  std::int64_t input, k;
  pair_at(p, p.start + j * p.slot_stride, input, k);
  copy_units<V, Index>(p, p.batch + j * p.sample, p.inputs + input * p.sample,
                       static_cast<Index>(sub) * kThreads + tid,
                       static_cast<Index>(plan.blocks_per_copy) * kThreads);
}

/// One thread of a plan's box launch (1-D grid, block b; see IncrementalPlan).
template <typename Index, typename T>
FASTOCCLUSION_HD void plan_box_thread(const BasicFillParams<T>& p, const IncrementalPlan& plan,
                                      unsigned b, unsigned tid) {
  const std::uint64_t full_blocks =
      static_cast<std::uint64_t>(plan.full_count) * plan.blocks_per_box;
  std::int64_t index;
  std::uint32_t sub, blocks;
  if (b < full_blocks) {
    index = b / plan.blocks_per_box;
    sub = b - static_cast<std::uint32_t>(index) * plan.blocks_per_box;
    blocks = plan.blocks_per_box;
  } else {
    const std::uint64_t rest = b - full_blocks;
    index = plan.full_count + static_cast<std::int64_t>(rest / plan.blocks_per_update);
    sub = static_cast<std::uint32_t>(rest % plan.blocks_per_update);
    blocks = plan.blocks_per_update;
  }
  if (index >= std::int64_t{plan.full_count} + plan.update_count) return;
  const std::int64_t j = plan.slot[index];
  std::int64_t input, k;
  pair_at(p, p.start + j * p.slot_stride, input, k);
  const Box<Index> next = window_box<Index>(p, k);
  T* dst = p.batch + j * p.sample;
  if (index < plan.full_count) {
    write_box<Index>(p, dst, input, k, next, static_cast<Index>(sub) * kThreads + tid,
                     static_cast<Index>(blocks) * kThreads);
  } else {
    update_boxes<Index>(p, dst, p.inputs + input * p.sample, input,
                        window_box<Index>(p, plan.prev_window[index]), k, next,
                        static_cast<std::int64_t>(sub) * kThreads + tid,
                        static_cast<std::int64_t>(blocks) * kThreads);
  }
}

}  // namespace fastocclusion::cuda::detail
