"""TensorFlow is an optional extra: without it, NumPy models explain on the NumPy backend
(the TensorFlow backend's maps, as NumPy arrays), PyTorch models never import it, and what
needs it fails at once, in one line, naming the extra to install.

"Without TensorFlow" is a subprocess in which ``sys.modules`` holds None for tensorflow,
keras and tf_keras (an import of them fails, ``importlib.util.find_spec`` finds nothing);
the references are computed here, with TensorFlow. How the NumPy backend treats models
that misbehave: test_numpy_backend.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fastocclusion import Tasks
from fastocclusion.backends.numpy.operators import builtin_scores
from fastocclusion.frameworks import TENSORFLOW_EXTRA

TESTS = Path(__file__).resolve().parent
BLOCKED = ("tensorflow", "keras", "tf_keras")


def run_python(code: str, tmp_path: Path, blocked: tuple[str, ...] = BLOCKED, **env: str) -> str:
    """Runs ``code`` in a fresh interpreter in which the ``blocked`` modules cannot be
    imported, with this directory on its path; returns its stdout (RuntimeWarnings, from
    NumPy's arithmetic or the NumPy call policy, are errors)."""
    prelude = (
        f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


# -- NumPy models without TensorFlow: the TensorFlow backend's maps --------------------------


def test_numpy_models_explain_without_tensorflow_as_the_tensorflow_backend_does(tmp_path):
    """Every case of numpy_cases (NumPy callables, predict_proba and predict objects, a
    scikit-learn model, every built-in operator, a custom operator, targets None,
    explain_classes) gives float32 NumPy maps equal to the TensorFlow backend's."""
    tf = pytest.importorskip("tensorflow")
    import numpy_cases
    from reference import assert_maps_close

    stdout = run_python(
        """
        import json
        import numpy as np
        import numpy_cases
        from fastocclusion.frameworks import tensorflow_installed

        assert not tensorflow_installed()
        results = numpy_cases.explanations()
        np.savez("maps.npz", **{name: result for name, (result, _, _) in results.items()})
        kinds = {name: type(result).__module__ for name, (result, _, _) in results.items()}
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "torch"))
        print(json.dumps({"kinds": kinds, "loaded": [m for m in loaded if sys.modules[m]]}))
        """,
        tmp_path,
    )
    report = json.loads(stdout)
    assert report["loaded"] == []  # neither TensorFlow nor PyTorch
    assert set(report["kinds"].values()) == {"numpy"}
    without = np.load(tmp_path / "maps.npz")
    for name, (result, scale, coverage) in numpy_cases.explanations().items():
        assert isinstance(result, tf.Tensor), name  # with TensorFlow: Xplique's tf.Tensor
        expected = result.numpy()
        assert np.abs(expected).max() > 0, name
        try:
            assert_maps_close(without[name], expected, scale, coverage)
        except AssertionError as failure:
            raise AssertionError(f"case {name!r}: {failure}") from None


@pytest.mark.parametrize("task", list(Tasks), ids=lambda task: task.value)
def test_the_numpy_operators_equal_the_tensorflow_operators(task):
    """Every built-in on random outputs and targets (padding, empty masks, one box per
    image, no predicted box at all), NumPy against TensorFlow to float32 round-off."""
    tf = pytest.importorskip("tensorflow")
    import test_operators

    from fastocclusion.backends.tensorflow.operators import resolve_operator

    rng = np.random.default_rng(17)
    if task.value in ("classification", "regression"):
        cases = [
            (rng.normal(size=(6, 5)), rng.normal(size=(6, 5))),
            (rng.normal(size=(6, 3, 5)), rng.normal(size=(6, 5))),  # weights at every position
            (rng.normal(size=(6, 3, 5)), rng.normal(size=(6, 3, 5))),
            (rng.normal(size=(6,)), rng.normal(size=(6, 1))),
        ]
    elif task is Tasks.SEMANTIC_SEGMENTATION:
        masks = (rng.uniform(size=(6, 4, 5, 3)) < 0.4).astype(np.float32)
        masks[0] = 0.0
        cases = [(rng.normal(size=(6, 4, 5, 3)), masks)]
    else:
        predictions = test_operators.random_boxes(rng, 6, 5, 3, pad=0.3)
        targets = test_operators.random_boxes(rng, 6, 4, 3, pad=0.3)
        cases = [
            (predictions, targets),
            (predictions, targets[:, 0]),  # one box per image
            (np.zeros((6, 0, 8), np.float32), targets),  # no predicted box
        ]
    numpy_scores = builtin_scores(task)
    operator = resolve_operator(task)
    for outputs, targets in cases:
        outputs, targets = outputs.astype(np.float32), targets.astype(np.float32)
        got = numpy_scores(outputs, targets)
        expected = operator.scores_from_outputs(tf.constant(outputs), tf.constant(targets))
        assert got.dtype == np.float32 and got.shape == (len(outputs),)
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)
    if task.value.startswith("object detection"):  # and the tests' plain loops
        reference = test_operators.ref_detection(predictions, targets, task)
        np.testing.assert_allclose(numpy_scores(predictions, targets), reference, rtol=1e-5)


# -- what needs TensorFlow: one line naming the extra, before any model call ----------------


def test_what_needs_tensorflow_fails_in_one_line_naming_the_extra(tmp_path):
    stdout = run_python(
        """
        import json, types
        import numpy as np
        from fastocclusion import Occlusion

        calls = []

        def model(x):
            calls.append(len(x))
            return x.reshape(len(x), -1)[:, :3]

        # A Keras layer, as Keras on another backend (torch, JAX) makes one without TensorFlow.
        keras = types.ModuleType("keras")
        keras.layers = types.SimpleNamespace(Layer=type("Layer", (), {"__call__": model}))
        sys.modules["keras"] = keras

        class Interpreter:  # a TFLite interpreter: LiteRT's, tflite_runtime's
            def __init__(self):
                for name in ("get_input_details", "get_output_details", "set_tensor",
                             "invoke", "get_tensor", "allocate_tensors"):
                    setattr(self, name, lambda *args: None)

        # A tf.data dataset's type, as TensorFlow's own module names it.
        Dataset = type("DatasetV2", (), {"__module__": "tensorflow.python.data.ops.dataset_ops"})
        images = np.zeros((2, 4, 4, 1), np.float32)
        attempts = {
            "keras": lambda: Occlusion(keras.layers.Layer()),
            "tflite": lambda: Occlusion(Interpreter()),
            "dataset": lambda: Occlusion(model).explain(Dataset()),
            "dataset targets": lambda: Occlusion(model).explain(images, Dataset()),
            "masks": lambda: Occlusion._get_masks((4, 4, 1), (2, 2), (2, 2)),
            "apply masks": lambda: Occlusion._apply_masks(images[0], None, 0.0),
            "sensitivity": lambda: Occlusion._compute_sensitivity([1.0], [0.5], None),
            "demo": lambda: __import__("fastocclusion.demo").demo.train_model(samples=4),
        }
        errors = {}
        for name, attempt in attempts.items():
            try:
                attempt()
            except ImportError as error:
                errors[name] = [type(error).__name__, error.name, str(error)]
        print(json.dumps({"errors": errors, "calls": calls}))
        """,
        tmp_path,
    )
    report = json.loads(stdout)
    assert report["calls"] == []  # no model call
    expected = {
        "keras": "model: a Keras model",
        "tflite": "model: a TFLite interpreter",
        "dataset": "inputs: a tensorflow object (DatasetV2)",
        "dataset targets": "targets: a tensorflow object (DatasetV2)",
        "masks": "Occlusion._get_masks: Xplique's mask helper",
        "apply masks": "Occlusion._apply_masks: Xplique's mask helper",
        "sensitivity": "Occlusion._compute_sensitivity: Xplique's mask helper",
        "demo": "the demo's Keras CNN",
    }
    assert report["errors"] == {
        name: ["ImportError", "tensorflow", f"{what} needs TensorFlow: {TENSORFLOW_EXTRA}"]
        for name, what in expected.items()
    }
    assert TENSORFLOW_EXTRA == "pip install 'fastocclusion[tensorflow]'"


@pytest.mark.torch
@pytest.mark.slow
def test_a_keras_model_on_the_torch_backend_needs_no_tensorflow(tmp_path):
    """Keras 3 on PyTorch makes torch.nn.Modules: they run on the PyTorch path without
    TensorFlow, with the maps of the same model called as a NumPy callable."""
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    stdout = run_python(
        """
        import keras
        import numpy as np
        import torch
        from fastocclusion import Occlusion

        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(2)])
        images = np.random.default_rng(0).uniform(size=(2, 4, 4, 1)).astype(np.float32)
        maps = Occlusion(model, patch_size=2, patch_stride=2).explain(images)
        numpy_maps = Occlusion(
            lambda x: keras.ops.convert_to_numpy(model(x)), patch_size=2, patch_stride=2
        ).explain(images)
        assert isinstance(maps, torch.Tensor) and isinstance(numpy_maps, np.ndarray)
        np.testing.assert_allclose(maps.numpy(), numpy_maps, rtol=1e-5, atol=1e-6)
        print(sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow" and sys.modules[m]))
        """,
        tmp_path,
        blocked=("tensorflow", "tf_keras"),
        KERAS_BACKEND="torch",
    )
    assert stdout.strip() == "[]"


# -- PyTorch never imports TensorFlow ------------------------------------------------------


@pytest.mark.torch
def test_the_torch_path_imports_no_tensorflow(tmp_path):
    """With TensorFlow installed but never needed: Occlusion, Captum's and MONAI's
    front-ends on PyTorch models leave it unimported."""
    pytest.importorskip("torch")
    stdout = run_python(
        """
        import torch
        from fastocclusion import Occlusion
        from fastocclusion.captum import Occlusion as CaptumOcclusion
        from fastocclusion.monai import OcclusionSensitivity

        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3)).eval()
        maps = Occlusion(model, patch_size=2, patch_stride=2, data_format="channels_first")
        maps = maps.explain(torch.rand(2, 3, 4, 4))
        captum = CaptumOcclusion(model).attribute(
            torch.rand(2, 3, 4, 4), sliding_window_shapes=(3, 2, 2), target=0)
        monai, _ = OcclusionSensitivity(model, mask_size=2, verbose=False)(torch.rand(1, 3, 4, 4))
        assert all(isinstance(m, torch.Tensor) for m in (maps, captum, monai))
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")))
        """,
        tmp_path,
        blocked=(),
    )
    assert stdout.strip() == "[]"


# -- the layers: the NumPy backend imports no framework -------------------------------------


def test_the_numpy_backend_imports_no_framework_and_no_other_backend(tmp_path):
    from test_architecture import import_graph

    for name, targets in import_graph().items():
        if name.startswith("fastocclusion.backends.numpy"):
            other = sorted(t for t in targets if t.startswith("fastocclusion.backends.t"))
            assert not other, f"{name} imports {other}"
    stdout = run_python(
        """
        import fastocclusion.backends.numpy, fastocclusion.frameworks, fastocclusion.inputs
        print(sorted(m for m in ("tensorflow", "torch", "keras") if sys.modules.get(m)))
        """,
        tmp_path,
        blocked=(),
    )
    assert stdout.strip() == "[]"
