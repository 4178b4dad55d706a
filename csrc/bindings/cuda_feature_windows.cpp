// fastocclusion._cuda's feature-map window kernels (exact incremental inference on a GPU):
// gather_windows and splice_windows over device arrays that another library owns (a
// torch.Tensor on a CUDA device, a CuPy array, a DeviceBuffer), read through DLPack with no
// copy. The per-slot indices and origins are host int64 NumPy arrays, copied once (a
// snapshot, so another thread cannot change them between check and use): the snapshot is
// checked by the CPU kernels' own checks and copied to a stream-ordered device allocation
// (cudaMallocAsync) that the kernels read and that is freed in stream order after them.
// The maps' device is made current before any export.
//
// Streams: every value array is exported with __dlpack__(stream=s) for the launch stream s
// (the producer orders s after its own pending work, DLPack's stream protocol); the
// kernels are enqueued on s and the functions return without waiting (asynchronous). The
// caller keeps the arrays alive until the work on s is done, or uses s for what frees them
// (PyTorch's caching allocator reuses memory in its stream's order).
#include <cuda_runtime_api.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "cuda_module.hpp"
#include "cuda_streams.hpp"
#include "dlpack_import.hpp"
#include "feature_window_args.hpp"
#include "fastocclusion/cuda/cuda_errors.hpp"
#include "fastocclusion/cuda/device.hpp"
#include "fastocclusion/cuda/kernels.hpp"
#include "fastocclusion/errors.hpp"
#include "fastocclusion/feature_windows.hpp"

namespace py = pybind11;
namespace fo = fastocclusion;
namespace fc = fastocclusion::cuda;
namespace dl = fastocclusion::dlpack;

namespace fastocclusion::bindings {
namespace {

// A device array read through DLPack: the capsule (kept unconsumed, so its destructor
// releases the producer's tensor when this goes) and what it describes.
struct DeviceArray {
  py::object capsule;
  ImportedArray view;
};

// The stream argument of __dlpack__ for launch stream `s` (1: the legacy default stream).
py::int_ dlpack_stream_argument(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy) return py::int_(1);
  return py::int_(reinterpret_cast<std::uintptr_t>(s));
}

// The CUDA device of `array` (anything exporting DLPack), asked by __dlpack_device__ without
// exporting it. ValueError naming `name` for anything else: no DLPack, another device type.
int cuda_device_of(const py::object& array, const char* name) {
  FASTOCCLUSION_EXPECTS(py::hasattr(array, "__dlpack__") && py::hasattr(array, "__dlpack_device__"),
                        name << ": " << std::string(py::str(py::type::of(array)))
                             << " is invalid, expected a CUDA device array exporting DLPack "
                             << "(a torch.Tensor on a CUDA device, a CuPy array, a DeviceBuffer)");
  const auto where = array.attr("__dlpack_device__")().cast<std::pair<int, int>>();
  FASTOCCLUSION_EXPECTS(where.first == dl::kDLCUDA || where.first == dl::kDLCUDAManaged,
                        name << ": an array on DLPack device type " << where.first
                             << " is invalid, expected a CUDA device array (type "
                             << int(dl::kDLCUDA) << ")");
  return where.second;
}

// `array` (anything exporting DLPack on a CUDA device) for work on stream `s` of the current
// device (the producer orders `s` after its pending work there). ValueError naming `name`
// for anything else: see cuda_device_of, and a non-contiguous array (dlpack_import.hpp).
DeviceArray import_device_array(const py::object& array, cudaStream_t s, const char* name) {
  (void)cuda_device_of(array, name);
  DeviceArray out;
  out.capsule = array.attr("__dlpack__")(py::arg("stream") = dlpack_stream_argument(s));
  PyObject* capsule = out.capsule.ptr();
  FASTOCCLUSION_EXPECTS(PyCapsule_IsValid(capsule, "dltensor") != 0,
                        name << ": __dlpack__ returned no unconsumed \"dltensor\" capsule");
  const auto* managed =
      static_cast<const dl::DLManagedTensor*>(PyCapsule_GetPointer(capsule, "dltensor"));
  out.view = read_dltensor(managed->dl_tensor, dl::kDLCUDA, name);
  return out;
}

// A stream-ordered device copy of host int64 values: allocated, filled and (at destruction)
// freed on one stream, so reusing the memory waits for the kernels that read it.
class StreamIndices {
 public:
  StreamIndices(const std::vector<std::int64_t>& values, cudaStream_t stream) : stream_(stream) {
    if (values.empty()) return;
    const std::size_t bytes = values.size() * sizeof(std::int64_t);
    FASTOCCLUSION_CUDA_TRY(cudaMallocAsync(&data_, bytes, stream));
    try {
      FASTOCCLUSION_CUDA_TRY(
          cudaMemcpyAsync(data_, values.data(), bytes, cudaMemcpyHostToDevice, stream));
    } catch (...) {
      FASTOCCLUSION_CUDA_TRY_NOTHROW(cudaFreeAsync(data_, stream));
      throw;
    }
  }
  ~StreamIndices() {
    if (data_ != nullptr) FASTOCCLUSION_CUDA_TRY_NOTHROW(cudaFreeAsync(data_, stream_));
  }
  StreamIndices(const StreamIndices&) = delete;
  StreamIndices& operator=(const StreamIndices&) = delete;

