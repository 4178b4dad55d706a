"""Volumes, channels-first inputs and all-class maps in the Xplique-style front-end (design §7),
against the independent N-d oracle of reference_nd.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference import LinearNumpyModel
from reference_nd import occlusion_nd

from fastocclusion import Occlusion

CLASSES = 4


def onehot(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, n)]


def close(actual, expected: np.ndarray) -> None:
    actual = np.asarray(actual)
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    scale = max(float(np.abs(expected).max()), 1e-3)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=2e-5 * scale)


@st.composite
def volume_case(draw):
    n = draw(st.integers(1, 2))
    shape = tuple(draw(st.integers(1, 6)) for _ in range(3)) + (draw(st.sampled_from([1, 2, 3])),)
    patch = tuple(draw(st.integers(1, d)) for d in shape[:3])
    stride = tuple(draw(st.integers(1, p + 2)) for p in patch)
    as_int = draw(st.booleans()) and len(set(patch)) == 1 and len(set(stride)) == 1
    edges = draw(st.sampled_from(["valid", "cover"]))
    reduction = draw(st.sampled_from(["sum", "mean"]))
    baseline = draw(st.sampled_from(["scalar", "channel", "full"]))
    seed = draw(st.integers(0, 2**31))
    return n, shape, patch, stride, as_int, edges, reduction, baseline, seed


def baseline_value(kind: str, shape: tuple[int, ...], channel_axis: int, rng) -> object:
    if kind == "scalar":
        return float(rng.normal())
    if kind == "channel":
        return rng.normal(size=shape[channel_axis]).astype(np.float32)
    return rng.normal(size=shape).astype(np.float32)


@given(volume_case())
def test_volumes_match_the_nd_reference(case):
    n, shape, patch, stride, as_int, edges, reduction, kind, seed = case
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + shape).astype(np.float32)
    y = onehot(rng, n)
    value = baseline_value(kind, shape, 3, rng)
    model = LinearNumpyModel(shape, outputs=CLASSES, seed=seed % 7)
    maps = Occlusion(
        model,
        batch_size=int(rng.integers(1, 20)),
        patch_size=patch[0] if as_int else patch,
        patch_stride=stride[0] if as_int else stride,
        occlusion_value=value,
        edges=edges,
        reduction=reduction,
    ).explain(x, y)
    expected = occlusion_nd(
        model.reference_fn, x, y, patch + (shape[3],), stride + (shape[3],), value, edges, reduction
    )
    close(maps, expected[..., :1])  # every channel has the same value: maps keep one


@pytest.mark.parametrize("rank", [4, 5])
@pytest.mark.parametrize("kind", ["scalar", "channel", "full"])
def test_channels_first_equals_the_channels_last_transpose(rank, kind):
    rng = np.random.default_rng(rank * 10 + len(kind))
    last_shape = (5, 6, 2) if rank == 4 else (3, 5, 4, 2)
    x_last = rng.normal(size=(2,) + last_shape).astype(np.float32)
    order = (0, rank - 1) + tuple(range(1, rank - 1))  # channels to axis 1
    x_first = np.ascontiguousarray(x_last.transpose(order))
    y = onehot(rng, 2)
    value_last = baseline_value(kind, last_shape, len(last_shape) - 1, rng)
    value_first = (
        value_last
        if kind != "full"
        else np.ascontiguousarray(value_last.transpose(np.array(order[1:]) - 1))
    )
    weights = LinearNumpyModel(last_shape, outputs=CLASSES)

    def first_model(batch):  # the same function of the channels-first layout
        back = np.argsort(order)
        return weights.reference_fn(np.ascontiguousarray(batch.transpose(back)))

    options = dict(patch_size=2, patch_stride=(1,) * (rank - 2), edges="cover", batch_size=9)
    last = np.asarray(Occlusion(weights, occlusion_value=value_last, **options).explain(x_last, y))
    first = np.asarray(
        Occlusion(
            first_model, occlusion_value=value_first, data_format="channels_first", **options
        ).explain(x_first, y)
    )
    assert first.shape == (2, 1) + last_shape[:-1]
    np.testing.assert_allclose(first, last.transpose(order), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("shape", "data_format"),
    [
        ((2, 6, 5, 3), "channels_last"),
        ((2, 3, 6, 5), "channels_first"),
        ((2, 7, 5), None),
        ((3, 9), None),
        ((2, 3, 4, 5, 2), "channels_last"),
        ((2, 2, 3, 4, 5), "channels_first"),
    ],
)
@pytest.mark.parametrize("classes", [None, [2], [3, 0, 3]])
def test_explain_classes_equals_one_explain_per_class(shape, data_format, classes):
    rng = np.random.default_rng(len(shape))
    x = rng.normal(size=shape).astype(np.float32)
    model = LinearNumpyModel(shape[1:], outputs=CLASSES)
    options = dict(
        patch_size=2,
        patch_stride=1,
        batch_size=7,
        edges="cover",
        reduction="mean",
        data_format=data_format or "channels_last",
        occlusion_value=0.3,
    )
    explainer = Occlusion(model, **options)
    maps = np.asarray(explainer.explain_classes(x, classes))
    chosen = list(range(CLASSES)) if classes is None else classes
    singles = [
        np.asarray(
            Occlusion(model, **options).explain(x, np.eye(CLASSES, dtype=np.float32)[[c] * len(x)])
        )
        for c in chosen
    ]
    if data_format == "channels_first":
        expected = np.concatenate(singles, axis=1)  # (N, 1, ...) maps: classes on axis 1
    elif data_format == "channels_last":
        expected = np.concatenate(singles, axis=-1)  # (N, ..., 1) maps: classes last
    else:
        expected = np.stack(singles, axis=-1)
    np.testing.assert_allclose(maps, expected, rtol=1e-6, atol=1e-7)
    # one sweep: the calls of one explain (base pass + sweep)
    n = shape[0]
    stats = explainer.last_stats
    assert stats.model_calls == -(-n // 7) + -(-stats.perturbed_samples // 7)


def test_explain_classes_bad_input():
    x = np.zeros((2, 4, 4, 1), np.float32)
    model = LinearNumpyModel((4, 4, 1), outputs=3)
    with pytest.raises(ValueError, match="classes: 3 is invalid, expected class indices 0 to 2"):
        Occlusion(model).explain_classes(x, [0, 3])
    for bad in (-1, [1.5], "a", []):
        with pytest.raises(ValueError, match="classes: .* is invalid"):
            Occlusion(model).explain_classes(x, bad)
    with pytest.raises(ValueError, match="explain_classes: the operator is invalid"):
        Occlusion(model, operator=lambda m, x, y: m(x).sum(-1)).explain_classes(x)
    with pytest.raises(ValueError, match="explain_classes: the operator is invalid"):
        Occlusion(model, operator="semantic segmentation").explain_classes(x)
    with pytest.raises(ValueError, match=r"model: outputs of shape \(2, 4, 4, 1\) are invalid"):
        Occlusion(lambda b: b).explain_classes(x)


def test_layout_options_and_patch_axes_are_checked():
    model = LinearNumpyModel((3, 4, 5, 1), outputs=3)
    volumes = np.zeros((1, 3, 4, 5, 1), np.float32)
    targets = np.eye(3, dtype=np.float32)[[0]]
    with pytest.raises(ValueError, match="data_format: 'nhwc' is invalid"):
        Occlusion(model, data_format="nhwc")
    with pytest.raises(ValueError, match=r"patch_size: \(2, 2\) is invalid for volumes"):
        Occlusion(model, patch_size=(2, 2)).explain(volumes, targets)
    with pytest.raises(ValueError, match=r"patch_stride: \(1, 1, 1\) is invalid for images"):
        Occlusion(LinearNumpyModel((4, 5, 1), 3), patch_stride=(1, 1, 1)).explain(
            np.zeros((1, 4, 5, 1), np.float32), targets
        )
    with pytest.raises(ValueError, match="patch_size: 4 along axis 1 is larger than the input"):
        Occlusion(model, patch_size=(4, 1, 1)).explain(volumes, targets)
    with pytest.raises(ValueError, match=r"inputs: shape .* \(rank 6\) is invalid"):
        Occlusion(model).explain(np.zeros((1, 2, 2, 2, 2, 2), np.float32), targets)
    explainer = Occlusion(model, patch_size=2, patch_stride=1)
    explainer.explain(volumes, targets)
    assert explainer.patch_size == (2, 2, 2) and explainer.patch_stride == (1, 1, 1)


@st.composite
def region_case(draw):
    rank = draw(st.sampled_from([2, 3, 4, 5]))  # tabular, series, images, volumes
    shape = tuple(draw(st.integers(2, 7)) for _ in range(rank - 1))
    if rank >= 4:
        shape = shape[:-1] + (draw(st.integers(1, 2)),)
    spatial = len(shape) - (1 if rank >= 4 else 0)
    region = []
    for length in shape[:spatial]:
        begin = draw(st.integers(0, length - 1))
        region.append((begin, draw(st.integers(begin + 1, length))))
    patch = tuple(draw(st.integers(1, e - b)) for b, e in region)
    stride = tuple(draw(st.integers(1, p + 1)) for p in patch)
    edges = draw(st.sampled_from(["valid", "cover"]))
    reduction = draw(st.sampled_from(["sum", "mean"]))
    return shape, spatial, tuple(region), patch, stride, edges, reduction, draw(st.integers(0, 99))


@given(region_case())
def test_a_region_of_interest_restricts_the_windows_and_zeroes_the_rest(case):
    shape, spatial, region, patch, stride, edges, reduction, seed = case
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2,) + shape).astype(np.float32)
    y = onehot(rng, 2)
    model = LinearNumpyModel(shape, outputs=CLASSES, seed=seed % 5)
    explainer = Occlusion(
        model,
        batch_size=5,
        patch_size=patch,
        patch_stride=stride,
        occlusion_value=0.5,
        edges=edges,
        reduction=reduction,
    )
    maps = explainer.explain(x, y, region=region)
    channels = shape[spatial:]  # () or (C,): every window spans all channels
    full_region = list(region) + [(0, c) for c in channels]
    expected = occlusion_nd(
        model.reference_fn,
        x,
        y,
        patch + channels,
        stride + channels,
        0.5,
        edges,
        reduction,
        full_region,
    )
    close(maps, expected[..., :1] if channels else expected)
    inside = tuple(slice(b, e) for b, e in region)
    outside = np.ones(shape[:spatial], bool)
    outside[inside] = False
    assert not np.asarray(maps).reshape((2,) + shape[:spatial])[:, outside].any()
    # fewer model calls than the whole input's sweep
    whole = Occlusion(model, batch_size=5, patch_size=patch, patch_stride=stride, edges=edges)
    whole.explain(x, y)
    assert explainer.last_stats.model_calls <= whole.last_stats.model_calls


def test_region_bad_values_name_region():
    x = np.zeros((1, 6, 5, 1), np.float32)
    y = np.eye(3, dtype=np.float32)[[0]]
    model = LinearNumpyModel((6, 5, 1), outputs=3)
    for bad, match in [
        (((0, 7), (0, 5)), r"region: \(0, 7\) along axis 1"),
        (((2, 2), (0, 5)), r"region: \(2, 2\) along axis 1"),
        (((0, 6),), "expected 2 .begin, end. pairs"),
        ("box", "region: 'box' is invalid"),
        (((0.5, 3), (0, 5)), "pairs of ints"),
    ]:
        with pytest.raises(ValueError, match=match):
            Occlusion(model).explain(x, y, region=bad)
    with pytest.raises(ValueError, match=r"patch_size: 3 along axis 2 is larger than the region"):
        Occlusion(model, patch_size=3).explain(x, y, region=((0, 6), (1, 3)))
    assert model.calls == []
