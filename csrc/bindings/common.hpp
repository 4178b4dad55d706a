// Helpers shared by the binding modules (_core and _cuda). Binding code: included only by
// csrc/bindings/*.cpp.
//
// GIL and locks: a kernel call holds the Python objects it reads (they stay referenced by
// the calling frame, so their memory cannot be freed meanwhile) and runs with the GIL
// released. Another thread could write to the same arrays meanwhile, which gives wrong
// numbers for that call, never a crash. An incremental fill state carries a mutex so that
// two threads cannot use one state at once: the second gets a ValueError, not a wait.
#pragma once

#include <pybind11/pybind11.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "fastocclusion/errors.hpp"
#include "fastocclusion/geometry.hpp"
#include "shape_string.hpp"

namespace fastocclusion::bindings {

namespace py = pybind11;

/// Calls f(T{}) with the fill's element type (fill.hpp, "Element types") of a dtype:
/// float32 -> float, float64 -> double, any other dtype (integers, bool, float16, bfloat16
/// as its int16 or uint16 bits) -> the unsigned integer of its width `item_size` (1, 2, 4
/// or 8 bytes; the caller checks it), copied bit for bit.
template <typename F>
void with_fill_type(bool float32, bool float64, std::size_t item_size, F&& f) {
  if (float32) return f(float{});
  if (float64) return f(double{});
  if (item_size == 1) return f(std::uint8_t{});
  if (item_size == 2) return f(std::uint16_t{});
  if (item_size == 4) return f(std::uint32_t{});
  return f(std::uint64_t{});
}

/// The sample shape of a grid.
inline std::vector<std::int64_t> grid_shape(const WindowGrid& grid) {
  std::vector<std::int64_t> shape;
  for (int d = 0; d < grid.rank; ++d) shape.push_back(grid.axes[d].length);
  return shape;
}

/// The window counts of a grid, per axis.
inline std::vector<std::int64_t> grid_counts(const WindowGrid& grid) {
  std::vector<std::int64_t> counts;
  for (int d = 0; d < grid.rank; ++d) counts.push_back(grid.axes[d].count);
  return counts;
}

/// The window lengths of a grid, per axis (a window_mask baseline's shape).
inline std::vector<std::int64_t> grid_windows(const WindowGrid& grid) {
  std::vector<std::int64_t> windows;
  for (int d = 0; d < grid.rank; ++d) windows.push_back(grid.axes[d].window);
  return windows;
}

/// The window-shaped importance of a blend: the window lengths, 1 on the collapsed axes.
inline std::vector<std::int64_t> importance_shape(const WindowGrid& grid,
                                                  std::uint32_t collapsed_axes) {
  std::vector<std::int64_t> shape;
  for (int d = 0; d < grid.rank; ++d) {
    shape.push_back(((collapsed_axes >> d) & 1U) != 0 ? 1 : grid.axes[d].window);
  }
  return shape;
}

/// The `baseline_kind` option of the fills: "auto" (the kind follows the baseline's shape:
/// (), the sample shape, (N, *sample shape)), "per_window" ((N, *grid.counts): one value per
/// input and window), "per_window_scale" (the same shape: the input times the value) or
/// "window_mask" (grid.window: the input times the mask).
enum class BaselineChoice { automatic, per_window, per_window_scale, window_mask };

inline BaselineChoice parse_baseline_kind(const std::string& name) {
  if (name == "auto") return BaselineChoice::automatic;
  if (name == "per_window") return BaselineChoice::per_window;
  if (name == "per_window_scale") return BaselineChoice::per_window_scale;
  if (name == "window_mask") return BaselineChoice::window_mask;
  FASTOCCLUSION_EXPECTS(false, "baseline_kind=" << detail::quote_for_message(name)
                                                << " is invalid, expected \"auto\", "
                                                   "\"per_window\", \"per_window_scale\" or "
                                                   "\"window_mask\"");
  return BaselineChoice::automatic;
}

/// (leading..., sample shape...): the shape of `leading` samples of `grid`.
inline std::vector<std::int64_t> batch_shape(std::int64_t leading, const std::vector<std::int64_t>& sample) {
  std::vector<std::int64_t> shape{leading};
  shape.insert(shape.end(), sample.begin(), sample.end());
  return shape;
}

/// N of an array of shape (N, *tail) with N >= 1 (`tail`: a grid's sample shape or window
/// counts, described by `what`); ValueError naming `name` otherwise.
inline std::int64_t leading_count(const std::vector<std::int64_t>& shape,
                                  const std::vector<std::int64_t>& tail, const char* name,
                                  const char* what) {
  FASTOCCLUSION_EXPECTS(shape.size() == tail.size() + 1 && shape[0] >= 1 &&
                            std::vector<std::int64_t>(shape.begin() + 1, shape.end()) == tail,
                        name << ": shape " << shape_string(shape) << " is invalid, expected (N, "
                             << shape_string(tail).substr(1) << " with N >= 1 (" << what << ")");
  return shape[0];
}

/// (n, map shape...): the shape of n maps of `grid`, the collapsed axes (bit d: axis d) of
/// length 1. Expects a mask that map_size() accepted.
inline std::vector<std::int64_t> map_shape(std::int64_t n, const WindowGrid& grid,
                                           std::uint32_t collapsed_axes) {
  std::vector<std::int64_t> shape{n};
  for (int d = 0; d < grid.rank; ++d) {
    shape.push_back(((collapsed_axes >> d) & 1U) != 0 ? 1 : grid.axes[d].length);
  }
  return shape;
}

/// Bit d set for every axis in `axes` (Python ints in [0, rank)); ValueError naming
/// `collapsed_axes` otherwise.
inline std::uint32_t axes_mask(const std::vector<int>& axes, int rank) {
  std::uint32_t mask = 0;
  for (int axis : axes) {
    FASTOCCLUSION_EXPECTS(axis >= 0 && axis < rank, "collapsed_axes: axis " << axis
                                                        << " is invalid, expected 0 to "
                                                        << rank - 1);
    mask |= 1U << axis;
  }
  return mask;
}

/// An incremental fill state (CPU or CUDA) with the mutex of its Python object.
template <typename State>
struct LockedState {
  State state;
  std::mutex mutex;
};

/// Calls fn(state) with the state's mutex held and the GIL released; `state` may be null
/// (then fn(nullptr), GIL released too). ValueError when another thread holds the state.
template <typename State, typename Fn>
void call_with_state(LockedState<State>* locked, Fn&& fn) {
  if (locked == nullptr) {
    py::gil_scoped_release release;
    fn(static_cast<State*>(nullptr));
    return;
  }
  std::unique_lock<std::mutex> lock(locked->mutex, std::try_to_lock);
  FASTOCCLUSION_EXPECTS(lock.owns_lock(), "state: already in use by another thread");
  py::gil_scoped_release release;
  fn(&locked->state);
}

/// Registers LockedState<State> as `name` in `m`, with reset().
template <typename State>
void register_fill_state(py::module_& m, const char* name, const char* doc) {
  py::class_<LockedState<State>>(m, name, doc)
      .def(py::init<>())
      .def("reset", [](LockedState<State>& s) {
        std::lock_guard<std::mutex> lock(s.mutex);
        s.state.reset();
      }, "Forget what every slot holds: the next fill is a full one.");
}

}  // namespace fastocclusion::bindings
