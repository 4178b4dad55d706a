"""Heatmap plotting helpers: an occlusion map drawn over its image.

matplotlib is imported when a helper is first called (``pip install "fastocclusion[plot]"``).
Figures are built with ``matplotlib.figure.Figure`` directly, not through ``pyplot``: no
global figure state, no screen needed, and nothing to close; ``fig.savefig`` renders with
the Agg canvas. Pass ``ax=`` to draw into a figure of your own (pyplot or not).

Accepted shapes (NumPy arrays, ``tf.Tensor``, anything ``np.asarray`` understands):
- images: (H, W), (H, W, 1) or (H, W, 3); floats are shown as they are when they lie in
  [0, 1] and min-max scaled otherwise; integers are read as 0..255;
- maps: (H, W) or (H, W, 1), the same H and W as the image.

Maps are coloured with a diverging colour map on a scale centred on 0 ([-v, v], v the
largest |value| unless given), so that 0 is always the same neutral colour whatever the
map's range, and colour bars say what the colours mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Red for positive scores (occluding the region lowers the score), blue for negative ones,
#: white for 0.
DIVERGING_CMAP = "bwr"


def _figure_class() -> Any:
    """matplotlib's Figure, imported on first use."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            'fastocclusion.plot needs matplotlib: pip install "fastocclusion[plot]" '
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
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
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


def symmetric_limit(heatmaps: Any) -> float:
    """The colour limit v of a zero-centred scale [-v, v]: the largest |value| (finite
    values only); 1.0 for an all-zero (or all non-finite) map, so that it shows as 0."""
    values = np.abs(np.asarray(heatmaps, dtype=np.float64))
    values = values[np.isfinite(values)]
    limit = float(values.max()) if values.size else 0.0
    return limit if limit > 0.0 else 1.0


def _check_limit(vmax: Any) -> float | None:
    if vmax is None:
        return None
    if (
        isinstance(vmax, bool)
        or not isinstance(vmax, (int, float, np.floating, np.integer))
        or not np.isfinite(vmax)
        or vmax <= 0
    ):
        raise ValueError(f"vmax: {vmax!r} is invalid, expected a finite number > 0 or None")
    return float(vmax)


