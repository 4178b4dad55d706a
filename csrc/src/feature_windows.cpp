#include "fastocclusion/feature_windows.hpp"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

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

// "(a, b, c)" of the first `axes` sizes.
std::string sizes_string(const AxisSizes& size, int axes) {
  std::ostringstream text;
  text << "(";
  for (int a = 0; a < axes; ++a) text << (a ? ", " : "") << size[a];
  text << ")";
  return text.str();
}

// A map or a box set over kMaxMapAxes axes: the given axes last, length 1 before them.
AxisSizes padded_sizes(const AxisSizes& size, int axes) {
  AxisSizes out{};
  out.fill(1);
  for (int a = 0; a < axes; ++a) out[kMaxMapAxes - axes + a] = size[a];
  return out;
}

// count origins of `axes` entries each as kMaxMapAxes entries (zeros before them).
std::vector<std::int64_t> padded_origins(const std::int64_t* origins, std::int64_t count,
                                         int axes) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(count * kMaxMapAxes), 0);
  for (std::int64_t j = 0; j < count; ++j) {
    for (int a = 0; a < axes; ++a) {
      out[static_cast<std::size_t>(j * kMaxMapAxes + kMaxMapAxes - axes + a)] =
          origins[j * axes + a];
    }
  }
  return out;
}

