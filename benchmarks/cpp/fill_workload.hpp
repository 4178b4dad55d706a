// The stream a fill benchmark walks: N inputs of one axes size, a patch grid, and the
// consecutive full batches of kBatchSlots slots over the (input, patch) stream.
//
// N = max(2, ceil(2 * slots / K) + 1) so that one pass holds at least two full batches
// with different inputs: cycling over the passes never repeats one slice back to back,
// which would let the incremental fill skip all work.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "axes.hpp"
#include "fastocclusion/fill.hpp"
#include "fastocclusion/geometry.hpp"
#include "fastocclusion/host_buffer.hpp"

namespace fastocclusion_bench {

struct FillWorkload {
  fastocclusion::InputShape shape;
  fastocclusion::PatchGrid grid;
  fastocclusion::AlignedHostBuffer inputs;
  fastocclusion::AlignedHostBuffer batch;
  float baseline_value = 0.0f;
  std::vector<std::int64_t> starts;  ///< first stream index of each full batch of one pass

  static std::int64_t inputs_needed(std::int64_t patches) {
    const std::int64_t per_pass = (2 * kBatchSlots + patches - 1) / patches + 1;
    return per_pass > 2 ? per_pass : 2;
  }

  FillWorkload(std::int64_t h, std::int64_t patch)
      : shape(make_shape(h, patch)),
        grid(fastocclusion::make_patch_grid(shape.h, shape.w, patch, patch, stride_for(patch),
                                            stride_for(patch), fastocclusion::EdgeMode::valid)),
        inputs({shape.n, shape.h, shape.w, shape.c}),
        batch({kBatchSlots, shape.h, shape.w, shape.c}) {
    std::mt19937 rng(1234);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (std::int64_t i = 0; i < inputs.size(); ++i) inputs.data()[i] = dist(rng);
    const std::int64_t total = shape.n * grid.num_patches();
    for (std::int64_t s = 0; s + kBatchSlots <= total; s += kBatchSlots) starts.push_back(s);
  }

  fastocclusion::Baseline baseline() const {
    return {fastocclusion::BaselineKind::scalar, &baseline_value};
  }
  std::int64_t image_floats() const { return shape.image_size(); }
  std::int64_t batch_bytes() const {
    return kBatchSlots * image_floats() * static_cast<std::int64_t>(sizeof(float));
  }
  std::int64_t start_of(std::int64_t iteration) const {
    return starts[static_cast<std::size_t>(iteration) % starts.size()];
  }

 private:
  static fastocclusion::InputShape make_shape(std::int64_t h, std::int64_t patch) {
    const ImageSize s = size_for(h);
    const auto grid = fastocclusion::make_patch_grid(s.h, s.w, patch, patch, stride_for(patch),
                                                     stride_for(patch),
                                                     fastocclusion::EdgeMode::valid);
    return {inputs_needed(grid.num_patches()), s.h, s.w, s.c};
  }
};

}  // namespace fastocclusion_bench
