"""The Captum and MONAI front-ends with exact incremental inference (design §8), side by
side in one process on the CPU: ours with ``incremental`` (default "auto"), ours with
``incremental=False``, and the peer's own class (``captum.attr.Occlusion``,
``monai.visualize.OcclusionSensitivity``), on the same arguments.

    python benchmarks/bench_frontends.py [--configs captum-resnet18 monai-densenet121]
        [--size 128] [--n 2] [--patch 16] [--stride 8] [--batch 32] [--repeats 3]
        [--incremental auto|true]

- captum-resnet18: a ResNet-18 (bench_torch's, random weights, eval mode) over N (N, 3,
  size, size) images; windows (3, patch, patch) with strides (3, stride, stride), target 0,
  ``perturbations_per_eval`` = batch / N.
- monai-densenet121: MONAI's ``DenseNet121(spatial_dims=2, in_channels=1,
  out_channels=2)`` (random weights) over one (1, 1, size, size) image; ``mask_size`` =
  patch, ``overlap`` = 1 - stride / patch, ``n_batch`` = batch, mode "gaussian".
- monai-densenet121-3d: ``DenseNet121(spatial_dims=3)`` over one 64^3 volume, mask 16;
  monai-densenet-3d-small: a DenseNet of blocks (4, 8, 12) over 48^3, mask 12; both with
  MONAI's default overlap (0.25), ``n_batch`` = batch, mode "gaussian" (--size, --patch
  and --stride do not apply).

Times are medians over interleaved repeats (ours, ours without incremental, the peer, ...)
after one warm-up of each; the speed-ups are the peer's and the normal sweep's time over the
incremental one. "max rel diff" is max |ours - peer| / max |peer| of the incremental run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_torch import resnet18  # noqa: E402

from fastocclusion.captum import Occlusion  # noqa: E402
from fastocclusion.monai import OcclusionSensitivity  # noqa: E402


def captum_case(args: argparse.Namespace) -> dict[str, Any]:
    """Ours and Captum's attribute on a ResNet-18: {name: a call returning the attributions},
    and what holds ours' last_stats."""
    from captum.attr import Occlusion as CaptumOcclusion

    torch.manual_seed(0)
    model = resnet18().eval()
    x = torch.randn(args.n, 3, args.size, args.size)
    options = dict(
        sliding_window_shapes=(3, args.patch, args.patch),
        strides=(3, args.stride, args.stride),
        target=0,
        perturbations_per_eval=max(1, args.batch // args.n),
    )
    ours = Occlusion(model, incremental=args.incremental)
    normal = Occlusion(model, incremental=False)
    peer = CaptumOcclusion(model)
    return {
        "ours": lambda: ours.attribute(x, **options),
        "ours, incremental=False": lambda: normal.attribute(x, **options),
        "captum": lambda: peer.attribute(x, **options),
        "explainer": ours,
    }


def monai_case(args: argparse.Namespace) -> dict[str, Any]:
    """Ours and MONAI's occlusion sensitivity on a 2-D DenseNet121 (see captum_case)."""
    from monai.networks.nets import DenseNet121
    from monai.visualize import OcclusionSensitivity as MonaiOcclusionSensitivity

    torch.manual_seed(0)
    model = DenseNet121(spatial_dims=2, in_channels=1, out_channels=2).eval()
    x = torch.rand(1, 1, args.size, args.size)
    options = dict(
        mask_size=args.patch, n_batch=args.batch, overlap=1 - args.stride / args.patch,
        mode="gaussian", verbose=False,
    )  # fmt: skip
    ours = OcclusionSensitivity(model, incremental=args.incremental, **options)
    normal = OcclusionSensitivity(model, incremental=False, **options)
    peer = MonaiOcclusionSensitivity(model, **options)
    return {
        "ours": lambda: ours(x)[0],
        "ours, incremental=False": lambda: normal(x)[0],
        "monai": lambda: torch.as_tensor(peer(x)[0]),
        "explainer": ours,
    }


def monai_volume_case(args: argparse.Namespace, small: bool) -> dict[str, Any]:
    """Ours and MONAI's occlusion sensitivity on a 3-D DenseNet (see captum_case): MONAI's
    ``DenseNet121(spatial_dims=3)`` over a 64^3 volume, mask 16 (``small``: a DenseNet of
    blocks (4, 8, 12), 32 initial features, growth 16, over 48^3, mask 12), MONAI's default
    overlap 0.25, mode "gaussian"."""
    from monai.networks.nets import DenseNet, DenseNet121
    from monai.visualize import OcclusionSensitivity as MonaiOcclusionSensitivity

    torch.manual_seed(0)
    if small:
        model = DenseNet(spatial_dims=3, in_channels=1, out_channels=2, init_features=32,
                         growth_rate=16, block_config=(4, 8, 12)).eval()  # fmt: skip
        size, mask = 48, 12
    else:
        model = DenseNet121(spatial_dims=3, in_channels=1, out_channels=2).eval()
        size, mask = 64, 16
    x = torch.rand(1, 1, size, size, size)
    options = dict(mask_size=mask, n_batch=args.batch, mode="gaussian", verbose=False)
    ours = OcclusionSensitivity(model, incremental=args.incremental, **options)
    normal = OcclusionSensitivity(model, incremental=False, **options)
    peer = MonaiOcclusionSensitivity(model, **options)
    return {
        "ours": lambda: ours(x)[0],
        "ours, incremental=False": lambda: normal(x)[0],
        "monai": lambda: torch.as_tensor(peer(x)[0]),
        "explainer": ours,
    }


CASES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "captum-resnet18": captum_case,
    "monai-densenet121": monai_case,
    "monai-densenet121-3d": lambda args: monai_volume_case(args, small=False),
    "monai-densenet-3d-small": lambda args: monai_volume_case(args, small=True),
}


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def run(name: str, args: argparse.Namespace) -> None:
    """Times one config's three calls (interleaved, after a warm-up each) and prints them."""
    case = CASES[name](args)
    explainer = case.pop("explainer")
    results = {label: call() for label, call in case.items()}  # the warm-up
    times: dict[str, list[float]] = {label: [] for label in case}
    for _ in range(args.repeats):
        for label, call in case.items():
            seconds, results[label] = timed(call)
            times[label].append(seconds)
    median = {label: statistics.median(values) for label, values in times.items()}
    ours, normal, peer = list(case)
    reference = results[peer].float()
    difference = float((results[ours] - reference).abs().max() / reference.abs().max())
    stats = explainer.last_stats
    geometry = "" if name.endswith("3d") or name.endswith("small") else (
        f"size {args.size}, patch {args.patch}/{args.stride}, "
    )  # fmt: skip
    print(f"{name} ({geometry}batch {args.batch}):")
    for label in case:
        print(f"  {label:<24} {median[label]:8.3f} s")
    print(
        f"  speed-up vs {peer}: {median[peer] / median[ours]:.2f}x, vs incremental=False: "
        f"{median[normal] / median[ours]:.2f}x; max rel diff {difference:.2g}"
    )
    print(
        f"  incremental layers: {len(stats.incremental_layers)}, multiply-adds saved "
        f"{stats.incremental_saved:.0%}; {stats.incremental_note}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", choices=sorted(CASES), default=list(CASES)[:2])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--n", type=int, default=2, help="images (Captum only)")
    parser.add_argument("--patch", type=int, default=16)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--incremental", choices=["auto", "true"], default="auto")
    args = parser.parse_args()
    args.incremental = True if args.incremental == "true" else "auto"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy {np.__version__}")
    for name in args.configs:
        run(name, args)


if __name__ == "__main__":
    main()
