"""Exact incremental inference (design §8) on a VGG-16-style network and a ResNet-18 at
224x224 (random weights, channels first, one image, batch 32), and the same VGG-16 in
Keras (channels last; configs keras-vgg16/16, keras-vgg16/32): the incremental explain vs
the model calls alone of the normal sweep, the share of multiply-adds saved (from the
layer shapes), where the incremental time goes, and the maps' max relative difference to
the normal sweep's.

    python benchmarks/bench_incremental.py [--configs vgg16/16 resnet18/16 ...] [--repeats 2]
        [--size 224] [--markdown FILE] [--calibrate]

"Model calls alone" is bench_torch's baseline: the normal sweep's calls (base pass
included), each with as many samples, on one pre-built batch under inference mode, the
target scores fetched. For Keras, bench_occlusion's baseline: the model's traced concrete
function called as many times as the normal sweep calls it, on one pre-built full batch.
The incremental explain is timed whole (fills, gathers, splices, maps included).
--calibrate times the incremental sweep at several switch-back shares
(engine.regions.DEFAULT_SWITCH_SHARE was chosen from it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_occlusion import model_calls_alone  # noqa: E402
from bench_torch import TorchConfig, call_rows, calls_alone, resnet18  # noqa: E402

from fastocclusion import Occlusion  # noqa: E402
from fastocclusion.backends.tensorflow.incremental.graph import KerasOps  # noqa: E402
from fastocclusion.backends.torch.incremental.graph import TorchOps  # noqa: E402
from fastocclusion.engine.incremental_run import IncrementalRunner  # noqa: E402

VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16(classes: int = 10) -> nn.Module:
    """VGG-16's 13 convolutions and 5 max poolings (Simonyan & Zisserman 2015, config D),
    a global average pooling and one linear layer as the head (the original's 25088x4096
    dense layers would hold 120 M parameters, 0.8 % of the multiply-adds)."""
    layers: list[nn.Module] = []
    cin = 3
    for item in VGG16:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(cin, int(item), 3, padding=1), nn.ReLU(inplace=True)]
            cin = int(item)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes)]
    return nn.Sequential(*layers)


def keras_vgg16(size: int, classes: int = 10):
    """vgg16() in Keras, channels last."""
    import keras

    keras.utils.set_random_seed(0)
    layers = [keras.Input((size, size, 3))]
    for item in VGG16:
        if item == "M":
            layers.append(keras.layers.MaxPooling2D(2))
        else:
            layers.append(keras.layers.Conv2D(int(item), 3, padding="same", activation="relu"))
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(classes)]
    return keras.Sequential(layers)


MODELS = {"vgg16": vgg16, "resnet18": resnet18, "keras-vgg16": keras_vgg16}
PATCHES = {"16": (16, 8), "32": (32, 16)}


def build(name: str, size: int = 224):
    if name.startswith("keras-"):
        return MODELS[name](size)
    torch.manual_seed(0)
    return MODELS[name]().eval()


def explainer(model, patch, stride, **options):
    """bench_torch's settings (Captum's maps: "cover" edges, "mean" reduction), batch 32."""
    keras_model = not isinstance(model, nn.Module)
    return Occlusion(
        model,
        batch_size=32,
        patch_size=patch,
        patch_stride=stride,
        data_format="channels_last" if keras_model else "channels_first",
        edges="cover",
        reduction="mean",
        **options,
    )


PHASES = (
    (IncrementalRunner, "_read", "gather"),
    (IncrementalRunner, "_splice", "splice"),
    (TorchOps, "run", "full layers"),
    (KerasOps, "run", "full layers"),
)


class PhaseTimer:
    """Seconds spent in the incremental runner's gathers, splices and full layers (the
    rest of its model time is the layers run on boxes, and the base pass): instrumentation,
    wrapping the runner's steps while it is entered."""

    def __init__(self) -> None:
        self.seconds = {phase: 0.0 for _, _, phase in PHASES}
        self._originals = {}

    def __enter__(self):
        for owner, name, phase in PHASES:
            original = getattr(owner, name)
            self._originals[owner, name] = original

            def timed(*args, _original=original, _phase=phase, **kwargs):
                start = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    self.seconds[_phase] += time.perf_counter() - start

            setattr(owner, name, timed)
        return self

    def __exit__(self, *exc):
        for (owner, name), original in self._originals.items():
            setattr(owner, name, original)


