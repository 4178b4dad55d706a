#include "fastocclusion/fill.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>

#include "box_runs.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/parallel.hpp"

namespace fastocclusion {
namespace fill_detail {

// Stream index s -> (input, window): the grid's stream (s / K, s % K), or the pairs given.
// (Outside the anonymous namespace: the fills' lambdas capture it.)
struct PairOf {
  const StreamPairs& stream;
  std::int64_t windows;

  std::pair<std::int64_t, std::int64_t> operator()(std::int64_t s) const {
    if (stream.pairs != nullptr) return {stream.pairs[2 * s], stream.pairs[2 * s + 1]};
    return {s / windows, s % windows};
  }
};

}  // namespace fill_detail

using fill_detail::PairOf;

namespace {

// Copies `length` values. Short runs (a window row of a channels-first image: 16 floats)
// are copied by a plain loop, which the compiler vectorises: a memcpy call costs more than
// the copy there.
template <typename T>
inline void copy_values(T* dst, const T* src, std::int64_t length) {
  if (length <= 64) {
    for (std::int64_t i = 0; i < length; ++i) dst[i] = src[i];
  } else {
    std::memcpy(dst, src, static_cast<std::size_t>(length) * sizeof(T));
  }
}

// Sets window k of `dst` (a copy of input n, `src`) to the baseline.
template <typename T>
void write_window(T* dst, const T* src, const WindowGrid& g, std::int64_t sample,
                  const BasicBaseline<T>& b, std::int64_t n, std::int64_t k) {
  const T* source = b.kind == BaselineKind::per_input ? b.values + n * sample : b.values;
  const bool per_window =
      b.kind == BaselineKind::per_window || b.kind == BaselineKind::per_window_scale;
  const T value = per_window ? b.values[n * g.num_windows() + k] : b.values[0];
  static_cast<void>(src);  // read by the computing kinds only (float and double)
  for_each_run(g, g.window_box(k),
               [&](std::int64_t offset, std::int64_t length, std::int64_t window_offset) {
                 switch (b.kind) {
                   case BaselineKind::scalar:
                   case BaselineKind::per_window:
                     std::fill_n(dst + offset, length, value);
                     break;
                   case BaselineKind::per_window_scale:
                     if constexpr (std::is_floating_point_v<T>) {  // else refused earlier
                       for (std::int64_t i = 0; i < length; ++i) {
                         dst[offset + i] = src[offset + i] * value;
                       }
                     }
                     break;
                   case BaselineKind::window_mask:
                     static_cast<void>(window_offset);
                     if constexpr (std::is_floating_point_v<T>) {
                       const T* mask = b.values + window_offset;
                       for (std::int64_t i = 0; i < length; ++i) {
                         dst[offset + i] = src[offset + i] * mask[i];
                       }
                     }
                     break;
                   case BaselineKind::per_sample:
                   case BaselineKind::per_input:
                   default:
                     copy_values(dst + offset, source + offset, length);
                 }
               });
}

// Copies window k's region of `src` back into `dst`.
template <typename T>
void restore_window(T* dst, const T* src, const WindowGrid& g, std::int64_t k) {
  for_each_run(g, g.window_box(k), [&](std::int64_t offset, std::int64_t length, std::int64_t) {
    copy_values(dst + offset, src + offset, length);
  });
}

std::int64_t window_volume(const WindowGrid& g) {
  std::int64_t volume = 1;
  for (int d = 0; d < g.rank; ++d) volume *= g.axes[d].window;  // <= sample_size
  return volume;
}

}  // namespace

bool baseline_computes(BaselineKind kind) noexcept {
  return kind == BaselineKind::per_window_scale || kind == BaselineKind::window_mask;
}

void check_baseline_type(BaselineKind kind, bool floating, std::size_t value_bytes) {
  FASTOCCLUSION_EXPECTS(floating || !baseline_computes(kind),
                        "baseline: this kind multiplies the inputs, expected float32 or float64 "
                        "inputs, not " << value_bytes << "-byte integer or half-precision ones");
}

std::int64_t baseline_size(BaselineKind kind, std::int64_t n, const WindowGrid& grid) noexcept {
  switch (kind) {
    case BaselineKind::per_sample: return grid.sample_size();
    case BaselineKind::per_input: return n * grid.sample_size();
    case BaselineKind::per_window:
    case BaselineKind::per_window_scale: return n * grid.num_windows();
    case BaselineKind::window_mask: return window_volume(grid);
    case BaselineKind::scalar:
    default: return 1;
  }
}

template <typename T>
void window_means(const T* inputs, std::int64_t n, const WindowGrid& grid, T* out) {
  static_assert(std::is_floating_point_v<T>, "window means are float or double");
  FASTOCCLUSION_EXPECTS(n >= 1, "inputs: n=" << n << " is invalid, expected >= 1 input");
  FASTOCCLUSION_EXPECTS(inputs != nullptr && out != nullptr, "inputs and out must not be null");
  check_window_grid(grid);
  const std::int64_t sample = grid.sample_size(), windows = grid.num_windows();
  std::int64_t total = 0, values = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(n, windows, total) &&
                            checked_multiply(n, sample, values),
                        "inputs: " << n << " inputs of " << windows << " windows overflow int64");
  std::int64_t work = 0;
  if (!checked_multiply(total, window_volume(grid), work)) work = values;  // saturate: large
  parallel_for(total, work, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t s = begin; s < end; ++s) {
      const T* src = inputs + (s / windows) * sample;
      const Box box = grid.window_box(s % windows);
      double sum = 0.0;
      std::int64_t volume = 1;
      for (int d = 0; d < grid.rank; ++d) volume *= box.end[d] - box.begin[d];
      for_each_run(grid, box, [&](std::int64_t offset, std::int64_t length, std::int64_t) {
        for (std::int64_t i = 0; i < length; ++i) sum += static_cast<double>(src[offset + i]);
      });
      out[s] = static_cast<T>(sum / static_cast<double>(volume));
    }
  });
}

