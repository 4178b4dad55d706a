// parallel_for (parallel.hpp): every index once, exceptions from any thread rethrown after
// every thread is joined, and threads that cannot be started replaced by the running ones.
//
// The thread-start tests run in a forked child under RLIMIT_NPROC (dropping root first, which
// that limit does not bind), so the limit never reaches the test process itself.
#include "fastocclusion/parallel.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "fastocclusion/accumulate.hpp"
#include "test_support.hpp"

namespace {

using fastocclusion::kMinWorkPerThread;
using fastocclusion::parallel_for;

// Enough work for `threads` threads.
constexpr std::int64_t work_for(std::int64_t threads) { return threads * kMinWorkPerThread; }

// Restores the thread setting at the end of a test.
struct ThreadsSetting {
  explicit ThreadsSetting(int threads) { fastocclusion::set_num_threads(threads); }
  ~ThreadsSetting() { fastocclusion::set_num_threads(0); }
};

// How many times fn saw each index of [0, items).
std::vector<int> visits(std::int64_t items, std::int64_t work) {
  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(items));
  parallel_for(items, work, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) seen[static_cast<std::size_t>(i)] += 1;
  });
  std::vector<int> out;
  for (const auto& s : seen) out.push_back(s.load());
  return out;
}

TEST(ParallelFor, EveryIndexExactlyOnceForAnyThreadCount) {
  for (const int threads : {1, 2, 3, 7, 64}) {
    ThreadsSetting setting(threads);
    for (const std::int64_t items : {1, 2, 5, 63, 64, 65, 1000}) {
      const auto seen = visits(items, work_for(threads));
      EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), items)
          << "threads=" << threads << " items=" << items;
    }
  }
  EXPECT_TRUE(visits(0, work_for(4)).empty());
}

