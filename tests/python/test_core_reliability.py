"""fastocclusion._core never gives a silently wrong answer and never aborts the process.

- integer overflow in the geometry: exact counts for any int64 sizes over 1 to 5 axes,
  ValueError past int64;
- string options: the whole str is parsed ('cover\\x00junk' is not 'cover'), bytes refused;
- threads that cannot be started and memory that runs out (RLIMIT_NPROC / RLIMIT_AS in a child
  process): the child stays alive, with the NumPy reference's results or a clean exception.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastocclusion import _core

INT64_MAX = 2**63 - 1


def exact_spans(length: int, window: int, stride: int, edges: str) -> list[tuple[int, int]]:
    """(anchor, extent) along one axis (design §2, §5) in Python's unbounded integers."""
    count = -(-(length - window + 1) // stride)
    if edges == "cover":
        last = (count - 1) * stride
        if last + window < length and last + stride < length:
            count += 1
    return [(i * stride, min(window, length - i * stride)) for i in range(count)]


def exact_count(length: int, window: int, stride: int, edges: str) -> int:
    count = -(-(length - window + 1) // stride)
    if edges == "cover":
        last = (count - 1) * stride
        if last + window < length and last + stride < length:
            count += 1
    return count


# ---- geometry: no overflow ----------------------------------------------------------------


def test_issue_cases_huge_strides_give_one_anchor():
    assert _core.WindowGrid((10, 10), (1, 1), (INT64_MAX, 1)).counts[0] == 1
    for edges in ("valid", "cover"):
        grid = _core.WindowGrid((10, 10), (3, 3), (INT64_MAX - 5, INT64_MAX - 5), edges)
        assert (grid.counts, grid.num_windows) == ((1, 1), 1)
        assert grid.spans(0) == [(0, 3)]
        assert grid.window_box(0) == ((0, 3), (0, 3))


def test_issue_case_sizes_past_int64_are_a_value_error():
    with pytest.raises(ValueError) as info:
        _core.WindowGrid((2**62, 2**62), (1, 1), (1, 1))
    message = str(info.value)
    assert "sample shape" in message and "int64" in message, message
    with pytest.raises(ValueError, match="int64"):
        _core.WindowGrid((2**13,) * 5, (1,) * 5, (1,) * 5)
    # Just inside: 2^62 windows in two axes, 2^60 in five.
    assert _core.WindowGrid((2**31, 2**31), (1, 1), (1, 1)).num_windows == 2**62
    grid = _core.WindowGrid((2**12,) * 5, (1,) * 5, (1,) * 5, "cover")
    assert grid.num_windows == grid.sample_size == 2**60
    assert grid.window_box(2**60 - 1) == ((2**12 - 1, 2**12),) * 5


def test_sizes_past_int64_are_refused_by_the_binding():
    with pytest.raises(TypeError):
        _core.WindowGrid((10, 10), (1, 1), (2**63, 1))
    with pytest.raises(TypeError):
        _core.WindowGrid((2**64, 10), (1, 1), (1, 1))


BIG = st.one_of(
    st.integers(1, 64),
    st.integers(2**62, INT64_MAX),
    st.sampled_from([2**31, 2**32 + 1, INT64_MAX // 2, INT64_MAX - 1, INT64_MAX]),
)


@st.composite
def huge_axis(draw):
    length = draw(BIG)
    window = draw(st.one_of(st.integers(1, min(length, 64)), st.integers(1, length)))
    stride = draw(BIG)
    return length, window, stride


@given(
    st.lists(huge_axis(), min_size=1, max_size=5),
    st.lists(st.sampled_from(["valid", "cover"]), min_size=5, max_size=5),
    st.data(),
)
def test_counts_are_exact_or_a_value_error_for_any_int64_sizes(axes, edges, data):
    edges = edges[: len(axes)]
    shape, window, stride = (tuple(a[i] for a in axes) for i in range(3))
    counts = [exact_count(*axis, e) for axis, e in zip(axes, edges)]
    if _product(shape) > INT64_MAX:  # the windows never outnumber the values
        with pytest.raises(ValueError, match="int64"):
            _core.WindowGrid(shape, window, stride, edges)
        return
    grid = _core.WindowGrid(shape, window, stride, edges)
    assert grid.counts == tuple(counts)
    assert grid.num_windows == _product(counts) and grid.sample_size == _product(shape)
    for d, (axis, e) in enumerate(zip(axes, edges)):
        if counts[d] <= 64:
            assert grid.spans(d) == exact_spans(*axis, e)
    # Any window's box, by unravelling k over the counts (last axis fastest).
    k = data.draw(st.integers(0, grid.num_windows - 1), label="k")
    expected, rest = [], k
    for (length, w, s), count in reversed(list(zip(axes, counts))):
        rest, i = divmod(rest, count)
        expected.append((i * s, i * s + min(w, length - i * s)))
    assert grid.window_box(k) == tuple(reversed(expected))


def _product(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


# ---- string options: the whole str, and only str ------------------------------------------


def small_grid(edges="valid"):
    return _core.WindowGrid((6, 6), (2, 2), (2, 2), edges)


@pytest.mark.parametrize("edges", ["cover\x00junk", "valid\x00", "\x00valid", "\x00"])
def test_edges_with_a_nul_byte_is_a_value_error(edges):
    for value in (edges, ["valid", edges]):  # one str, or one of the per-axis modes
        with pytest.raises(ValueError, match="edges=") as info:
            small_grid(value)
        assert "\\x00" in str(info.value), str(info.value)


@pytest.mark.parametrize("reduction", ["sum\x00junk", "mean\x00", "\x00sum"])
def test_reduction_with_a_nul_byte_is_a_value_error(reduction):
    deltas = np.ones((1, 3, 3))
    with pytest.raises(ValueError, match="reduction=") as info:
        _core.accumulate_window_deltas(deltas, small_grid(), reduction)
    assert "\\x00" in str(info.value), str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        b"valid",
        bytearray(b"valid"),
        memoryview(b"valid"),
        None,
        1,
        [b"valid", "valid"],
        (b"cover",) * 2,
    ],
)
def test_edges_must_be_str(value):
    # edges takes a str or a sequence of str (one per axis): anything else, bytes included,
    # is refused with an error that names the argument.
    with pytest.raises((TypeError, ValueError), match="edges"):
        small_grid(value)


@pytest.mark.parametrize("value", ["\ud800", ["valid", "\udcff"]])
def test_edges_that_cannot_be_encoded_are_refused_naming_edges(value):
    with pytest.raises((TypeError, ValueError), match="edges"):
        small_grid(value)


@pytest.mark.parametrize("value", [b"sum", bytearray(b"mean"), None, "\ud800"])
def test_reduction_must_be_a_str(value):
    with pytest.raises(TypeError, match="reduction: str"):
        _core.accumulate_window_deltas(np.ones((1, 3, 3)), small_grid(), value)


def test_str_subclasses_and_exact_names_still_work():
    assert small_grid(np.str_("cover")).counts == (3, 3)
    assert small_grid([np.str_("cover"), "valid"]).edges == ("cover", "valid")
    maps = _core.accumulate_window_deltas(np.ones((1, 3, 3)), small_grid(), np.str_("mean"))
    np.testing.assert_array_equal(maps, np.ones((1, 6, 6), np.float32))
    with pytest.raises(ValueError, match="edges="):
        small_grid("valid\u00e9")


# ---- threads and memory under rlimits, in a child process ----------------------------------
#
# The child builds every array first, then limits itself, then makes one kernel call with
# set_num_threads(64), then compares with the NumPy reference. RLIMIT_NPROC does not bind root,
# so a root child becomes `nobody` first; threads parked before the call then leave exactly
# `spare` thread slots free (the defect: threads already started were left joinable when a
# later one failed, and std::terminate ended the process). RLIMIT_AS leaves `spare` MiB of
# address space: a few or no 8 MiB thread stacks, and for "accumulate_big" no room for the
# float64 scratch of a 2048 x 2048 map (the defect: std::bad_alloc in a worker aborted the
# process). The kernels run on the image family of design §7 and on plain planes, against the
# 2-D reference functions.

CHILD = r"""
import importlib.util, json, os, resource, sys, threading, time
import numpy as np

cfg = json.loads(sys.argv[1])
# The very module the test process imported (not whatever `fastocclusion` resolves to here).
spec = importlib.util.spec_from_file_location("fastocclusion._core", cfg["core"])
_core = importlib.util.module_from_spec(spec)
spec.loader.exec_module(_core)
sys.path.insert(0, cfg["tests"])
from reference import patch_boxes, reference_accumulate, reference_stream

rng = np.random.default_rng(0)
kernel = cfg["kernel"]
_core.set_num_threads(64)
if kernel.startswith("accumulate"):
    # accumulate: 64 maps of 128 x 128 = 2^20 values, 4 threads. accumulate_big: 2 maps of
    # 2048 x 2048 and 2 x 33 MB of scratch per thread.
    n, side, patch, stride = (64, 128, 8, 4) if kernel == "accumulate" else (2, 2048, 2048, 1)
    grid = _core.WindowGrid((side, side), (patch, patch), (stride, stride), "cover")
    deltas = rng.normal(size=(n,) + grid.counts)
    out = np.full((n, side, side), np.nan, np.float32)
    if kernel == "accumulate":
        boxes = patch_boxes(side, side, (patch, patch), (stride, stride), "cover")
        expected = reference_accumulate(deltas, boxes, side, side, "sum")
    else:
        expected = np.broadcast_to(deltas.astype(np.float32), out.shape)
    call = lambda: _core.accumulate_window_deltas(deltas, grid, "sum", (), out)
else:
    shape = (2, 64, 64, 8)  # 2^15 floats per image, 64 windows (8, 8, 8) per image
    inputs = rng.normal(size=shape).astype(np.float32)
    baseline = rng.normal(size=shape[1:]).astype(np.float32)
    grid = _core.WindowGrid((64, 64, 8), (8, 8, 8), (8, 8, 8))
    full = reference_stream(inputs, patch_boxes(64, 64, (8, 8), (8, 8)), baseline, 0, 128)
    out = np.full((64,) + shape[1:], np.nan, np.float32)  # 64 slots: 2^21 floats, 8 threads
    if kernel == "fill":
        expected = full[32:96]
        call = lambda: _core.fill_occluded_batch(inputs, grid, baseline, 32, 64, out)
    elif kernel == "strided":
        expected = full[1::2]
        call = lambda: _core.fill_occluded_batch(inputs, grid, baseline, 1, 64, out, stride=2)
    else:  # incremental: the slots hold input 0, the limited call moves them all to input 1
        state = _core.IncrementalFillState()
        _core.fill_occluded_batch(inputs, grid, baseline, 0, 64, out, state)
        expected = full[64:128]
        call = lambda: _core.fill_occluded_batch(inputs, grid, baseline, 64, 64, out, state)

parked = []
restore = lambda: None
if cfg["limit"] == "nproc":
    if os.geteuid() == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
        except OSError as error:
            print(json.dumps({"skip": f"cannot leave root: {error}"}))
            sys.exit(0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    cap = 64 if hard == resource.RLIM_INFINITY else min(64, hard)
    resource.setrlimit(resource.RLIMIT_NPROC, (cap, hard))
    for _ in range(200):
        event = threading.Event()
        thread = threading.Thread(target=event.wait)
        try:
            thread.start()
        except RuntimeError:
            break
        parked.append((thread, event))
    if len(parked) >= 200 or len(parked) < cfg["spare"]:
        print(json.dumps({"skip": f"RLIMIT_NPROC not usable here ({len(parked)} threads parked)"}))
        sys.exit(0)
    for thread, event in parked[: cfg["spare"]]:
        event.set()
        thread.join()
    parked = parked[cfg["spare"]:]
    time.sleep(0.05)  # let the kernel reap the released threads
else:
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (used + cfg["spare"] * 2**20, hard))
    restore = lambda: resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

try:
    call()
    result = {"status": "ok"}
except BaseException as error:
    result = {"status": "error", "type": type(error).__name__, "message": str(error)}
finally:
    restore()
if result["status"] == "ok":
    if kernel.startswith("accumulate"):
        result["match"] = bool(np.allclose(out, expected, rtol=1e-5, atol=1e-5))
    else:
        result["match"] = bool(np.array_equal(out, expected))
for thread, event in parked:
    event.set()
    thread.join()
print(json.dumps(result))
"""


def run_child(kernel: str, limit: str, spare: int) -> dict:
    if "asan" in os.environ.get("LD_PRELOAD", "") and limit == "as":
        pytest.skip("RLIMIT_AS cannot be combined with AddressSanitizer's shadow memory")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    config = {
        "kernel": kernel,
        "limit": limit,
        "spare": spare,
        "core": _core.__file__,
        "tests": str(Path(__file__).parent),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, f"child rc={done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if "skip" in result:
        pytest.skip(result["skip"])
    return result


LIMITS = [("nproc", 0), ("nproc", 2), ("as", 4), ("as", 20)]


@pytest.mark.parametrize("limit,spare", LIMITS, ids=[f"{k}-{s}" for k, s in LIMITS])
@pytest.mark.parametrize("kernel", ["fill", "strided", "incremental", "accumulate"])
def test_threads_that_cannot_start_leave_results_correct(kernel, limit, spare):
    result = run_child(kernel, limit, spare)
    if result["status"] == "error":
        # Only the accumulation allocates (its scratch grid): a clean MemoryError is allowed.
        assert kernel == "accumulate" and result["type"] == "MemoryError", result
    else:
        assert result["match"], result


@pytest.mark.parametrize("spare", [4, 12])
def test_scratch_that_cannot_be_allocated_is_a_memory_error(spare):
    result = run_child("accumulate_big", "as", spare)
    assert result["status"] == "error" and result["type"] == "MemoryError", result


def test_unlimited_child_matches_too():
    """The child script itself, without a limit (a control for the tests above)."""
    for kernel in ("fill", "strided", "incremental", "accumulate", "accumulate_big"):
        result = run_child(kernel, "as", 1 << 20)
        assert result == {"status": "ok", "match": True}, (kernel, result)