  const std::int64_t* at(std::size_t offset) const {
    return data_ == nullptr ? nullptr : static_cast<const std::int64_t*>(data_) + offset;
  }

 private:
  void* data_ = nullptr;
  cudaStream_t stream_;
};

// The host values of int64 arrays, one after another (what StreamIndices uploads).
std::vector<std::int64_t> concatenated(const std::vector<const py::array*>& arrays) {
  std::vector<std::int64_t> values;
  for (const py::array* a : arrays) {
    const auto* first = static_cast<const std::int64_t*>(a->data());
    values.insert(values.end(), first, first + a->size());
  }
  return values;
}

// The dtype of `maps` (float32 or float64: 32 or 64 bits) that every other value array
// must have. ValueError naming the array otherwise.
int float_bits(const ImportedArray& maps) {
  FASTOCCLUSION_EXPECTS(is_float(maps.dtype, 32) || is_float(maps.dtype, 64),
                        "maps: a DLPack dtype of code " << int(maps.dtype.code) << " and "
                                                        << int(maps.dtype.bits)
                                                        << " bits is invalid, expected float32 "
                                                        << "or float64");
  return maps.dtype.bits;
}

void require_like(const ImportedArray& maps, const ImportedArray& other, const char* name) {
  FASTOCCLUSION_EXPECTS(is_float(other.dtype, maps.dtype.bits),
                        name << ": its dtype must be that of maps (float" << int(maps.dtype.bits)
                             << ")");
  FASTOCCLUSION_EXPECTS(other.device_id == maps.device_id,
                        name << ": CUDA device " << other.device_id
                             << " is invalid, expected the maps' device " << maps.device_id);
}

// The maps of a gather or splice and what they decide: their shape and count, the float
// width every value array must have, and the slot count of the host map_index.
struct MapsArg {
  DeviceArray maps;
  fo::MapShape shape{};
  std::int64_t map_count = 0;
  int bits = 32;
  std::int64_t count = 0;
};

MapsArg read_maps(const py::object& maps_arg, const py::array& map_index, cudaStream_t s) {
  MapsArg out{import_device_array(maps_arg, s, "maps")};
  out.shape = map_shape_of(out.maps.view.shape, out.map_count);
  out.bits = float_bits(out.maps.view);
  out.count = index_count(map_index);
  return out;
}

// The indices at `offset` of the host snapshot `values` (what the checks read) and of its
// device copy (what the kernels read): one snapshot, so they cannot differ.
fc::DeviceIndices indices_at(const std::vector<std::int64_t>& values, const StreamIndices& device,
                             std::size_t offset) {
  if (values.empty()) return {};
  return {values.data() + offset, device.at(offset)};
}

void gather_binding(const py::object& maps_arg, const py::array& map_index,
                    const py::array& origins, const std::vector<std::int64_t>& size,
                    const py::object& out_arg, const py::object& patches_arg,
                    const std::optional<py::array>& patch_origins, double pad_value,
                    const py::object& stream) {
  const cudaStream_t s = stream_from(stream);
  // The maps' device is current before any export (a producer orders `s` on it).
  const fc::DeviceGuard guard(cuda_device_of(maps_arg, "maps"));
  const MapsArg arg = read_maps(maps_arg, map_index, s);
  const DeviceArray& maps = arg.maps;
  const fo::MapShape& shape = arg.shape;
  const std::int64_t count = arg.count;
  (void)origins_of(origins, count, shape.axes, "origins");
  const fo::AxisSizes window_size = window_size_of(size, shape);
  FASTOCCLUSION_EXPECTS(patches_arg.is_none() == !patch_origins.has_value(),
                        "patches and patch_origins: give both or neither");
  std::optional<DeviceArray> patches;
  fo::AxisSizes patch_size{};
  if (!patches_arg.is_none()) {
    patches = import_device_array(patches_arg, s, "patches");
    require_like(maps.view, patches->view, "patches");
    patch_size = patch_size_of(patches->view.shape, count, shape);
    (void)origins_of(*patch_origins, count, shape.axes, "patch_origins");
  }
  const DeviceArray out = import_device_array(out_arg, s, "out");
  require_like(maps.view, out.view, "out");
  check_gather_out(out.view.shape, gather_out_shape(count, shape, size));
  FASTOCCLUSION_EXPECTS(!overlaps(out.view, maps.view) &&
                            !(patches && overlaps(out.view, patches->view)),
                        "out: must not share memory with maps or patches");
  std::vector<const py::array*> host{&map_index, &origins};
  if (patches) host.push_back(&*patch_origins);
  const std::vector<std::int64_t> values = concatenated(host);
  py::gil_scoped_release release;
  const StreamIndices device(values, s);
  const auto offset = static_cast<std::size_t>(count);
  const fc::DeviceIndices index = indices_at(values, device, 0);
  const fc::DeviceIndices window = indices_at(values, device, offset);
  const fc::DeviceIndices patch =
      patches ? indices_at(values, device, offset * static_cast<std::size_t>(1 + shape.axes))
              : fc::DeviceIndices{};
  auto launch = [&](auto zero) {
    using T = decltype(zero);
    fc::gather_windows_async<T>(
        static_cast<const T*>(maps.view.data), arg.map_count, shape, index, window, window_size,
        patches ? static_cast<const T*>(patches->view.data) : nullptr, patch, patch_size,
        static_cast<T>(pad_value), count, static_cast<T*>(out.view.data), s);
  };
  if (arg.bits == 64) launch(double{});
  else launch(float{});
}

void splice_binding(const py::object& maps_arg, const py::array& map_index,
                    const py::object& patches_arg, const py::array& origins,
                    const py::object& out_arg, const py::object& stream) {
  const cudaStream_t s = stream_from(stream);
  const fc::DeviceGuard guard(cuda_device_of(maps_arg, "maps"));  // as in gather_binding
  const MapsArg arg = read_maps(maps_arg, map_index, s);
  const DeviceArray& maps = arg.maps;
  const fo::MapShape& shape = arg.shape;
  const std::int64_t count = arg.count;
  const DeviceArray patches = import_device_array(patches_arg, s, "patches");
  require_like(maps.view, patches.view, "patches");
  const fo::AxisSizes box_size = patch_size_of(patches.view.shape, count, shape);
  (void)origins_of(origins, count, shape.axes, "origins");
  const DeviceArray out = import_device_array(out_arg, s, "out");
  require_like(maps.view, out.view, "out");
  check_splice_out(out.view.shape, maps.view.shape, count);
  FASTOCCLUSION_EXPECTS(!overlaps(out.view, maps.view) && !overlaps(out.view, patches.view),
                        "out: must not share memory with maps or patches");
  const std::vector<std::int64_t> values = concatenated({&map_index, &origins});
  py::gil_scoped_release release;
  const StreamIndices device(values, s);
  const fc::DeviceIndices index = indices_at(values, device, 0);
  const fc::DeviceIndices boxes = indices_at(values, device, static_cast<std::size_t>(count));
  auto launch = [&](auto zero) {
    using T = decltype(zero);
    fc::splice_windows_async<T>(static_cast<const T*>(maps.view.data), arg.map_count, shape, index,
                                static_cast<const T*>(patches.view.data), boxes, box_size, count,
                                static_cast<T*>(out.view.data), out.view.shape[0], s);
  };
  if (arg.bits == 64) launch(double{});
  else launch(float{});
}

}  // namespace

