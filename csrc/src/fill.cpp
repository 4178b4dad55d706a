#include "fastocclusion/fill.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "fastocclusion/errors.hpp"
#include "fastocclusion/parallel.hpp"

namespace fastocclusion {
namespace {

// Sets patch k of `dst` (a copy of input n) to the baseline.
inline void write_patch(float* dst, const InputShape& s, const PatchGrid& g, const Baseline& b,
                        std::int64_t n, std::int64_t k) {
  const std::int64_t pi = k / g.cols.count, pj = k % g.cols.count;
  const std::int64_t r0 = g.rows.anchor(pi), r1 = r0 + g.rows.extent(pi);
  const std::int64_t c0 = g.cols.anchor(pj), ew = g.cols.extent(pj);
  const std::int64_t row_len = ew * s.c;
  const auto row_bytes = static_cast<std::size_t>(row_len) * sizeof(float);
  for (std::int64_t r = r0; r < r1; ++r) {
    const std::int64_t offset = (r * s.w + c0) * s.c;
    float* out = dst + offset;
    switch (b.kind) {
      case BaselineKind::scalar:
        std::fill_n(out, row_len, b.values[0]);
        break;
      case BaselineKind::per_channel:
        for (std::int64_t x = 0; x < ew; ++x) {
          std::memcpy(out + x * s.c, b.values, static_cast<std::size_t>(s.c) * sizeof(float));
        }
        break;
      case BaselineKind::per_image:
        std::memcpy(out, b.values + offset, row_bytes);
        break;
      case BaselineKind::per_input:
        std::memcpy(out, b.values + n * s.image_size() + offset, row_bytes);
        break;
    }
  }
}

// Copies patch k's region of `src` back into `dst`.
inline void restore_patch(float* dst, const float* src, const InputShape& s, const PatchGrid& g,
                          std::int64_t k) {
  const std::int64_t pi = k / g.cols.count, pj = k % g.cols.count;
  const std::int64_t r0 = g.rows.anchor(pi), r1 = r0 + g.rows.extent(pi);
  const std::int64_t c0 = g.cols.anchor(pj);
  const auto row_bytes = static_cast<std::size_t>(g.cols.extent(pj) * s.c) * sizeof(float);
  for (std::int64_t r = r0; r < r1; ++r) {
    const std::int64_t offset = (r * s.w + c0) * s.c;
    std::memcpy(dst + offset, src + offset, row_bytes);
  }
}

}  // namespace

void check_fill_arguments(const float* inputs, const InputShape& shape, const PatchGrid& grid,
                          bool baseline_present, std::int64_t start, std::int64_t count,
                          const float* batch, std::int64_t stride) {
  validate_shape(shape, "inputs");
  FASTOCCLUSION_EXPECTS(grid.height() == shape.h && grid.width() == shape.w,
                        "patch grid is for a (" << grid.height() << ", " << grid.width()
                                                << ") plane, but inputs are (" << shape.h
                                                << ", " << shape.w << ")");
  FASTOCCLUSION_EXPECTS(stride >= 1, "stride=" << stride << " is invalid, expected >= 1");
  // The stream length n * K, checked: a grid may be built by hand, and even one from
  // make_patch_grid (K fits int64) times n need not fit.
  std::int64_t patches = 0, total = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(grid.rows.count, grid.cols.count, patches) &&
                            checked_multiply(shape.n, patches, total),
                        "inputs: n=" << shape.n << " inputs of " << grid.rows.count << " x "
                                     << grid.cols.count
                                     << " patches: the (input, patch) stream overflows int64");
  FASTOCCLUSION_EXPECTS(start >= 0 && start <= total,
                        "start=" << start << " is outside the stream of " << total
                                 << " (input, patch) pairs, expected 0 <= start <= " << total);
  if (stride == 1) {
    FASTOCCLUSION_EXPECTS(count >= 0 && count <= total - start,
                          "count=" << count << " from start=" << start << " runs past the end of "
                                   << "the stream of " << total << " pairs, expected <= "
                                   << total - start);
  } else {
    // The last slot's index, start + (count - 1) * stride, must be < total (no overflow).
    const std::int64_t most = start < total ? (total - 1 - start) / stride + 1 : 0;
    FASTOCCLUSION_EXPECTS(count >= 0 && count <= most,
                          "count=" << count << " from start=" << start << " with stride=" << stride
                                   << " runs past the end of the stream of " << total
                                   << " pairs, expected <= " << most);
  }
  // The batch holds count images: count * h*w*c floats (and their bytes) must fit int64.
  // validate_shape bounded the image size by int64 max / 8 / n, not by count.
  std::int64_t batch_floats = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(count, shape.image_size(), batch_floats) &&
                            batch_floats <= std::numeric_limits<std::int64_t>::max() / 8,
                        "count=" << count << " samples of " << shape.image_size()
                                 << " floats each: the batch is too large");
  if (count > 0) {
    FASTOCCLUSION_EXPECTS(inputs != nullptr && batch != nullptr && baseline_present,
                          "inputs, baseline and batch must not be null");
  }
}

