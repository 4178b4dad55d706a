// Turning window deltas into a map: the library's pass (one difference pass and prefix sum
// per axis) against a naive per-window scatter (O(window volume) per window), both in
// float64 with a float32 map out, the channel axis collapsed ((H, W, 1) and (D, H, W, 1)
// maps). One input per call; items processed = windows, so items/s is windows per second.
// Axes: apply_accumulate_axes (images) and apply_volume_accumulate_axes (the volume), each
// at stride patch/2 and 1.
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
  SweepGeometry geometry;
  fastocclusion::WindowGrid grid;
  std::vector<double> deltas;
  std::vector<float> map;

  AccumulateWorkload(Family family, std::int64_t size, std::int64_t patch, std::int64_t stride)
      : geometry(sweep_geometry(family, size, patch, stride)), grid(make_grid(geometry)) {
    std::mt19937 rng(99);
    std::uniform_real_distribution<double> dist(-1.0, 1.0);
    deltas.resize(static_cast<std::size_t>(grid.num_windows()));
    for (double& d : deltas) d = dist(rng);
    map.resize(static_cast<std::size_t>(fastocclusion::map_size(grid, geometry.collapsed_axes)));
  }
};

void report(benchmark::State& state, const AccumulateWorkload& w) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * w.grid.num_windows());
  state.counters["windows"] = static_cast<double>(w.grid.num_windows());
}

// The naive reference: add every window's delta to each element of its box in the map (the
// collapsed axes left out), the last map axis as a contiguous run, then cast.
void naive_scatter(const double* deltas, const fastocclusion::WindowGrid& g,
                   std::uint32_t collapsed, double* sums, float* map, std::int64_t size) {
  int axes[fastocclusion::kMaxAxes];  // the map's axes (not collapsed), outer first
  int rank = 0;
  for (int d = 0; d < g.rank; ++d) {
    if (((collapsed >> d) & 1U) == 0) axes[rank++] = d;
  }
  std::int64_t step[fastocclusion::kMaxAxes];
  std::int64_t s = 1;
  for (int i = rank - 1; i >= 0; --i) {
    step[i] = s;
    s *= g.axes[axes[i]].length;
  }
  std::fill(sums, sums + size, 0.0);
  const std::int64_t windows = g.num_windows();
  for (std::int64_t k = 0; k < windows; ++k) {
    const fastocclusion::Box box = g.window_box(k);
    const double d = deltas[k];
    const std::int64_t run_begin = box.begin[axes[rank - 1]], run_end = box.end[axes[rank - 1]];
    std::int64_t at[fastocclusion::kMaxAxes];
    for (int i = 0; i < rank; ++i) at[i] = box.begin[axes[i]];
    for (;;) {
      std::int64_t base = 0;
      for (int i = 0; i + 1 < rank; ++i) base += at[i] * step[i];
      for (std::int64_t x = run_begin; x < run_end; ++x) sums[base + x] += d;
      int i = rank - 2;  // odometer over the outer map axes
      for (; i >= 0; --i) {
        if (++at[i] < box.end[axes[i]]) break;
        at[i] = box.begin[axes[i]];
      }
      if (i < 0) break;
    }
  }
  for (std::int64_t p = 0; p < size; ++p) map[p] = static_cast<float>(sums[p]);
}

void BM_AccumulateSummedArea(benchmark::State& state, Family family) {
  AccumulateWorkload w(family, state.range(0), state.range(1), state.range(2));
  for (auto _ : state) {
    fastocclusion::accumulate_window_deltas(w.deltas.data(), 1, w.grid, w.geometry.collapsed_axes,
                                            fastocclusion::Reduction::sum, w.map.data());
    benchmark::ClobberMemory();
  }
  report(state, w);
}

void BM_AccumulateNaiveScatter(benchmark::State& state, Family family) {
  AccumulateWorkload w(family, state.range(0), state.range(1), state.range(2));
  std::vector<double> sums(w.map.size());
  for (auto _ : state) {
    naive_scatter(w.deltas.data(), w.grid, w.geometry.collapsed_axes, sums.data(), w.map.data(),
                  static_cast<std::int64_t>(w.map.size()));
    benchmark::ClobberMemory();
  }
  report(state, w);
}

// Images keep the plain family names; the volume is BM_x/volume/size:D/patch:P/stride:S.
#define FASTOCCLUSION_ACCUMULATE_BENCHMARK(fn)                                             \
  BENCHMARK_CAPTURE(fn, image, Family::image)                                              \
      ->Name(#fn)                                                                          \
      ->Apply(apply_accumulate_axes)                                                       \
      ->UseRealTime()                                                                      \
      ->Unit(benchmark::kMicrosecond);                                                     \
  BENCHMARK_CAPTURE(fn, volume, Family::volume)                                            \
      ->Apply(apply_volume_accumulate_axes)                                                \
      ->UseRealTime()                                                                      \
      ->Unit(benchmark::kMicrosecond)

FASTOCCLUSION_ACCUMULATE_BENCHMARK(BM_AccumulateSummedArea);
FASTOCCLUSION_ACCUMULATE_BENCHMARK(BM_AccumulateNaiveScatter);

}  // namespace
}  // namespace fastocclusion_bench
