// Device side of the batch fills: the parameters the kernels receive and the per-thread
// bodies. Private to csrc/src/cuda.
//
// The bodies are __host__ __device__ and take the block/thread indices as arguments, so a
// host program can run them over an emulated grid and compare with the CPU fill (no GPU
// needed to test the index arithmetic); the __global__ kernels in fill.cu only forward
// blockIdx/threadIdx.
//
// Indexing: within one image, offsets use `Index` (uint32 when h*w*c <= INT32_MAX, which
// keeps the per-element divisions cheap, else uint64); slot and input offsets are 64-bit.
#pragma once

#include <cstdint>

#include "fastocclusion/fill.hpp"

#if defined(__CUDACC__)
#define FASTOCCLUSION_HD __host__ __device__ __forceinline__
#else
#define FASTOCCLUSION_HD inline
#endif
#if defined(__CUDA_ARCH__)
#define FASTOCCLUSION_UNROLL _Pragma("unroll")
#else
#define FASTOCCLUSION_UNROLL
#endif

namespace fastocclusion::cuda::detail {

/// Threads per block of every fill kernel.
constexpr unsigned kFillThreads = 256;
/// Slots one incremental launch plans (its plan travels as a kernel parameter, < 4 KB).
constexpr int kPlanSlots = 256;

/// Everything a fill kernel needs, passed by value.
struct FillParams {
  const float* inputs = nullptr;    ///< NHWC, n*image floats
  float* batch = nullptr;           ///< slots of `image` floats
  const float* baseline = nullptr;  ///< device values (unused for scalar)
  int baseline_kind = 0;            ///< static_cast<int>(BaselineKind)
  float scalar = 0.0f;              ///< the scalar baseline
  std::int64_t image = 0;           ///< h*w*c floats per input
  std::int64_t row_len = 0;         ///< w*c floats per image row
  std::int64_t channels = 0;
  std::int64_t height = 0, width = 0;
  std::int64_t patch_h = 0, stride_h = 0, patch_w = 0, stride_w = 0;
  std::int64_t grid_cols = 0;  ///< patches per grid row
  std::int64_t patches = 0;    ///< K
  std::int64_t start = 0;      ///< stream index of slot 0
};

/// One incremental launch: `full_count` slots filled in full (slot[0 .. full_count)), then
/// `inc_count` slots whose previous patch prev_patch[i] is restored before the new one is
/// written (slot[full_count .. full_count + inc_count)). Block b serves full slot
/// b / blocks_per_full when b < full_count * blocks_per_full, else incremental slot
/// (b - full_count * blocks_per_full) / blocks_per_inc.
struct IncrementalPlan {
  std::int32_t full_count = 0;
  std::int32_t inc_count = 0;
  std::uint32_t blocks_per_full = 1;
  std::uint32_t blocks_per_inc = 1;
  std::int32_t slot[kPlanSlots];
  std::int64_t prev_patch[kPlanSlots];
};

/// Rows [r0, r1) and floats within a row [x0, x1) of one patch.
template <typename Index>
struct Rect {
  Index r0, r1, x0, x1;
};

FASTOCCLUSION_HD float load_readonly(const float* p) {
#if defined(__CUDA_ARCH__)
  return __ldg(p);
#else
  return *p;
#endif
}

template <typename Index>
FASTOCCLUSION_HD Rect<Index> patch_rect(const FillParams& p, std::int64_t k) {
  const std::int64_t pi = k / p.grid_cols, pj = k - pi * p.grid_cols;
  const std::int64_t r0 = pi * p.stride_h, c0 = pj * p.stride_w;
  const std::int64_t eh = p.height - r0 < p.patch_h ? p.height - r0 : p.patch_h;
  const std::int64_t ew = p.width - c0 < p.patch_w ? p.width - c0 : p.patch_w;
  return {static_cast<Index>(r0), static_cast<Index>(r0 + eh),
          static_cast<Index>(c0 * p.channels), static_cast<Index>((c0 + ew) * p.channels)};
}

template <typename Index>
FASTOCCLUSION_HD bool inside(const Rect<Index>& r, Index y, Index x) {
  return y >= r.r0 && y < r.r1 && x >= r.x0 && x < r.x1;
}

/// Baseline value at `offset` (= y*row_len + x) of input n.
template <typename Index>
FASTOCCLUSION_HD float baseline_value(const FillParams& p, std::int64_t n, Index offset, Index x) {
  switch (static_cast<BaselineKind>(p.baseline_kind)) {
    case BaselineKind::scalar:
      return p.scalar;
    case BaselineKind::per_channel:
      return load_readonly(p.baseline + x % static_cast<Index>(p.channels));
    case BaselineKind::per_image:
      return load_readonly(p.baseline + offset);
    case BaselineKind::per_input:
    default:
      return load_readonly(p.baseline + n * p.image + static_cast<std::int64_t>(offset));
  }
}

/// Copies `src` (one input) into `dst` (one slot), `V` floats per unit (V = 4: 16-byte
/// vectors, needs 16-byte-aligned dst/src and image % 4 == 0), with the elements of `rect`
/// replaced by the baseline. Units first, first + stride, ...
template <int V, typename Index>
FASTOCCLUSION_HD void fill_units(const FillParams& p, float* __restrict__ dst,
                                 const float* __restrict__ src, const Rect<Index>& rect,
                                 std::int64_t n, Index first, Index stride) {
  static_assert(V == 1 || V == 4, "V is 1 or 4");
  const Index units = static_cast<Index>(p.image / V);
  const Index row_len = static_cast<Index>(p.row_len);
  for (Index u = first; u < units; u += stride) {
    const Index e = u * V;
    Index y = e / row_len;
    Index x = e - y * row_len;
    float v[V];
    if constexpr (V == 4) {
#if defined(__CUDA_ARCH__)
      const float4 q = __ldg(reinterpret_cast<const float4*>(src) + u);
      v[0] = q.x; v[1] = q.y; v[2] = q.z; v[3] = q.w;
#else
      for (int i = 0; i < 4; ++i) v[i] = src[e + static_cast<Index>(i)];
#endif
    } else {
      v[0] = load_readonly(src + e);
    }
FASTOCCLUSION_UNROLL
    for (int i = 0; i < V; ++i) {
      if (i > 0 && ++x == row_len) {  // next element; wraps to the next row
        x = 0;
        ++y;
      }
      if (inside(rect, y, x)) v[i] = baseline_value(p, n, static_cast<Index>(e + i), x);
    }
    if constexpr (V == 4) {
#if defined(__CUDA_ARCH__)
      reinterpret_cast<float4*>(dst)[u] = make_float4(v[0], v[1], v[2], v[3]);
#else
      for (int i = 0; i < 4; ++i) dst[e + static_cast<Index>(i)] = v[i];
#endif
    } else {
      dst[e] = v[0];
    }
  }
}

/// Restores the elements of `prev` from `src` and writes those of `next` from the baseline,
/// each element of prev ∪ next once. Elements first, first + stride, ... of the sequence
/// prev (row-major), then next minus prev (row-major).
template <typename Index>
FASTOCCLUSION_HD void patch_update(const FillParams& p, float* __restrict__ dst,
                                   const float* __restrict__ src, const Rect<Index>& prev,
                                   const Rect<Index>& next, std::int64_t n, std::int64_t first,
                                   std::int64_t stride) {
  const std::int64_t prev_w = static_cast<std::int64_t>(prev.x1 - prev.x0);
  const std::int64_t next_w = static_cast<std::int64_t>(next.x1 - next.x0);
  const std::int64_t prev_area = prev_w * static_cast<std::int64_t>(prev.r1 - prev.r0);
  const std::int64_t total = prev_area + next_w * static_cast<std::int64_t>(next.r1 - next.r0);
  const Index row_len = static_cast<Index>(p.row_len);
  for (std::int64_t t = first; t < total; t += stride) {
    Index y, x;
    if (t < prev_area) {
      y = prev.r0 + static_cast<Index>(t / prev_w);
      x = prev.x0 + static_cast<Index>(t % prev_w);
    } else {
      const std::int64_t q = t - prev_area;
      y = next.r0 + static_cast<Index>(q / next_w);
      x = next.x0 + static_cast<Index>(q % next_w);
      if (inside(prev, y, x)) continue;  // written in the first part
    }
    const Index offset = y * row_len + x;
    dst[offset] = inside(next, y, x) ? baseline_value(p, n, offset, x)
                                     : load_readonly(src + offset);
  }
}

/// One thread of the full fill: grid (gx, gy) of kFillThreads-thread blocks; block rows
/// by, by + gy, ... are the slots, block columns split each slot's units.
template <int V, typename Index>
FASTOCCLUSION_HD void fill_full_thread(const FillParams& p, std::int64_t count, unsigned bx,
                                       unsigned by, unsigned gx, unsigned gy, unsigned tid) {
  for (std::int64_t j = by; j < count; j += gy) {
    const std::int64_t s = p.start + j;
    const std::int64_t n = s / p.patches;
    const std::int64_t k = s - n * p.patches;
    fill_units<V, Index>(p, p.batch + j * p.image, p.inputs + n * p.image,
                         patch_rect<Index>(p, k), n,
                         static_cast<Index>(bx) * kFillThreads + tid,
                         static_cast<Index>(gx) * kFillThreads);
  }
}

/// One thread of an incremental launch (1-D grid, block b, see IncrementalPlan).
template <int V, typename Index>
FASTOCCLUSION_HD void fill_incremental_thread(const FillParams& p, const IncrementalPlan& plan,
                                              unsigned b, unsigned tid) {
  const std::uint64_t full_blocks =
      static_cast<std::uint64_t>(plan.full_count) * plan.blocks_per_full;
  std::int64_t index;
  std::uint32_t sub;
  if (b < full_blocks) {
    index = b / plan.blocks_per_full;
    sub = b - static_cast<std::uint32_t>(index) * plan.blocks_per_full;
  } else {
    const std::uint64_t rest = b - full_blocks;
    index = plan.full_count + static_cast<std::int64_t>(rest / plan.blocks_per_inc);
    sub = static_cast<std::uint32_t>(rest % plan.blocks_per_inc);
  }
  if (index >= static_cast<std::int64_t>(plan.full_count) + plan.inc_count) return;
  const std::int64_t j = plan.slot[index];
  const std::int64_t s = p.start + j;
  const std::int64_t n = s / p.patches;
  const std::int64_t k = s - n * p.patches;
  float* dst = p.batch + j * p.image;
  const float* src = p.inputs + n * p.image;
  if (index < plan.full_count) {
    fill_units<V, Index>(p, dst, src, patch_rect<Index>(p, k), n,
                         static_cast<Index>(sub) * kFillThreads + tid,
                         static_cast<Index>(plan.blocks_per_full) * kFillThreads);
  } else {
    patch_update<Index>(p, dst, src, patch_rect<Index>(p, plan.prev_patch[index]),
                        patch_rect<Index>(p, k), n,
                        static_cast<std::int64_t>(sub) * kFillThreads + tid,
                        static_cast<std::int64_t>(plan.blocks_per_inc) * kFillThreads);
  }
}

}  // namespace fastocclusion::cuda::detail
