#!/usr/bin/env python3
"""Summarise fastocclusion_bench JSON output as a Markdown table.

Usage:
    build-cpp/benchmarks/cpp/fastocclusion_bench --benchmark_format=json > bench.json
    python3 benchmarks/cpp/summarize.py bench.json          # or: ... | summarize.py -

One row per (workload, size, patch) axis point, stride patch/2 (benchmarks/cpp/axes.hpp):
images (H, W, 3) with windows (p, p, 3) and the volume (D, H, W, 1) with windows (p, p, p, 1).
  memcpy / fill GB/s     bytes written into the 32 slots per second (1 GB = 1e9 bytes)
  fill/memcpy            full-fill bandwidth as a percentage of the memcpy ceiling
  incr. speedup          full-fill time / incremental-fill time (steady state)
  acc. speedup           naive per-window scatter time / the library's accumulation time,
                         at stride patch/2 and at stride 1 (many windows)

With --benchmark_repetitions the median aggregate is used. --cpu-time uses CPU time
instead of wall time: only meaningful when the run was single-threaded
(OMP_NUM_THREADS=1), and then robust to other load on the machine.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

NAME = re.compile(
    r"^(?P<family>BM_\w+)(?:/(?P<workload>volume))?/size:(?P<size>\d+)/patch:(?P<patch>\d+)"
    r"(?:/stride:(?P<stride>\d+))?"
)
# Row labels of the workloads (axes.hpp): images (H, W, 3), the volume (D, H, W, 1).
SHAPES = {"image": "{0}x{0}x3", "volume": "{0}x{0}x{0}x1"}
DENSE_STRIDE = 1  # axes.hpp kDenseStride
TO_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
SAT, NAIVE = "BM_AccumulateSummedArea", "BM_AccumulateNaiveScatter"
FAMILIES = (
    "BM_Memcpy",
    "BM_FillFull",
    "BM_FillIncremental",
    "BM_AccumulateSummedArea",
    "BM_AccumulateNaiveScatter",
)


Key = tuple[str, int, int]  # (workload, size, patch)


def load_runs(data: dict, use_cpu_time: bool) -> dict[Key, dict[str, dict]]:
    """Maps (workload, size, patch) -> family -> {"seconds", "bytes", "windows"} per iteration."""
    entries = data.get("benchmarks", [])
    has_median = any(e.get("aggregate_name") == "median" for e in entries)
    runs: dict[Key, dict[str, dict]] = {}
    for e in entries:
        if has_median and e.get("aggregate_name") != "median":
            continue
        if not has_median and e.get("run_type", "iteration") != "iteration":
            continue
        match = NAME.match(e.get("run_name", e["name"]))
        if not match or match["family"] not in FAMILIES:
            continue
        unit = TO_SECONDS[e.get("time_unit", "ns")]
        real = e["real_time"] * unit
        seconds = e["cpu_time"] * unit if use_cpu_time else real
        # bytes_per_second is measured against wall time (the benchmarks use UseRealTime).
        bytes_per_call = e.get("bytes_per_second", 0.0) * real
        workload = match["workload"] or "image"
        size, patch = int(match["size"]), int(match["patch"])
        family = match["family"]
        if match["stride"] is not None:
            stride = int(match["stride"])
            if stride == DENSE_STRIDE and stride != patch // 2:
                family += "@dense"
            elif stride != patch // 2:
                continue
        runs.setdefault((workload, size, patch), {})[family] = {
            "seconds": seconds,
            "bytes": bytes_per_call,
            "windows": int(e.get("windows", e.get("patches", 0))),
        }
    return runs


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or den is None or den == 0 else num / den


def table(runs: dict[Key, dict[str, dict]]) -> str:
    header = (
        "| shape | patch/stride | windows | memcpy GB/s | fill GB/s | fill/memcpy "
        "| incr. GB/s (eff.) | incr. speedup | SAT µs | naive µs | acc. speedup "
        "| acc. speedup, stride 1 |"
    )
    lines = [header, "|---" * (header.count("|") - 1) + "|"]
    for (workload, size, patch), fam in sorted(runs.items()):

        def seconds(name: str, fam: dict = fam) -> float | None:
            return fam[name]["seconds"] if name in fam else None

        def gbps(name: str, fam: dict = fam) -> float | None:
            if name not in fam or fam[name]["seconds"] == 0:
                return None
            return fam[name]["bytes"] / fam[name]["seconds"] / 1e9

        windows = fam.get("BM_FillFull", fam.get("BM_AccumulateSummedArea", {})).get("windows")
        fill_pct = ratio(gbps("BM_FillFull"), gbps("BM_Memcpy"))
        sat, naive = seconds(SAT), seconds(NAIVE)
        lines.append(
            f"| {SHAPES[workload].format(size)} | {patch}/{patch // 2} | {fmt(windows, 'd')} "
            f"| {fmt(gbps('BM_Memcpy'), '.2f')} | {fmt(gbps('BM_FillFull'), '.2f')} "
            f"| {fmt(None if fill_pct is None else 100 * fill_pct, '.0f')}% "
            f"| {fmt(gbps('BM_FillIncremental'), '.1f')} "
            f"| {fmt(ratio(seconds('BM_FillFull'), seconds('BM_FillIncremental')), '.1f')}x "
            f"| {fmt(None if sat is None else sat * 1e6, '.1f')} "
            f"| {fmt(None if naive is None else naive * 1e6, '.1f')} "
            f"| {fmt(ratio(naive, sat), '.2f')}x "
            f"| {fmt(ratio(seconds(NAIVE + '@dense'), seconds(SAT + '@dense')), '.1f')}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file", help="output of --benchmark_format=json, or - for stdin")
    parser.add_argument("--cpu-time", action="store_true", help="use CPU time, not wall time")
    args = parser.parse_args(argv)
    if args.json_file == "-":
        data = json.load(sys.stdin)
    else:
        with open(args.json_file, encoding="utf-8") as f:
            data = json.load(f)
    runs = load_runs(data, args.cpu_time)
    if not runs:
        print("no fastocclusion benchmark results found", file=sys.stderr)
        return 1
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
