// Feature-map windows for exact incremental inference (design §8).
//
// An occluded sample's activations differ from its unoccluded input's activations only
// inside a box of each feature map that the occlusion window can reach. Incremental
// inference keeps the unoccluded activations (the "base" maps, one per input) and, per
// layer and per slot of a batch, a small patch: the layer's output over that slot's box.
// Two kernels move data between the two representations:
//
// * gather_windows: the input window a layer needs for each slot (its box plus the halo
//   of the kernel): read from the slot's base map with the slot's patch spliced in, and
//   padded outside the map (0 for convolutions, -inf for max pooling).
// * splice_windows: dense per-slot maps (a base map with the slot's patch spliced in), for
//   the layers that run in full on them. Incremental over a persistent buffer, as the
//   batch fill is: a slot that keeps its base map gets only its previous box restored and
//   its new patch written.
//
// Layouts: a map is a row-major channels-first (C, H, W) array of T (float or double);
// `maps` holds `map_count` of them back to back. A set of boxes of one common size gives
// slot j's box as rows [origins[2j], origins[2j] + height), columns [origins[2j + 1],
// origins[2j + 1] + width) of a map; origins are int64, `count` x 2, row-major. A patch set
// is `count` arrays (C, height, width), back to back.
#pragma once

#include <cstdint>
#include <vector>

namespace fastocclusion {

/// One channels-first feature map's shape.
struct MapShape {
  std::int64_t channels = 0;
  std::int64_t height = 0;
  std::int64_t width = 0;
};

/// Boxes of a common size, one per slot (see the layout above). `origins` may be null
/// only where the kernel says so.
struct SlotBoxes {
  const std::int64_t* origins = nullptr;
  std::int64_t height = 0;
  std::int64_t width = 0;
};

/// Writes `count` windows: out[j, c, y, x] for y < windows.height, x < windows.width is,
/// with (Y, X) = (windows.origins[2j] + y, windows.origins[2j + 1] + x):
///   pad_value                                  where (Y, X) is outside the map;
///   patches[j, c, Y - py, X - px]              where patches is not null and (Y, X) lies in
///                                              slot j's patch box, (py, px) its origin;
///   maps[map_index[j], c, Y, X]                elsewhere.
///
/// maps      : T, map_count * C * H * W, contiguous; not modified.
/// map_index : int64, count entries in [0, map_count) (the map each slot reads).
/// windows   : count origins (any int64: a window may reach past the map on every side), the
///             common window size >= 1.
/// patches   : T, count * C * patch_boxes.height * patch_boxes.width, or null (no patches;
///             patch_boxes is then ignored).
/// patch_boxes: count origins; every patch box lies inside the map; size >= 1.
/// out       : T, count * C * windows.height * windows.width, contiguous; every element is
///             written. Must not overlap maps or patches.
/// Throws user_error for a negative count, a map shape or window size < 1, map_count < 1,
/// an index outside [0, map_count), a patch box outside the map, null pointers where
/// count > 0, or sizes past int64. Synchronous; parallel over slots and channels
/// (parallel.hpp) when the work is large.
template <typename T>
void gather_windows(const T* maps, std::int64_t map_count, const MapShape& shape,
                    const std::int64_t* map_index, const SlotBoxes& windows, const T* patches,
                    const SlotBoxes& patch_boxes, T pad_value, std::int64_t count, T* out);

/// What each slot of a persistent spliced buffer holds, for splice_windows. One per
/// (maps, buffer) session; reset() or a new one when the maps' content changes behind the
/// same pointer, or when something else writes into the buffer. Changes of the pointers,
/// the map shape, the patch size or the capacity are detected and force full copies. Not
/// thread-safe: one call at a time per state.
class SpliceState {
 public:
  /// Forgets every slot: the next call copies every slot in full.
  void reset() noexcept;

  /// Starts a call: continues the session (returns true) when the arguments are those of
  /// the previous call; otherwise forgets every slot.
  bool begin(const void* maps, std::int64_t map_count, const MapShape& shape,
             std::int64_t patch_height, std::int64_t patch_width, const void* out,
             std::int64_t capacity);

  /// The map slot j holds (-1: unknown) and the origin of its patch box (row, column).
  std::int64_t* slot_maps() noexcept { return slot_map_.data(); }
  std::int64_t* slot_origins() noexcept { return slot_origin_.data(); }

 private:
  std::vector<std::int64_t> slot_map_;
  std::vector<std::int64_t> slot_origin_;
  const void* maps_ = nullptr;
  const void* out_ = nullptr;
  std::int64_t map_count_ = 0;
  MapShape shape_{};
  std::int64_t patch_height_ = 0;
  std::int64_t patch_width_ = 0;
};

/// Writes `count` dense maps: out[j] = maps[map_index[j]] with patches[j] written over
/// slot j's box (boxes.origins, size boxes.height x boxes.width).
///
/// maps      : T, map_count * C * H * W, contiguous; not modified.
/// map_index : int64, count entries in [0, map_count).
/// patches   : T, count * C * boxes.height * boxes.width, contiguous.
/// boxes     : count origins, every box inside the map, size >= 1.
/// out       : T, capacity * C * H * W, contiguous; slots >= count keep their content. Must
///             not overlap maps or patches.
/// state     : null (every slot copied in full) or the session's SpliceState: a slot that
///             holds map_index[j] from the previous call gets only its previous box
///             restored from the map and the new patch written, O(box) instead of O(map).
/// Throws user_error as gather_windows for the shared arguments, and when capacity <
/// max(1, count). Synchronous; parallel over slots when the work is large.
template <typename T>
void splice_windows(const T* maps, std::int64_t map_count, const MapShape& shape,
                    const std::int64_t* map_index, const T* patches, const SlotBoxes& boxes,
                    std::int64_t count, T* out, std::int64_t capacity, SpliceState* state);

}  // namespace fastocclusion