// The calling thread waits (bounded) in fn until a worker has thrown: so the exception
// really comes from another thread, and the caller is still inside fn meanwhile.
TEST(ParallelFor, ExceptionOnWorkerIsRethrownAfterEveryThreadIsJoined) {
  ThreadsSetting setting(4);
  const auto caller = std::this_thread::get_id();
  std::atomic<bool> worker_threw{false};
  std::atomic<int> inside{0};
  bool caught = false;
  try {
    parallel_for(4, work_for(4), [&](std::int64_t, std::int64_t) {
      inside += 1;
      struct Leave {
        std::atomic<int>& inside;
        ~Leave() { inside -= 1; }
      } leave{inside};
      if (std::this_thread::get_id() != caller) {
        worker_threw = true;
        throw std::runtime_error("worker failed");
      }
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!worker_threw && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  } catch (const std::runtime_error& e) {
    caught = true;
    EXPECT_STREQ(e.what(), "worker failed");
    EXPECT_EQ(inside.load(), 0) << "rethrown before every thread left fn";
  }
  EXPECT_TRUE(worker_threw.load()) << "no worker thread ran a chunk";
  EXPECT_TRUE(caught);
}

TEST(ParallelFor, ExceptionTypeIsKeptAndTheFirstOneWins) {
  ThreadsSetting setting(8);
  // Every chunk throws: exactly one exception arrives, of the thrown type.
  EXPECT_THROW(parallel_for(8, work_for(8), [](std::int64_t, std::int64_t) { throw std::bad_alloc(); }),
               std::bad_alloc);
  try {
    parallel_for(8, work_for(8), [](std::int64_t begin, std::int64_t) {
      throw std::out_of_range("chunk " + std::to_string(begin));
    });
    FAIL() << "nothing thrown";
  } catch (const std::out_of_range& e) {
    EXPECT_EQ(std::string(e.what()).rfind("chunk ", 0), 0u) << e.what();
  }
  // Single-threaded work throws straight through too.
  EXPECT_THROW(parallel_for(3, 1, [](std::int64_t, std::int64_t) { throw std::logic_error("x"); }),
               std::logic_error);
}

TEST(ParallelFor, KernelsStayCorrectAfterAFailedCall) {
  ThreadsSetting setting(4);
  for (int round = 0; round < 3; ++round) {
    EXPECT_THROW(parallel_for(100, work_for(4),
                              [](std::int64_t begin, std::int64_t) {
                                if (begin != 0) throw std::runtime_error("chunk failed");
                              }),
                 std::runtime_error);
    const auto seen = visits(1000, work_for(4));
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 1000);
  }
  // A multi-threaded fill and accumulation after the failures match the oracle.
  test_support::Rng rng(7);
  const auto fc = test_support::image_case(rng, 2, 64, 64, 4, 8, 8, 8, 8, false,
                                           naive::BaselineLayout::per_sample);
  const std::int64_t count = fc.stream_size();
  ASSERT_GE(count * fc.sample(), work_for(4));
  std::vector<float> batch(static_cast<std::size_t>(count * fc.sample()));
  fastocclusion::fill_occluded_batch(fc.inputs.data(), fc.n, fc.grid(), fc.core_baseline(), 0,
                                     count, batch.data());
  const auto expected = fc.expected(0, count);
  EXPECT_TRUE(test_support::same_floats(batch.data(), expected.data(), count * fc.sample()));
  const std::int64_t n = 48;
  const auto grid = fc.grid();
  const auto deltas = test_support::random_doubles(rng, n * grid.num_windows());
  std::vector<float> maps(static_cast<std::size_t>(n * 64 * 64));
  ASSERT_GE(n * 64 * 64 * grid.rank, work_for(2));  // the accumulation's work estimate
  fastocclusion::accumulate_window_deltas(deltas.data(), n, grid, 1U << 2,
                                          fastocclusion::Reduction::mean, maps.data());
  EXPECT_TRUE(test_support::close_maps(
      maps, naive::collapse(naive::accumulate(deltas, n, fc.naive_grid(), true), n, fc.lengths,
                            1U << 2)));
}

// ---- threads that cannot be started (forked child under RLIMIT_NPROC) ----------------------
//
// RLIMIT_NPROC caps the tasks of the child's real user, counted over the whole system. The
// child leaves root (the limit does not bind it) for a user id of its own, which no other
// process has, or for nobody (65534) where such an id cannot be taken (a user namespace that
// maps few ids). It parks threads until the limit refuses one, then ends `spare` of them:
// exactly `spare` threads can start. Other processes of the same user could disturb that at any
// time (their exits free slots; seen with uid 65534), so the child checks the arrangement before
// and after the kernel calls with a witness parallel_for, and starts again (up to kTries times)
// when more threads ran than it allows. An arrangement that cannot be made or held is a skip
// with its reason, never a pass.

// Child exit codes: 0 ok, 11..15 a wrong result, the others why the test cannot run here.
constexpr int kChildCannotLimit = 77;   // cannot leave root or set RLIMIT_NPROC
constexpr int kChildLimitIgnored = 78;  // the limit does not stop new threads
constexpr int kChildTooTight = 79;      // fewer than `spare` threads can start at all
constexpr int kChildDisturbed = 80;     // the arrangement never held for a whole try
constexpr int kTries = 5;
constexpr int kMostParked = 200;

// Runs body in a forked child; its exit status (a signal fails the test).
int run_in_child(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) {
    int code = 1;
    try {
      code = body();
    } catch (...) {
      code = 2;
    }
    _exit(code);
  }
  if (pid < 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) {
    ADD_FAILURE() << "child killed by signal " << WTERMSIG(status);
    return -1;
  }
  return WEXITSTATUS(status);
}

