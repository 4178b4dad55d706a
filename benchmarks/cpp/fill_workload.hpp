// The stream a fill benchmark walks: N samples of one axes point (an image or the volume),
// a window grid, and the consecutive full batches of kBatchSlots slots over the
// (input, window) stream.
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
  SweepGeometry geometry;
  fastocclusion::WindowGrid grid;
  std::int64_t n;
  fastocclusion::AlignedHostBuffer inputs;
  fastocclusion::AlignedHostBuffer batch;
  float baseline_value = 0.0f;
  std::vector<std::int64_t> starts;  ///< first stream index of each full batch of one pass

  static std::int64_t inputs_needed(std::int64_t windows) {
    const std::int64_t per_pass = (2 * kBatchSlots + windows - 1) / windows + 1;
    return per_pass > 2 ? per_pass : 2;
  }

  FillWorkload(Family family, std::int64_t size, std::int64_t patch)
      : geometry(sweep_geometry(family, size, patch, stride_for(patch))),
        grid(make_grid(geometry)),
        n(inputs_needed(grid.num_windows())),
        inputs(with_leading(n, geometry.shape)),
        batch(with_leading(kBatchSlots, geometry.shape)) {
    std::mt19937 rng(1234);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (std::int64_t i = 0; i < inputs.size(); ++i) inputs.data()[i] = dist(rng);
    const std::int64_t total = n * grid.num_windows();
    for (std::int64_t s = 0; s + kBatchSlots <= total; s += kBatchSlots) starts.push_back(s);
  }

  fastocclusion::Baseline baseline() const {
    return {fastocclusion::BaselineKind::scalar, &baseline_value};
  }
  std::int64_t sample_floats() const { return grid.sample_size(); }
  std::int64_t batch_bytes() const {
    return kBatchSlots * sample_floats() * static_cast<std::int64_t>(sizeof(float));
  }
  std::int64_t start_of(std::int64_t iteration) const {
    return starts[static_cast<std::size_t>(iteration) % starts.size()];
  }

 private:
  static std::vector<std::int64_t> with_leading(std::int64_t leading,
                                                const std::vector<std::int64_t>& shape) {
    std::vector<std::int64_t> out{leading};
    out.insert(out.end(), shape.begin(), shape.end());
    return out;
  }
};

}  // namespace fastocclusion_bench
