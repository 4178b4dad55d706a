#include "fastocclusion/parallel.hpp"

#include <atomic>

namespace fastocclusion {
namespace {

int default_threads() noexcept {
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
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
