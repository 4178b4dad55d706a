"""What incremental="auto" chooses near its floors, and what that choice is worth: the same
explain with ``incremental=False``, ``True`` and ``"auto"``, interleaved, on models whose
full calls lie below the framework's floor of multiply-adds (where "auto" now measures an
incremental and a full call of the sweep's second batch and keeps the faster).

    python benchmarks/bench_auto.py [--repeats 3]

Configs: a Keras CNN of four 3x3 convolutions (16, 16, 32, 32 channels) at 64x64x3, patch
8 stride 4 (issue "Below the floor": ~3x faster incrementally, yet below the Keras floor);
the same CNN in PyTorch (channels first). One image, batch 32, "cover" edges, "mean".
Medians of the repeats after one warm-up of each mode; the maps' max relative difference
to the normal sweep's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from fastocclusion import Occlusion

WIDTHS = (16, 16, 32, 32)


def keras_cnn(size: int):
    import keras

    keras.utils.set_random_seed(0)
    layers = [keras.Input((size, size, 3))]
    layers += [keras.layers.Conv2D(w, 3, padding="same", activation="relu") for w in WIDTHS]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10)]
    return keras.Sequential(layers)


def torch_cnn(size: int):
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers: list[nn.Module] = []
    cin = 3
    for w in WIDTHS:
        layers += [nn.Conv2d(cin, w, 3, padding=1), nn.ReLU()]
        cin = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10)]
    return nn.Sequential(*layers).eval()


def run(name: str, repeats: int, size: int = 64) -> dict:
    keras_model = name == "keras"
    model = keras_cnn(size) if keras_model else torch_cnn(size)
    shape = (1, size, size, 3) if keras_model else (1, 3, size, size)
    x = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
    layout = "channels_last" if keras_model else "channels_first"
    methods = {
        mode: Occlusion(
            model,
            batch_size=32,
            patch_size=8,
            patch_stride=4,
            data_format=layout,
            edges="cover",
            reduction="mean",
            incremental=mode,
        )  # fmt: skip
        for mode in (False, True, "auto")
    }
    times: dict = {mode: [] for mode in methods}
    maps: dict = {}
    for round_ in range(repeats + 1):  # the first round warms up
        for mode, method in methods.items():
            start = time.perf_counter()
            result = method.explain(x)
            if round_:
                times[mode].append(time.perf_counter() - start)
            maps[mode] = np.asarray(result)
    normal = statistics.median(times[False])
    reference = maps[False]
    scale = np.abs(reference).max()
    stats = methods["auto"].last_stats
    return {
        "config": name,
        "normal_s": normal,
        "incremental_speedup": normal / statistics.median(times[True]),
        "auto_speedup": normal / statistics.median(times["auto"]),
        "auto_ran": "incremental" if stats.incremental_layers else "normal",
        "auto_note": stats.incremental_note,
        "max_rel_diff": max(
            float(np.abs(maps[m] - reference).max() / scale) for m in (True, "auto")
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--configs", nargs="+", default=["keras", "torch"])
    args = parser.parse_args()
    print(
        "| config | normal sweep (s) | True: speed-up | auto: speed-up | auto ran | max rel. diff |"
    )
    print("|---|---|---|---|---|---|")
    for name in args.configs:
        row = run(name, args.repeats)
        print(
            f"| {row['config']} | {row['normal_s']:.3f} | {row['incremental_speedup']:.2f}x | "
            f"{row['auto_speedup']:.2f}x | {row['auto_ran']} | {row['max_rel_diff']:.1e} |",
            flush=True,
        )
        print(f"  auto's note: {row['auto_note']}", flush=True)


if __name__ == "__main__":
    main()
