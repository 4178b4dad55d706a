"""Projective-field truncation (``approximate={"projective_field": tau}``, Krypton's tau):
the boxes cut to their centre (engine.regions.truncated_regions) against a direct
construction, the incremental maps with truncation against an independent reference (every
occluded sample run in full, each convolution's output outside its truncated box put back to
the unoccluded value by a forward hook), tau = 1 equal to the exact maps, the measurement
of engine.projective_field, and the front-ends' notes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastocclusion.engine.projective_field import measure_truncation
from fastocclusion.engine.regions import Regions, truncated_regions

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from fastocclusion import Occlusion  # noqa: E402

pytestmark = pytest.mark.torch


# -- the boxes --------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 3), st.floats(0.05, 1.0))
def test_truncated_boxes_are_the_central_part_of_each_box(seed, axes, tau):
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 30, axes))
    size = tuple(int(rng.integers(1, n + 1)) for n in shape)
    begin = np.stack([rng.integers(0, n - s + 1, 7) for n, s in zip(shape, size)], 1)
    boxes = Regions(begin.astype(np.int64), size, shape)
    cut = truncated_regions(boxes, tau)
    for axis, (n, s) in enumerate(zip(shape, size)):
        cap = max(1, round(tau * n))
        if s <= cap:  # kept as it is
            assert cut.size[axis] == s
            np.testing.assert_array_equal(cut.begin[:, axis], begin[:, axis])
            continue
        assert cut.size[axis] == cap
        left = cut.begin[:, axis] - begin[:, axis]
        right = begin[:, axis] + s - (cut.begin[:, axis] + cap)
        assert (left >= 0).all() and (right >= 0).all() and (np.abs(left - right) <= 1).all()
    if all(s <= max(1, round(tau * n)) for n, s in zip(shape, size)):
        assert cut is boxes


# -- the maps against an independent reference ------------------------------------------------

SIDE, PATCH, LAYERS = 16, 4, 3


def chain(seed: int) -> nn.Module:
    """Three 3x3 "same" convolutions (ReLU between them) and a linear head on 16x16."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(LAYERS):
        layers += [nn.Conv2d(2 if i == 0 else 4, 4, 3, padding=1)]
        layers += [nn.ReLU()] if i < LAYERS - 1 else []
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(4 * SIDE * SIDE, 3)).double().eval()


def boxes_of(origin: int, tau: float) -> list[tuple[int, int]]:
    """(begin, size) along one axis of each convolution's changed box for the patch at
    ``origin``: grown by one each side per layer, a size common to all patches moved inward
    at the edges, then cut to its central round(tau * 16) when longer."""
    begin, size, out = origin, PATCH, []
    for _ in range(LAYERS):
        size = min(SIDE, size + 2)
        begin = min(max(begin - 1, 0), SIDE - size)
        cap = max(1, round(tau * SIDE))
        if size > cap:
            begin, size = begin + (size - cap) // 2, cap
        out.append((begin, size))
    return out


def kept_box(output: torch.Tensor, base: torch.Tensor, box) -> torch.Tensor:
    """``base`` with ``output`` inside ``box`` ((row begin, size), (column begin, size))."""
    (r0, rs), (c0, cs) = box
    kept = base.clone()
    kept[..., r0 : r0 + rs, c0 : c0 + cs] = output[..., r0 : r0 + rs, c0 : c0 + cs]
    return kept


def reference_maps(net: nn.Module, x: np.ndarray, target: int, tau: float) -> np.ndarray:
    """The summed score drops per pixel, each occluded sample run in full with every
    convolution's output outside its truncated box set back to the unoccluded one."""
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    base_maps: list[torch.Tensor] = []
    hooks = [c.register_forward_hook(lambda m, i, o: base_maps.append(o.clone())) for c in convs]
    inputs = torch.from_numpy(x)
    with torch.no_grad():
        base = net(inputs)[:, target]
    for h in hooks:
        h.remove()
    maps = np.zeros((len(x), SIDE, SIDE))
    for n in range(len(x)):
        for row in range(0, SIDE - PATCH + 1, PATCH):
            for col in range(0, SIDE - PATCH + 1, PATCH):
                boxes = list(zip(boxes_of(row, tau), boxes_of(col, tau)))
                hooks = [
                    c.register_forward_hook(
                        lambda m, a, o, base=base_maps[k][n : n + 1], box=boxes[k]: kept_box(
                            o, base, box
                        )
                    )
                    for k, c in enumerate(convs)
                ]
                occluded = inputs[n : n + 1].clone()
                occluded[:, :, row : row + PATCH, col : col + PATCH] = 0.0
                with torch.no_grad():
                    drop = float(base[n] - net(occluded)[0, target])
                for h in hooks:
                    h.remove()
                maps[n, row : row + PATCH, col : col + PATCH] += drop
    return maps


