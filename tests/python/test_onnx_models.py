"""A deployed model as an ``onnxruntime.InferenceSession`` (no framework) explained like any
callable (issue "Drop-in"): maps equal those of the same model written in NumPy, on the
TensorFlow backend and on the NumPy backend (TensorFlow hidden); float64 and float16
inputs fed in the session's declared type; a fixed batch dimension honoured; sessions
that cannot be fed one batch refused naming the model before any call. The ONNX graphs
are built with ``onnx``'s helper (a Gemm and an activation)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason='needs onnx: pip install ".[test]"')
ort = pytest.importorskip("onnxruntime", reason='needs onnxruntime: pip install ".[onnx]"')

from fastocclusion import Occlusion  # noqa: E402

FEATURES, CLASSES = 2 * 6 * 6, 4


def _session(weights, bias, elem=onnx.TensorProto.FLOAT, batch="N", inputs=1, cls=None):
    """Flatten -> Gemm -> Tanh over (batch, 6, 6, 2) inputs, as an InferenceSession (or an
    instance of ``cls``, a subclass)."""
    helper = onnx.helper
    integer = elem == onnx.TensorProto.INT64  # an integer input, cast to floats inside
    compute = onnx.TensorProto.FLOAT if integer else elem
    dtype = onnx.helper.tensor_dtype_to_np_dtype(compute)
    names = [f"x{i}" for i in range(inputs)]
    first = names[0]
    nodes = []
    if integer:
        nodes.append(helper.make_node("Cast", [first], ["xf"], to=compute))
        first = "xf"
    nodes += [
        helper.make_node("Flatten", [first], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "w", "b"], ["logits"]),
        helper.make_node("Tanh", ["logits"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "model",
        [helper.make_tensor_value_info(n, elem, [batch, 6, 6, 2]) for n in names],
        [helper.make_tensor_value_info("y", compute, [batch, CLASSES])],
        initializer=[
            onnx.numpy_helper.from_array(weights.astype(dtype), "w"),
            onnx.numpy_helper.from_array(bias.astype(dtype), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    cls = ort.InferenceSession if cls is None else cls
    return cls(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _weights(seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(FEATURES, CLASSES)) * 0.3, rng.normal(size=CLASSES)


def _maps(maps) -> np.ndarray:
    return maps.numpy() if hasattr(maps, "numpy") else np.asarray(maps)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("batch", ["N", 3])
def test_session_maps_equal_the_same_model_in_numpy(backend_kind, seed, batch):
    weights, bias = _weights(seed)
    session = _session(weights, bias, batch=batch)
    w32, b32 = weights.astype(np.float32), bias.astype(np.float32)

    def numpy_model(x):
        return np.tanh(np.asarray(x, np.float32).reshape(len(x), -1) @ w32 + b32)

    x = np.random.default_rng(seed).normal(size=(2, 6, 6, 2)).astype(np.float32)
    options = dict(patch_size=3, patch_stride=2, batch_size=7)
    ours = _maps(Occlusion(session, **options).explain(x))
    expected = _maps(Occlusion(numpy_model, **options).explain(x))
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(expected).max() > 0


@pytest.mark.parametrize("elem", [onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16])
def test_session_fed_in_its_declared_type(elem):
    seen = []

    class Spy(ort.InferenceSession):
        def run(self, output_names, input_feed, run_options=None):
            seen.append(next(iter(input_feed.values())).dtype)
            return super().run(output_names, input_feed, run_options)

    weights, bias = _weights(2)
    session = _session(weights, bias, elem=elem, cls=Spy)
    x = np.random.default_rng(2).normal(size=(1, 6, 6, 2)).astype(np.float32)
    maps = _maps(Occlusion(session, patch_size=3, patch_stride=3).explain(x))
    dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
    assert set(seen) == {np.dtype(dtype)} and np.isfinite(maps).all()


def test_sessions_that_take_no_single_batch_are_refused_before_any_call():
    weights, bias = _weights(3)
    with pytest.raises(TypeError, match=r"model: an onnxruntime session with 2 inputs"):
        Occlusion(_session(weights, bias, inputs=2))
    with pytest.raises(TypeError, match=r"input 'x0' of type tensor\(int64\) is invalid"):
        Occlusion(_session(weights, bias, elem=onnx.TensorProto.INT64))