void register_cuda_feature_windows(py::module_& m) {
  m.def("gather_windows", &gather_binding, py::arg("maps"), py::arg("map_index"),
        py::arg("origins"), py::arg("size"), py::arg("out"), py::arg("patches") = py::none(),
        py::arg("patch_origins") = py::none(), py::kw_only(), py::arg("pad_value") = 0.0,
        py::arg("stream") = py::none(),
        "_core.gather_windows on a CUDA device, bit for bit: out[j] (C, *size) is map\n"
        "maps[map_index[j]] read from origins[j] (pad_value outside the map) with patches[j]\n"
        "in place of the map inside slot j's box at patch_origins[j]. maps (M, C, *map) over\n"
        "1 to 3 axes, patches (count, C, *box) and out (count, C, *size): C-contiguous\n"
        "float32 or float64 CUDA arrays of one dtype and device, read through DLPack (a\n"
        "torch.Tensor, a CuPy array, a DeviceBuffer); map_index (count,), origins and\n"
        "patch_origins (count, axes): host int64 NumPy arrays. Enqueued on `stream` (None:\n"
        "the legacy default stream); returns without waiting.\n\n"
        ">>> _cuda.gather_windows(maps, index, origins, (4, 4), out, stream=torch_stream)");

  m.def("splice_windows", &splice_binding, py::arg("maps"), py::arg("map_index"),
        py::arg("patches"), py::arg("origins"), py::arg("out"), py::kw_only(),
        py::arg("stream") = py::none(),
        "_core.splice_windows on a CUDA device with no state, bit for bit: out[j] =\n"
        "maps[map_index[j]] with patches[j] (C, *box) written at origins[j] (a box inside the\n"
        "map), every element of slot j written, for j < count (later slots keep their\n"
        "content). maps (M, C, *map), patches (count, C, *box), out (B, C, *map) with\n"
        "B >= count: C-contiguous float32 or float64 CUDA arrays of one dtype and device\n"
        "(DLPack); map_index (count,), origins (count, axes): host int64 NumPy arrays.\n"
        "Enqueued on `stream`; returns without waiting.\n\n"
        ">>> _cuda.splice_windows(maps, index, patches, origins, out, stream=torch_stream)");
}

}  // namespace fastocclusion::bindings