void fill_occluded_batch(const float* inputs, const InputShape& shape, const PatchGrid& grid,
                         const Baseline& baseline, std::int64_t start, std::int64_t count,
                         float* batch, std::int64_t stride) {
  check_fill_arguments(inputs, shape, grid, baseline.values != nullptr, start, count, batch,
                       stride);
  const std::int64_t image = shape.image_size();
  const std::int64_t patches = grid.num_patches();
  const auto image_bytes = static_cast<std::size_t>(image) * sizeof(float);
  parallel_for(count, count * image, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t j = begin; j < end; ++j) {
      const std::int64_t s = start + j * stride;
      const std::int64_t n = s / patches;
      float* dst = batch + j * image;
      std::memcpy(dst, inputs + n * image, image_bytes);
      write_patch(dst, shape, grid, baseline, n, s % patches);
    }
  });
}

void IncrementalFillState::reset() noexcept {
  slot_input_.clear();
  slot_patch_.clear();
  inputs_ = nullptr;
  batch_ = nullptr;
  baseline_values_ = nullptr;
}

bool IncrementalFillState::begin(const float* inputs, const InputShape& shape,
                                 const PatchGrid& grid, BaselineKind baseline_kind,
                                 const float* baseline_values, float baseline_scalar,
                                 const float* batch, std::int64_t capacity) {
  const std::int64_t rows[3] = {grid.rows.patch, grid.rows.stride, grid.rows.count};
  const std::int64_t cols[3] = {grid.cols.patch, grid.cols.stride, grid.cols.count};
  const bool same_session =
      inputs_ == inputs && batch_ == batch && baseline_values_ == baseline_values &&
      baseline_kind_ == baseline_kind &&
      // Bitwise, so that a NaN scalar is not a change at every call.
      std::memcmp(&baseline_scalar_, &baseline_scalar, sizeof(float)) == 0 &&
      shape_.n == shape.n && shape_.h == shape.h && shape_.w == shape.w && shape_.c == shape.c &&
      std::equal(rows, rows + 3, grid_rows_) && std::equal(cols, cols + 3, grid_cols_) &&
      static_cast<std::int64_t>(slot_input_.size()) == capacity;
  if (same_session) return true;
  slot_input_.assign(static_cast<std::size_t>(capacity), -1);
  slot_patch_.assign(static_cast<std::size_t>(capacity), -1);
  inputs_ = inputs;
  batch_ = batch;
  baseline_values_ = baseline_values;
  baseline_kind_ = baseline_kind;
  baseline_scalar_ = baseline_scalar;
  shape_ = shape;
  std::copy(rows, rows + 3, grid_rows_);
  std::copy(cols, cols + 3, grid_cols_);
  return false;
}

void fill_occluded_batch_incremental(const float* inputs, const InputShape& shape,
                                     const PatchGrid& grid, const Baseline& baseline,
                                     std::int64_t start, std::int64_t count, float* batch,
                                     std::int64_t capacity, IncrementalFillState& state,
                                     std::int64_t stride) {
  check_fill_arguments(inputs, shape, grid, baseline.values != nullptr, start, count, batch,
                       stride);
  FASTOCCLUSION_EXPECTS(capacity >= 1 && capacity >= count,
                        "batch capacity=" << capacity << " is invalid, expected >= max(1, count="
                                          << count << ")");
  // The CPU baseline is read through its pointer (a scalar too): no scalar to compare.
  state.begin(inputs, shape, grid, baseline.kind, baseline.values, 0.0f, batch, capacity);
  const std::int64_t image = shape.image_size();
  const std::int64_t patches = grid.num_patches();
  const auto image_bytes = static_cast<std::size_t>(image) * sizeof(float);
  std::int64_t* slot_input = state.slot_inputs();
  std::int64_t* slot_patch = state.slot_patches();
  // Work estimate: a slot that changes input copies a whole image, the others ~2 patch
  // areas; small incremental batches stay on the calling thread.
  const std::int64_t patch_area = grid.rows.patch * grid.cols.patch * shape.c;
  std::int64_t work = 0;
  for (std::int64_t j = 0; j < count; ++j) {
    work += slot_input[j] == (start + j * stride) / patches ? 2 * patch_area : image;
  }
  parallel_for(count, work, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t j = begin; j < end; ++j) {
      const std::int64_t s = start + j * stride;
      const std::int64_t n = s / patches;
      const std::int64_t k = s % patches;
      float* dst = batch + j * image;
      const float* src = inputs + n * image;
      if (slot_input[j] == n) {
        if (slot_patch[j] != k) {
          restore_patch(dst, src, shape, grid, slot_patch[j]);
          write_patch(dst, shape, grid, baseline, n, k);
        }
      } else {
        std::memcpy(dst, src, image_bytes);
        write_patch(dst, shape, grid, baseline, n, k);
      }
      slot_input[j] = n;
      slot_patch[j] = k;
    }
  });
}

}  // namespace fastocclusion
