#include "fastocclusion/feature_windows.hpp"

#include <algorithm>
#include <cstring>

#include "fastocclusion/errors.hpp"
#include "fastocclusion/geometry.hpp"
#include "fastocclusion/parallel.hpp"

namespace fastocclusion {
namespace {

// The farthest a window origin may lie from a map (and the largest window side): far past
// any real map, and no index sum below can overflow.
constexpr std::int64_t kMaxOrigin = std::int64_t{1} << 40;

// Copies `length` values; short runs (a window row of a few values) by a plain loop, which
// the compiler vectorises: a memcpy call costs more than the copy there.
template <typename T>
inline void copy_values(T* dst, const T* src, std::int64_t length) {
  if (length <= 32) {
    for (std::int64_t i = 0; i < length; ++i) dst[i] = src[i];
  } else {
    std::memcpy(dst, src, static_cast<std::size_t>(length) * sizeof(T));
  }
}

// The floats of one map (C * H * W); throws unless the shape is valid and fits int64.
std::int64_t checked_map_size(const MapShape& shape) {
  FASTOCCLUSION_EXPECTS(shape.channels >= 1 && shape.height >= 1 && shape.width >= 1,
                        "maps: shape (" << shape.channels << ", " << shape.height << ", "
                                        << shape.width << ") is invalid, expected sizes >= 1");
  std::int64_t plane = 0, size = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(shape.height, shape.width, plane) &&
                            checked_multiply(plane, shape.channels, size),
                        "maps: a map of shape (" << shape.channels << ", " << shape.height
                                                 << ", " << shape.width << ") overflows int64");
  return size;
}

// count * per_slot within int64 (the values of `count` slots); throws naming `what`.
std::int64_t checked_slots(std::int64_t count, std::int64_t per_slot, const char* what) {
  std::int64_t total = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(count, per_slot, total),
                        what << ": " << count << " slots of " << per_slot
                             << " values overflow int64");
  return total;
}

// The values of one slot's box set (C * height * width); throws unless sizes are >= 1.
std::int64_t checked_box_size(const SlotBoxes& boxes, const MapShape& shape, const char* what) {
  FASTOCCLUSION_EXPECTS(boxes.height >= 1 && boxes.width >= 1,
                        what << ": size (" << boxes.height << ", " << boxes.width
                             << ") is invalid, expected sizes >= 1");
  std::int64_t plane = 0, size = 0;
  FASTOCCLUSION_EXPECTS(checked_multiply(boxes.height, boxes.width, plane) &&
                            checked_multiply(plane, shape.channels, size),
                        what << ": boxes of size (" << boxes.height << ", " << boxes.width
                             << ") overflow int64");
  return size;
}

// The arguments every kernel here shares: counts, indices, the patch boxes inside the map.
void check_shared(const void* maps, std::int64_t map_count, const MapShape& shape,
                  const std::int64_t* map_index, const SlotBoxes& patch_boxes, bool with_patches,
                  std::int64_t count, const void* out) {
  FASTOCCLUSION_EXPECTS(count >= 0, "count=" << count << " is invalid, expected >= 0");
  FASTOCCLUSION_EXPECTS(map_count >= 1, "maps: map_count=" << map_count
                                                           << " is invalid, expected >= 1");
  checked_slots(map_count, checked_map_size(shape), "maps");
  if (count == 0) return;
  FASTOCCLUSION_EXPECTS(maps != nullptr && map_index != nullptr && out != nullptr,
                        "maps, map_index and out must not be null");
  for (std::int64_t j = 0; j < count; ++j) {
    FASTOCCLUSION_EXPECTS(map_index[j] >= 0 && map_index[j] < map_count,
                          "map_index[" << j << "]=" << map_index[j] << " is invalid, expected 0 to "
                                       << map_count - 1);
  }
  if (!with_patches) return;
  FASTOCCLUSION_EXPECTS(patch_boxes.origins != nullptr, "patch origins must not be null");
  FASTOCCLUSION_EXPECTS(patch_boxes.height <= shape.height && patch_boxes.width <= shape.width,
                        "patches: size (" << patch_boxes.height << ", " << patch_boxes.width
                                          << ") is larger than the map (" << shape.height << ", "
                                          << shape.width << ")");
  for (std::int64_t j = 0; j < count; ++j) {
    const std::int64_t row = patch_boxes.origins[2 * j], col = patch_boxes.origins[2 * j + 1];
    FASTOCCLUSION_EXPECTS(row >= 0 && col >= 0 && row <= shape.height - patch_boxes.height &&
                              col <= shape.width - patch_boxes.width,
                          "patch box " << j << " at (" << row << ", " << col
                                       << ") is invalid, expected a box inside the map");
  }
}

