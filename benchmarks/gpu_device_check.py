#!/usr/bin/env python3
"""One-shot check of fastocclusion's CUDA path on a machine with an NVIDIA GPU.

    python benchmarks/gpu_device_check.py            # the full check, < 8 minutes
    python benchmarks/gpu_device_check.py --cpu-dry-run   # build + import only (no GPU needed)

Needs: nvcc, CMake, a C++ compiler, Python with NumPy and pybind11; PyTorch and/or CuPy for
the timings and the DLPack tests. No TensorFlow, no pip, no network.

Stages (each in its own try/except: a failure is reported and the next stage still runs):
 1. build  - _core and _cuda from this repository with plain CMake (build-device/, one CUDA
             architecture, 90 by default), copied next to a temporary copy of
             python/fastocclusion which is put first on sys.path;
 2. import - the two modules, is_available(), versions;
 3. checks - GPU against the CPU kernels on random N-d window grids (ranks 1 to 5, per-axis
             windows, strides and edge modes): full fills of slices and strided slot
             mappings, incremental fills over consecutive slices and the chunked sweep order
             (batch b: start b, stride C), sum and mean maps with and without collapsed axes;
 4. timing - the fill kernels (copy + box passes) against a device-to-device copy of the same
             bytes (CUDA events) for 224x224x3 and 512x512x3 images with (p, p, 3) windows,
             and a 64^3 volume with 8^3 windows, batch 32: % of copy bandwidth (target >= 80%),
             incremental fills in the chunked sweep order against full fills; the maps;
 5. e2e    - fastocclusion.Occlusion(device="gpu") on a small PyTorch CNN against the same
             number of model calls alone (target overhead ratio <= 1.05), if available;
    incremental - Occlusion(device="gpu", incremental=True) against incremental=False on a
             VGG-16 layout (and torchvision's ResNet-18 when installed): times, layers on
             boxes, the largest map difference;
 6. pytest - the GPU test files (PYTEST_FILES).
The results are printed as Markdown and written to $OUT/device_check.md when OUT is set (the
build log to $OUT/device_build.log).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TOTAL_BUDGET_S = 7.5 * 60  # stages are skipped once this is spent
#: The GPU tests (and the fake-device tests beside them, quick), stage 6.
PYTEST_FILES = (
    "tests/python/test_cuda.py",
    "tests/python/test_incremental_device.py",
    "tests/python/test_torch_devices.py",
)


# ---- report ---------------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.stages: list[tuple[str, str, float, str]] = []
        self.sections: list[str] = []

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def table(self, title: str, header: list[str], rows: list[list[Any]], note: str = "") -> None:
        lines = [
            f"### {title}",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join("---" for _ in header) + "|",
        ]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
        if note:
            lines += ["", note]
        self.sections.append("\n".join(lines))
        print("\n" + self.sections[-1] + "\n", flush=True)

    def text(self, title: str, body: str) -> None:
        self.sections.append(f"### {title}\n\n{body}")
        print("\n" + self.sections[-1] + "\n", flush=True)

    @contextlib.contextmanager
    def stage(self, name: str):
        """Runs a stage; records ok / FAILED (with the error) / skipped and its duration."""
        t0 = time.monotonic()
        print(f"\n=== {name} (t={self.elapsed():.0f}s) ===", flush=True)
        status = {"value": "ok", "note": ""}
        try:
            yield status
        except SkipStage as skip:
            status["value"], status["note"] = "skipped", str(skip)
        except Exception as error:  # noqa: BLE001 - report and carry on
            status["value"] = "FAILED"
            status["note"] = f"{type(error).__name__}: {error}".replace("\n", " ")[:300]
            traceback.print_exc()
        self.stages.append((name, status["value"], time.monotonic() - t0, status["note"]))
        print(f"=== {name}: {status['value']} {status['note']}", flush=True)

    def markdown(self) -> str:
        head = [
            "# fastocclusion GPU device check",
            "",
            "| stage | status | seconds | notes |",
            "|---|---|---|---|",
        ]
        head += [
            f"| {n} | {s} | {t:.1f} | {note.replace('|', '/')} |" for n, s, t, note in self.stages
        ]
        return "\n".join(head) + "\n\n" + "\n\n".join(self.sections) + "\n"


class SkipStage(Exception):
    pass


def out_path(name: str) -> Path | None:
    out = os.environ.get("OUT")
    return Path(out) / name if out else None


def run(cmd: list[str], log: list[str], timeout: float, cwd: Path | None = None) -> None:
    print("$ " + " ".join(cmd), flush=True)
    log.append("$ " + " ".join(cmd))
    proc = subprocess.run(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )
    log.append(proc.stdout)
    if proc.returncode != 0:
        print("\n".join(proc.stdout.splitlines()[-60:]), flush=True)
        raise RuntimeError(f"{cmd[0]} {cmd[1]} ... exited with {proc.returncode}")


# ---- 1. build -------------------------------------------------------------------------------


def find_tool(name: str) -> str | None:
    """`name` on the PATH, else beside this Python (pip's cmake and ninja live there)."""
    found = shutil.which(name)
    if found:
        return found
    sibling = Path(sys.executable).parent / name
    return str(sibling) if sibling.exists() else None


def find_nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and (Path(root) / "bin" / "nvcc").exists():
            return str(Path(root) / "bin" / "nvcc")
    return None


def find_python_include() -> str | None:
    """The directory of this Python's Python.h (sysconfig's, else the usual system places)."""
    import sysconfig

    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        sysconfig.get_paths().get("include"),
        sysconfig.get_config_var("INCLUDEPY"),
        f"{sys.base_prefix}/include/{version}",
        f"/usr/include/{version}",
        f"/usr/local/include/{version}",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "Python.h").exists():
            return str(candidate)
    return None


