"""_core.gather_windows / splice_windows (feature-map windows of incremental inference)
against NumPy: random maps, windows past every edge, patches anywhere inside the map, both
dtypes, persistent splice sessions, and the argument checks (ValueError naming the
argument)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastocclusion import _core


def spliced(maps, index, patches, patch_origins):
    """(count, C, H, W): each slot's map with its patch written in."""
    out = maps[index].copy()
    if patches is not None:
        ph, pw = patches.shape[2:]
        for j, (r, c) in enumerate(patch_origins):
            out[j, :, r : r + ph, c : c + pw] = patches[j]
    return out


def numpy_gather(maps, index, origins, size, patches, patch_origins, pad):
    dense = spliced(maps, index, patches, patch_origins)
    h, w = size
    height, width = maps.shape[2:]
    padded = np.full(dense.shape[:2] + (height + 2 * h, width + 2 * w), pad, maps.dtype)
    padded[:, :, h : h + height, w : w + width] = dense
    out = np.empty(dense.shape[:2] + (h, w), maps.dtype)
    for j, (r, c) in enumerate(origins):
        out[j] = padded[j, :, r + h : r + 2 * h, c + w : c + 2 * w]
    return out


@st.composite
def case(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    m, ch = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    count = draw(st.integers(0, 5))
    h, w = draw(st.integers(1, height + 3)), draw(st.integers(1, width + 3))
    ph, pw = draw(st.integers(1, height)), draw(st.integers(1, width))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    maps = rng.standard_normal((m, ch, height, width)).astype(dtype)
    index = rng.integers(0, m, count).astype(np.int64)
    origins = np.stack(
        [rng.integers(-h, height + 1, count), rng.integers(-w, width + 1, count)], axis=1
    ).astype(np.int64)
    patches = rng.standard_normal((count, ch, ph, pw)).astype(dtype)
    patch_origins = np.stack(
        [rng.integers(0, height - ph + 1, count), rng.integers(0, width - pw + 1, count)], axis=1
    ).astype(np.int64)
    return maps, index, origins, (h, w), patches, patch_origins


@settings(max_examples=150, deadline=None)
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


@settings(max_examples=60, deadline=None)
@given(case(), st.integers(0, 2**32 - 1))
def test_splice_session_equals_numpy_every_call(c, seed):
    maps, index, _, _, patches, patch_origins = c
    rng = np.random.default_rng(seed)
    capacity = max(1, len(index))
    out = np.full((capacity,) + maps.shape[1:], -9, maps.dtype)
    state = _core.SpliceState()
    height, width = maps.shape[2:]
    ph, pw = patches.shape[2:]
    for _ in range(6):
        count = int(rng.integers(0, capacity + 1))
        index = rng.integers(0, len(maps), count).astype(np.int64)
        patches = rng.standard_normal((count,) + patches.shape[1:]).astype(maps.dtype)
        patch_origins = np.stack(
            [rng.integers(0, height - ph + 1, count), rng.integers(0, width - pw + 1, count)],
            axis=1,
        ).astype(np.int64)
        _core.splice_windows(maps, index, patches, patch_origins, out, state)
        np.testing.assert_array_equal(out[:count], spliced(maps, index, patches, patch_origins))


def test_errors_name_the_argument():
    maps = np.zeros((1, 2, 4, 4), np.float32)
    index = np.zeros(1, np.int64)
    origins = np.zeros((1, 2), np.int64)
    patches = np.zeros((1, 2, 2, 2), np.float32)
    with pytest.raises(ValueError, match="maps: shape"):
        _core.gather_windows(maps[0], index, origins, (2, 2))
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