template void window_means<float>(const float*, std::int64_t, const WindowGrid&, float*);
template void window_means<double>(const double*, std::int64_t, const WindowGrid&, double*);

void check_fill_arguments(const void* inputs, std::int64_t n, const WindowGrid& grid,
                          bool baseline_present, std::int64_t start, std::int64_t count,
                          const void* batch, std::int64_t stride, const StreamPairs& stream) {
  FASTOCCLUSION_EXPECTS(n >= 1, "inputs: n=" << n << " is invalid, expected >= 1 input");
  check_window_grid(grid);
  std::int64_t total = 0, values = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(n, grid.sample_size(), values),
                        "inputs: " << n << " inputs of " << grid.sample_size()
                                   << " values overflow int64");
  FASTOCCLUSION_EXPECTS(checked_multiply(n, grid.num_windows(), total),
                        "inputs: " << n << " inputs of " << grid.num_windows()
                                   << " windows overflow int64");
  FASTOCCLUSION_EXPECTS(stride >= 1, "stride=" << stride << " is invalid, expected >= 1");
  if (stream.pairs != nullptr || stream.count != 0) {
    FASTOCCLUSION_EXPECTS(stream.count >= 0 && (stream.pairs != nullptr || stream.count == 0),
                          "pairs: " << stream.count << " pairs at a null pointer is invalid");
    total = stream.count;
  }
  FASTOCCLUSION_EXPECTS(start >= 0 && start <= total,
                        "start=" << start << " is outside the stream of " << total
                                 << " (input, window) pairs, expected 0 <= start <= " << total);
  // The last slot's index, start + (count - 1) * stride, must be < total (no overflow).
  const std::int64_t most = start < total ? (total - 1 - start) / stride + 1 : 0;
  FASTOCCLUSION_EXPECTS(count >= 0 && count <= most,
                        "count=" << count << " from start=" << start << " with stride=" << stride
                                 << " runs past the end of the stream of " << total
                                 << " pairs, expected <= " << most);
  FASTOCCLUSION_EXPECTS(checked_multiply(count, grid.sample_size(), values),
                        "batch: " << count << " samples of " << grid.sample_size()
                                  << " values overflow int64");
  // The pairs this call reads (its slots'), not the whole list: a sweep of P pairs in P /
  // batch calls checks each pair once.
  if (stream.pairs != nullptr) {
    const std::int64_t windows = grid.num_windows();
    for (std::int64_t j = 0; j < count; ++j) {
      const std::int64_t s = start + j * stride;
      const std::int64_t input = stream.pairs[2 * s], k = stream.pairs[2 * s + 1];
      FASTOCCLUSION_EXPECTS(input >= 0 && input < n && k >= 0 && k < windows,
                            "pairs[" << s << "]=(" << input << ", " << k
                                     << ") is invalid, expected an input in [0, " << n
                                     << ") and a window in [0, " << windows << ")");
    }
  }
  if (count > 0) {
    FASTOCCLUSION_EXPECTS(inputs != nullptr && batch != nullptr && baseline_present,
                          "inputs, baseline and batch must not be null");
  }
}

template <typename T>
void fill_occluded_batch(const T* inputs, std::int64_t n, const WindowGrid& grid,
                         const BasicBaseline<T>& baseline, std::int64_t start, std::int64_t count,
                         T* batch, std::int64_t stride, const StreamPairs& stream) {
  check_fill_arguments(inputs, n, grid, baseline.values != nullptr, start, count, batch, stride,
                       stream);
  check_baseline_type(baseline.kind, std::is_floating_point_v<T>, sizeof(T));
  const std::int64_t sample = grid.sample_size();
  const PairOf pair_of{stream, grid.num_windows()};
  const auto sample_bytes = static_cast<std::size_t>(sample) * sizeof(T);
  parallel_for(count, count * sample, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t j = begin; j < end; ++j) {
      const auto [input, k] = pair_of(start + j * stride);
      T* dst = batch + j * sample;
      const T* src = inputs + input * sample;
      std::memcpy(dst, src, sample_bytes);
      write_window(dst, src, grid, sample, baseline, input, k);
    }
  });
}