// The values of one map (C * prod(size)); throws unless the shape is valid and fits int64.
std::int64_t checked_map_size(const MapShape& shape) {
  FASTOCCLUSION_EXPECTS(shape.axes >= 1 && shape.axes <= kMaxMapAxes,
                        "maps: " << shape.axes << " axes besides the channels is invalid, "
                                 << "expected 1 to " << kMaxMapAxes);
  bool valid = shape.channels >= 1;
  for (int a = 0; a < shape.axes; ++a) valid = valid && shape.size[a] >= 1;
  FASTOCCLUSION_EXPECTS(valid, "maps: shape (" << shape.channels << ", "
                                               << sizes_string(shape.size, shape.axes)
                                               << ") is invalid, expected sizes >= 1");
  std::int64_t size = shape.channels;
  for (int a = 0; a < shape.axes; ++a) {
    FASTOCCLUSION_EXPECTS(checked_multiply(size, shape.size[a], size),
                          "maps: a map of shape (" << shape.channels << ", "
                                                   << sizes_string(shape.size, shape.axes)
                                                   << ") overflows int64");
  }
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

// The values of one slot's box set (C * prod(size)); throws unless sizes are >= 1.
std::int64_t checked_box_size(const SlotBoxes& boxes, const MapShape& shape, const char* what) {
  bool valid = true;
  for (int a = 0; a < shape.axes; ++a) valid = valid && boxes.size[a] >= 1;
  FASTOCCLUSION_EXPECTS(valid, what << ": size " << sizes_string(boxes.size, shape.axes)
                                    << " is invalid, expected sizes >= 1");
  std::int64_t size = shape.channels;
  for (int a = 0; a < shape.axes; ++a) {
    FASTOCCLUSION_EXPECTS(checked_multiply(size, boxes.size[a], size),
                          what << ": boxes of size " << sizes_string(boxes.size, shape.axes)
                               << " overflow int64");
  }
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
  bool fits = true;
  for (int a = 0; a < shape.axes; ++a) fits = fits && patch_boxes.size[a] <= shape.size[a];
  FASTOCCLUSION_EXPECTS(fits, "patches: size " << sizes_string(patch_boxes.size, shape.axes)
                                               << " is larger than the map "
                                               << sizes_string(shape.size, shape.axes));
  for (std::int64_t j = 0; j < count; ++j) {
    AxisSizes origin{};
    bool inside = true;
    for (int a = 0; a < shape.axes; ++a) {
      origin[a] = patch_boxes.origins[j * shape.axes + a];
      inside = inside && origin[a] >= 0 && origin[a] <= shape.size[a] - patch_boxes.size[a];
    }
    FASTOCCLUSION_EXPECTS(inside, "patch box " << j << " at " << sizes_string(origin, shape.axes)
                                               << " is invalid, expected a box inside the map");
  }
}

// One row-and-column plane of one gathered window (see gather_windows): the map plane
// `plane` (height x width) read from (row0, col0) over (rows, cols), with `patch` (null:
// none) over its box (prow, pcol, pheight, pwidth).
template <typename T>
void gather_plane(const T* plane, std::int64_t height, std::int64_t width, std::int64_t row0,
                  std::int64_t col0, std::int64_t rows, std::int64_t cols, const T* patch,
                  std::int64_t prow, std::int64_t pcol, std::int64_t pheight, std::int64_t pwidth,
                  T pad, T* out) {
  // Columns of the window inside the map: [x0, x1) in window coordinates.
  const std::int64_t x0 = std::clamp<std::int64_t>(-col0, 0, cols);
  const std::int64_t x1 = std::clamp<std::int64_t>(width - col0, x0, cols);
  // Columns of the window inside the patch box (empty without a patch), within [x0, x1).
  std::int64_t p0 = x0, p1 = x0;
  if (patch != nullptr) {
    p0 = std::clamp<std::int64_t>(pcol - col0, x0, x1);
    p1 = std::clamp<std::int64_t>(pcol + pwidth - col0, p0, x1);
  }
  for (std::int64_t y = 0; y < rows; ++y) {
    T* dst = out + y * cols;
    const std::int64_t row = row0 + y;
    if (row < 0 || row >= height) {
      std::fill_n(dst, cols, pad);
      continue;
    }
    std::fill_n(dst, x0, pad);
    std::fill(dst + x1, dst + cols, pad);
    const T* src = plane + row * width;  // window column x is map column col0 + x
    if (patch == nullptr || row < prow || row >= prow + pheight || p0 == p1) {
      copy_values(dst + x0, src + (col0 + x0), x1 - x0);
      continue;
    }
    copy_values(dst + x0, src + (col0 + x0), p0 - x0);
    copy_values(dst + p1, src + (col0 + p1), x1 - p1);
    copy_values(dst + p0, patch + (row - prow) * pwidth + (col0 + p0 - pcol), p1 - p0);
  }
}

// One channel of one gathered window over the padded axes (depth, rows, columns): `map`
// the channel's (D, H, W) values, `origin`/`size` the window's, `patch` the channel's patch
// values (null: none) over the patch box `porigin`/`psize`.
template <typename T>
void gather_channel(const T* map, const AxisSizes& shape, const std::int64_t* origin,
                    const AxisSizes& size, const T* patch, const std::int64_t* porigin,
                    const AxisSizes& psize, T pad, T* out) {
  const std::int64_t plane = shape[1] * shape[2], window_plane = size[1] * size[2];
  const std::int64_t patch_plane = psize[1] * psize[2];
  for (std::int64_t z = 0; z < size[0]; ++z) {
    T* dst = out + z * window_plane;
    const std::int64_t depth = origin[0] + z;
    if (depth < 0 || depth >= shape[0]) {
      std::fill_n(dst, window_plane, pad);
      continue;
    }
    const bool in_patch =
        patch != nullptr && depth >= porigin[0] && depth < porigin[0] + psize[0];
    gather_plane(map + depth * plane, shape[1], shape[2], origin[1], origin[2], size[1], size[2],
                 in_patch ? patch + (depth - porigin[0]) * patch_plane : nullptr,
                 in_patch ? porigin[1] : 0, in_patch ? porigin[2] : 0, psize[1], psize[2], pad,
                 dst);
  }
}

// Copies box (origin, size) of every channel of `src` into `dst` (both maps of `shape`,
// padded axes).
template <typename T>
void copy_box(T* dst, const T* src, std::int64_t channels, const AxisSizes& shape,
              const std::int64_t* origin, const AxisSizes& size) {
  const std::int64_t plane = shape[1] * shape[2], volume = shape[0] * plane;
  for (std::int64_t c = 0; c < channels; ++c) {
    for (std::int64_t z = 0; z < size[0]; ++z) {
      for (std::int64_t y = 0; y < size[1]; ++y) {
        const std::int64_t at =
            c * volume + (origin[0] + z) * plane + (origin[1] + y) * shape[2] + origin[2];
        copy_values(dst + at, src + at, size[2]);
      }
    }
  }
}

// Writes a patch (C, *size) over box (origin, size) of map `dst` (padded axes).
template <typename T>
void write_patch(T* dst, const T* patch, std::int64_t channels, const AxisSizes& shape,
                 const std::int64_t* origin, const AxisSizes& size) {
  const std::int64_t plane = shape[1] * shape[2], volume = shape[0] * plane;
  for (std::int64_t c = 0; c < channels; ++c) {
    for (std::int64_t z = 0; z < size[0]; ++z) {
      for (std::int64_t y = 0; y < size[1]; ++y) {
        copy_values(dst + c * volume + (origin[0] + z) * plane + (origin[1] + y) * shape[2] +
                        origin[2],
                    patch + ((c * size[0] + z) * size[1] + y) * size[2], size[2]);
      }
    }
  }
}

}  // namespace