// One channel plane of one gathered window (see gather_windows).
template <typename T>
void gather_plane(const T* plane, const MapShape& shape, std::int64_t row0, std::int64_t col0,
                  std::int64_t height, std::int64_t width, const T* patch, std::int64_t prow,
                  std::int64_t pcol, std::int64_t pheight, std::int64_t pwidth, T pad, T* out) {
  // Columns of the window inside the map: [x0, x1) in window coordinates.
  const std::int64_t x0 = std::clamp<std::int64_t>(-col0, 0, width);
  const std::int64_t x1 = std::clamp<std::int64_t>(shape.width - col0, x0, width);
  // Columns of the window inside the patch box (empty without a patch), within [x0, x1).
  std::int64_t p0 = x0, p1 = x0;
  if (patch != nullptr) {
    p0 = std::clamp<std::int64_t>(pcol - col0, x0, x1);
    p1 = std::clamp<std::int64_t>(pcol + pwidth - col0, p0, x1);
  }
  for (std::int64_t y = 0; y < height; ++y) {
    T* dst = out + y * width;
    const std::int64_t row = row0 + y;
    if (row < 0 || row >= shape.height) {
      std::fill_n(dst, width, pad);
      continue;
    }
    std::fill_n(dst, x0, pad);
    std::fill(dst + x1, dst + width, pad);
    const T* src = plane + row * shape.width;  // window column x is map column col0 + x
    if (patch == nullptr || row < prow || row >= prow + pheight || p0 == p1) {
      copy_values(dst + x0, src + (col0 + x0), x1 - x0);
      continue;
    }
    copy_values(dst + x0, src + (col0 + x0), p0 - x0);
    copy_values(dst + p0, patch + (row - prow) * pwidth + (col0 + p0 - pcol), p1 - p0);
    copy_values(dst + p1, src + (col0 + p1), x1 - p1);
  }
}

// Copies box (row, col, height, width) of every channel of `src` into `dst` (both maps).
template <typename T>
void copy_box(T* dst, const T* src, const MapShape& shape, std::int64_t row, std::int64_t col,
              std::int64_t height, std::int64_t width) {
  const std::int64_t plane = shape.height * shape.width;
  for (std::int64_t c = 0; c < shape.channels; ++c) {
    for (std::int64_t y = 0; y < height; ++y) {
      const std::int64_t at = c * plane + (row + y) * shape.width + col;
      copy_values(dst + at, src + at, width);
    }
  }
}

// Writes a patch (C, height, width) over box (row, col) of map `dst`.
template <typename T>
void write_patch(T* dst, const T* patch, const MapShape& shape, std::int64_t row,
                 std::int64_t col, std::int64_t height, std::int64_t width) {
  const std::int64_t plane = shape.height * shape.width;
  for (std::int64_t c = 0; c < shape.channels; ++c) {
    for (std::int64_t y = 0; y < height; ++y) {
      copy_values(dst + c * plane + (row + y) * shape.width + col,
                  patch + (c * height + y) * width, width);
    }
  }
}

}  // namespace

template <typename T>
void gather_windows(const T* maps, std::int64_t map_count, const MapShape& shape,
                    const std::int64_t* map_index, const SlotBoxes& windows, const T* patches,
                    const SlotBoxes& patch_boxes, T pad_value, std::int64_t count, T* out) {
  const bool with_patches = patches != nullptr;
  check_shared(maps, map_count, shape, map_index, patch_boxes, with_patches, count, out);
  const std::int64_t window_size = checked_box_size(windows, shape, "windows");
  const std::int64_t total = checked_slots(count, window_size, "out");
  const std::int64_t patch_size =
      with_patches ? checked_box_size(patch_boxes, shape, "patches") : 0;
  if (with_patches) checked_slots(count, patch_size, "patches");
  if (count == 0) return;
  FASTOCCLUSION_EXPECTS(windows.origins != nullptr, "window origins must not be null");
  FASTOCCLUSION_EXPECTS(windows.height <= kMaxOrigin && windows.width <= kMaxOrigin,
                        "windows: size (" << windows.height << ", " << windows.width
                                          << ") is invalid, expected sizes <= 2^40");
  for (std::int64_t j = 0; j < 2 * count; ++j) {
    FASTOCCLUSION_EXPECTS(windows.origins[j] >= -kMaxOrigin && windows.origins[j] <= kMaxOrigin,
                          "window origin " << windows.origins[j]
                                           << " is invalid, expected -2^40 to 2^40");
  }
  const std::int64_t map_size = shape.channels * shape.height * shape.width;
  const std::int64_t plane = shape.height * shape.width;
  const std::int64_t window_plane = windows.height * windows.width;
  const std::int64_t patch_plane = patch_boxes.height * patch_boxes.width;
  parallel_for(count * shape.channels, total, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t item = begin; item < end; ++item) {
      const std::int64_t j = item / shape.channels, c = item % shape.channels;
      const T* patch = with_patches ? patches + j * patch_size + c * patch_plane : nullptr;
      gather_plane(maps + map_index[j] * map_size + c * plane, shape, windows.origins[2 * j],
                   windows.origins[2 * j + 1], windows.height, windows.width, patch,
                   with_patches ? patch_boxes.origins[2 * j] : 0,
                   with_patches ? patch_boxes.origins[2 * j + 1] : 0, patch_boxes.height,
                   patch_boxes.width, pad_value, out + item * window_plane);
    }
  });
}