// Threads parked until released, each holding its slot of the process limit.
class ParkedThreads {
 public:
  ~ParkedThreads() { release(parked()); }
  // Threads parked now (started and not yet released).
  int parked() const { return static_cast<int>(threads_.size()) - joined_; }
  // Starts threads until the system refuses one or `most` are parked; returns parked().
  int top_up(int most) {
    while (parked() < most) {
      try {
        const int index = static_cast<int>(threads_.size());
        threads_.emplace_back([this, index] {
          while (released_.load() <= index) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        });
      } catch (const std::system_error&) {
        break;
      }
    }
    return parked();
  }
  // Ends the `count` oldest parked threads (their slots become free again).
  void release(int count) {
    const int end = std::min(joined_ + count, static_cast<int>(threads_.size()));
    released_ = end;
    for (; joined_ < end; ++joined_) threads_[static_cast<std::size_t>(joined_)].join();
  }

 private:
  std::vector<std::thread> threads_;
  std::atomic<int> released_{0};
  int joined_ = 0;
};

// In the child: leaves root (RLIMIT_NPROC does not bind it) for a user id of its own (derived
// from the pid, so that concurrent test processes differ), else for nobody, and caps that
// user's tasks at 64.
bool limit_tasks() {
  if (geteuid() == 0) {
    const auto own = static_cast<uid_t>(2000000000U + static_cast<unsigned>(getpid()));
    const bool own_id = setgid(own) == 0 && setuid(own) == 0;
    if (!own_id && (setgid(65534) != 0 || setuid(65534) != 0)) return false;
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NPROC, &limit) != 0) return false;
  limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 64);
  return setrlimit(RLIMIT_NPROC, &limit) == 0;
}

// pthread_join can return before the kernel has reaped the thread and freed its slot.
void let_the_kernel_reap() { std::this_thread::sleep_for(std::chrono::milliseconds(50)); }

// The threads that ran chunks of a 64-thread parallel_for, each chunk long enough (2 ms)
// for every thread that started to take one.
int threads_that_ran() {
  std::mutex mutex;
  std::set<std::thread::id> ran;
  parallel_for(64, work_for(64), [&](std::int64_t, std::int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const std::lock_guard<std::mutex> lock(mutex);
    ran.insert(std::this_thread::get_id());
  });
  let_the_kernel_reap();
  return static_cast<int>(ran.size());
}

// True when at most `spare` threads can start now (the caller makes the witness's +1); for
// spare 0 a direct probe too, since a thread that starts late may run no chunk.
bool arrangement_holds(int spare) {
  if (threads_that_ran() > spare + 1) return false;
  if (spare == 0) {
    try {
      std::thread probe([] {});
      probe.join();
      let_the_kernel_reap();
      return false;
    } catch (const std::system_error&) {
    }
  }
  return true;
}

