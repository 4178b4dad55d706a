// Batch fill throughput: full fill and incremental fill against a plain memcpy of the
// same bytes. Every benchmark walks the same consecutive batches of the same stream
// (fill_workload.hpp) and times only the measured call. Bytes processed = bytes written
// into the 32 slots per call, so GB/s figures compare directly; for the incremental fill
// they are "effective" GB/s (the bytes a full fill would have written).
// Axes: the images (apply_axes) and the volume (apply_volume_axes) of axes.hpp.
#include <benchmark/benchmark.h>

#include <cstring>

#include "axes.hpp"
#include "fastocclusion/fill.hpp"
#include "fastocclusion/parallel.hpp"
#include "fill_workload.hpp"

namespace fastocclusion_bench {
namespace {

void report(benchmark::State& state, const FillWorkload& w) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * w.batch_bytes());
  state.counters["windows"] = static_cast<double>(w.grid.num_windows());
}

// The bandwidth ceiling: slot j gets a memcpy of the input it holds in the fill, with the
// same thread split over slots as the library's fill (fastocclusion::parallel_for).
void BM_Memcpy(benchmark::State& state, Family family) {
  FillWorkload w(family, state.range(0), state.range(1));
  const std::int64_t sample = w.sample_floats();
  const std::int64_t windows = w.grid.num_windows();
  const auto sample_bytes = static_cast<std::size_t>(sample) * sizeof(float);
  const float* inputs = w.inputs.data();
  float* batch = w.batch.data();
  std::int64_t iteration = 0;
  for (auto _ : state) {
    const std::int64_t start = w.start_of(iteration++);
    fastocclusion::parallel_for(kBatchSlots, kBatchSlots * sample,
                                [&](std::int64_t begin, std::int64_t end) {
                                  for (std::int64_t j = begin; j < end; ++j) {
                                    std::memcpy(batch + j * sample,
                                                inputs + ((start + j) / windows) * sample,
                                                sample_bytes);
                                  }
                                });
    benchmark::ClobberMemory();
  }
  report(state, w);
}

void BM_FillFull(benchmark::State& state, Family family) {
  FillWorkload w(family, state.range(0), state.range(1));
  const auto baseline = w.baseline();
  std::int64_t iteration = 0;
  for (auto _ : state) {
    fastocclusion::fill_occluded_batch(w.inputs.data(), w.n, w.grid, baseline,
                                       w.start_of(iteration++), kBatchSlots, w.batch.data());
    benchmark::ClobberMemory();
  }
  report(state, w);
}

// Steady state: one persistent buffer and state, consecutive batches of the same inputs.
void BM_FillIncremental(benchmark::State& state, Family family) {
  FillWorkload w(family, state.range(0), state.range(1));
  const auto baseline = w.baseline();
  fastocclusion::IncrementalFillState fill_state;
  std::int64_t iteration = 0;
  for (auto _ : state) {
    fastocclusion::fill_occluded_batch_incremental(w.inputs.data(), w.n, w.grid, baseline,
                                                   w.start_of(iteration++), kBatchSlots,
                                                   w.batch.data(), kBatchSlots, fill_state);
    benchmark::ClobberMemory();
  }
  report(state, w);
}

// Images keep the plain family names (BM_FillFull/size:H/patch:P); the volume is
// BM_FillFull/volume/size:D/patch:P.
#define FASTOCCLUSION_FILL_BENCHMARK(fn)                                                   \
  BENCHMARK_CAPTURE(fn, image, Family::image)                                              \
      ->Name(#fn)                                                                          \
      ->Apply(apply_axes)                                                                  \
      ->UseRealTime()                                                                      \
      ->Unit(benchmark::kMicrosecond);                                                     \
  BENCHMARK_CAPTURE(fn, volume, Family::volume)                                            \
      ->Apply(apply_volume_axes)                                                           \
      ->UseRealTime()                                                                      \
      ->Unit(benchmark::kMicrosecond)

FASTOCCLUSION_FILL_BENCHMARK(BM_Memcpy);
FASTOCCLUSION_FILL_BENCHMARK(BM_FillFull);
FASTOCCLUSION_FILL_BENCHMARK(BM_FillIncremental);

}  // namespace
}  // namespace fastocclusion_bench