void SpliceState::reset() noexcept {
  slot_map_.clear();
  slot_origin_.clear();
  maps_ = nullptr;
  out_ = nullptr;
}

bool SpliceState::begin(const void* maps, std::int64_t map_count, const MapShape& shape,
                        std::int64_t patch_height, std::int64_t patch_width, const void* out,
                        std::int64_t capacity) {
  const bool same_session =
      maps_ == maps && out_ == out && map_count_ == map_count &&
      shape_.channels == shape.channels && shape_.height == shape.height &&
      shape_.width == shape.width && patch_height_ == patch_height &&
      patch_width_ == patch_width && static_cast<std::int64_t>(slot_map_.size()) == capacity;
  if (same_session) return true;
  slot_map_.assign(static_cast<std::size_t>(capacity), -1);
  slot_origin_.assign(static_cast<std::size_t>(2 * capacity), 0);
  maps_ = maps;
  out_ = out;
  map_count_ = map_count;
  shape_ = shape;
  patch_height_ = patch_height;
  patch_width_ = patch_width;
  return false;
}

template <typename T>
void splice_windows(const T* maps, std::int64_t map_count, const MapShape& shape,
                    const std::int64_t* map_index, const T* patches, const SlotBoxes& boxes,
                    std::int64_t count, T* out, std::int64_t capacity, SpliceState* state) {
  check_shared(maps, map_count, shape, map_index, boxes, true, count, out);
  const std::int64_t map_size = checked_map_size(shape);
  const std::int64_t patch_size = checked_box_size(boxes, shape, "patches");
  checked_slots(count, patch_size, "patches");
  FASTOCCLUSION_EXPECTS(capacity >= 1 && capacity >= count,
                        "out: capacity=" << capacity << " is invalid, expected >= max(1, count="
                                         << count << ")");
  checked_slots(capacity, map_size, "out");
  if (count > 0) FASTOCCLUSION_EXPECTS(patches != nullptr, "patches must not be null");
  std::int64_t* slot_map = nullptr;
  std::int64_t* slot_origin = nullptr;
  if (state != nullptr) {
    state->begin(maps, map_count, shape, boxes.height, boxes.width, out, capacity);
    slot_map = state->slot_maps();
    slot_origin = state->slot_origins();
  }
  // Work estimate: a slot that keeps its map rewrites two boxes, the others a whole map.
  std::int64_t work = 0;
  for (std::int64_t j = 0; j < count; ++j) {
    work += slot_map != nullptr && slot_map[j] == map_index[j] ? 2 * patch_size : map_size;
  }
  parallel_for(count, work, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t j = begin; j < end; ++j) {
      const T* src = maps + map_index[j] * map_size;
      T* dst = out + j * map_size;
      const std::int64_t row = boxes.origins[2 * j], col = boxes.origins[2 * j + 1];
      if (slot_map != nullptr && slot_map[j] == map_index[j]) {
        copy_box(dst, src, shape, slot_origin[2 * j], slot_origin[2 * j + 1], boxes.height,
                 boxes.width);
      } else {
        std::memcpy(dst, src, static_cast<std::size_t>(map_size) * sizeof(T));
      }
      write_patch(dst, patches + j * patch_size, shape, row, col, boxes.height, boxes.width);
      if (slot_map != nullptr) {
        slot_map[j] = map_index[j];
        slot_origin[2 * j] = row;
        slot_origin[2 * j + 1] = col;
      }
    }
  });
}

template void gather_windows<float>(const float*, std::int64_t, const MapShape&,
                                    const std::int64_t*, const SlotBoxes&, const float*,
                                    const SlotBoxes&, float, std::int64_t, float*);
template void gather_windows<double>(const double*, std::int64_t, const MapShape&,
                                     const std::int64_t*, const SlotBoxes&, const double*,
                                     const SlotBoxes&, double, std::int64_t, double*);
template void splice_windows<float>(const float*, std::int64_t, const MapShape&,
                                    const std::int64_t*, const float*, const SlotBoxes&,
                                    std::int64_t, float*, std::int64_t, SpliceState*);
template void splice_windows<double>(const double*, std::int64_t, const MapShape&,
                                     const std::int64_t*, const double*, const SlotBoxes&,
                                     std::int64_t, double*, std::int64_t, SpliceState*);

}  // namespace fastocclusion
