"""_core.gather_windows / splice_windows (feature-map windows of incremental inference)
against NumPy: random maps over one to three axes, windows past every edge, patches
anywhere inside the map, both dtypes, persistent splice sessions, and the argument checks
(ValueError naming the argument)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastocclusion import _core


def box(origin, size):
    """The slices of a box (per map axis) after the slot and channel axes."""
    return (slice(None),) + tuple(slice(o, o + s) for o, s in zip(origin, size))


def spliced(maps, index, patches, patch_origins):
    """(count, C, *axes): each slot's map with its patch written in."""
    out = maps[index].copy()
    if patches is not None:
        for j, origin in enumerate(patch_origins):
            out[j][box(origin, patches.shape[2:])] = patches[j]
    return out


def numpy_gather(maps, index, origins, size, patches, patch_origins, pad):
    dense = spliced(maps, index, patches, patch_origins)
    axes = maps.shape[2:]
    padded = np.full(
        dense.shape[:2] + tuple(a + 2 * s for a, s in zip(axes, size)), pad, maps.dtype
    )
    padded[(slice(None), slice(None)) + tuple(slice(s, s + a) for a, s in zip(axes, size))] = dense
    out = np.empty(dense.shape[:2] + tuple(size), maps.dtype)
    for j, origin in enumerate(origins):
        out[j] = padded[j][box(np.asarray(origin) + np.asarray(size), size)]
    return out


def origins_inside(rng, axes, size, count):
    """count origins of boxes of ``size`` inside a map of ``axes``."""
    columns = [rng.integers(0, a - s + 1, count) for a, s in zip(axes, size)]
    return np.stack(columns, axis=1).astype(np.int64).reshape(count, len(axes))


@st.composite
def case(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    m, ch = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rank = draw(st.integers(1, 3))
    axes = tuple(draw(st.integers(1, 9 if rank < 3 else 6)) for _ in range(rank))
    count = draw(st.integers(0, 5))
    size = tuple(draw(st.integers(1, a + 3)) for a in axes)
    patch = tuple(draw(st.integers(1, a)) for a in axes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    maps = rng.standard_normal((m, ch, *axes)).astype(dtype)
    index = rng.integers(0, m, count).astype(np.int64)
    origins = np.stack(
        [rng.integers(-s, a + 1, count) for a, s in zip(axes, size)], axis=1
    ).astype(np.int64).reshape(count, rank)  # fmt: skip
    patches = rng.standard_normal((count, ch, *patch)).astype(dtype)
    return maps, index, origins, size, patches, origins_inside(rng, axes, patch, count)


@settings(max_examples=200, deadline=None)
@given(case(), st.sampled_from([0.0, -np.inf]), st.booleans())
def test_gather_windows_equals_numpy(c, pad, with_patches):
    maps, index, origins, size, patches, patch_origins = c
    if not with_patches:
        patches = patch_origins = None
    got = _core.gather_windows(
        maps, index, origins, size, None, patches, patch_origins, pad_value=pad
    )
    assert got.dtype == maps.dtype
    np.testing.assert_array_equal(
        got, numpy_gather(maps, index, origins, size, patches, patch_origins, pad)
    )


@settings(max_examples=80, deadline=None)
@given(case(), st.integers(0, 2**32 - 1))
def test_splice_session_equals_numpy_every_call(c, seed):
    maps, index, _, _, patches, patch_origins = c
    rng = np.random.default_rng(seed)
    capacity = max(1, len(index))
    out = np.full((capacity,) + maps.shape[1:], -9, maps.dtype)
    state = _core.SpliceState()
    for _ in range(6):
        count = int(rng.integers(0, capacity + 1))
        index = rng.integers(0, len(maps), count).astype(np.int64)
        patches = rng.standard_normal((count,) + patches.shape[1:]).astype(maps.dtype)
        patch_origins = origins_inside(rng, maps.shape[2:], patches.shape[2:], count)
        _core.splice_windows(maps, index, patches, patch_origins, out, state)
        np.testing.assert_array_equal(out[:count], spliced(maps, index, patches, patch_origins))


def test_errors_name_the_argument():
    maps = np.zeros((1, 2, 4, 4), np.float32)
    index = np.zeros(1, np.int64)
    origins = np.zeros((1, 2), np.int64)
    patches = np.zeros((1, 2, 2, 2), np.float32)
    for bad in ((2, 16), (1, 2, 1, 1, 4, 4)):  # (M, C, W) at least, (M, C, D, H, W) at most
        with pytest.raises(ValueError, match="maps: shape"):
            _core.gather_windows(maps.reshape(bad), index, origins, (2, 2))
    with pytest.raises(ValueError, match="origins: shape .* expected \\(1, 3\\)"):
        _core.gather_windows(maps[:, :, None], index, origins, (1, 2, 2))
    with pytest.raises(ValueError, match="size: .* expected 3 lengths"):
        _core.gather_windows(maps[:, :, None], index, np.zeros((1, 3), np.int64), (2, 2))
    with pytest.raises(ValueError, match="maps: dtype"):
        _core.gather_windows(maps.astype(np.float16), index, origins, (2, 2))
    with pytest.raises(ValueError, match="map_index"):
        _core.gather_windows(maps, np.ones(1, np.int64), origins, (2, 2))
    with pytest.raises(ValueError, match="origins: shape"):
        _core.gather_windows(maps, index, origins[:, :1].copy(), (2, 2))
    with pytest.raises(ValueError, match="size"):
        _core.gather_windows(maps, index, origins, (0, 2))
    with pytest.raises(ValueError, match="patches and patch_origins"):
        _core.gather_windows(maps, index, origins, (2, 2), None, patches)
    with pytest.raises(ValueError, match="patches: dtype"):
        _core.gather_windows(
            maps, index, origins, (2, 2), None, patches.astype(np.float64), origins
        )
    with pytest.raises(ValueError, match="patch box 0"):
        _core.gather_windows(maps, index, origins, (2, 2), None, patches, origins + 3)
    with pytest.raises(ValueError, match="out: shape"):
        _core.gather_windows(maps, index, origins, (2, 2), np.zeros((1, 2, 3, 2), np.float32))
    with pytest.raises(ValueError, match="out: must not share memory"):
        _core.splice_windows(maps, index, patches, origins, maps)
    with pytest.raises(ValueError, match="out: shape"):
        _core.splice_windows(maps, index, patches, origins, np.zeros((1, 2, 4, 3), np.float32))
