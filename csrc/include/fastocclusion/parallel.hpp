// Host parallelism of the CPU kernels.
//
// Why not OpenMP: fastocclusion runs inside TensorFlow and PyTorch processes whose own
// thread pools are busy with the model call. libgomp's workers spin after each parallel
// region (OMP_WAIT_POLICY=active by default), and measured on a 2-core machine that spin
// doubled the time of both the model call and the fill. Here threads are started per call,
// only for large work, and joined: nothing runs between kernel calls.
//
// Failure model: parallel_for never calls std::terminate. A worker thread that cannot be
// started (EAGAIN under a pids or RLIMIT_NPROC limit, ENOMEM under RLIMIT_AS) is not an
// error: its chunks run on the threads already started and on the calling thread, so the
// result is the same. An exception thrown by fn on any thread is captured, every started
// thread is joined, and then the first captured exception is rethrown on the calling thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
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

namespace detail {

/// The first exception captured by the threads of one parallel_for call. Lock-free and
/// noexcept, so that capturing cannot itself throw; read only after every thread is joined.
class FirstException {
 public:
  void capture() noexcept {
    if (!taken_.exchange(true, std::memory_order_acq_rel)) error_ = std::current_exception();
  }
  bool captured() const noexcept { return taken_.load(std::memory_order_acquire); }
  void rethrow_if_captured() const {
    if (taken_.load(std::memory_order_acquire) && error_) std::rethrow_exception(error_);
  }

 private:
  std::atomic<bool> taken_{false};
  std::exception_ptr error_;
};

}  // namespace detail

/// Calls fn(begin, end) on contiguous chunks covering [0, items), each index exactly once,
/// on up to num_threads() threads (the calling thread included), with no more threads than
/// total_work / kMinWorkPerThread. Synchronous: returns when every chunk is done.
///
/// Chunks are handed out dynamically: every thread, the calling one included, takes the next
/// chunk not yet taken until none is left. A thread that cannot be started is skipped, and
/// its chunks run on the threads already running (at worst all on the calling thread).
/// fn may throw: the first exception thrown on any thread is rethrown here after every
/// thread has been joined; chunks not yet taken by then are not run. fn must tolerate
/// being called concurrently on disjoint ranges.
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
  const std::int64_t chunks = (items + chunk - 1) / chunk;
  std::atomic<std::int64_t> next_chunk{0};
  detail::FirstException error;
  // Runs chunks until none is left or some thread has failed. Never throws.
  auto run_chunks = [&]() noexcept {
    try {
      for (;;) {
        const std::int64_t c = next_chunk.fetch_add(1, std::memory_order_relaxed);
        if (c >= chunks || error.captured()) return;
        const std::int64_t begin = c * chunk;
        fn(begin, std::min(items, begin + chunk));
      }
    } catch (...) {
      error.capture();
    }
  };
  std::vector<std::thread> workers;
  try {
    workers.reserve(static_cast<std::size_t>(chunks - 1));
    for (std::int64_t t = 1; t < chunks; ++t) workers.emplace_back(run_chunks);
  } catch (...) {
    // std::system_error (no thread could be created) or std::bad_alloc: keep the threads
    // already started; they and the calling thread run every chunk.
  }
  run_chunks();
  for (std::thread& worker : workers) worker.join();
  error.rethrow_if_captured();
}

}  // namespace fastocclusion
