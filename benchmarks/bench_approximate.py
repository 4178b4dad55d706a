"""Adaptive drill-down (``Occlusion(approximate=...)``, engine.drill_down) against the exact
maps, side by side in one process on the CPU.

    python benchmarks/bench_approximate.py [--configs vgg16/4 vgg16-trained/4 demo ...]
        [--modes 0.1 0.25 pf0.5 0.1+pf0.5 auto] [--calls 8]

- vgg16/S, resnet18/S: bench_incremental's VGG-16 and bench_torch's ResNet-18 (random
  weights, eval mode) over one 224x224 image (uniform noise), patch 16, stride S, batch
  32. Rows: the model calls alone of the exact normal sweep (the floor; extrapolated from
  its first ``--calls`` calls, timed, to all of them: the full sweep takes minutes), the
  exact incremental explain (whose maps are the reference: they equal the normal sweep's
  within 1e-6), and each approximate mode (``{"drill_down": r}`` for a number r,
  ``{"projective_field": tau}`` for pfTAU, both for r+pfTAU, or "auto"), with
  ``incremental="auto"`` as by default. Speed-ups are over the floor; SSIM
  and Spearman are against the exact maps (engine.similarity).
- vgg16-trained/S, resnet18-trained/S: the same networks trained here on the demo's
  synthetic shapes (benchmarks/trained_shapes.py: trained once, a few minutes each, then
  cached), over one 224x224 scene of six squares and discs; the square detector's logit
  is explained, and the pointing game column says whether each map's highest pixel lies
  on a square (1.00) or not (0.00).
- densenet3d/S: MONAI's DenseNet121 (spatial_dims=3, random weights) over one 64^3 volume,
  patch 16, stride S, batch 16 (the floor extrapolated from calls of 16 volumes).
- demo: the demo's Keras CNN (``fastocclusion.demo``, trained here in a few seconds) over
  200 held-out 32x32 images, patch 4, stride 1: the exact explain and each mode, with the
  pointing game (the share of maps whose highest pixel lies on the shape) and the mean
  SSIM to the exact maps (and the lowest: the estimated SSIM is the lowest over the
  inputs).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trained_shapes  # noqa: E402
from bench_incremental import vgg16  # noqa: E402
from bench_torch import TorchConfig, call_rows, calls_alone, resnet18  # noqa: E402

from fastocclusion import Occlusion  # noqa: E402
from fastocclusion.engine.similarity import spearman, ssim  # noqa: E402


def mode_option(mode: str) -> Any:
    """The option of a mode: "auto", or a dict of "+"-joined r (drill-down), pfTAU."""
    if mode == "auto":
        return "auto"
    option: dict[str, float] = {}
    for part in mode.split("+"):
        if part.startswith("pf"):
            option["projective_field"] = float(part[2:])
        else:
            option["drill_down"] = float(part)
    return option


def timed(call: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def densenet3d_floor(model: Any, stride: int, calls: int) -> float:
    """The model calls alone of the exact sweep of one 64^3 volume, patch 16: the base call
    and ceil(windows / 16) calls of 16 volumes, extrapolated from ``calls`` of them."""
    windows = ((64 - 16) // stride + 1) ** 3
    batch = torch.rand(16, 1, 64, 64, 64)
    total = 1 + -(-windows // 16)
    with torch.inference_mode():
        model(batch[:1])  # warm-up
        seconds, _ = timed(lambda: [model(batch).sum().item() for _ in range(calls)])
    return seconds * total / calls


def on_squares(heatmap: np.ndarray, squares: np.ndarray) -> float:
    """The pointing game of one map: 1.0 when its highest pixel lies on a square."""
    return float(squares.reshape(-1)[int(np.argmax(heatmap))])


@dataclass
class Case:
    """One config's model (made by ``make``), inputs, targets (None: the top class),
    Occlusion options, number of outputs, its network's name (bench_torch's models), and
    where the evidence lies (the scene's squares (H, W), the demo images' shapes (N, H, W);
    None for noise)."""

    make: Callable[[], Any]
    x: np.ndarray
    targets: np.ndarray | None
    options: dict[str, Any]
    classes: int
    network: str = ""
    evidence: np.ndarray | None = None


def case(name: str) -> Case:
    """The model, inputs and options of config ``name`` (see the module docstring)."""
    if name == "demo":
        from fastocclusion import demo

        images, _, masks = demo.make_dataset(200, np.random.default_rng([0, 2]))
        options = dict(patch_size=demo.PATCH_SIZE, patch_stride=demo.PATCH_STRIDE, batch_size=256)
        return Case(demo.train_model, images, None, options, len(demo.CLASS_NAMES), "", masks)
    kind, stride = name.split("/")
    options = dict(patch_size=16, patch_stride=int(stride), data_format="channels_first")
    if kind == "densenet3d":  # MONAI's DenseNet121 over one 64^3 volume

        def densenet() -> Any:
            from monai.networks.nets import DenseNet121

            torch.manual_seed(0)
            return DenseNet121(spatial_dims=3, in_channels=1, out_channels=2).eval()

        x = np.random.default_rng(0).uniform(0, 1, (1, 1, 64, 64, 64)).astype(np.float32)
        targets = np.eye(2, dtype=np.float32)[[0]]
        return Case(densenet, x, targets, dict(options, batch_size=16), 2, kind)
    network = kind.removesuffix("-trained")
    options["batch_size"] = 32
    if kind.endswith("-trained"):  # trained_shapes: a scene of shapes, the square logit
        x, squares = trained_shapes.scene(np.random.default_rng([0, 3]))
        targets = np.eye(2, dtype=np.float32)[[0]]
        return Case(lambda: trained_shapes.trained(network), x, targets, options, 2, network,
                    squares)  # fmt: skip

    def random_weights() -> Any:
        torch.manual_seed(0)
        return (vgg16() if network == "vgg16" else resnet18()).eval()

    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 224, 224)).astype(np.float32)
    return Case(random_weights, x, np.eye(10, dtype=np.float32)[[0]], options, 10, network)


def torch_config(name: str, modes: list[str], calls: int) -> list[dict]:
    c = case(name)
    model, x, targets, options = c.make(), c.x, c.targets, c.options
    if c.network == "densenet3d":
        floor = densenet3d_floor(model, options["patch_stride"], max(1, calls // 4))
    else:
        cfg = TorchConfig(name, c.network, (3, 224, 224), 1, 16, options["patch_stride"])
        rows = call_rows(cfg)
        part = calls_alone(model, cfg, rows[:calls], c.classes)
        part()  # warm-up
        seconds, _ = timed(part)
        floor = seconds * sum(rows) / sum(rows[:calls])

    def pointing(heatmap: np.ndarray) -> dict[str, float]:
        return {} if c.evidence is None else {"pointing": on_squares(heatmap, c.evidence)}

    exact = Occlusion(model, incremental=True, **options)
    exact_seconds, reference = timed(lambda: exact.explain(x, targets).numpy()[0, 0])
    results = [
        {"config": name, "mode": "model calls alone (exact normal sweep)", "seconds": floor,
         "share": 1.0, "ssim": 1.0, "spearman": 1.0, "estimated": 1.0},
        {"config": name, "mode": "exact, incremental", "seconds": exact_seconds, "share": 1.0,
         "ssim": 1.0, "spearman": 1.0, "estimated": 1.0, **pointing(reference)},
    ]  # fmt: skip
    for mode in modes:
        explainer = Occlusion(model, approximate=mode_option(mode), **options)
        seconds, maps = timed(lambda e=explainer: e.explain(x, targets).numpy()[0, 0])
        stats = explainer.last_stats
        results.append({
            "config": name, "mode": f"approximate={mode_option(mode)!r}", "seconds": seconds,
            "share": stats.approximate_share, "ssim": ssim(maps, reference),
            "spearman": spearman(maps, reference), "estimated": stats.approximate_ssim,
            "note": stats.approximate_note, **pointing(maps),
        })  # fmt: skip
    for row in results:
        row["speedup"] = floor / row["seconds"]
    return results


def demo_config(modes: list[str]) -> list[dict]:
    from fastocclusion import demo

    c = case("demo")
    model, images, masks, options = c.make(), c.x, c.evidence, c.options
    exact = Occlusion(model, **options)
    exact.explain(images[:1])  # traces the model
    exact_seconds, reference = timed(lambda: exact.explain(images).numpy()[..., 0])
    hits = float(demo.pointing_hits(reference, masks).mean())
    results = [{"config": "demo", "mode": "exact", "seconds": exact_seconds, "share": 1.0,
                "ssim": 1.0, "spearman": 1.0, "estimated": 1.0, "pointing": hits}]  # fmt: skip
    for mode in modes:
        explainer = Occlusion(model, approximate=mode_option(mode), **options)
        explainer.explain(images[:1])
        seconds, maps = timed(lambda e=explainer: e.explain(images).numpy()[..., 0])
        stats = explainer.last_stats
        results.append({
            "config": "demo", "mode": f"approximate={mode_option(mode)!r}", "seconds": seconds,
            "share": stats.approximate_share,
            "ssim": float(np.mean([ssim(m, r) for m, r in zip(maps, reference)])),
            "lowest": float(np.min([ssim(m, r) for m, r in zip(maps, reference)])),
            "spearman": float(np.mean([spearman(m, r) for m, r in zip(maps, reference)])),
            "estimated": stats.approximate_ssim,
            "pointing": float(demo.pointing_hits(maps, masks).mean()),
            "note": stats.approximate_note,
        })  # fmt: skip
    for row in results:
        row["speedup"] = exact_seconds / row["seconds"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    configs = ["vgg16/4", "resnet18/4", "vgg16/8", "resnet18/8", "demo"]
    parser.add_argument("--configs", nargs="+", default=configs)
    parser.add_argument("--modes", nargs="+", default=["0.1", "0.25", "pf0.5", "0.1+pf0.5", "auto"])
    parser.add_argument("--calls", type=int, default=8, help="calls timed for the floor")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| config | mode | seconds | speed-up | exactly swept | SSIM | Spearman | "
          "estimated SSIM | pointing game |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    notes = []
    for name in args.configs:
        rows = demo_config(args.modes) if name == "demo" else torch_config(
            name, args.modes, args.calls
        )  # fmt: skip
        for r in rows:
            pointing = f"{r['pointing']:.2f}" if "pointing" in r else ""
            lowest = f" (lowest {r['lowest']:.3f})" if "lowest" in r else ""
            print(
                f"| {r['config']} | {r['mode']} | {r['seconds']:.2f} | {r['speedup']:.1f}x | "
                f"{r['share']:.0%} | {r['ssim']:.3f}{lowest} | {r['spearman']:.3f} | "
                f"{r['estimated']:.3f} | {pointing} |",
                flush=True,
            )
            if r.get("note"):
                notes.append(f"{r['config']} {r['mode']}: {r['note']}")
    print("\nNotes (last_stats.approximate_note):")
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