def find_pybind11_dir() -> str:
    try:
        import pybind11

        return pybind11.get_cmake_dir()
    except Exception:  # noqa: BLE001
        return subprocess.run(
            [sys.executable, "-m", "pybind11", "--cmakedir"],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout.strip()


def build_modules(args: argparse.Namespace, report: Report, scratch: Path) -> Path:
    """Builds _core and _cuda; returns a directory holding an importable fastocclusion."""
    build_dir = Path(args.build_dir).resolve()
    log: list[str] = []
    cmake = find_tool("cmake")
    if cmake is None:
        raise RuntimeError("cmake not found (neither on the PATH nor beside this Python)")
    configure = [
        cmake,
        "-S",
        str(REPO),
        "-B",
        str(build_dir),
        "-DFASTOCCLUSION_ENABLE_CUDA=ON",
        "-DFASTOCCLUSION_BUILD_PYTHON=ON",
        "-DBUILD_TESTING=OFF",
        "-DFASTOCCLUSION_BUILD_BENCHMARKS=OFF",
        "-DCMAKE_BUILD_TYPE=Release",
        f"-DCMAKE_CUDA_ARCHITECTURES={args.cuda_arch}",
        f"-Dpybind11_DIR={find_pybind11_dir()}",
        f"-DPython_EXECUTABLE={sys.executable}",
    ]
    python_include = find_python_include()
    if python_include is None:
        raise RuntimeError(
            f"Python.h not found for {sys.executable} (install the Python "
            "development headers, e.g. python3-dev)"
        )
    configure.append(f"-DPython_INCLUDE_DIR={python_include}")
    nvcc = find_nvcc()
    if nvcc is None:
        raise RuntimeError("nvcc not found (PATH, CUDA_HOME, /usr/local/cuda)")
    configure.append(f"-DCMAKE_CUDA_COMPILER={nvcc}")
    ninja = find_tool("ninja")
    if ninja and not (build_dir / "CMakeCache.txt").exists():
        configure += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    t0 = time.monotonic()
    try:
        run(configure, log, timeout=300)
        run(
            [cmake, "--build", str(build_dir), "-j", str(args.jobs), "--target", "_core", "_cuda"],
            log,
            timeout=420,
        )
    finally:
        path = out_path("device_build.log")
        if path is not None:
            path.write_text("\n".join(log))
    seconds = time.monotonic() - t0
    package_root = scratch / "pkg"
    package = package_root / "fastocclusion"
    shutil.copytree(
        REPO / "python" / "fastocclusion",
        package,
        ignore=shutil.ignore_patterns("__pycache__", "*.so"),
    )
    built = {}
    for name in ("_core", "_cuda"):
        found = sorted(build_dir.glob(f"{name}*.so")) or sorted(build_dir.glob(f"**/{name}*.so"))
        if not found:
            raise RuntimeError(f"the build produced no {name}*.so under {build_dir}")
        shutil.copy2(found[0], package / found[0].name)
        built[name] = found[0].name
    report.table(
        "Build",
        ["item", "value"],
        [
            ["configure + build", f"{seconds:.0f} s"],
            ["CUDA architectures", args.cuda_arch],
            ["nvcc / cmake", f"{nvcc} / {cmake}"],
            ["Python include", python_include],
            ["modules", ", ".join(built.values())],
        ],
    )
    return package_root


def use_package(package_root: Path) -> None:
    """Imports fastocclusion from package_root first (an editable install's finder aside)."""
    sys.meta_path[:] = [
        f
        for f in sys.meta_path
        if "editable" not in type(f).__module__ and "skbc" not in type(f).__module__
    ]
    sys.path.insert(0, str(package_root))
    for name in [m for m in sys.modules if m == "fastocclusion" or m.startswith("fastocclusion.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


# ---- 3. correctness ---------------------------------------------------------------------------


EDGE_MODES = ("valid", "cover")


def random_config(rng: np.random.Generator, big: bool) -> dict[str, Any]:
    """A random N-d problem: rank 1 to 5, per-axis windows, strides and edges, a baseline kind."""
    rank = int(rng.integers(1, 6))
    side = max(1, round((60000 if big else 1500) ** (1 / rank)))
    shape = tuple(int(v) for v in rng.integers(1, side + 1, rank))
    window = [int(rng.integers(1, s + 1)) for s in shape]
    if rng.random() < 0.5:  # a channel-like last axis inside every window
        window[-1] = shape[-1]
    stride = tuple(int(rng.integers(1, w + 3)) for w in window)
    return dict(
        n=int(rng.integers(1, 4)),
        shape=shape,
        window=tuple(window),
        stride=stride,
        edges=tuple(str(e) for e in rng.choice(EDGE_MODES, rank)),
        kind=str(rng.choice(["scalar", "sample", "input"])),
    )


def collapsible(grid: Any) -> tuple[int, ...]:
    return tuple(
        d for d in range(grid.rank) if grid.counts[d] == 1 and grid.window[d] == grid.shape[d]
    )


def correctness_checks(core: Any, cuda: Any, report: Report, configs: int) -> None:
    rng = np.random.default_rng(2024)
    fixed = [
        dict(n=1, shape=(1,), window=(1,), stride=(1,), edges="valid", kind="scalar"),
        dict(
            n=2, shape=(9, 7, 16), window=(9, 7, 16), stride=(1, 1, 1), edges="valid", kind="input"
        ),
        dict(
            n=2, shape=(10, 10, 3), window=(2, 3, 3), stride=(4, 5, 3), edges="cover", kind="sample"
        ),
        dict(
            n=2,
            shape=(224, 224, 3),
            window=(16, 16, 3),
            stride=(8, 8, 3),
            edges="valid",
            kind="sample",
        ),
        dict(
            n=1,
            shape=(24, 24, 24, 2),
            window=(6, 5, 4, 2),
            stride=(3, 4, 5, 2),
            edges="cover",
            kind="input",
        ),
        dict(
            n=1,
            shape=(3, 4, 5, 6, 2),
            window=(2, 2, 3, 4, 1),
            stride=(1, 2, 2, 1, 1),
            edges="cover",
            kind="scalar",
        ),
    ]
    cases = fixed + [random_config(rng, big=i % 4 == 0) for i in range(configs)]
    counts: dict[tuple[str, int], list[int]] = {}
    failures: list[str] = []

    def record(check: str, rank: int, ok: bool, detail: str) -> None:
        passed, total = counts.setdefault((check, rank), [0, 0])
        counts[(check, rank)] = [passed + int(ok), total + 1]
        if not ok and len(failures) < 12:
            failures.append(f"{check}: {detail}")

    for case in cases:
        n, shape, kind = case["n"], case["shape"], case["kind"]
        grid = core.WindowGrid(shape, case["window"], case["stride"], case["edges"])
        rank = grid.rank
        detail = (
            f"n={n} shape={shape} window={case['window']} stride={case['stride']} "
            f"edges={case['edges']} baseline={kind}"
        )
        inputs = rng.normal(size=(n, *shape)).astype(np.float32)
        sizes = {"scalar": (), "sample": shape, "input": (n, *shape)}
        baseline = rng.uniform(2, 3, sizes[kind]).astype(np.float32)
        d_inputs = cuda.DeviceBuffer.from_host(inputs)
        d_base = float(baseline) if baseline.ndim == 0 else cuda.DeviceBuffer.from_host(baseline)
        total = n * grid.num_windows
        # full fills: random slices, then random strided mappings
        for stride in (1, int(rng.integers(2, total + 2))):
            start = int(rng.integers(0, total))
            most = (total - 1 - start) // stride + 1
            count = int(rng.integers(1, min(most, 48) + 1))
            expected = np.full((count + 1, *shape), np.nan, np.float32)
            core.fill_occluded_batch(inputs, grid, baseline, start, count, expected, stride=stride)
            out = cuda.DeviceBuffer(expected.shape)
            out.copy_from_host(np.full(expected.shape, np.nan, np.float32))
            cuda.fill_occluded_batch(d_inputs, grid, d_base, start, count, out, stride=stride)
            ok = bool(np.array_equal(out.to_host(), expected, equal_nan=True))
            record(
                "full fill" if stride == 1 else "strided fill",
                rank,
                ok,
                f"{detail} start={start} count={count} stride={stride}",
            )
        # incremental fills: consecutive slices, then the chunked sweep order
        batch = int(rng.integers(1, min(total, 48) + 1))
        chunk = -(-total // batch)
        orders = {
            "incremental fill": [(s, min(batch, total - s), 1) for s in range(0, total, batch)][
                :40
            ],
            "chunked sweep": [
                (b, (total - 1 - b) // chunk + 1, chunk) for b in range(min(chunk, 40))
            ],
        }
        for check, calls in orders.items():
            cpu = np.full((batch, *shape), np.nan, np.float32)
            out = cuda.DeviceBuffer(cpu.shape)
            out.copy_from_host(cpu)
            cpu_state, gpu_state = core.IncrementalFillState(), cuda.IncrementalFillState()
            ok, where = True, ""
            for start, count, stride in calls:
                core.fill_occluded_batch(
                    inputs, grid, baseline, start, count, cpu, cpu_state, stride=stride
                )
                cuda.fill_occluded_batch(
                    d_inputs, grid, d_base, start, count, out, gpu_state, stride=stride
                )
                if not np.array_equal(out.to_host(), cpu, equal_nan=True):
                    ok, where = False, f" start={start} count={count} stride={stride}"
                    break
            record(check, rank, ok, f"{detail} batch={batch}{where}")
        # maps
        deltas = rng.normal(size=(n, *grid.counts)) * rng.choice([1e-3, 1.0, 1e4])
        for collapsed in {(), collapsible(grid)}:
            for reduction in ("sum", "mean"):
                expected_maps = core.accumulate_window_deltas(deltas, grid, reduction, collapsed)
                got_maps = cuda.accumulate_window_deltas(
                    deltas, grid, reduction, collapsed
                ).to_host()
                scale = max(float(np.abs(expected_maps).max()), 1e-30)
                ok = got_maps.shape == expected_maps.shape and bool(
                    np.allclose(got_maps, expected_maps, rtol=1e-6, atol=1e-6 * scale)
                )
                record(
                    f"maps ({reduction}{', collapsed' if collapsed else ''})",
                    rank,
                    ok,
                    f"{detail} collapsed_axes={collapsed}",
                )
    checks = sorted({check for check, _ in counts}, key=lambda c: (c.startswith("maps"), c))
    rows = []
    for check in checks:
        rows.append(
            [check]
            + [
                "{}/{}".format(*counts[(check, r)]) if (check, r) in counts else "-"
                for r in range(1, 6)
            ]
        )
    passed = sum(v[0] for v in counts.values())
    total_checks = sum(v[1] for v in counts.values())
    note = f"**{passed}/{total_checks} passed**" + (
        "; failures:\n" + "\n".join(f"- {f}" for f in failures) if failures else ""
    )
    report.table(
        f"GPU vs CPU on {len(cases)} N-d configurations (columns: sample rank)",
        ["check", "rank 1", "rank 2", "rank 3", "rank 4", "rank 5"],
        rows,
        note,
    )
    if passed != total_checks:
        raise RuntimeError(f"{total_checks - passed} GPU/CPU mismatches")


# ---- 4. timing -------------------------------------------------------------------------------


class Timer:
    """Device time of enqueued work, by CUDA events of PyTorch or CuPy (wall clock otherwise)."""

    def __init__(self) -> None:
        self.kind = "wall clock"
        self.torch = self.cupy = None
        try:
            import torch

            if torch.cuda.is_available():
                self.torch, self.kind = torch, "CUDA events (PyTorch)"
        except Exception:  # noqa: BLE001
            pass
        if self.torch is None:
            try:
                import cupy

                cupy.cuda.runtime.getDeviceCount()
                self.cupy, self.kind = cupy, "CUDA events (CuPy)"
            except Exception:  # noqa: BLE001
                pass

    def sync(self) -> None:
        if self.torch is not None:
            self.torch.cuda.synchronize()
        elif self.cupy is not None:
            self.cupy.cuda.runtime.deviceSynchronize()

    def per_call_us(
        self, fn: Callable[[int], None], repeats: int, warmup: int
    ) -> tuple[float, float]:
        """(device microseconds per call, host microseconds per call) for fn(i), i = 0.. ."""
        for i in range(warmup):
            fn(i)
        self.sync()
        host0 = time.perf_counter()
        if self.torch is not None:
            start, stop = (self.torch.cuda.Event(enable_timing=True) for _ in range(2))
            start.record()
            for i in range(repeats):
                fn(warmup + i)
            host = time.perf_counter() - host0
            stop.record()
            stop.synchronize()
            device_ms = start.elapsed_time(stop)
        elif self.cupy is not None:
            start, stop = self.cupy.cuda.Event(), self.cupy.cuda.Event()
            start.record()
            for i in range(repeats):
                fn(warmup + i)
            host = time.perf_counter() - host0
            stop.record()
            stop.synchronize()
            device_ms = self.cupy.cuda.get_elapsed_time(start, stop)
        else:
            for i in range(repeats):
                fn(warmup + i)
            self.sync()
            host = time.perf_counter() - host0
            device_ms = host * 1e3
        return device_ms * 1e3 / repeats, host * 1e6 / repeats

    def device_copy(self, nbytes: int) -> Callable[[int], None]:
        """A device-to-device copy of nbytes on the legacy default stream."""
        if self.torch is not None:
            src = self.torch.empty(nbytes // 4, dtype=self.torch.float32, device="cuda").uniform_()
            dst = self.torch.empty_like(src)
            return lambda _i: dst.copy_(src)
        if self.cupy is not None:
            src = self.cupy.random.random(nbytes // 4, dtype=self.cupy.float32)
            dst = self.cupy.empty_like(src)
            kind = self.cupy.cuda.runtime.memcpyDeviceToDevice
            return lambda _i: self.cupy.cuda.runtime.memcpyAsync(
                dst.data.ptr, src.data.ptr, nbytes, kind, 0
            )
        src = np.random.default_rng(0).random(nbytes // 4, dtype=np.float32)
        dst = np.empty_like(src)
        return lambda _i: np.copyto(dst, src)

    def graph_per_call_us(self, fn: Callable[[int], None], calls: int, replays: int) -> float:
        """Device microseconds per call of `calls` calls captured in a CUDA graph (PyTorch),
        i.e. without host launch overhead. Raises when capture is not possible."""
        torch = self.torch
        if torch is None:
            raise RuntimeError("needs PyTorch with CUDA")
        stream = torch.cuda.Stream()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.stream(stream):
            for i in range(3):
                fn(i)  # moves the buffers onto the capture stream before capturing
        stream.synchronize()
        with torch.cuda.graph(graph, stream=stream):
            for i in range(calls):
                fn(i)
        graph.replay()
        torch.cuda.synchronize()
        start, stop = (torch.cuda.Event(enable_timing=True) for _ in range(2))
        start.record()
        for _ in range(replays):
            graph.replay()
        stop.record()
        stop.synchronize()
        return start.elapsed_time(stop) * 1e3 / (replays * calls)


def time_problem(
    core: Any, cuda: Any, timer: Timer, shape: tuple[int, ...], p: int, quick: bool
) -> tuple[list[Any], list[Any], float] | None:
    """(fill row, map row, % of copy bandwidth) for windows of p along all but the last
    (channel) axis, batch 32 over 2 inputs; None when the stream is shorter than a batch."""
    batch, n_inputs = 32, 2
    repeats, warmup = (5, 1) if quick else (200, 20)
    window = tuple([p] * (len(shape) - 1) + [shape[-1]])  # channels inside every window
    grid = core.WindowGrid(shape, window, window)
    total = n_inputs * grid.num_windows
    if total < batch:
        return None
    rng = np.random.default_rng(sum(shape))
    d_inputs = cuda.DeviceBuffer.from_host(rng.random((n_inputs, *shape), dtype=np.float32))
    out = cuda.DeviceBuffer((batch, *shape))
    nbytes = out.nbytes
    copy_fn = timer.device_copy(nbytes)
    copy_us, _ = timer.per_call_us(copy_fn, repeats, warmup)
    copy_graph_us = None
    with contextlib.suppress(Exception):
        copy_graph_us = timer.graph_per_call_us(copy_fn, 20, 10 if not quick else 1)
    starts = [(i * batch) % (total - batch + 1) for i in range(repeats + warmup + 64)]

    def full(i: int) -> None:
        cuda.fill_occluded_batch(d_inputs, grid, 0.5, starts[i % len(starts)], batch, out)

    def full_on_current(i: int) -> None:  # for graph capture: PyTorch's current stream
        cuda.fill_occluded_batch(
            d_inputs,
            grid,
            0.5,
            starts[i % len(starts)],
            batch,
            out,
            stream=timer.torch.cuda.current_stream(),
        )

    # The one sweep's order: C pairs per slot, batch b at start b with stride C, so each slot
    # walks the windows of one input and is updated in place.
    chunk = -(-total // batch)
    state = cuda.IncrementalFillState()

    def chunked(i: int) -> None:
        b = i % chunk
        cuda.fill_occluded_batch(
            d_inputs, grid, 0.5, b, (total - 1 - b) // chunk + 1, out, state, stride=chunk
        )

    full_us, full_host_us = timer.per_call_us(full, repeats, warmup)
    inc_us, inc_host_us = timer.per_call_us(chunked, repeats, warmup)
    graph_us = None
    graph_note = ""
    if timer.torch is not None:
        try:
            graph_us = timer.graph_per_call_us(full_on_current, 20, 10 if not quick else 1)
        except Exception as error:  # noqa: BLE001
            graph_note = f"graph: {type(error).__name__}"
    pct = 100 * copy_us / full_us
    pct_graph = (100 * copy_graph_us / graph_us) if (graph_us and copy_graph_us) else None
    gbps = 2 * nbytes / (full_us * 1e-6) / 1e9
    fill_row = [
        "x".join(map(str, shape)),
        "x".join(map(str, window)),
        grid.num_windows,
        f"{copy_us:.1f}",
        f"{full_us:.1f}",
        f"{full_host_us:.1f}",
        f"{gbps:.0f}",
        f"{pct:.0f}%",
        f"{pct_graph:.0f}%" if pct_graph is not None else (graph_note or "n/a"),
        f"{inc_us:.1f}",
        f"{inc_host_us:.1f}",
        f"{full_us / inc_us:.1f}x",
    ]
    # maps: synchronous calls (workspace, kernels, wait), the deltas already on the device
    deltas = rng.normal(size=(n_inputs, *grid.counts))
    d_deltas = cuda.DeviceBuffer.from_host(deltas)
    collapsed = (grid.rank - 1,)
    maps = cuda.accumulate_window_deltas(d_deltas, grid, "mean", collapsed)
    calls = 3 if quick else 20
    t0 = time.perf_counter()
    for _ in range(calls):
        cuda.accumulate_window_deltas(d_deltas, grid, "mean", collapsed, maps)
    map_ms = (time.perf_counter() - t0) * 1e3 / calls
    t0 = time.perf_counter()
    for _ in range(calls):
        core.accumulate_window_deltas(deltas, grid, "mean", collapsed)
    cpu_ms = (time.perf_counter() - t0) * 1e3 / calls
    map_row = [fill_row[0], fill_row[1], grid.num_windows, f"{map_ms:.2f}", f"{cpu_ms:.2f}"]
    return fill_row, map_row, pct_graph if pct_graph is not None else pct


def timing(core: Any, cuda: Any, report: Report, quick: bool) -> None:
    timer = Timer()
    problems = (
        [((64, 64, 3), 8), ((64, 64, 3), 16), ((16, 16, 16, 1), 4)]
        if quick
        else [
            ((224, 224, 3), 8),
            ((224, 224, 3), 16),
            ((224, 224, 3), 32),
            ((512, 512, 3), 16),
            ((512, 512, 3), 32),
            ((64, 64, 64, 1), 8),
        ]
    )
    rows, map_rows = [], []
    worst_pct = math.inf
    for shape, p in problems:
        result = time_problem(core, cuda, timer, shape, p, quick)
        if result is not None:
            rows.append(result[0])
            map_rows.append(result[1])
            worst_pct = min(worst_pct, result[2])
    report.table(
        f"Fill kernels vs a device-to-device copy of the same bytes (batch 32, {timer.kind})",
        [
            "input",
            "window",
            "K",
            "copy µs",
            "full µs",
            "full host µs",
            "full GB/s (r+w)",
            "% of copy",
            "% of copy (graph)",
            "chunked incr. µs",
            "incr. host µs",
            "full/incr.",
        ],
        rows,
        "µs: device time per call from events around back-to-back calls (host µs: time to "
        "enqueue one call; when host µs >= device µs the loop is launch-bound). A full fill is "
        "two kernels: the copy of each slot's input, then the window's box. 'graph': the same "
        "calls replayed from a CUDA graph (kernel time only). 'chunked incr.': incremental "
        "fills in the sweep's chunked order (start b, stride C). Target: full fill >= 80% of "
        f"copy bandwidth; worst here {worst_pct:.0f}%.",
    )
    report.table(
        "Maps (mean, channel axis collapsed) for 2 inputs: one synchronous call",
        ["input", "window", "K", "GPU ms (deltas on device)", "CPU ms (_core)"],
        map_rows,
    )


# ---- 5. end to end ---------------------------------------------------------------------------


def end_to_end(report: Report, quick: bool) -> None:
    try:
        import torch
    except Exception as error:  # noqa: BLE001
        raise SkipStage(f"PyTorch not importable: {error}") from None
    if not torch.cuda.is_available():
        raise SkipStage("PyTorch sees no CUDA device")
    try:
        import fastocclusion

        occlusion_cls = fastocclusion.Occlusion
    except Exception as error:  # noqa: BLE001
        report.text(
            "End to end", f"not available: fastocclusion.Occlusion failed to import ({error})"
        )
        raise SkipStage("Occlusion not importable") from None

    class SmallCNN(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = torch.nn.Sequential(
                torch.nn.Conv2d(3, 16, 3, stride=2, padding=1),
                torch.nn.ReLU(),
                torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
                torch.nn.ReLU(),
                torch.nn.Conv2d(32, 64, 3, stride=2, padding=1),
                torch.nn.ReLU(),
                torch.nn.AdaptiveAvgPool2d(1),
                torch.nn.Flatten(),
                torch.nn.Linear(64, 10),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # NHWC in
            return torch.softmax(self.features(x.permute(0, 3, 1, 2)), dim=-1)

    torch.manual_seed(0)
    model = SmallCNN().cuda().eval()
    size = 64 if quick else 224
    n, batch, patch, stride = 4, 64, 16, 8
    rng = np.random.default_rng(1)
    inputs = rng.random((n, size, size, 3), dtype=np.float32)
    targets = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    try:
        explainer = occlusion_cls(
            model, batch_size=batch, patch_size=patch, patch_stride=stride, device="gpu"
        )
        maps = explainer.explain(inputs, targets)
    except Exception as error:  # noqa: BLE001
        report.text(
            "End to end",
            f"not available: Occlusion(torch model, device='gpu') failed: "
            f"{type(error).__name__}: {error}",
        )
        raise SkipStage("Occlusion(device='gpu') not available") from None
    side = math.ceil((size - patch + 1) / stride)
    calls = math.ceil(n / batch) + math.ceil(n * side * side / batch)
    prebuilt = torch.rand((batch, size, size, 3), device="cuda")

    def model_only() -> None:
        with torch.inference_mode():
            for _ in range(calls):
                model(prebuilt)
        torch.cuda.synchronize()

    def ours() -> None:
        result = explainer.explain(inputs, targets)
        if hasattr(result, "cpu"):
            result.cpu()
        torch.cuda.synchronize()

    model_only()
    times_ours, times_model = [], []
    for _ in range(2 if quick else 5):  # interleaved, medians
        t0 = time.perf_counter()
        ours()
        times_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model_only()
        times_model.append(time.perf_counter() - t0)
    t_ours, t_model = statistics.median(times_ours), statistics.median(times_model)
    shape = tuple(getattr(maps, "shape", ()))
    report.table(
        "End to end: Occlusion(device='gpu') vs the model calls alone",
        [
            "input",
            "N",
            "patch/stride",
            "batch",
            "model calls",
            "ours ms",
            "calls alone ms",
            "ratio",
        ],
        [
            [
                f"{size}x{size}x3",
                n,
                f"{patch}/{stride}",
                batch,
                calls,
                f"{t_ours * 1e3:.1f}",
                f"{t_model * 1e3:.1f}",
                f"{t_ours / t_model:.3f}",
            ]
        ],
        f"Maps shape {shape}. Target ratio <= 1.05. Medians of interleaved runs after a warm-up.",
    )


# ---- 5b. incremental inference on the device --------------------------------------------------


def _vgg_like(torch: Any, width: int) -> Any:
    """VGG-16's convolutional layout (13 3x3 convolutions, 5 max pools) at ``width`` times its
    channel counts, with a global-pooled head: the incremental path's best case."""
    layers: list[Any] = []
    channels = 3
    for count, out in ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)):
        for _ in range(count):
            layers += [torch.nn.Conv2d(channels, int(out * width), 3, padding=1), torch.nn.ReLU()]
            channels = int(out * width)
        layers.append(torch.nn.MaxPool2d(2))
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(channels, 10)]
    return torch.nn.Sequential(*layers)


def incremental_end_to_end(report: Report, quick: bool) -> None:
    """Occlusion(device="gpu") with incremental=True against incremental=False on the same
    GPU: the time of each, the layers run on boxes and the largest map difference."""
    try:
        import torch

        import fastocclusion
    except Exception as error:  # noqa: BLE001
        raise SkipStage(f"PyTorch or fastocclusion not importable: {error}") from None
    if not torch.cuda.is_available():
        raise SkipStage("PyTorch sees no CUDA device")
    torch.backends.cudnn.allow_tf32 = False  # full float32 for the map comparison
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    size = 64 if quick else 224
    models = [("VGG-16 layout, half width", _vgg_like(torch, 0.5))]
    try:
        import torchvision

        models.append(
            ("torchvision resnet18 (random)", torchvision.models.resnet18(num_classes=10))
        )
    except Exception:  # noqa: BLE001 - torchvision is optional here
        pass
    rng = np.random.default_rng(2)
    inputs = rng.random((2, 3, size, size), dtype=np.float32)
    rows = []
    for name, model in models:
        model = model.cuda().eval()
        options = dict(
            data_format="channels_first", patch_size=16, patch_stride=8, batch_size=64,
            device="gpu",
        )  # fmt: skip
        times: dict[Any, list[float]] = {True: [], False: []}
        maps: dict[Any, Any] = {}
        stats = None
        for _ in range(2 if quick else 3):  # interleaved; the first round warms up
            for mode in (True, False):
                explainer = fastocclusion.Occlusion(model, incremental=mode, **options)
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                maps[mode] = explainer.explain(inputs).cpu().numpy()
                torch.cuda.synchronize()
                times[mode].append(time.perf_counter() - t0)
                if mode is True:
                    stats = explainer.last_stats
        inc, full = min(times[True][1:]), min(times[False][1:])
        scale = max(float(np.abs(maps[False]).max()), 1e-30)
        difference = float(np.abs(maps[True] - maps[False]).max()) / scale
        layers = len(stats.incremental_layers) if stats is not None else 0
        rows.append([
            name, f"{size}x{size}", f"{inc * 1e3:.0f}", f"{full * 1e3:.0f}", f"{full / inc:.2f}",
            layers, f"{difference:.2e}",
        ])  # fmt: skip
    report.table(
        "Incremental inference on the GPU: incremental=True vs False (both device='gpu')",
        ["model", "input", "incremental ms", "normal ms", "speed-up", "box layers", "max rel diff"],
        rows,
        "N=2, patch 16 stride 8, batch 64, float32 without TF32; best of the timed rounds "
        "after a warm-up round. 'max rel diff' should be <= 1e-4.",
    )


# ---- 6. pytest --------------------------------------------------------------------------------


def run_pytest(package_root: Path, report: Report, timeout: float) -> None:
    code = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__module__"
        " and 'skbc' not in type(f).__module__]\n"
        f"sys.path.insert(0, {str(package_root)!r})\n"
        "sys.path.insert(1, 'tests/python')\n"  # the tests' helper modules (no conftest)
        "import pytest\n"
        f"sys.exit(pytest.main([*{list(PYTEST_FILES)!r}, '-q', '-rs', '--noconftest',"
        " '-p', 'no:cacheprovider']))\n"
    )
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    lines = proc.stdout.strip().splitlines()
    print("\n".join(lines[-40:]), flush=True)
    summary = lines[-1] if lines else "(no output)"
    report.table(
        "pytest " + " ".join(PYTEST_FILES),
        ["exit code", "summary", "seconds"],
        [[proc.returncode, summary, f"{time.monotonic() - t0:.0f}"]],
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pytest exited with {proc.returncode}: {summary}")


# ---- main ----------------------------------------------------------------------------------


def environment(report: Report) -> None:
    rows = [["python", sys.version.split()[0]], ["numpy", np.__version__]]
    for name in ("torch", "cupy"):
        try:
            module = importlib.import_module(name)
            extra = ""
            if name == "torch":
                device = module.cuda.get_device_name(0) if module.cuda.is_available() else "none"
                extra = f", CUDA {module.version.cuda}, device: {device}"
            rows.append([name, module.__version__ + extra])
        except Exception as error:  # noqa: BLE001
            rows.append([name, f"not available ({type(error).__name__})"])
    for tool, cmd in (
        ("nvcc", [find_nvcc() or "nvcc", "--version"]),
        ("cmake", [find_tool("cmake") or "cmake", "--version"]),
        (
            "nvidia-smi",
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
        ),
    ):
        try:
            text = (
                subprocess.run(
                    cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30
                )
                .stdout.strip()
                .splitlines()
            )
            fallback = text[0] if tool != "nvcc" else text[-1]
            line = next((t for t in text if "release" in t), fallback)
            rows.append([tool, line.strip()])
        except Exception as error:  # noqa: BLE001
            rows.append([tool, f"not available ({type(error).__name__})"])
    report.table("Environment", ["component", "version"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cpu-dry-run",
        action="store_true",
        help="build and import only, then stop (for machines without a GPU)",
    )
    parser.add_argument("--build-dir", default=str(REPO / "build-device"))
    parser.add_argument("--cuda-arch", default="90", help="CMAKE_CUDA_ARCHITECTURES (default 90)")
    parser.add_argument("--jobs", type=int, default=min(os.cpu_count() or 2, 16))
    parser.add_argument(
        "--package-dir",
        help="skip the build: import fastocclusion (with _core and _cuda) from this directory",
    )
    parser.add_argument("--configs", type=int, default=40, help="random correctness configurations")
    parser.add_argument("--quick", action="store_true", help="small timing sizes (smoke test)")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["checks", "timing", "e2e", "incremental", "pytest"],
    )
    args = parser.parse_args()

    report = Report()
    scratch = Path(tempfile.mkdtemp(prefix="fastocclusion_device_"))
    package_root: Path | None = Path(args.package_dir).resolve() if args.package_dir else None
    core = cuda = None
    gpu = False
    with report.stage("environment"):
        environment(report)
    if package_root is None:
        with report.stage("build") as status:
            package_root = build_modules(args, report, scratch)
    with report.stage("import") as status:
        if package_root is None:
            raise SkipStage("nothing built")
        use_package(package_root)
        core = importlib.import_module("fastocclusion._core")
        cuda = importlib.import_module("fastocclusion._cuda")
        gpu = bool(cuda.is_available())
        status["note"] = (
            f"{cuda.__file__}; is_available()={gpu}, "
            f"device_count()={cuda.device_count()}, "
            f"runtime {cuda.runtime_version()}, driver {cuda.driver_version()}"
        )
    imported = cuda is not None

    def gpu_stage(name: str, needed_s: float, fn: Callable[[], None]) -> None:
        with report.stage(name):
            if name in args.skip:
                raise SkipStage("--skip")
            if not imported:
                raise SkipStage("the modules did not import")
            if not gpu:
                raise SkipStage("no usable CUDA device (_cuda.is_available() is False)")
            if report.elapsed() + needed_s > TOTAL_BUDGET_S:
                raise SkipStage(f"time budget spent ({report.elapsed():.0f}s)")
            fn()

    if args.cpu_dry_run:
        message = "dry run: built and imported fastocclusion._core and _cuda; " + (
            "a GPU is present but the dry run stops here"
            if gpu
            else "no GPU present (is_available() is False), so the GPU stages were not run"
        )
        report.text("Dry run", message)
    else:
        gpu_stage("checks", 20, lambda: correctness_checks(core, cuda, report, args.configs))
        gpu_stage("timing", 20, lambda: timing(core, cuda, report, args.quick))
        gpu_stage("e2e", 30, lambda: end_to_end(report, args.quick))
        gpu_stage("incremental", 40, lambda: incremental_end_to_end(report, args.quick))
        gpu_stage(
            "pytest",
            60,
            lambda: run_pytest(package_root, report, max(60.0, TOTAL_BUDGET_S - report.elapsed())),
        )

    text = report.markdown()
    print("\n" + "=" * 80 + "\n" + text, flush=True)
    path = out_path("device_check.md")
    if path is not None:
        with contextlib.suppress(OSError):
            path.write_text(text)
            print(f"written to {path}")
    shutil.rmtree(scratch, ignore_errors=True)
    failed = [name for name, status, _, _ in report.stages if status == "FAILED"]
    if args.cpu_dry_run:
        return 0 if imported and not failed else 1
    return 1 if failed or not gpu else 0


if __name__ == "__main__":
    sys.exit(main())