@pytest.mark.parametrize("tau", [0.3, 0.45, 0.55])
def test_truncated_incremental_maps_equal_the_hooked_reference(tau):
    net = chain(int(tau * 100))
    x = np.random.default_rng(1).normal(size=(2, 2, SIDE, SIDE))
    explainer = Occlusion(net, patch_size=PATCH, patch_stride=PATCH, batch_size=5,
                          data_format="channels_first", incremental=True,
                          approximate={"projective_field": tau})  # fmt: skip
    targets = np.eye(3)[[1, 1]]
    maps = explainer.explain(x, targets).numpy()[:, 0]
    expected = reference_maps(net, x, 1, tau)
    np.testing.assert_allclose(maps, expected, rtol=0, atol=1e-5 * np.abs(expected).max())
    stats = explainer.last_stats
    assert "projective-field truncation (approximate) cut the boxes of" in stats.incremental_note
    assert f"projective-field truncation at tau {tau:g}" in stats.approximate_note
    assert stats.approximate_share == 1.0 and 0.0 <= stats.approximate_ssim <= 1.0
    exact = Occlusion(net, patch_size=PATCH, patch_stride=PATCH, data_format="channels_first")
    assert np.abs(exact.explain(x, targets).numpy()[:, 0] - maps).max() > 0  # it approximates


def test_tau_one_cuts_nothing_and_gives_the_exact_maps():
    net = chain(3)
    x = np.random.default_rng(2).normal(size=(2, 2, SIDE, SIDE))
    options = dict(patch_size=PATCH, patch_stride=2, data_format="channels_first")
    exact = Occlusion(net, **options).explain(x, np.eye(3)[[0, 2]]).numpy()
    explainer = Occlusion(net, approximate={"projective_field": 1.0}, **options)
    np.testing.assert_allclose(
        explainer.explain(x, np.eye(3)[[0, 2]]).numpy(), exact, rtol=0, atol=1e-12
    )
    assert explainer.last_stats.approximate_ssim == 1.0
    assert "no box was cut" in explainer.last_stats.approximate_note


def test_a_tuned_truncation_is_measured_and_reported_and_plain_auto_tries_none():
    net = chain(4)
    x = np.random.default_rng(3).normal(size=(1, 2, SIDE, SIDE))
    options = dict(patch_size=PATCH, patch_stride=1, data_format="channels_first")
    plain = Occlusion(net, approximate="auto", **options)
    plain.explain(x, np.eye(3)[[0]])
    assert "tau" not in plain.last_stats.approximate_note
    explainer = Occlusion(net, approximate={"projective_field": "auto"}, **options)
    maps = explainer.explain(x, np.eye(3)[[0]]).numpy()
    stats = explainer.last_stats
    assert "tau 0.7:" in stats.approximate_note  # the mildest share is tried first
    assert maps.shape == (1, 1, SIDE, SIDE) and np.isfinite(maps).all()
    assert 0.0 <= stats.approximate_ssim <= 1.0


# -- the measurement ---------------------------------------------------------------------------


def test_measure_truncation_keeps_a_given_share_and_tries_shares_for_a_goal():
    exact = np.arange(2 * 16, dtype=np.float64).reshape(2, 4, 4)  # two inputs, one plane
    noise = np.random.default_rng(0).normal(size=exact.shape)
    offsets = {0.4: 3.0, 0.55: 0.05, 0.7: 0.0}  # error per share

    def sweep(tau):
        return exact + offsets[tau] * noise

    def identity(values):
        return values[0]

    given = measure_truncation(exact, 2, (0.4,), None, sweep, identity)
    assert given.share == 0.4 and given.ssim.shape == (2,) and given.ssim.max() < 0.9
    # from the mildest share on, while the goal holds: the last that holds it is kept
    chosen = measure_truncation(exact, 2, (0.7, 0.55, 0.4), 0.9, sweep, identity)
    assert chosen.share == 0.55 and chosen.ssim.min() >= 0.9
    assert [t for t, _ in chosen.tried] == [0.7, 0.55, 0.4]
    assert chosen.tried[2][1] < 0.9 <= chosen.tried[1][1]
    none = measure_truncation(exact, 2, (0.4, 0.7), 0.99, sweep, identity)
    assert [t for t, _ in none.tried] == [0.4]  # the first miss ends the search
    assert none.share is None and (none.ssim == 1.0).all()
    assert "no projective-field truncation" in none.describe()
