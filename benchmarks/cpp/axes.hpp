// The benchmark axes, defined once for every benchmark of the harness.
//
// Images : (H, W, C) = 32x32x3 (CIFAR-like), 224x224x3 (ImageNet-like), 512x512x3 (large
//          images), windows (p, p, C) and strides (s, s, C): the image family of design §7,
//          maps (H, W, 1) with the channel axis collapsed. Windows p = 4, 8, 16, 32.
// Volume : (D, H, W, C) = 64x64x64x1, windows (p, p, p, C), strides (s, s, s, C), maps
//          (D, H, W, 1). Windows p = 4, 8, 16.
// Stride : p / 2 — the overlapping half-stride sweep that occlusion is usually run with; it
//          gives 2^d times the windows of stride == p in d dimensions, so it is the setting
//          where the per-window costs (fill, accumulate) matter most.
// Accumulation is also run at stride 1 (kDenseStride): tens of thousands of windows, the
//          regime the difference-and-prefix-sum pass exists for (O(1) per window and axis
//          against O(window volume)).
// Edges  : "valid" (the reference behaviour).
// Batch  : 32 slots, the default batch_size of the Python API (design §3).
//
// Benchmark names: images as BM_x/size:H/patch:P[/stride:S], the volume as
// BM_x/volume/size:D/patch:P[/stride:S] (summarize.py reads both).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "fastocclusion/geometry.hpp"

namespace fastocclusion_bench {

enum class Family { image, volume };

struct ImageSize {
  std::int64_t h, w, c;
};

inline constexpr ImageSize kSizes[] = {{32, 32, 3}, {224, 224, 3}, {512, 512, 3}};
inline constexpr std::int64_t kPatches[] = {4, 8, 16, 32};
inline constexpr std::int64_t kVolumeSide = 64;
inline constexpr std::int64_t kVolumeChannels = 1;
inline constexpr std::int64_t kVolumePatches[] = {4, 8, 16};
inline constexpr std::int64_t kBatchSlots = 32;

inline constexpr std::int64_t kDenseStride = 1;

inline constexpr std::int64_t stride_for(std::int64_t patch) { return patch / 2; }

/// Registers every image (size, patch) pair as Args({height, patch}), named size:H/patch:P.
inline void apply_axes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"size", "patch"});
  for (const ImageSize& s : kSizes) {
    for (const std::int64_t p : kPatches) b->Args({s.h, p});
  }
}

/// The volume's patches as Args({side, patch}), named size:D/patch:P.
inline void apply_volume_axes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"size", "patch"});
  for (const std::int64_t p : kVolumePatches) b->Args({kVolumeSide, p});
}

/// Every image (size, patch) pair twice, as Args({height, patch, stride}) with
/// stride = stride_for(patch) and kDenseStride, named size:H/patch:P/stride:S.
inline void apply_accumulate_axes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"size", "patch", "stride"});
  for (const ImageSize& s : kSizes) {
    for (const std::int64_t p : kPatches) {
      b->Args({s.h, p, stride_for(p)});
      b->Args({s.h, p, kDenseStride});
    }
  }
}

/// The volume's patches twice, at stride_for(patch) and kDenseStride.
inline void apply_volume_accumulate_axes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"size", "patch", "stride"});
  for (const std::int64_t p : kVolumePatches) {
    b->Args({kVolumeSide, p, stride_for(p)});
    b->Args({kVolumeSide, p, kDenseStride});
  }
}

/// The image size registered under height `h`.
inline ImageSize size_for(std::int64_t h) {
  for (const ImageSize& s : kSizes) {
    if (s.h == h) return s;
  }
  throw std::invalid_argument("no benchmark size with height " + std::to_string(h));
}

/// The sample shape, windows and strides of one axis point.
struct SweepGeometry {
  std::vector<std::int64_t> shape, window, stride;
  std::uint32_t collapsed_axes = 0;  ///< the channel axis: one window covers it
};

inline SweepGeometry sweep_geometry(Family family, std::int64_t size, std::int64_t patch,
                                    std::int64_t stride) {
  if (family == Family::image) {
    const ImageSize s = size_for(size);
    return {{s.h, s.w, s.c}, {patch, patch, s.c}, {stride, stride, s.c}, 1U << 2};
  }
  if (size != kVolumeSide) throw std::invalid_argument("no benchmark volume of side " + std::to_string(size));
  const std::int64_t c = kVolumeChannels;
  return {{size, size, size, c}, {patch, patch, patch, c}, {stride, stride, stride, c}, 1U << 3};
}

/// The grid of a geometry, "valid" edges on every axis.
inline fastocclusion::WindowGrid make_grid(const SweepGeometry& g) {
  const fastocclusion::EdgeMode modes[fastocclusion::kMaxAxes] = {};
  return fastocclusion::make_window_grid(static_cast<int>(g.shape.size()), g.shape.data(),
                                         g.window.data(), g.stride.data(), modes);
}

}  // namespace fastocclusion_bench