void check_gather_arguments(const void* maps, std::int64_t map_count, const MapShape& shape,
                            const std::int64_t* map_index, const SlotBoxes& windows,
                            bool with_patches, const SlotBoxes& patch_boxes, std::int64_t count,
                            const void* out) {
  check_shared(maps, map_count, shape, map_index, patch_boxes, with_patches, count, out);
  const std::int64_t window_size = checked_box_size(windows, shape, "windows");
  checked_slots(count, window_size, "out");
  if (with_patches) checked_slots(count, checked_box_size(patch_boxes, shape, "patches"), "patches");
  if (count == 0) return;
  FASTOCCLUSION_EXPECTS(windows.origins != nullptr, "window origins must not be null");
  for (int a = 0; a < shape.axes; ++a) {
    FASTOCCLUSION_EXPECTS(windows.size[a] <= kMaxOrigin,
                          "windows: size " << sizes_string(windows.size, shape.axes)
                                           << " is invalid, expected sizes <= 2^40");
  }
  for (std::int64_t j = 0; j < shape.axes * count; ++j) {
    FASTOCCLUSION_EXPECTS(windows.origins[j] >= -kMaxOrigin && windows.origins[j] <= kMaxOrigin,
                          "window origin " << windows.origins[j]
                                           << " is invalid, expected -2^40 to 2^40");
  }
}

void check_splice_arguments(const void* maps, std::int64_t map_count, const MapShape& shape,
                            const std::int64_t* map_index, const void* patches,
                            const SlotBoxes& boxes, std::int64_t count, const void* out,
                            std::int64_t capacity) {
  check_shared(maps, map_count, shape, map_index, boxes, true, count, out);
  const std::int64_t map_size = checked_map_size(shape);
  const std::int64_t patch_size = checked_box_size(boxes, shape, "patches");
  checked_slots(count, patch_size, "patches");
  FASTOCCLUSION_EXPECTS(capacity >= 1 && capacity >= count,
                        "out: capacity=" << capacity << " is invalid, expected >= max(1, count="
                                         << count << ")");
  checked_slots(capacity, map_size, "out");
  if (count > 0) FASTOCCLUSION_EXPECTS(patches != nullptr, "patches must not be null");
}

