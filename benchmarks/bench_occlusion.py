"""Issue 4's benchmark suite: our explain vs the same model calls alone (and Xplique's
Occlusion when it happens to be installed), side by side in one process.

    python benchmarks/bench_occlusion.py [--configs a b c d e] [--repeats 5] [--markdown FILE]

Times are medians over interleaved repeats (ours, calls alone, ours, ...), after one
warm-up of each (tracing); the table also gives the ratio of the fastest runs of each.
"Model calls alone" = the same number of calls our explain makes (base pass included),
with the same batch size, on one pre-built batch, through the model's traced concrete
function called directly, with a host sync of each output. Config e reports the peak RSS
of a child process during our explain vs one during just the model calls (each after its
model is built; the kernel's peak counter is reset right before the run), and the
difference.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from configs import CONFIGS, Config, build_model  # noqa: E402


def make_data(cfg: Config):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((cfg.n,) + cfg.shape, dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, cfg.n)]
    return x, y


def count_calls(cfg: Config) -> int:
    h, w, _ = cfg.shape
    k = ((h - cfg.patch) // cfg.stride + 1) * ((w - cfg.patch) // cfg.stride + 1)
    # the base pass (targets given, Keras model: checked against the traced output shape, so
    # one pass for the base scores) and the sweep
    return math.ceil(cfg.n / cfg.batch_size) + math.ceil(cfg.n * k / cfg.batch_size)


def model_calls_alone(model, cfg: Config, calls: int):
    import numpy as np
    import tensorflow as tf

    batch = tf.constant(
        np.random.default_rng(1).random((cfg.batch_size,) + cfg.shape, dtype=np.float32)
    )
    # The strictest baseline: the traced concrete function, called directly (no argument
    # canonicalisation), on a batch that already is a tensor.
    call = tf.function(lambda b: model(b, training=False)).get_concrete_function(
        tf.TensorSpec(batch.shape, tf.float32)
    )
    call(batch).numpy()

    def run():
        for _ in range(calls):
            call(batch).numpy()

    return run


def ours(model, cfg: Config, x, y):
    from fastocclusion import Occlusion

    method = Occlusion(
        model, batch_size=cfg.batch_size, patch_size=cfg.patch, patch_stride=cfg.stride
    )
    shares: list[float] = []

    def run():
        maps = method.explain(x, y).numpy()
        stats = method.last_stats
        shares.append(stats.overhead_seconds / stats.total_seconds)
        return maps

    run.own_shares = shares  # fastocclusion's own share of each explain (last_stats)
    return run


def xplique_runner(model, cfg: Config, x, y):
    try:
        from xplique.attributions import Occlusion as XOcclusion
    except ImportError:
        return None
    method = XOcclusion(
        model, batch_size=cfg.batch_size, patch_size=cfg.patch, patch_stride=cfg.stride
    )
    return lambda: method.explain(x, y).numpy()


def time_once(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_time(cfg: Config, repeats: int, with_xplique: bool) -> dict:
    import numpy as np

    model = build_model(cfg.model, cfg.shape)
    x, y = make_data(cfg)
    calls = count_calls(cfg)
    runners = {"ours": ours(model, cfg, x, y), "calls": model_calls_alone(model, cfg, calls)}
    if with_xplique:
        xr = xplique_runner(model, cfg, x, y)
        if xr is not None:
            runners["xplique"] = xr
    results = {name: fn() for name, fn in runners.items()}  # warm-up: tracing, allocations
    if "xplique" in results:  # the same maps, or the comparison means nothing
        ref = results["xplique"]
        diff = float(np.max(np.abs(results["ours"] - ref)) / max(float(np.max(np.abs(ref))), 1e-30))
    else:
        diff = None
    times: dict[str, list[float]] = {name: [] for name in runners}
    runners["ours"].own_shares.clear()
    for _ in range(repeats):
        for name, fn in runners.items():
            times[name].append(time_once(fn))
    med = {name: statistics.median(v) for name, v in times.items()}
    own_share = statistics.median(runners["ours"].own_shares)
    best = {name: min(v) for name, v in times.items()}
    row = {
        "config": cfg.name,
        "calls": calls,
        "ours_s": med["ours"],
        "calls_s": med["calls"],
        "overhead": med["ours"] / med["calls"],
        # Interference from a shared machine only adds time: the ratio of the fastest runs
        # is the steadier estimate of what the code itself costs.
        "overhead_best": best["ours"] / best["calls"],
        # Measured inside each explain (last_stats): the time outside the model calls, a
        # share of the same run, so machine noise between runs does not enter it.
        "own_share": own_share,
    }
    if diff is not None:
        row["max_rel_diff_vs_xplique"] = diff
    if "xplique" in med:
        row["xplique_s"] = med["xplique"]
        row["xplique_overhead"] = med["xplique"] / med["calls"]
        row["ours_vs_xplique"] = med["ours"] / med["xplique"]
    return row


def child_peak_rss(cfg_name: str, mode: str) -> float:
    """Peak RSS (MB) of a fresh process running one explain (mode "ours") or the same
    model calls alone (mode "calls")."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", cfg_name, mode],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_mb"]


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def child(cfg_name: str, mode: str) -> None:
    """Runs one explain (or the model calls alone) after everything else is set up, and
    prints the peak RSS of that window: the kernel's peak counter is reset first (writing 5
    to /proc/self/clear_refs), so TensorFlow's start-up peak does not hide the run's."""
    cfg = next(c for c in CONFIGS if c.name == cfg_name)
    model = build_model(cfg.model, cfg.shape)
    x, y = make_data(cfg)
    if mode == "ours":
        fn = ours(model, cfg, x, y)
    elif mode == "xplique":
        fn = xplique_runner(model, cfg, x, y)
        if fn is None:
            raise SystemExit("xplique is not installed")
    else:
        fn = model_calls_alone(model, cfg, count_calls(cfg))
    before = _status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    fn()
    print(json.dumps({"peak_rss_mb": _status_mb("VmHWM"), "rss_before_mb": before}))


