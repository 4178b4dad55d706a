"""The demo behind ``fastocclusion demo``: train, explain, check, time, plot — offline.

1. A synthetic data set made in code: 32x32 grayscale noise (uniform in [0, 0.4]) with one
   bright shape (a uniform level in [0.6, 1.0]) at a random place; class 0 a filled square
   (half side r in 4..6), class 1 a filled disc (radius r + 0.5). The shape's pixel mask is
   kept as the ground truth of where the evidence lies.
2. A small CNN (three 3x3 convolutions, global max pooling, one logit per class, trained as
   independent detectors with a sigmoid loss) learns the task on the CPU in a few seconds.
   Logits, not softmax probabilities, are explained: a saturated softmax barely moves under
   a small occlusion, a detector logit does.
3. ``Occlusion`` (patch 4, stride 1: smaller than every shape) explains held-out images for
   their top class. The pointing game scores a map as a hit when its highest pixel lies on
   the shape; chance is the mean share of the image the shape covers.
4. The time split: the explain call is timed after one warm-up call (which traces the model).
   ``Occlusion.last_stats`` times every model call inside the explain (wall time, result
   fetch included); the rest of the call is fastocclusion's own work (input checks, batch
   filling, accumulation), so the split adds up and is never negative. Three explain calls,
   the fastest is reported (a shared machine is noisy). The batch filling is incremental
   (only the previous and the new patch of a slot are rewritten), a few microseconds per
   batch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fastocclusion.frameworks import import_tensorflow

SIZE = 32
CLASS_NAMES = ("square", "disc")
HELD_OUT = 500
PATCH_SIZE = 4
PATCH_STRIDE = 1
TIMING_REPEATS = 3


@dataclass
class DemoResult:
    accuracy: float
    pointing: float
    chance: float
    explain_s: float
    model_s: float
    model_calls: int
    out: str


def make_dataset(
    n: int, rng: np.random.Generator, size: int = SIZE, radii: tuple[int, int] = (4, 6)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (n, size, size, 1) float32 in [0, 1], labels (n,) int64, masks (n, size, size)
    bool): noise with one bright square (label 0) or disc (label 1) of half side r drawn
    from ``radii`` (inclusive); masks mark the shape.

    >>> images, labels, masks = make_dataset(8, np.random.default_rng(0))
    >>> images.shape, labels.shape, masks.shape
    ((8, 32, 32, 1), (8,), (8, 32, 32))
    """
    rows, cols = np.mgrid[:size, :size]
    images = rng.uniform(0.0, 0.4, (n, size, size)).astype(np.float32)
    labels = rng.integers(0, len(CLASS_NAMES), n).astype(np.int64)
    masks = np.zeros((n, size, size), dtype=bool)
    for i in range(n):
        r = int(rng.integers(radii[0], radii[1] + 1))
        cy, cx = rng.integers(r + 1, size - r - 1, 2)
        dy, dx = np.abs(rows - cy), np.abs(cols - cx)
        if labels[i] == 0:
            mask = (dy <= r) & (dx <= r)
        else:
            mask = dy**2 + dx**2 <= (r + 0.5) ** 2
        masks[i] = mask
        images[i][mask] = rng.uniform(0.6, 1.0)
    return images[..., None], labels, masks


def _keras() -> Any:
    """The keras module; without TensorFlow (the demo's CNN is a Keras model on TensorFlow),
    an ImportError naming the extra to install."""
    import_tensorflow("the demo's Keras CNN")
    import keras

    return keras


def build_model(size: int = SIZE) -> Any:
    keras = _keras()
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((size, size, 1)),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.GlobalMaxPooling2D(),
            layers.Dense(len(CLASS_NAMES)),  # logits
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    return model


