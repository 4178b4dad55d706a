// Turning patch deltas into a map: the library's summed-area pass against a naive
// per-patch scatter (O(patch area) per patch), both in float64 with a float32 map out.
// One input per call; items processed = patches, so items/s is patches per second.
// Axes: apply_accumulate_axes (size, patch, and stride patch/2 or 1).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

#include "axes.hpp"
#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/geometry.hpp"

namespace fastocclusion_bench {
namespace {

struct AccumulateWorkload {
  fastocclusion::PatchGrid grid;
  std::vector<double> deltas;
  std::vector<float> map;

  AccumulateWorkload(std::int64_t h, std::int64_t patch, std::int64_t stride) {
    const ImageSize s = size_for(h);
    grid = fastocclusion::make_patch_grid(s.h, s.w, patch, patch, stride, stride,
                                          fastocclusion::EdgeMode::valid);
    std::mt19937 rng(99);
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    deltas.resize(static_cast<std::size_t>(grid.num_patches()));
    for (double& d : deltas) d = dist(rng);
    map.resize(static_cast<std::size_t>(s.h * s.w));
  }
};

void report(benchmark::State& state, const AccumulateWorkload& w) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * w.grid.num_patches());
  state.counters["patches"] = static_cast<double>(w.grid.num_patches());
}

// The naive reference: add every patch's delta to each of its pixels, then cast.
void naive_scatter(const double* deltas, const fastocclusion::PatchGrid& g, double* sums,
                   float* map) {
  const std::int64_t h = g.height(), w = g.width();
  std::fill(sums, sums + h * w, 0.0);
  for (std::int64_t i = 0; i < g.rows.count; ++i) {
    const std::int64_t r0 = g.rows.anchor(i), r1 = r0 + g.rows.extent(i);
    for (std::int64_t j = 0; j < g.cols.count; ++j) {
      const std::int64_t c0 = g.cols.anchor(j), c1 = c0 + g.cols.extent(j);
      const double d = deltas[i * g.cols.count + j];
      for (std::int64_t y = r0; y < r1; ++y) {
        for (std::int64_t x = c0; x < c1; ++x) sums[y * w + x] += d;
      }
    }
  }
  for (std::int64_t p = 0; p < h * w; ++p) map[p] = static_cast<float>(sums[p]);
}

void BM_AccumulateSummedArea(benchmark::State& state) {
  AccumulateWorkload w(state.range(0), state.range(1), state.range(2));
  for (auto _ : state) {
    fastocclusion::accumulate_patch_deltas(w.deltas.data(), 1, w.grid,
                                           fastocclusion::Reduction::sum, w.map.data());
    benchmark::ClobberMemory();
  }
  report(state, w);
}

void BM_AccumulateNaiveScatter(benchmark::State& state) {
  AccumulateWorkload w(state.range(0), state.range(1), state.range(2));
  std::vector<double> sums(w.map.size());
  for (auto _ : state) {
    naive_scatter(w.deltas.data(), w.grid, sums.data(), w.map.data());
    benchmark::ClobberMemory();
  }
  report(state, w);
}

BENCHMARK(BM_AccumulateSummedArea)
    ->Apply(apply_accumulate_axes)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AccumulateNaiveScatter)
    ->Apply(apply_accumulate_axes)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace fastocclusion_bench
