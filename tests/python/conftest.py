"""Shared fixtures of the Python tests: tiny seeded models of every shape family.

TensorFlow is imported inside the fixtures, so the tests of the compiled core run without it.
`reference` (the NumPy oracle beside this file) is made importable from every test module.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detection import keras_box_head, random_box_targets  # noqa: E402

settings.register_profile("fastocclusion", deadline=None, max_examples=60, derandomize=True)
settings.load_profile("fastocclusion")

# Hypothesis imports its patch writer (libcst -> mypy_extensions) when a test fails; that import
# emits a DeprecationWarning which pytest's "warnings are errors" turns into an INTERNALERROR
# that ends the session. Import it once here, with its warnings silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:  # libcst missing: hypothesis then skips the patch itself
        pass

NUM_CLASSES = 5
NUM_BOXES = 4


@dataclass
class ModelCase:
    """A model, how the reference calls it, and inputs/targets shaped for it."""

    model: Any  # what fastocclusion.Occlusion receives
    model_fn: Callable[[np.ndarray], np.ndarray]  # what the reference calls
    inputs: np.ndarray
    targets: np.ndarray


def _keras():
    import keras

    keras.utils.set_random_seed(1234)
    return keras


def _numpy_fn(model) -> Callable[[np.ndarray], np.ndarray]:
    return lambda batch: np.asarray(model(batch, training=False))


def _one_hot(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[rng.integers(0, k, size=n)]


@pytest.fixture(scope="session")
def image_case() -> ModelCase:
    """Conv net over (N, 9, 8, 3) images, softmax over 5 classes."""
    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input((9, 8, 3)),
            keras.layers.Conv2D(4, 3, activation="tanh"),
            keras.layers.Flatten(),
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    rng = np.random.default_rng(1)
    inputs = rng.uniform(-1, 1, (3, 9, 8, 3)).astype(np.float32)
    return ModelCase(model, _numpy_fn(model), inputs, _one_hot(rng, 3, NUM_CLASSES))


@pytest.fixture(scope="session")
def tabular_case() -> ModelCase:
    """Dense net over (N, 10) rows, 3 regression outputs."""
    keras = _keras()
    model = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(3)]
    )
    rng = np.random.default_rng(2)
    inputs = rng.normal(0, 1, (4, 10)).astype(np.float32)
    targets = rng.uniform(0, 1, (4, 3)).astype(np.float32)  # weighted targets
    return ModelCase(model, _numpy_fn(model), inputs, targets)


@pytest.fixture(scope="session")
def timeseries_case() -> ModelCase:
    """Conv1D + dense over (N, 12, 4) series, softmax over 5 classes."""
    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input((12, 4)),
            keras.layers.Conv1D(3, 3, activation="tanh"),
            keras.layers.Flatten(),
            keras.layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    rng = np.random.default_rng(3)
    inputs = rng.normal(0, 1, (3, 12, 4)).astype(np.float32)
    return ModelCase(model, _numpy_fn(model), inputs, _one_hot(rng, 3, NUM_CLASSES))


@pytest.fixture(scope="session")
def segmentation_case() -> ModelCase:
    """Same-padded conv over (N, 8, 8, 2) images -> (N, 8, 8, 3) class maps; sparse masks."""
    keras = _keras()
    model = keras.Sequential(
        [keras.Input((8, 8, 2)), keras.layers.Conv2D(3, 3, padding="same", activation="softmax")]
    )
    rng = np.random.default_rng(4)
    inputs = rng.uniform(-1, 1, (2, 8, 8, 2)).astype(np.float32)
    masks = (rng.uniform(size=(2, 8, 8, 3)) < 0.3).astype(np.float32)
    masks[:, 0, 0, 0] = 1.0  # never an empty mask
    return ModelCase(model, _numpy_fn(model), inputs, masks)


@pytest.fixture(scope="session")
def detection_case() -> ModelCase:
    """Detection-like model over (N, 8, 8, 3) images -> (N, 4 boxes, 4+1+5)."""
    keras = _keras()
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(NUM_BOXES * (5 + NUM_CLASSES)),
            keras_box_head(keras, NUM_BOXES, NUM_CLASSES),
        ]
    )
    rng = np.random.default_rng(5)
    inputs = rng.uniform(-1, 1, (3, 8, 8, 3)).astype(np.float32)
    targets = random_box_targets(rng, (1, 2, 3), 3, NUM_CLASSES)  # up to 3 boxes, padded
    return ModelCase(model, _numpy_fn(model), inputs, targets)


@pytest.fixture
def eager_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyTorch's incremental='auto' without its cost floors (the multiply-adds per call,
    the share saved), so that the small models of the tests take the incremental path
    wherever it is allowed. Imports torch: for tests marked `torch` only."""
    from fastocclusion.backends.torch.incremental.graph import TorchOps

    monkeypatch.setattr(TorchOps, "auto_min_call_macs", 0.0)
    monkeypatch.setattr("fastocclusion.engine.regions.AUTO_MIN_SAVED_SHARE", 0.0)


#: Optional extras whose tests are marked by their name: (module, why skipped).
OPTIONAL_EXTRAS = {
    "torch": ("torch", 'needs PyTorch, an optional extra: pip install ".[torch]"'),
    "ray": ("ray", 'needs Ray, an optional extra: pip install ".[ray]"'),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `torch` or `ray` are skipped, saying why, when that optional extra is not
    installed; CI installs them and runs those tests (`pytest -m "torch or ray"`)."""
    import importlib.util

    for marker, (module, reason) in OPTIONAL_EXTRAS.items():
        if importlib.util.find_spec(module) is not None:
            continue
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(skip)


@pytest.fixture(params=["tensorflow", "numpy"])
def backend_kind(request, monkeypatch):
    """A NumPy model on the TensorFlow backend, then on the NumPy backend (``make_backend``
    sees no TensorFlow): the same maps either way, tf.Tensor or NumPy results."""
    if request.param == "numpy":
        import fastocclusion.backends

        monkeypatch.setattr(fastocclusion.backends, "tensorflow_installed", lambda: False)
    return request.param