template <typename T>
void gather_windows(const T* maps, std::int64_t map_count, const MapShape& shape,
                    const std::int64_t* map_index, const SlotBoxes& windows, const T* patches,
                    const SlotBoxes& patch_boxes, T pad_value, std::int64_t count, T* out) {
  const bool with_patches = patches != nullptr;
  check_gather_arguments(maps, map_count, shape, map_index, windows, with_patches, patch_boxes,
                         count, out);
  if (count == 0) return;
  const std::int64_t window_size = checked_box_size(windows, shape, "windows");
  const std::int64_t total = count * window_size;
  const std::int64_t patch_size =
      with_patches ? checked_box_size(patch_boxes, shape, "patches") : 0;
  const AxisSizes map_axes = padded_sizes(shape.size, shape.axes);
  const AxisSizes window_axes = padded_sizes(windows.size, shape.axes);
  const AxisSizes patch_axes = padded_sizes(patch_boxes.size, shape.axes);
  const std::vector<std::int64_t> origins = padded_origins(windows.origins, count, shape.axes);
  const std::vector<std::int64_t> patch_origins =
      with_patches ? padded_origins(patch_boxes.origins, count, shape.axes)
                   : std::vector<std::int64_t>(static_cast<std::size_t>(count * kMaxMapAxes), 0);
  const std::int64_t channel_size = map_axes[0] * map_axes[1] * map_axes[2];
  const std::int64_t map_size = shape.channels * channel_size;
  const std::int64_t window_channel = window_size / shape.channels;
  const std::int64_t patch_channel = with_patches ? patch_size / shape.channels : 0;
  parallel_for(count * shape.channels, total, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t item = begin; item < end; ++item) {
      const std::int64_t j = item / shape.channels, c = item % shape.channels;
      const T* patch = with_patches ? patches + j * patch_size + c * patch_channel : nullptr;
      gather_channel(maps + map_index[j] * map_size + c * channel_size, map_axes,
                     origins.data() + j * kMaxMapAxes, window_axes, patch,
                     patch_origins.data() + j * kMaxMapAxes, patch_axes, pad_value,
                     out + item * window_channel);
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
                        const AxisSizes& patch_size, const void* out, std::int64_t capacity) {
  // Only the first `axes` sizes count: the others are compared as zeros.
  MapShape key = shape;
  AxisSizes patch_key{};
  for (int a = 0; a < kMaxMapAxes; ++a) {
    if (a >= shape.axes) key.size[a] = 0;
    if (a < shape.axes) patch_key[a] = patch_size[a];
  }
  const bool same_session = maps_ == maps && out_ == out && map_count_ == map_count &&
                            shape_.channels == key.channels && shape_.axes == key.axes &&
                            shape_.size == key.size && patch_size_ == patch_key &&
                            static_cast<std::int64_t>(slot_map_.size()) == capacity;
  if (same_session) return true;
  slot_map_.assign(static_cast<std::size_t>(capacity), -1);
  slot_origin_.assign(static_cast<std::size_t>(kMaxMapAxes * capacity), 0);
  maps_ = maps;
  out_ = out;
  map_count_ = map_count;
  shape_ = key;
  patch_size_ = patch_key;
  return false;
}

template <typename T>
void splice_windows(const T* maps, std::int64_t map_count, const MapShape& shape,
                    const std::int64_t* map_index, const T* patches, const SlotBoxes& boxes,
                    std::int64_t count, T* out, std::int64_t capacity, SpliceState* state) {
  check_splice_arguments(maps, map_count, shape, map_index, patches, boxes, count, out,
                         capacity);
  const std::int64_t map_size = checked_map_size(shape);
  const std::int64_t patch_size = checked_box_size(boxes, shape, "patches");
  std::int64_t* slot_map = nullptr;
  std::int64_t* slot_origin = nullptr;
  if (state != nullptr) {
    state->begin(maps, map_count, shape, boxes.size, out, capacity);
    slot_map = state->slot_maps();
    slot_origin = state->slot_origins();
  }
  const AxisSizes map_axes = padded_sizes(shape.size, shape.axes);
  const AxisSizes box_axes = padded_sizes(boxes.size, shape.axes);
  const std::vector<std::int64_t> origins =
      count > 0 ? padded_origins(boxes.origins, count, shape.axes) : std::vector<std::int64_t>();
  // Work estimate: a slot that keeps its map rewrites two boxes, the others a whole map.
  std::int64_t work = 0;
  for (std::int64_t j = 0; j < count; ++j) {
    work += slot_map != nullptr && slot_map[j] == map_index[j] ? 2 * patch_size : map_size;
  }
  parallel_for(count, work, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t j = begin; j < end; ++j) {
      const T* src = maps + map_index[j] * map_size;
      T* dst = out + j * map_size;
      const std::int64_t* origin = origins.data() + j * kMaxMapAxes;
      if (slot_map != nullptr && slot_map[j] == map_index[j]) {
        copy_box(dst, src, shape.channels, map_axes, slot_origin + j * kMaxMapAxes, box_axes);
      } else {
        std::memcpy(dst, src, static_cast<std::size_t>(map_size) * sizeof(T));
      }
      write_patch(dst, patches + j * patch_size, shape.channels, map_axes, origin, box_axes);
      if (slot_map != nullptr) {
        slot_map[j] = map_index[j];
        std::copy_n(origin, kMaxMapAxes, slot_origin + j * kMaxMapAxes);
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