def measure(name: str, patch_key: str, size: int, repeats: int) -> dict:
    model = build(name, size)
    keras_model = name.startswith("keras-")
    patch, stride = PATCHES[patch_key]
    shape = (size, size, 3) if keras_model else (3, size, size)
    x = np.random.default_rng(0).uniform(0, 1, (1, *shape)).astype(np.float32)
    labels = np.zeros(1, dtype=np.int64)
    targets = np.eye(10, dtype=np.float32)[labels]
    normal = explainer(model, patch, stride, incremental=False)
    incremental = explainer(model, patch, stride, incremental=True)
    start = time.perf_counter()
    reference = normal.explain(x, targets).numpy()
    normal_seconds = time.perf_counter() - start
    if keras_model:
        baseline = SimpleNamespace(batch_size=32, shape=shape)
        alone = model_calls_alone(model, baseline, normal.last_stats.model_calls)
    else:
        cfg = TorchConfig(f"{name}/{patch_key}", name, shape, 1, patch, stride)
        alone = calls_alone(model, cfg, call_rows(cfg))
    alone_times, incremental_times, phases = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        alone()
        alone_times.append(time.perf_counter() - start)
        with PhaseTimer() as timer:
            start = time.perf_counter()
            maps = incremental.explain(x, targets).numpy()
            incremental_times.append(time.perf_counter() - start)
        phases.append(dict(timer.seconds, model=incremental.last_stats.model_seconds))
    stats = incremental.last_stats
    best = min(range(repeats), key=lambda i: incremental_times[i])
    return {
        "config": f"{name}/{patch_key}",
        "windows": stats.patches_per_input,
        "calls": stats.model_calls,
        "alone": statistics.median(alone_times),
        "normal explain": normal_seconds,
        "incremental": statistics.median(incremental_times),
        "saved": stats.incremental_saved,
        "difference": float(np.abs(maps - reference).max() / np.abs(reference).max()),
        "phases": phases[best],
        "layers": len(stats.incremental_layers),
        "note": stats.incremental_note,
    }


def report(rows: list[dict]) -> str:
    lines = [
        "| config | windows | MACs saved | model calls alone (s) | incremental explain (s) "
        "| speed-up | max rel. difference |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {r['windows']} | {r['saved']:.0%} | {r['alone']:.2f} | "
            f"{r['incremental']:.2f} | {r['alone'] / r['incremental']:.2f}x | "
            f"{r['difference']:.1e} |"
        )
    lines.append("")
    for r in rows:
        p = r["phases"]
        boxes = p["model"] - p["gather"] - p["splice"] - p["full layers"]
        lines.append(
            f"- {r['config']}: {r['layers']} layers incremental ({r['note']}); of the "
            f"{p['model']:.2f} s of model calls: layers on boxes {boxes:.2f} s, gathers "
            f"{p['gather']:.2f} s, splices {p['splice']:.2f} s, full layers "
            f"{p['full layers']:.2f} s (normal explain {r['normal explain']:.2f} s)"
        )
    return "\n".join(lines)


def calibrate(size: int) -> None:
    shares = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)
    print("| config | " + " | ".join(f"{s:.0%}" for s in shares) + " |")
    print("|---|" + "---|" * len(shares))
    for name in MODELS:
        model = build(name, size)
        shape = (size, size, 3) if name.startswith("keras-") else (3, size, size)
        x = np.random.default_rng(0).uniform(0, 1, (1, *shape)).astype(np.float32)
        for key, (patch, stride) in PATCHES.items():
            # A band of windows (about 4 calls of 32) stands for the whole sweep.
            band = ((0, size), (0, min(size, patch + stride * (128 // (size // stride) + 1))))
            times = []
            for share in shares:
                method = explainer(model, patch, stride, incremental=True,
                                   incremental_threshold=share)  # fmt: skip
                method.explain(x, region=band)
                stats = method.last_stats
                times.append(stats.model_seconds / stats.model_calls)
            print(f"| {name}/{key} | " + " | ".join(f"{t:.3f}" for t in times) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    every = [f"{model}/{patch}" for model in MODELS for patch in PATCHES]
    parser.add_argument("--configs", nargs="*", default=every)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--markdown")
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.size)
        return
    rows = []
    for config in args.configs:
        name, patch_key = config.split("/")
        rows.append(measure(name, patch_key, args.size, args.repeats))
        print(report(rows[-1:]).split("\n")[2], flush=True)
    text = report(rows)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
