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
// Layouts: a map is a row-major channels-first (C, *size) array of T (float or double) over
// 1 to kMaxMapAxes axes (C, W), (C, H, W) or (C, D, H, W); `maps` holds `map_count` of them
// back to back. A set of boxes of one common size gives slot j's box as positions
// [origins[r*j + a], origins[r*j + a] + size[a]) along each axis a < r (r = the map's axes);
// origins are int64, `count` x r, row-major. A patch set is `count` arrays (C, *box size),
// back to back.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace fastocclusion {

/// The most axes (besides the channels) a feature map of these kernels has.
inline constexpr int kMaxMapAxes = 3;

/// Lengths along a map's axes: the first `axes` entries count.
using AxisSizes = std::array<std::int64_t, kMaxMapAxes>;

/// One channels-first feature map's shape: `channels`, then `axes` (1 to kMaxMapAxes)
/// lengths in `size` (time; rows, columns; depth, rows, columns).
struct MapShape {
  std::int64_t channels = 0;
  int axes = 0;
  AxisSizes size{};
};

/// Boxes of a common size, one per slot (see the layout above): `origins` count x axes
/// (the map's), `size` the first `axes` entries. `origins` may be null only where the
/// kernel says so.
struct SlotBoxes {
  const std::int64_t* origins = nullptr;
  AxisSizes size{};
};

/// Writes `count` windows: out[j, c, *p] for p < windows.size is, with P = the window's
/// origin + p (per axis):
///   pad_value                           where P is outside the map;
///   patches[j, c, *(P - q)]             where patches is not null and P lies in slot j's
///                                       patch box, q its origin;
///   maps[map_index[j], c, *P]           elsewhere.
///
/// maps      : T, map_count maps of `shape`, contiguous; not modified.
/// map_index : int64, count entries in [0, map_count) (the map each slot reads).
/// windows   : count origins (any int64 within +-2^40: a window may reach past the map on
///             every side), the common window size >= 1 per axis.
/// patches   : T, count * C * prod(patch_boxes.size), or null (no patches; patch_boxes is
///             then ignored).
/// patch_boxes: count origins; every patch box lies inside the map; size >= 1.
/// out       : T, count * C * prod(windows.size), contiguous; every element is written.
///             Must not overlap maps or patches.
/// Throws user_error for a negative count, shape.axes outside [1, kMaxMapAxes], a map shape
/// or window size < 1, map_count < 1, an index outside [0, map_count), a patch box outside
/// the map, null pointers where count > 0, or sizes past int64. Synchronous; parallel over slots and channels
/// (parallel.hpp) when the work is large.
template <typename T>
void gather_windows(const T* maps, std::int64_t map_count, const MapShape& shape,
                    const std::int64_t* map_index, const SlotBoxes& windows, const T* patches,
                    const SlotBoxes& patch_boxes, T pad_value, std::int64_t count, T* out);

/// Throws user_error unless the arguments describe a valid gather_windows call (its checks,
/// shared with the CUDA gather: pointers are only compared with null; map_index and the
/// origins are read, so they must be host memory).
void check_gather_arguments(const void* maps, std::int64_t map_count, const MapShape& shape,
                            const std::int64_t* map_index, const SlotBoxes& windows,
                            bool with_patches, const SlotBoxes& patch_boxes, std::int64_t count,
                            const void* out);

/// Throws user_error unless the arguments describe a valid splice_windows call (its checks,
/// shared with the CUDA splice; map_index and the origins are read: host memory).
void check_splice_arguments(const void* maps, std::int64_t map_count, const MapShape& shape,
                            const std::int64_t* map_index, const void* patches,
                            const SlotBoxes& boxes, std::int64_t count, const void* out,
                            std::int64_t capacity);

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
             const AxisSizes& patch_size, const void* out, std::int64_t capacity);

  /// The map slot j holds (-1: unknown) and the origin of its patch box (kMaxMapAxes
  /// entries per slot: the map's axes last, zeros before them).
  std::int64_t* slot_maps() noexcept { return slot_map_.data(); }
  std::int64_t* slot_origins() noexcept { return slot_origin_.data(); }

 private:
  std::vector<std::int64_t> slot_map_;
  std::vector<std::int64_t> slot_origin_;
  const void* maps_ = nullptr;
  const void* out_ = nullptr;
  std::int64_t map_count_ = 0;
  MapShape shape_{};
  AxisSizes patch_size_{};
};

/// Writes `count` dense maps: out[j] = maps[map_index[j]] with patches[j] written over
/// slot j's box (boxes.origins, boxes.size).
///
/// maps      : T, map_count maps of `shape`, contiguous; not modified.
/// map_index : int64, count entries in [0, map_count).
/// patches   : T, count * C * prod(boxes.size), contiguous.
/// boxes     : count origins, every box inside the map, size >= 1.
/// out       : T, capacity maps of `shape`, contiguous; slots >= count keep their content. Must
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
