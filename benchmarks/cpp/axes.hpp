// The benchmark axes, defined once for every benchmark of the harness.
//
// Sizes  : 32x32x3 (CIFAR-like), 224x224x3 (ImageNet-like), 512x512x3 (large images).
// Patches: 4, 8, 16, 32 pixels square.
// Stride : patch / 2 — the overlapping half-stride sweep that Occlusion is usually run with;
//          it gives 4x the patches of stride == patch, so it is the setting where the
//          per-patch costs (fill, accumulate) matter most.
// Accumulation is also run at stride 1 (kDenseStride): tens of thousands of patches, the
//          regime the summed-area pass exists for (O(1) per patch against O(patch area)).
// Edges  : "valid" (the reference behaviour).
// Batch  : 32 slots, the default batch_size of the Python API (SPEC §3).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace fastocclusion_bench {

struct ImageSize {
  std::int64_t h, w, c;
};

inline constexpr ImageSize kSizes[] = {{32, 32, 3}, {224, 224, 3}, {512, 512, 3}};
inline constexpr std::int64_t kPatches[] = {4, 8, 16, 32};
inline constexpr std::int64_t kBatchSlots = 32;

inline constexpr std::int64_t kDenseStride = 1;

inline constexpr std::int64_t stride_for(std::int64_t patch) { return patch / 2; }

/// Registers every (size, patch) pair as Args({height, patch}), named size:H/patch:P.
inline void apply_axes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"size", "patch"});
  for (const ImageSize& s : kSizes) {
    for (const std::int64_t p : kPatches) b->Args({s.h, p});
  }
}

/// Registers every (size, patch) pair twice, as Args({height, patch, stride}) with
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

/// The size registered under height `h`.
inline ImageSize size_for(std::int64_t h) {
  for (const ImageSize& s : kSizes) {
    if (s.h == h) return s;
  }
  throw std::invalid_argument("no benchmark size with height " + std::to_string(h));
}

}  // namespace fastocclusion_bench
