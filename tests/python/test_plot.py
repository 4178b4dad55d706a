"""fastocclusion.plot: overlays, grids and PNG files; shapes, scaling and bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from fastocclusion import plot  # noqa: E402

RNG = np.random.default_rng(7)


def _drawn(ax) -> tuple[np.ndarray, np.ndarray]:
    """(image data, heatmap data) as drawn on ``ax`` by overlay."""
    assert len(ax.images) == 2
    return np.asarray(ax.images[0].get_array()), np.asarray(ax.images[1].get_array())


@pytest.mark.parametrize("shape", [(6, 5), (6, 5, 1), (6, 5, 3)])
@pytest.mark.parametrize("map_shape", [(6, 5), (6, 5, 1)])
def test_overlay_accepts_image_and_map_shapes(shape, map_shape):
    image = RNG.uniform(0, 1, shape).astype(np.float32)
    heatmap = RNG.normal(size=map_shape).astype(np.float32)
    ax = plot.overlay(image, heatmap)
    drawn_image, drawn_map = _drawn(ax)
    expected_image = image[..., 0] if shape[-1:] == (1,) else image
    np.testing.assert_allclose(drawn_image, expected_image, rtol=1e-6)
    h = heatmap.reshape(6, 5).astype(np.float64)
    # The values as they are, on a scale centred on 0 that reaches the largest |value|.
    np.testing.assert_allclose(drawn_map, h, rtol=1e-6)
    limit = np.abs(h).max()
    assert ax.images[1].get_clim() == pytest.approx((-limit, limit))
    assert ax.images[1].get_cmap().name == plot.DIVERGING_CMAP
    assert ax.figure is not None and not ax.axison


def test_overlay_accepts_tensors_and_draws_on_a_given_axis():
    tf = pytest.importorskip("tensorflow")
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    image = tf.constant(RNG.uniform(0, 1, (4, 4, 1)), dtype=tf.float32)
    heatmap = tf.constant(np.arange(16, dtype=np.float32).reshape(4, 4, 1))
    returned = plot.overlay(image, heatmap, ax=ax, alpha=0.3, cmap="viridis", title="t")
    assert returned is ax and ax.get_title() == "t"
    _, drawn_map = _drawn(ax)
    np.testing.assert_allclose(drawn_map, np.arange(16).reshape(4, 4))
    assert ax.images[1].get_clim() == (-15.0, 15.0)
    assert ax.images[1].get_alpha() == pytest.approx(0.3)
    assert ax.images[1].get_cmap().name == "viridis"


def test_overlay_scaling_rules():
    # uint8 images are read as 0..255; floats outside [0, 1] are min-max scaled.
    ax = plot.overlay(np.full((3, 3), 51, dtype=np.uint8), np.zeros((3, 3)))
    drawn_image, drawn_map = _drawn(ax)
    np.testing.assert_allclose(drawn_image, 0.2)
    np.testing.assert_array_equal(drawn_map, 0.0)  # an all-zero map shows as 0 ...
    assert ax.images[1].get_clim() == (-1.0, 1.0)  # ... the centre of a valid scale
    wide = np.array([[-2.0, 0.0], [2.0, 6.0]])
    drawn_image, _ = _drawn(plot.overlay(wide, np.ones((2, 2))))
    np.testing.assert_allclose(drawn_image, (wide + 2.0) / 8.0)
    # A given vmax: a fixed scale, so that several plots share it; a negative-only map is
    # centred on 0 too (never stretched so that its largest value looks neutral).
    raw = np.array([[0.1, 0.2], [0.3, 0.4]])
    ax = plot.overlay(np.zeros((2, 2)), raw, vmax=0.5, colorbar=True)
    np.testing.assert_allclose(_drawn(ax)[1], raw)
    assert ax.images[1].get_clim() == (-0.5, 0.5)
    assert len(ax.figure.axes) == 2  # the axis and its colour bar
    ax = plot.overlay(np.zeros((2, 2)), -raw)
    assert ax.images[1].get_clim() == pytest.approx((-0.4, 0.4))
    with pytest.raises(ValueError, match="vmax: 0 is invalid"):
        plot.overlay(np.zeros((2, 2)), raw, vmax=0)
    with pytest.raises(ValueError, match="vmax: nan is invalid"):
        plot.overlay(np.zeros((2, 2)), raw, vmax=float("nan"))


def test_plot_maps_grid_geometry_titles_and_shared_scale():
    images = RNG.uniform(0, 1, (5, 8, 8, 3))
    maps = RNG.normal(size=(5, 8, 8, 1))
    titles = [f"image {i}" for i in range(5)]
    fig = plot.plot_maps(images, maps, titles=titles, cols=3)
    assert len(fig.axes) == 5 + 1  # the maps and one shared colour bar
    limit = np.abs(maps).max()
    for i, ax in enumerate(fig.axes[:5]):
        rows, cols, start, _ = ax.get_subplotspec().get_geometry()
        assert (rows, cols, start) == (2, 3, i)
        assert ax.get_title() == titles[i]
        np.testing.assert_allclose(_drawn(ax)[1], maps[i, ..., 0])
        assert ax.images[1].get_clim() == pytest.approx((-limit, limit))
    # lists work too, and cols larger than N shrinks to one row; per-map scales
    fig = plot.plot_maps(
        list(images[:2]), [m[..., 0] for m in maps[:2]], cols=8, shared_scale=False, colorbar=False
    )
    assert [ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes] == [(1, 2), (1, 2)]
    for ax, m in zip(fig.axes, maps[:2]):
        assert ax.images[1].get_clim() == pytest.approx((-np.abs(m).max(), np.abs(m).max()))


def test_save_overlay_writes_a_png_with_the_map_where_it_belongs(tmp_path):
    path = tmp_path / "overlay.png"
    heatmap = np.zeros((16, 16))
    heatmap[:8, :8] = 1.0  # positive top-left quadrant
    heatmap[8:, :8] = -1.0  # negative bottom-left quadrant; 0 on the right half
    plot.save_overlay(path, np.full((16, 16), 0.5), heatmap, colorbar=False)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 500
    with Image.open(path) as png:
        rgb = np.asarray(png.convert("RGB"), dtype=np.float64)
    h, w, _ = rgb.shape
    assert h > 100 and w > 100
    hot = rgb[h // 8 : 3 * h // 8, w // 8 : 3 * w // 8].mean(axis=(0, 1))
    cold = rgb[5 * h // 8 : 7 * h // 8, w // 8 : 3 * w // 8].mean(axis=(0, 1))
    zero = rgb[h // 8 : 7 * h // 8, 5 * w // 8 : 7 * w // 8].mean(axis=(0, 1))
    assert hot[0] > max(hot[1], hot[2]) + 30  # positive: red
    assert cold[2] > max(cold[0], cold[1]) + 30  # negative: blue
    assert zero.max() - zero.min() < 10  # zero: neutral (no cyan or olive cast)


def test_plot_maps_figure_saves(tmp_path):
    fig = plot.plot_maps(RNG.uniform(0, 1, (3, 6, 6)), RNG.normal(size=(3, 6, 6)))
    path = tmp_path / "grid.png"
    fig.savefig(path)
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > png.size[1]


@pytest.mark.parametrize(
    ("image", "heatmap", "match"),
    [
        (np.zeros((4, 4, 2)), np.zeros((4, 4)), "image: shape"),
        (np.zeros(4), np.zeros((4, 4)), "image: shape"),
        (np.zeros((4, 4, 3, 1)), np.zeros((4, 4)), "image: shape"),
        (np.zeros((0, 4)), np.zeros((0, 4)), "image: shape"),
        (np.zeros((4, 4)), np.zeros((4, 4, 3)), "heatmap: shape"),
        (np.zeros((4, 4)), np.zeros((4, 5)), "heatmap: shape .* expected the image's"),
        (np.zeros((4, 4)), np.zeros((2, 4, 4)), "heatmap: shape"),
        (np.array([["a", "b"], ["c", "d"]]), np.zeros((2, 2)), "image: dtype"),
    ],
)
def test_overlay_rejects_bad_shapes(image, heatmap, match):
    with pytest.raises(ValueError, match=match):
        plot.overlay(image, heatmap)


def test_bad_arguments_raise_value_error(tmp_path):
    images, maps = np.zeros((2, 4, 4)), np.zeros((2, 4, 4))
    with pytest.raises(ValueError, match=r"maps: 3 maps .* one per image \(2\)"):
        plot.plot_maps(images, np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="titles: 1 titles"):
        plot.plot_maps(images, maps, titles=["a"])
    with pytest.raises(ValueError, match="cols: 0"):
        plot.plot_maps(images, maps, cols=0)
    with pytest.raises(ValueError, match=r"images: shape \(4, 4\)"):
        plot.plot_maps(np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="images: empty"):
        plot.plot_maps([], [])
    with pytest.raises(ValueError, match="alpha: 2"):
        plot.overlay(np.zeros((2, 2)), np.zeros((2, 2)), alpha=2)
    with pytest.raises(ValueError, match="heatmap: shape"):
        plot.save_overlay(tmp_path / "x.png", np.zeros((4, 4)), np.zeros((5, 5)))
    assert not (tmp_path / "x.png").exists()


def test_missing_matplotlib_is_a_clear_import_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if not installed
    with pytest.raises(ImportError, match=r"needs matplotlib: pip install"):
        plot.overlay(np.zeros((2, 2)), np.zeros((2, 2)))
