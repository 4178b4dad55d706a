"""fastocclusion.distributed on Ray against plain ``Occlusion.explain``: 1 and 2 workers on
this machine, from a .npy file to maps on disk.

    python benchmarks/bench_distributed.py [--samples 8192] [--repeats 2] [--markdown FILE]

Workload: a Keras CNN (conv 16 -> max pool -> conv 32 -> global average pool -> dense 10)
over N 32x32x3 images in a .npy file, patch 4 stride 2 (225 windows an image), batch 64,
each image's top class; N = 8192 is ~1.8 M perturbed samples, ~35 s on 2 cores.

- **plain**: a fresh Python process that imports TensorFlow, loads the saved model, reads the
  .npy file, explains it with one ``Occlusion.explain`` (TensorFlow's default threads: every
  core) and saves the maps: what a user without Ray runs.
- **ray W**: ``explain_dataset`` with W workers of cores/W CPUs each (1 worker: the same
  threads as plain), Ray already started (as a cluster is), shards of 128 images. Its wall
  time includes what plain's includes: each worker's process start, TensorFlow import and
  model load ("startup"), then the shards, each written to the output directory.

Figures: wall seconds, startup, steady seconds (wall - startup, against plain's own explain
call), samples/s; overhead = ray 1 / plain - 1 (goal <= 10 %), speed-up = ray 1 / ray 2.
Every run's maps are checked equal to plain's. Repeats are interleaved (plain, ray 1,
ray 2, plain, ...); the table gives each one and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

PATCH, STRIDE, BATCH, SHAPE = 4, 2, 64, (32, 32, 3)


def _quiet_environment() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray on the loopback


def build_model():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )


def plain_child(directory: str) -> None:
    """The plain run (in its own process): prints its own split as JSON."""
    started = time.perf_counter()
    import keras

    from fastocclusion import Occlusion

    model = keras.models.load_model(os.path.join(directory, "model.keras"), compile=False)
    inputs = np.load(os.path.join(directory, "inputs.npy"), mmap_mode="r")
    ready = time.perf_counter()
    explainer = Occlusion(model, batch_size=BATCH, patch_size=PATCH, patch_stride=STRIDE)
    maps = explainer.explain(np.asarray(inputs)).numpy()
    explained = time.perf_counter()
    np.save(os.path.join(directory, "plain_maps.npy"), maps)
    stats = explainer.last_stats
    print(
        json.dumps(
            {
                "startup": ready - started,
                "explain": explained - ready,
                "model_calls": stats.model_calls,
                "samples": stats.perturbed_samples,
            }
        )
    )


def run_plain(directory: str) -> dict:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--plain-child", directory],
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    return {"wall": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def run_ray(directory: str, workers: int, cores: int, shard_size: int, out: str) -> dict:
    import functools

    import keras

    from fastocclusion.distributed import explain_dataset, load_results

    factory = functools.partial(
        keras.models.load_model, os.path.join(directory, "model.keras"), compile=False
    )
    started = time.perf_counter()
    summary = explain_dataset(
        os.path.join(directory, "inputs.npy"),
        factory,
        out,
        workers=workers,
        cpus_per_worker=cores / workers,
        shard_size=shard_size,
        progress=False,
        batch_size=BATCH,
        patch_size=PATCH,
        patch_stride=STRIDE,
    )
    wall = time.perf_counter() - started
    assert summary.complete, str(summary)
    maps = load_results(out).maps
    equal = bool(np.array_equal(maps, np.load(os.path.join(directory, "plain_maps.npy"))))
    return {
        "wall": wall,
        "startup": summary.startup_seconds,
        "explain": wall - summary.startup_seconds,
        "model_calls": summary.model_calls,
        "equal": equal,
        "workers": [str(w) for w in summary.workers],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=8192, help="images in the .npy file")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=128)
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--plain-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _quiet_environment()
    if args.plain_child:
        plain_child(args.plain_child)
        return

    import ray

    cores = os.cpu_count() or 1
    windows = ((SHAPE[0] - PATCH) // STRIDE + 1) ** 2
    with tempfile.TemporaryDirectory(prefix="bench_distributed.") as directory:
        build_model().save(os.path.join(directory, "model.keras"))
        rng = np.random.default_rng(0)
        np.save(
            os.path.join(directory, "inputs.npy"),
            rng.uniform(size=(args.samples, *SHAPE)).astype(np.float32),
        )
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
        runs: dict[str, list[dict]] = {"plain": [], "ray 1": [], "ray 2": []}
        for repeat in range(args.repeats):
            runs["plain"].append(run_plain(directory))
            for workers in (1, 2):
                out = os.path.join(directory, f"out{workers}_{repeat}")
                runs[f"ray {workers}"].append(
                    run_ray(directory, workers, cores, args.shard_size, out)
                )
                print(f"repeat {repeat} ray {workers}: {runs[f'ray {workers}'][-1]}", flush=True)
            print(f"repeat {repeat} plain: {runs['plain'][-1]}", flush=True)
        ray.shutdown()

    samples = args.samples * windows
    median = {name: statistics.median(r["wall"] for r in rs) for name, rs in runs.items()}
    lines = [
        f"{args.samples} images 32x32x3, {windows} windows each ({samples:,} perturbed "
        f"samples), batch {BATCH}, {cores} cores, shards of {args.shard_size}; "
        f"repeats {args.repeats}",
        "",
        "| run | wall s (each) | median wall s | startup s | steady s | samples/s | "
        "model calls | maps = plain |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, rs in runs.items():
        startup = statistics.median(r["startup"] for r in rs)
        steady = statistics.median(r["explain"] for r in rs)
        equal = "-" if name == "plain" else str(all(r["equal"] for r in rs))
        each = ", ".join(f"{r['wall']:.1f}" for r in rs)
        lines.append(
            f"| {name} | {each} | {median[name]:.1f} | "
            f"{startup:.1f} | {steady:.1f} | {samples / median[name]:,.0f} | "
            f"{rs[0]['model_calls']} | {equal} |"
        )
    steady_plain = statistics.median(r["explain"] for r in runs["plain"])
    steady_ray = statistics.median(r["explain"] for r in runs["ray 1"])
    lines += [
        "",
        f"overhead of Ray at 1 worker: {median['ray 1'] / median['plain'] - 1:+.1%} end to end, "
        f"{steady_ray / steady_plain - 1:+.1%} steady (after the startup); "
        f"speed-up 2 workers vs 1: {median['ray 1'] / median['ray 2']:.2f}x "
        f"(vs plain: {median['plain'] / median['ray 2']:.2f}x)",
    ]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as file:
            file.write(text + "\n")


if __name__ == "__main__":
    main()
