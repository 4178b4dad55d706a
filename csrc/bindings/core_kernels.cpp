// fastocclusion._core's CPU kernels: occluded batch fills (full and incremental) and maps.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "array_checks.hpp"
#include "common.hpp"
#include "core_module.hpp"
#include "fastocclusion/accumulate.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/fill.hpp"
#include "fastocclusion/geometry.hpp"
#include "fastocclusion/parallel.hpp"
#include "str_arg.hpp"

namespace py = pybind11;
namespace fo = fastocclusion;

namespace fastocclusion::bindings {
namespace {

using CpuFillState = LockedState<fo::IncrementalFillState>;

// Calls f(T{}) with the fill's element type for `inputs`' dtype (common.hpp's
// with_fill_type). ValueError naming `inputs` for a dtype other than numbers of 1, 2, 4 or 8
// bytes.
template <typename F>
void with_inputs_type(const py::array& inputs, F&& f) {
  const py::dtype dtype = inputs.dtype();
  const char kind = dtype.kind();
  const auto size = static_cast<std::size_t>(dtype.itemsize());
  const bool plain = kind == 'b' || kind == 'i' || kind == 'u' || kind == 'f' || kind == 'V';
  FASTOCCLUSION_EXPECTS(plain && (size == 1 || size == 2 || size == 4 || size == 8),
                        "inputs: dtype " << std::string(py::str(dtype))
                                         << " is invalid, expected numbers of 1, 2, 4 or 8 bytes");
  with_fill_type(kind == 'f' && size == 4, kind == 'f' && size == 8, size, f);
}

// Checks that `a` is a C-contiguous, aligned array of `inputs`' dtype (writable if asked);
// ValueError naming `name` otherwise.
void require_like(const py::array& a, const py::array& inputs, const char* name, bool writable) {
  FASTOCCLUSION_EXPECTS(a.dtype().is(inputs.dtype()) || a.dtype().equal(inputs.dtype()),
                        name << ": dtype " << std::string(py::str(a.dtype()))
                             << " is invalid, expected the inputs' "
                             << std::string(py::str(inputs.dtype())));
  FASTOCCLUSION_EXPECTS((a.flags() & py::array::c_style) != 0,
                        name << ": expected a C-contiguous array");
  FASTOCCLUSION_EXPECTS((a.flags() & kNpyAligned) != 0, name << ": expected an aligned array");
  if (writable) FASTOCCLUSION_EXPECTS(a.writeable(), name << ": expected a writable array");
}

// The baseline: of the inputs' dtype, of shape () (scalar), the sample shape or (N,) + the
// sample shape ("auto"); (N, *grid.counts) ("per_window"); grid.window ("window_mask").
template <typename T>
fo::BasicBaseline<T> baseline_view(const py::array& baseline, const py::array& inputs,
                                   std::int64_t n, const fo::WindowGrid& grid,
                                   BaselineChoice choice) {
  require_like(baseline, inputs, "baseline", false);
  const auto* values = static_cast<const T*>(baseline.data());
  const std::vector<std::int64_t> shape = array_shape(baseline);
  if (choice == BaselineChoice::per_window || choice == BaselineChoice::per_window_scale) {
    const std::vector<std::int64_t> expected = batch_shape(n, grid_counts(grid));
    FASTOCCLUSION_EXPECTS(shape == expected, "baseline: shape " << shape_string(shape)
                                                                << " is invalid for a per-window baseline, expected (N, *grid.counts) "
                                                                << shape_string(expected));
    return {choice == BaselineChoice::per_window ? fo::BaselineKind::per_window
                                                 : fo::BaselineKind::per_window_scale,
            values};
  }
  if (choice == BaselineChoice::window_mask) {
    const std::vector<std::int64_t> expected = grid_windows(grid);
    FASTOCCLUSION_EXPECTS(shape == expected, "baseline: shape " << shape_string(shape)
                                                                << " is invalid for window_mask, expected grid.window "
                                                                << shape_string(expected));
    return {fo::BaselineKind::window_mask, values};
  }
  const std::vector<std::int64_t> sample = grid_shape(grid);
  if (shape.empty()) return {fo::BaselineKind::scalar, values};
  if (shape == sample) return {fo::BaselineKind::per_sample, values};
  if (shape == batch_shape(n, sample)) return {fo::BaselineKind::per_input, values};
  FASTOCCLUSION_EXPECTS(false, "baseline: shape " << shape_string(shape)
                                                  << " is invalid, expected (), the sample shape "
                                                  << shape_string(sample) << " or "
                                                  << shape_string(batch_shape(n, sample)));
  return {};
}

// The explicit (input, window) pairs of a fill: (P, 2) int64, or none.
fo::StreamPairs stream_pairs(const std::optional<py::array>& pairs) {
  if (!pairs) return {};
  require_array<std::int64_t>(*pairs, "pairs", false);
  const std::vector<std::int64_t> shape = array_shape(*pairs);
  FASTOCCLUSION_EXPECTS(shape.size() == 2 && shape[1] == 2,
                        "pairs: shape " << shape_string(shape)
                                        << " is invalid, expected (P, 2): (input, window) pairs");
  return {static_cast<const std::int64_t*>(pairs->data()), shape[0]};
}

void fill_binding(const py::array& inputs, const fo::WindowGrid& grid, const py::array& baseline,
                  std::int64_t start, std::int64_t count, py::array out, CpuFillState* state,
                  std::int64_t stride, const StrArg& baseline_kind,
                  const std::optional<py::array>& pairs) {
  const BaselineChoice choice = parse_baseline_kind(baseline_kind.value);
  const fo::StreamPairs stream = stream_pairs(pairs);
  with_inputs_type(inputs, [&](auto zero) {
    using T = decltype(zero);
    require_like(inputs, inputs, "inputs", false);
    const std::int64_t n = leading_count(array_shape(inputs), grid_shape(grid), "inputs",
                                         "the grid's sample shape");
    const fo::BasicBaseline<T> base = baseline_view<T>(baseline, inputs, n, grid, choice);
    require_like(out, inputs, "out", true);
    const std::vector<std::int64_t> sample = grid_shape(grid);
    const std::vector<std::int64_t> out_shape = array_shape(out);
    FASTOCCLUSION_EXPECTS(out_shape.size() == sample.size() + 1 && out_shape[0] >= 1 &&
                              out_shape[0] >= count &&
                              std::vector<std::int64_t>(out_shape.begin() + 1, out_shape.end()) == sample,
                          "out: shape " << shape_string(out_shape) << " is invalid, expected (B, "
                                        << shape_string(sample).substr(1) << " with B >= count="
                                        << count);
    FASTOCCLUSION_EXPECTS(!overlaps(out, inputs) && !overlaps(out, baseline),
                          "out: must not share memory with inputs or baseline");
    const auto* in = static_cast<const T*>(inputs.data());
    auto* batch = static_cast<T*>(out.mutable_data());
    const std::int64_t capacity = out_shape[0];
    call_with_state(state, [&](fo::IncrementalFillState* s) {
      if (s == nullptr) {
        fo::fill_occluded_batch<T>(in, n, grid, base, start, count, batch, stride, stream);
      } else {
        fo::fill_occluded_batch_incremental<T>(in, n, grid, base, start, count, batch, capacity,
                                               *s, stride, stream);
      }
    });
  });
}

// The float32 output of a kernel: `out` when given (checked: C-contiguous, writable, of
// `shape`, sharing no memory with the kernel's `inputs`), else a new array of `shape`.
py::array output_array(const std::optional<py::array>& out, const std::vector<std::int64_t>& shape,
                       std::initializer_list<const py::array*> inputs, const char* names) {
  py::array result = out ? *out : py::array_t<float>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
  require_array<float>(result, "out", true);
  FASTOCCLUSION_EXPECTS(array_shape(result) == shape, "out: shape " << shape_string(array_shape(result))
                                                                    << " is invalid, expected "
                                                                    << shape_string(shape));
  for (const py::array* input : inputs) {
    FASTOCCLUSION_EXPECTS(!overlaps(result, *input), "out: must not share memory with " << names);
  }
  return result;
}

py::array accumulate_binding(const py::array& deltas, const fo::WindowGrid& grid,
                             const StrArg& reduction, const std::vector<int>& collapsed_axes,
                             std::optional<py::array> out) {
  const fo::Reduction red = fo::parse_reduction(reduction.value);
  const std::uint32_t mask = axes_mask(collapsed_axes, grid.rank);
  fo::map_size(grid, mask);  // checks the collapsed axes
  require_array<double>(deltas, "deltas", false);
  const std::int64_t n = leading_count(array_shape(deltas), grid_counts(grid), "deltas",
                                       "the grid's window counts");
  py::array maps = output_array(out, map_shape(n, grid, mask), {&deltas}, "deltas");
  const auto* d = static_cast<const double*>(deltas.data());
  auto* m = static_cast<float*>(maps.mutable_data());
  {
    py::gil_scoped_release release;
    fo::accumulate_window_deltas(d, n, grid, mask, red, m);
  }
  return maps;
}

template <typename T>
py::array typed_window_means(const py::array& inputs, const fo::WindowGrid& grid,
                             const std::optional<py::array>& out) {
  require_array<T>(inputs, "inputs", false);
  const std::int64_t n =
      leading_count(array_shape(inputs), grid_shape(grid), "inputs", "the grid's sample shape");
  const std::vector<std::int64_t> shape = batch_shape(n, grid_counts(grid));
  py::array means = out ? *out : py::array_t<T>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
  require_array<T>(means, "out", true);
  FASTOCCLUSION_EXPECTS(array_shape(means) == shape, "out: shape " << shape_string(array_shape(means))
                                                                   << " is invalid, expected "
                                                                   << shape_string(shape));
  FASTOCCLUSION_EXPECTS(!overlaps(means, inputs), "out: must not share memory with inputs");
  const auto* in = static_cast<const T*>(inputs.data());
  auto* m = static_cast<T*>(means.mutable_data());
  {
    py::gil_scoped_release release;
    fo::window_means<T>(in, n, grid, m);
  }
  return means;
}

// inputs float64: float64 means; anything else is checked as float32.
py::array window_means_binding(const py::array& inputs, const fo::WindowGrid& grid,
                               const std::optional<py::array>& out) {
  if (py::isinstance<py::array_t<double>>(inputs)) return typed_window_means<double>(inputs, grid, out);
  return typed_window_means<float>(inputs, grid, out);
}

py::array blend_binding(const py::array& values, const fo::WindowGrid& grid,
                        const py::array& importance, const std::vector<int>& collapsed_axes,
                        std::optional<py::array> out) {
  const std::uint32_t mask = axes_mask(collapsed_axes, grid.rank);
  fo::map_size(grid, mask);  // checks the collapsed axes
  require_array<double>(values, "values", false);
  const std::int64_t n = leading_count(array_shape(values), grid_counts(grid), "values",
                                       "the grid's window counts");
  require_array<float>(importance, "importance", false);
  const std::vector<std::int64_t> ishape = importance_shape(grid, mask);
  FASTOCCLUSION_EXPECTS(array_shape(importance) == ishape,
                        "importance: shape " << shape_string(array_shape(importance))
                                             << " is invalid, expected the window's "
                                             << shape_string(ishape)
                                             << " (1 on the collapsed axes)");
  py::array maps = output_array(out, map_shape(n, grid, mask), {&values, &importance},
                                "values or importance");
  const auto* v = static_cast<const double*>(values.data());
  const auto* w = static_cast<const float*>(importance.data());
  auto* m = static_cast<float*>(maps.mutable_data());
  {
    py::gil_scoped_release release;
    fo::blend_window_values(v, n, grid, mask, w, m);
  }
  return maps;
}

}  // namespace

void register_cpu_kernels(py::module_& m) {
  m.def("num_threads", &fo::num_threads, "Threads the CPU kernels may use.");
  m.def("set_num_threads", &fo::set_num_threads, py::arg("threads"),
        "Set the threads the CPU kernels may use (< 1: hardware concurrency).");

  register_fill_state<fo::IncrementalFillState>(
      m, "IncrementalFillState", "What each slot of a persistent batch holds, for incremental fills.");

  m.def("fill_occluded_batch", &fill_binding, py::arg("inputs"), py::arg("grid"), py::arg("baseline"),
        py::arg("start"), py::arg("count"), py::arg("out"), py::arg("state") = nullptr,
        py::kw_only(), py::arg("stride") = 1, py::arg("baseline_kind") = "auto",
        py::arg("pairs") = py::none(),
        "Write occluded samples of the (input, window) stream into out[:count]: slot j gets\n"
        "stream index start + j*stride (stride 1: the slice [start, start+count)) of the\n"
        "grid's stream (index s: input s // K, window s % K) or of pairs ((P, 2) int64:\n"
        "index s is (input, window) pairs[s]).\n"
        "inputs (N, *grid.shape): float32, float64, or any dtype of 1, 2, 4 or 8 bytes (integers,\n"
        "bool, float16, bfloat16 as its int16 or uint16 bits), whose values are copied bit for bit; baseline\n"
        "and out of the inputs' dtype. baseline by baseline_kind: 'auto': (),\n"
        "grid.shape or (N, *grid.shape); 'per_window': (N, *grid.counts), one value per input\n"
        "and window (e.g. window_means); 'per_window_scale': the same shape, the box gets the\n"
        "input times its window's value; 'window_mask': grid.window, the box gets the input\n"
        "times the mask (these two: float32 or float64 only); out (B, *grid.shape), B >= count;\n"
        "state: an\n"
        "IncrementalFillState for incremental fills (only the previous and the new window of a\n"
        "slot are rewritten).");

  m.def("window_means", &window_means_binding, py::arg("inputs"), py::arg("grid"),
        py::arg("out") = py::none(),
        "The mean of every window's box per input, (N, *grid.counts) of the inputs' dtype\n"
        "(float64 sums): the values of 'per_window' and 'per_window_scale' (MONAI's\n"
        "mean_patch). inputs (N, *grid.shape) float32 or float64; out of the same dtype.");

  m.def("blend_window_values", &blend_binding, py::arg("values"), py::arg("grid"),
        py::arg("importance"), py::arg("collapsed_axes") = std::vector<int>{},
        py::arg("out") = py::none(),
        "Maps (N, *map shape) float32 blending per-window values (N, *grid.counts) float64 with\n"
        "window-shaped weights: at x, sum importance[x - anchor] * value / sum importance[x -\n"
        "anchor] over the windows covering x (0 where none). importance float32, finite > 0, of\n"
        "shape grid.window with 1 on the collapsed axes (MONAI's gaussian blending; a constant\n"
        "importance is accumulate_window_deltas(..., 'mean')).");

  m.def("accumulate_window_deltas", &accumulate_binding, py::arg("deltas"), py::arg("grid"),
        py::arg("reduction") = "sum", py::arg("collapsed_axes") = std::vector<int>{},
        py::arg("out") = py::none(),
        "Sensitivity maps (N, *map shape) float32 from window deltas (N, *grid.counts) float64.\n"
        "The map shape is grid.shape with the collapsed axes of length 1 (only axes one window\n"
        "covers in full may be collapsed: images (H, W, C) with windows (ph, pw, C) give\n"
        "(H, W, 1) maps with collapsed_axes=(2,)).");
}

}  // namespace fastocclusion::bindings
