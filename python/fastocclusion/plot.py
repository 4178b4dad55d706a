"""Heatmap plotting helpers: an occlusion map drawn over its image.

matplotlib is imported when a helper is first called (``pip install "fastocclusion[plot]"``).
Figures are built with ``matplotlib.figure.Figure`` directly, not through ``pyplot``: no
global figure state, no screen needed, and nothing to close; ``fig.savefig`` renders with
the Agg canvas. Pass ``ax=`` to draw into a figure of your own (pyplot or not).

Accepted shapes (NumPy arrays, ``tf.Tensor``, anything ``np.asarray`` understands):
- images: (H, W), (H, W, 1) or (H, W, 3); floats are shown as they are when they lie in
  [0, 1] and min-max scaled otherwise; integers are read as 0..255;
- maps: (H, W) or (H, W, 1), the same H and W as the image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _figure_class() -> Any:
    """matplotlib's Figure, imported on first use."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "fastocclusion.plot needs matplotlib: pip install \"fastocclusion[plot]\" "
            "(or pip install matplotlib)"
        ) from None
    return Figure


def _to_numpy(value: Any, name: str) -> np.ndarray:
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {type(value).__name__} is not array-like") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number)
                                     or array.dtype == bool):
        raise ValueError(f"{name}: dtype {array.dtype} is invalid, expected numbers")
    return array


def as_image(image: Any, name: str = "image") -> np.ndarray:
    """(H, W) or (H, W, 3) float array in [0, 1], ready for ``imshow``."""
    array = _to_numpy(image, name)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
        raise ValueError(
            f"{name}: shape {array.shape} is invalid, expected (H, W), (H, W, 1) or (H, W, 3)"
        )
    if 0 in array.shape:
        raise ValueError(f"{name}: shape {array.shape} is empty")
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        return np.clip(array.astype(np.float64) / (1.0 if array.dtype == bool else 255.0), 0, 1)
    array = np.nan_to_num(array.astype(np.float64))
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        array = (array - low) / (high - low) if high > low else np.zeros_like(array)
    return array


def as_map(heatmap: Any, name: str = "heatmap") -> np.ndarray:
    """(H, W) float array from an (H, W) or (H, W, 1) map."""
    array = _to_numpy(heatmap, name)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"{name}: shape {array.shape} is invalid, expected (H, W) or (H, W, 1)")
    return array.astype(np.float64)


def normalize_map(heatmap: np.ndarray) -> np.ndarray:
    """Min-max scaled to [0, 1]; a constant map becomes all zeros."""
    low, high = float(np.min(heatmap)), float(np.max(heatmap))
    if not np.isfinite(low) or not np.isfinite(high) or high <= low:
        return np.zeros_like(heatmap, dtype=np.float64)
    return (heatmap - low) / (high - low)


def overlay(image: Any, heatmap: Any, ax: Any = None, cmap: str = "jet", alpha: float = 0.5,
            normalize: bool = True, title: str | None = None) -> Any:
    """Draws ``image`` in gray (or colour) with ``heatmap`` on top; returns the axis.

    normalize: min-max scale the map to [0, 1] before colouring (a constant map shows as 0);
    False colours the values as they are on a fixed [0, 1] scale (for maps already scaled,
    so several plots share one colour scale). A new figure is made when ``ax`` is None
    (``ax.figure`` reaches it).
    """
    figure_class = _figure_class()
    img = as_image(image)
    hmap = as_map(heatmap)
    if img.shape[:2] != hmap.shape:
        raise ValueError(
            f"heatmap: shape {hmap.shape} is invalid, expected the image's height and width "
            f"{img.shape[:2]}"
        )
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha: {alpha!r} is invalid, expected a value in [0, 1]")
    if ax is None:
        fig = figure_class(figsize=(3, 3))
        ax = fig.add_subplot(1, 1, 1)
    if img.ndim == 2:
        ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(img, interpolation="nearest")
    shown = normalize_map(hmap) if normalize else hmap
    ax.imshow(shown, cmap=cmap, alpha=float(alpha), vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if title is not None:
        ax.set_title(title, fontsize=8)
    return ax


def _stack(values: Any, name: str) -> list[np.ndarray]:
    if isinstance(values, (list, tuple)):
        return [_to_numpy(v, f"{name}[{i}]") for i, v in enumerate(values)]
    array = _to_numpy(values, name)
    if array.ndim < 3:
        raise ValueError(
            f"{name}: shape {array.shape} is invalid, expected a batch (N, H, W[, C])"
        )
    return list(array)


def plot_maps(images: Any, maps: Any, titles: Sequence[str] | None = None, cols: int = 8,
              cmap: str = "jet", alpha: float = 0.5, normalize: bool = True,
              cell_size: float = 1.6) -> Any:
    """A grid of overlays, ``cols`` per row; returns the matplotlib ``Figure``.

    images: (N, H, W[, 1|3]) or a list of images; maps: (N, H, W[, 1]) or a list of maps.
    """
    figure_class = _figure_class()
    image_list = _stack(images, "images")
    map_list = _stack(maps, "maps")
    if len(image_list) != len(map_list):
        raise ValueError(
            f"maps: {len(map_list)} maps is invalid, expected one per image ({len(image_list)})"
        )
    if not image_list:
        raise ValueError("images: empty, expected at least one image")
    if titles is not None and len(titles) != len(image_list):
        raise ValueError(
            f"titles: {len(titles)} titles is invalid, expected one per image ({len(image_list)})"
        )
    if isinstance(cols, bool) or not isinstance(cols, int) or cols < 1:
        raise ValueError(f"cols: {cols!r} is invalid, expected an integer >= 1")
    n = len(image_list)
    cols = min(cols, n)
    rows = -(-n // cols)
    fig = figure_class(figsize=(cols * cell_size, rows * cell_size * (1.15 if titles else 1.0)))
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        overlay(image_list[i], map_list[i], ax=ax, cmap=cmap, alpha=alpha,
                normalize=normalize, title=None if titles is None else str(titles[i]))
    fig.tight_layout(pad=0.3)
    return fig


def save_overlay(path: Any, image: Any, heatmap: Any, cmap: str = "jet", alpha: float = 0.5,
                 normalize: bool = True, title: str | None = None, size: float = 4.0,
                 dpi: int = 100) -> None:
    """Writes one overlay to ``path`` (format from the suffix, e.g. .png)."""
    figure_class = _figure_class()
    fig = figure_class(figsize=(size, size))
    ax = fig.add_subplot(1, 1, 1)
    overlay(image, heatmap, ax=ax, cmap=cmap, alpha=alpha, normalize=normalize, title=title)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.05)