// Child body: under the limit, a 64-thread parallel_for, full, strided and incremental fills
// and an accumulation all give the oracle's results.
int thread_start_failure_child(int spare) {
  fastocclusion::set_num_threads(64);
  test_support::Rng rng(11);
  const auto fc = test_support::image_case(rng, 2, 64, 64, 4, 8, 8, 8, 8, true,
                                           naive::BaselineLayout::per_input);
  const auto grid = fc.grid();
  const std::int64_t count = fc.stream_size();  // 128 slots of 2^14 floats: 8 threads
  const std::int64_t floats = count * fc.sample();
  const auto expected_fill = fc.expected(0, count);
  const auto expected_strided = fc.expected(1, 64, 2);
  const std::int64_t n = 64, side = 128;  // 2^20 map values: 4 threads
  const auto map_grid = test_support::make_grid({side, side}, {8, 8}, {4, 4}, {true, true});
  const auto deltas = test_support::random_doubles(rng, n * map_grid.num_windows());
  const auto expected_maps = naive::accumulate(
      deltas, n, naive::make_grid({side, side}, {8, 8}, {4, 4}, {true, true}), false);
  std::vector<float> batch(static_cast<std::size_t>(floats));
  std::vector<float> maps(static_cast<std::size_t>(n * side * side));
  fastocclusion::IncrementalFillState state;

  ParkedThreads parked;
  if (!limit_tasks()) return kChildCannotLimit;
  for (int attempt = 0; attempt < kTries; ++attempt) {
    const int started = parked.top_up(kMostParked);
    if (started >= kMostParked) return kChildLimitIgnored;
    if (started < spare) {
      if (attempt + 1 == kTries) return kChildTooTight;
      let_the_kernel_reap();
      continue;
    }
    parked.release(spare);
    let_the_kernel_reap();
    if (!arrangement_holds(spare)) continue;  // slots were freed meanwhile: park them too

    const auto seen = visits(1000, work_for(64));
    if (std::count(seen.begin(), seen.end(), 1) != 1000) return 11;
    std::fill(batch.begin(), batch.end(), -1.0f);
    fastocclusion::fill_occluded_batch(fc.inputs.data(), fc.n, grid, fc.core_baseline(), 0, count,
                                       batch.data());
    if (!test_support::same_floats(batch.data(), expected_fill.data(), floats)) return 12;
    fastocclusion::fill_occluded_batch(fc.inputs.data(), fc.n, grid, fc.core_baseline(), 1, 64,
                                       batch.data(), 2);
    if (!test_support::same_floats(batch.data(), expected_strided.data(), 64 * fc.sample())) return 13;
    // Incremental: slots hold input 0, then move to input 1 (a whole-sample copy each).
    state.reset();
    fastocclusion::fill_occluded_batch_incremental(fc.inputs.data(), fc.n, grid, fc.core_baseline(),
                                                   0, 64, batch.data(), 64, state);
    fastocclusion::fill_occluded_batch_incremental(fc.inputs.data(), fc.n, grid, fc.core_baseline(),
                                                   64, 64, batch.data(), 64, state);
    if (!test_support::same_floats(batch.data(), expected_fill.data() + 64 * fc.sample(),
                                   64 * fc.sample())) {
      return 14;
    }
    fastocclusion::accumulate_window_deltas(deltas.data(), n, map_grid, 0,
                                            fastocclusion::Reduction::sum, maps.data());
    for (std::size_t i = 0; i < maps.size(); ++i) {
      if (std::abs(maps[i] - expected_maps[i]) > 1e-5 * (1.0 + std::abs(expected_maps[i]))) return 15;
    }
    // The results are right whatever happened; the run counts only if the limit still
    // allowed no more than `spare` threads after it.
    if (arrangement_holds(spare)) return 0;
  }
  return kChildDisturbed;
}

void expect_child_succeeds(int spare) {
  const int code = run_in_child([spare] { return thread_start_failure_child(spare); });
  switch (code) {
    case kChildCannotLimit:
      GTEST_SKIP() << "cannot leave root or set RLIMIT_NPROC in a child process here";
    case kChildLimitIgnored:
      GTEST_SKIP() << "RLIMIT_NPROC=64 does not stop new threads here (" << kMostParked
                   << " started): the test would prove nothing";
    case kChildTooTight:
      GTEST_SKIP() << "other processes of the child's user (no own uid could be taken) hold its "
                   << "task slots: fewer than " << spare
                   << " threads could start under RLIMIT_NPROC=64 in " << kTries << " tries";
    case kChildDisturbed:
      GTEST_SKIP() << "other processes of the child's user (no own uid could be taken) kept "
                   << "freeing task slots: the arrangement of " << spare
                   << " startable threads did not hold through a run in " << kTries << " tries";
    default:
      break;
  }
  EXPECT_EQ(code, 0) << "11: parallel_for visits, 12: fill, 13: strided fill, 14: incremental "
                        "fill, 15: accumulation; 1, 2, -1: the child failed";
}

TEST(ParallelFor, NoThreadCanStartEverythingRunsOnTheCallingThread) { expect_child_succeeds(0); }

TEST(ParallelFor, SomeThreadsStartTheRestOfTheChunksRunOnThem) {
  // The defect this guards: threads already started were left joinable when a later one
  // failed to start, and std::terminate ended the process.
  expect_child_succeeds(2);
}

}  // namespace
