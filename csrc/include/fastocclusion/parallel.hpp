// Host parallelism of the CPU kernels.
//
// Why not OpenMP: fastocclusion runs inside TensorFlow and PyTorch processes whose own
// thread pools are busy with the model call. libgomp's workers spin after each parallel
// region (OMP_WAIT_POLICY=active by default), and measured on a 2-core machine that spin
// doubled the time of both the model call and the fill. Here threads are started per call,
// only for large work, and joined: nothing runs between kernel calls.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace fastocclusion {

/// Threads the CPU kernels may use (>= 1). Default: std::thread::hardware_concurrency().
int num_threads() noexcept;

/// Sets the number of threads the CPU kernels may use; values < 1 restore the default.
/// Thread-safe; takes effect on the next kernel call.
void set_num_threads(int threads) noexcept;

/// Minimum work (floats written) per thread before a kernel splits across threads.
inline constexpr std::int64_t kMinWorkPerThread = std::int64_t{1} << 18;  // 1 MiB of floats

/// Calls fn(begin, end) on contiguous chunks covering [0, items), on up to num_threads()
/// threads (the calling thread takes the first chunk), with no more threads than
/// total_work / kMinWorkPerThread. Synchronous: returns when every chunk is done.
/// fn must not throw.
template <typename Fn>
void parallel_for(std::int64_t items, std::int64_t total_work, Fn&& fn) {
  if (items <= 0) return;
  std::int64_t threads = std::min<std::int64_t>(num_threads(), items);
  threads = std::min<std::int64_t>(threads, std::max<std::int64_t>(1, total_work / kMinWorkPerThread));
  if (threads <= 1) {
    fn(std::int64_t{0}, items);
    return;
  }
  const std::int64_t chunk = (items + threads - 1) / threads;
  std::vector<std::thread> workers;
  workers.reserve(static_cast<std::size_t>(threads - 1));
  for (std::int64_t t = 1; t < threads; ++t) {
    const std::int64_t begin = t * chunk;
    const std::int64_t end = std::min(items, begin + chunk);
    if (begin >= end) break;
    workers.emplace_back([&fn, begin, end] { fn(begin, end); });
  }
  fn(std::int64_t{0}, std::min(items, chunk));
  for (std::thread& worker : workers) worker.join();
}

}  // namespace fastocclusion