void IncrementalFillState::reset() noexcept {
  slot_input_.clear();
  slot_window_.clear();
  inputs_ = nullptr;
  batch_ = nullptr;
  baseline_values_ = nullptr;
}

bool IncrementalFillState::begin(const void* inputs, std::int64_t n, const WindowGrid& grid,
                                 BaselineKind baseline_kind, const void* baseline_values,
                                 std::uint64_t baseline_scalar_bits, const void* batch,
                                 std::int64_t capacity, std::size_t value_bytes) {
  const bool same_session =
      inputs_ == inputs && batch_ == batch && baseline_values_ == baseline_values &&
      baseline_kind_ == baseline_kind &&
      // Bits, so that a NaN scalar is not a change at every call.
      baseline_scalar_bits_ == baseline_scalar_bits && value_bytes_ == value_bytes && n_ == n &&
      grid_ == grid && static_cast<std::int64_t>(slot_input_.size()) == capacity;
  if (same_session) return true;
  slot_input_.assign(static_cast<std::size_t>(capacity), -1);
  slot_window_.assign(static_cast<std::size_t>(capacity), -1);
  inputs_ = inputs;
  batch_ = batch;
  baseline_values_ = baseline_values;
  baseline_kind_ = baseline_kind;
  baseline_scalar_bits_ = baseline_scalar_bits;
  value_bytes_ = value_bytes;
  n_ = n;
  grid_ = grid;
  return false;
}

template <typename T>
void fill_occluded_batch_incremental(const T* inputs, std::int64_t n, const WindowGrid& grid,
                                     const BasicBaseline<T>& baseline, std::int64_t start,
                                     std::int64_t count, T* batch, std::int64_t capacity,
                                     IncrementalFillState& state, std::int64_t stride,
                                     const StreamPairs& stream) {
  check_fill_arguments(inputs, n, grid, baseline.values != nullptr, start, count, batch, stride,
                       stream);
  check_baseline_type(baseline.kind, std::is_floating_point_v<T>, sizeof(T));
  std::int64_t values = 0;
  FASTOCCLUSION_EXPECTS(capacity >= 1 && capacity >= count &&
                            checked_multiply(capacity, grid.sample_size(), values),
                        "batch capacity=" << capacity << " is invalid, expected >= max(1, count="
                                          << count << ") and a buffer within int64");
  // The CPU baseline is read through its pointer (a scalar too): no scalar to compare.
  state.begin(inputs, n, grid, baseline.kind, baseline.values, 0, batch, capacity, sizeof(T));
  const std::int64_t sample = grid.sample_size();
  const PairOf pair_of{stream, grid.num_windows()};
  const auto sample_bytes = static_cast<std::size_t>(sample) * sizeof(T);
  std::int64_t* slot_input = state.slot_inputs();
  std::int64_t* slot_window = state.slot_windows();
  // Work estimate: a slot that changes input copies a whole sample, the others ~2 window
  // volumes; small incremental batches stay on the calling thread.
  const std::int64_t volume = window_volume(grid);
  std::int64_t work = 0;
  for (std::int64_t j = 0; j < count; ++j) {
    work += slot_input[j] == pair_of(start + j * stride).first ? 2 * volume : sample;
  }
  parallel_for(count, work, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t j = begin; j < end; ++j) {
      const auto [input, k] = pair_of(start + j * stride);
      T* dst = batch + j * sample;
      const T* src = inputs + input * sample;
      if (slot_input[j] == input) {
        if (slot_window[j] != k) {
          restore_window(dst, src, grid, slot_window[j]);
          write_window(dst, src, grid, sample, baseline, input, k);
        }
      } else {
        std::memcpy(dst, src, sample_bytes);
        write_window(dst, src, grid, sample, baseline, input, k);
      }
      slot_input[j] = input;
      slot_window[j] = k;
    }
  });
}

// The element types of the fills (fill.hpp, "Element types").
#define FASTOCCLUSION_FILL_TYPE(T)                                                              \
  template void fill_occluded_batch<T>(const T*, std::int64_t, const WindowGrid&,             \
                                       const BasicBaseline<T>&, std::int64_t, std::int64_t, T*, \
                                       std::int64_t, const StreamPairs&);                      \
  template void fill_occluded_batch_incremental<T>(                                            \
      const T*, std::int64_t, const WindowGrid&, const BasicBaseline<T>&, std::int64_t,        \
      std::int64_t, T*, std::int64_t, IncrementalFillState&, std::int64_t, const StreamPairs&);
FASTOCCLUSION_FILL_TYPE(float)
FASTOCCLUSION_FILL_TYPE(double)
FASTOCCLUSION_FILL_TYPE(std::uint8_t)
FASTOCCLUSION_FILL_TYPE(std::uint16_t)
FASTOCCLUSION_FILL_TYPE(std::uint32_t)
FASTOCCLUSION_FILL_TYPE(std::uint64_t)
#undef FASTOCCLUSION_FILL_TYPE

}  // namespace fastocclusion