def bench_memory(cfg: Config, with_xplique: bool) -> dict:
    row = {"config": cfg.name, "calls": count_calls(cfg)}
    row["calls_rss_mb"] = child_peak_rss(cfg.name, "calls")
    row["ours_rss_mb"] = child_peak_rss(cfg.name, "ours")
    row["extra_mb"] = row["ours_rss_mb"] - row["calls_rss_mb"]
    if with_xplique:
        try:
            row["xplique_extra_mb"] = child_peak_rss(cfg.name, "xplique") - row["calls_rss_mb"]
        except subprocess.CalledProcessError:
            pass
    return row


def markdown(rows: list[dict]) -> str:
    lines = [
        "| config | model calls | ours (s) | calls alone (s) | ours / calls | "
        "ours / calls (fastest runs) | own work (% of explain) | "
        "Xplique (s) | Xplique / calls | ours / Xplique | max rel. diff vs Xplique | "
        "peak RSS extra (MB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:

        def f(key, fmt, r=r):
            return format(r[key], fmt) if key in r else "–"

        extra = f("extra_mb", ".0f")
        if "xplique_extra_mb" in r:
            extra += f" (Xplique {r['xplique_extra_mb']:.0f})"
        lines.append(
            f"| {r['config']} | {r['calls']} | {f('ours_s', '.3f')} | "
            f"{f('calls_s', '.3f')} | {f('overhead', '.3f')} | {f('overhead_best', '.3f')} | "
            f"{format(100 * r['own_share'], '.1f') if 'own_share' in r else '–'} | "
            f"{f('xplique_s', '.3f')} | "
            f"{f('xplique_overhead', '.2f')} | {f('ours_vs_xplique', '.3f')} | "
            f"{f('max_rel_diff_vs_xplique', '.1e')} | {extra} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", nargs="*", default=[c.name for c in CONFIGS])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-xplique", action="store_true")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    rows = []
    for cfg in CONFIGS:
        if cfg.name not in args.configs:
            continue
        row = (
            bench_memory(cfg, not args.no_xplique)
            if cfg.memory
            else bench_time(cfg, args.repeats, not args.no_xplique)
        )
        print(json.dumps(row), flush=True)
        rows.append(row)
    table = markdown(rows)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(table + "\n")


if __name__ == "__main__":
    main()