def overlay(
    image: Any,
    heatmap: Any,
    ax: Any = None,
    cmap: str = DIVERGING_CMAP,
    alpha: float = 0.6,
    vmax: float | None = None,
    colorbar: bool = False,
    title: str | None = None,
) -> Any:
    """Draws ``image`` in gray (or colour) with ``heatmap`` on top; returns the axis.

    The map is coloured on a scale centred on 0, [-vmax, vmax], with a diverging colour map
    (default: red where occluding lowers the score, i.e. evidence for it; blue where it
    raises it; white for 0): ``vmax=None`` takes the map's largest |value|; pass one value to
    several plots to share their scale. ``colorbar=True`` adds a colour bar beside the axis.
    A new figure is made when ``ax`` is None (``ax.figure`` reaches it).
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
    limit = _check_limit(vmax)
    if limit is None:
        limit = symmetric_limit(hmap)
    if ax is None:
        fig = figure_class(figsize=(3.6 if colorbar else 3, 3))
        ax = fig.add_subplot(1, 1, 1)
    if img.ndim == 2:
        ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(img, interpolation="nearest")
    shown = ax.imshow(
        np.nan_to_num(hmap),
        cmap=cmap,
        alpha=float(alpha),
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
    )
    ax.set_axis_off()
    if colorbar:
        ax.figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    if title is not None:
        ax.set_title(title, fontsize=8)
    return ax


def _stack(values: Any, name: str) -> list[np.ndarray]:
    if isinstance(values, (list, tuple)):
        return [_to_numpy(v, f"{name}[{i}]") for i, v in enumerate(values)]
    array = _to_numpy(values, name)
    if array.ndim < 3:
        raise ValueError(f"{name}: shape {array.shape} is invalid, expected a batch (N, H, W[, C])")
    return list(array)


def plot_maps(
    images: Any,
    maps: Any,
    titles: Sequence[str] | None = None,
    cols: int = 8,
    cmap: str = DIVERGING_CMAP,
    alpha: float = 0.6,
    shared_scale: bool = True,
    colorbar: bool = True,
    cell_size: float = 1.6,
    title: str | None = None,
) -> Any:
    """A grid of overlays, ``cols`` per row; returns the matplotlib ``Figure``.

    images: (N, H, W[, 1|3]) or a list of images; maps: (N, H, W[, 1]) or a list of maps.
    ``shared_scale=True`` colours every map on one zero-centred scale (the largest |value|
    of all maps), with one colour bar for the grid; False scales each map on its own
    (zero-centred too), with a colour bar per map when ``colorbar``. ``title``: a title
    above the grid.
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
    shared = (
        symmetric_limit(
            np.concatenate([as_map(m, f"maps[{i}]").ravel() for i, m in enumerate(map_list)])
        )
        if shared_scale
        else None
    )
    shared_bar = shared_scale and colorbar
    width = cols * cell_size * (1.0 if shared_scale or not colorbar else 1.25)
    bar_width = 0.9 if shared_bar else 0.0
    title_height = 0.35 if title else 0.0
    height = rows * cell_size * (1.15 if titles else 1.0) + title_height
    fig = figure_class(figsize=(width + bar_width, height))
    axes = []
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        overlay(
            image_list[i],
            map_list[i],
            ax=ax,
            cmap=cmap,
            alpha=alpha,
            vmax=shared,
            colorbar=colorbar and not shared_scale,
            title=None if titles is None else str(titles[i]),
        )
        axes.append(ax)
    right = width / (width + bar_width)
    fig.tight_layout(pad=0.3, rect=(0.0, 0.0, right, 1.0 - title_height / height))
    if title:
        fig.suptitle(title, fontsize=9)
    if shared_bar:
        # a thin bar at the left of its strip, the rest for its tick labels
        bar_axis = fig.add_axes(
            (
                right + 0.05 * bar_width / (width + bar_width),
                0.08,
                0.15 * bar_width / (width + bar_width),
                0.8,
            )
        )
        fig.colorbar(axes[0].images[-1], cax=bar_axis)
    return fig


def figure_pixels(fig: Any, dpi: int = 100) -> np.ndarray:
    """The figure rendered by the Agg canvas as an (H, W, 3) uint8 RGB array (what image
    loggers such as TensorBoard take).

    >>> figure_pixels(plot_maps(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)))).dtype
    dtype('uint8')
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    canvas.draw()
    return np.array(canvas.buffer_rgba())[..., :3]


def save_pixels(path: Any, pixels: np.ndarray) -> None:
    """Writes (H, W, 3) uint8 RGB pixels (e.g. ``figure_pixels``'s) as an image file
    (format from the suffix, e.g. .png)."""
    _figure_class()  # matplotlib, or the ImportError naming the extra
    from matplotlib.image import imsave

    imsave(path, np.asarray(pixels, dtype=np.uint8))


def save_overlay(
    path: Any,
    image: Any,
    heatmap: Any,
    cmap: str = DIVERGING_CMAP,
    alpha: float = 0.6,
    vmax: float | None = None,
    colorbar: bool = True,
    title: str | None = None,
    size: float = 4.0,
    dpi: int = 100,
) -> None:
    """Writes one overlay, with a colour bar by default, to ``path`` (format from the
    suffix, e.g. .png)."""
    figure_class = _figure_class()
    fig = figure_class(figsize=(size * (1.2 if colorbar else 1.0), size))
    ax = fig.add_subplot(1, 1, 1)
    overlay(
        image, heatmap, ax=ax, cmap=cmap, alpha=alpha, vmax=vmax, colorbar=colorbar, title=title
    )
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.05)
