#include "fastocclusion/parallel.hpp"

#include <atomic>

namespace fastocclusion {
namespace {

// Read once: std::thread::hardware_concurrency() is a system call (sched_getaffinity) on
// Linux, several microseconds, which showed in every small kernel call.
int default_threads() noexcept {
  static const int threads = [] {
    const unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(hw);
  }();
  return threads;
}

std::atomic<int> g_threads{0};  // 0: the default

}  // namespace

int num_threads() noexcept {
  const int threads = g_threads.load(std::memory_order_relaxed);
  return threads >= 1 ? threads : default_threads();
}

void set_num_threads(int threads) noexcept {
  g_threads.store(threads >= 1 ? threads : 0, std::memory_order_relaxed);
}

}  // namespace fastocclusion