def pointing_hits(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N,) bool: whether each map's highest pixel (first in row-major order on ties) lies
    inside its mask. maps (N, H, W) or (N, H, W, 1), masks (N, H, W)."""
    maps = np.asarray(maps).reshape(masks.shape[0], -1)
    peaks = maps.argmax(axis=1)
    return masks.reshape(masks.shape[0], -1)[np.arange(masks.shape[0]), peaks]


def _busy_note() -> str:
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not on every platform
        return ""
    cores = os.cpu_count() or 1
    if load <= cores:
        return ""
    return f"; note: the machine is busy (load {load:.1f} on {cores} cores), timings are noisy"


def _plot(
    path: str,
    images: np.ndarray,
    maps: np.ndarray,
    masks: np.ndarray,
    predicted: np.ndarray,
    hits: np.ndarray,
) -> None:
    from fastocclusion.plot import plot_maps

    titles = [f"{CLASS_NAMES[p]}: {'hit' if h else 'miss'}" for p, h in zip(predicted, hits)]
    fig = plot_maps(
        images,
        maps,
        titles=titles,
        cols=8,
        title="fastocclusion demo: occlusion maps on one scale (red: evidence for "
        "the class; white outline: the object; +: map peak)",
    )
    for ax, hmap, mask in zip(fig.axes, maps, masks):
        ax.contour(mask.astype(np.float32), levels=[0.5], colors="white", linewidths=0.7)
        peak_row, peak_col = np.unravel_index(np.argmax(hmap), hmap.shape)
        ax.plot([peak_col], [peak_row], marker="+", color="black", markersize=7, mew=1.5)
    fig.savefig(path, dpi=110)


def train_model(seed: int = 0, samples: int = 2000, epochs: int = 3) -> Any:
    """The demo's CNN (``build_model``) trained on ``samples`` images of ``make_dataset`` (a
    generator seeded with ``seed``), a few seconds on a CPU. Its two logits (square, disc)
    are what occlusion explains; held-out accuracy is ~1.0 with the defaults."""
    keras = _keras()
    keras.utils.set_random_seed(seed)
    x_train, y_train, _ = make_dataset(samples, np.random.default_rng([seed, 1]))
    model = build_model()
    model.fit(
        x_train,
        np.eye(len(CLASS_NAMES), dtype=np.float32)[y_train],
        epochs=epochs,
        batch_size=32,
        verbose=0,
    )
    return model


def _train(
    samples: int,
    epochs: int,
    seed: int,
    x_test: np.ndarray,
    y_test: np.ndarray,
    echo: Callable[[str], None],
) -> tuple[Any, np.ndarray, float]:
    """Trains the CNN; returns (model, held-out top classes, held-out accuracy)."""
    start = time.perf_counter()
    model = train_model(seed, samples, epochs)
    train_s = time.perf_counter() - start
    predicted = model.predict(x_test, batch_size=256, verbose=0).argmax(axis=1)
    accuracy = float(np.mean(predicted == y_test))
    echo(
        f"model: small CNN, {model.count_params()} parameters, {epochs} epoch(s) in "
        f"{train_s:.1f} s; held-out accuracy {accuracy:.3f} ({len(y_test)} images)"
    )
    return model, predicted, accuracy


def _explain_and_time(
    model: Any, images: np.ndarray, batch_size: int
) -> tuple[np.ndarray, Any, float]:
    """(maps (N, H, W), the ExplainStats of the fastest of TIMING_REPEATS explain calls,
    the warm-up call's seconds)."""
    from fastocclusion import Occlusion

    explainer = Occlusion(
        model, batch_size=batch_size, patch_size=PATCH_SIZE, patch_stride=PATCH_STRIDE
    )
    start = time.perf_counter()
    explainer.explain(images[:1])  # traces the model; same batch shape as the timed calls
    warmup_s = time.perf_counter() - start
    runs = []
    for _ in range(TIMING_REPEATS):
        maps = explainer.explain(images).numpy()[..., 0]
        runs.append(explainer.last_stats)
    return maps, min(runs, key=lambda stats: stats.total_seconds), warmup_s


def run_demo(
    out: str = "occlusion_demo.png",
    seed: int = 0,
    epochs: int = 3,
    samples: int = 2000,
    explain: int = 32,
    batch_size: int = 64,
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Runs the whole demo, printing its report through ``echo``; see the module docstring."""
    if explain > HELD_OUT:
        raise ValueError(f"explain: {explain} is invalid, expected at most {HELD_OUT}")
    x_test, y_test, m_test = make_dataset(HELD_OUT, np.random.default_rng([seed, 2]))
    echo(
        f"data: {samples} training and {HELD_OUT} held-out {SIZE}x{SIZE} grayscale noise "
        f"images with one bright {' or '.join(CLASS_NAMES)} (seed {seed})"
    )
    model, predicted, accuracy = _train(samples, epochs, seed, x_test, y_test, echo)

    images, masks = x_test[:explain], m_test[:explain]
    maps, stats, warmup_s = _explain_and_time(model, images, batch_size)
    hits = pointing_hits(maps, masks)
    pointing, chance = float(np.mean(hits)), float(np.mean(masks))
    total, inside = stats.total_seconds, stats.model_seconds
    echo(
        f"explain: Occlusion(patch_size={PATCH_SIZE}, patch_stride={PATCH_STRIDE}, "
        f"batch_size={batch_size}) on {explain} held-out images, top class, "
        f"{stats.patches_per_input} patches each = {stats.perturbed_samples} perturbed samples"
    )
    echo(
        f"pointing game: {pointing:.3f} ({int(hits.sum())}/{explain} map peaks on the object);"
        f" chance level {chance:.3f} (mean object area fraction)"
    )
    echo(
        f"time: explain {total:.3f} s = model calls {inside:.3f} s "
        f"({100 * inside / total:.1f}%) + fastocclusion {total - inside:.3f} s "
        f"({100 * (total - inside) / total:.1f}%); the first call (tracing) took "
        f"{warmup_s:.2f} s"
    )
    echo(
        f"  how: the fastest of {TIMING_REPEATS} explain calls; model calls = the wall time "
        f"inside its {stats.model_calls} calls of batch {batch_size} (result fetch "
        f"included); fastocclusion = the rest (checks, batch filling, accumulation)"
        f"{_busy_note()}"
    )

    _plot(out, images, maps, masks, predicted[:explain], hits)
    echo(f"wrote {out}")
    return DemoResult(
        accuracy=accuracy,
        pointing=pointing,
        chance=chance,
        explain_s=total,
        model_s=inside,
        model_calls=stats.model_calls,
        out=str(out),
    )
