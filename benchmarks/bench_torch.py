"""The PyTorch benchmark suite: our explain vs the same model calls alone, and vs Captum's
Occlusion (when installed), side by side in one process, on PyTorch CPU models.

    python benchmarks/bench_torch.py [--configs a b c d e] [--repeats 5] [--markdown FILE]

Every config computes Captum's maps (windows over all channels, "cover" edges, "mean"
reduction) with channels-first inputs, so the three numbers describe the same work, and the
maps are compared (max relative difference). Times are medians over interleaved repeats
(ours, calls alone, Captum, ours, ...) after one warm-up of each. "Model calls alone" = the
same calls as our explain (base pass included), each with as many samples (an eager PyTorch
model gets no padding rows), on one pre-built batch, under inference mode, with the target
scores taken and fetched to the host as ours are. Captum gets ``perturbations_per_eval`` =
batch / N (at least 1), so that its calls hold about as many samples as ours.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class TorchConfig:
    name: str
    model: str
    shape: tuple[int, ...]  # one input, channels first
    n: int
    patch: int
    stride: int
    batch_size: int = 32


CONFIGS = [
    TorchConfig("a", "small_cnn", (3, 32, 32), 64, 4, 2),
    TorchConfig("b", "gap_linear", (3, 224, 224), 8, 16, 8),
    TorchConfig("c", "gap_linear", (1, 64, 64), 4, 1, 1),
    TorchConfig("d", "resnet18", (3, 224, 224), 1, 32, 16),
    TorchConfig("e", "cnn3d", (1, 64, 64, 64), 1, 16, 8, batch_size=16),
]


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.down is None else self.down(x)))


def resnet18(classes: int = 10) -> nn.Module:
    """ResNet-18 (He et al. 2016) as torchvision builds it, written out (no torchvision)."""
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
    ]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes)]
    return nn.Sequential(*layers)


def build_model(kind: str, shape: tuple[int, ...]) -> nn.Module:
    torch.manual_seed(0)
    if kind == "small_cnn":
        model = nn.Sequential(
            nn.Conv2d(shape[0], 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, 10),
        )
    elif kind == "gap_linear":
        model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(shape[0], 10))
    elif kind == "resnet18":
        model = resnet18()
    elif kind == "cnn3d":
        model = nn.Sequential(
            nn.Conv3d(shape[0], 8, 3, 2, 1),
            nn.ReLU(),
            nn.Conv3d(8, 16, 3, 2, 1),
            nn.ReLU(),
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(),
            nn.Linear(16, 10),
        )
    else:
        raise ValueError(f"model: {kind!r} is unknown")
    return model.eval()


def windows(cfg: TorchConfig) -> int:
    count = 1
    for length in cfg.shape[1:]:
        valid = (length - cfg.patch) // cfg.stride + 1
        last = (valid - 1) * cfg.stride
        count *= valid + (1 if length - last > cfg.patch and length - last > cfg.stride else 0)
    return count


def ours(model, cfg: TorchConfig, x, labels):
    from fastocclusion import Occlusion

    method = Occlusion(
        model,
        batch_size=cfg.batch_size,
        patch_size=cfg.patch,
        patch_stride=cfg.stride,
        data_format="channels_first",
        edges="cover",
        reduction="mean",
    )
    targets = np.eye(10, dtype=np.float32)[labels]
    shares: list[float] = []

    def run():
        maps = method.explain(x, targets).numpy()
        stats = method.last_stats
        shares.append(stats.overhead_seconds / stats.total_seconds)
        return maps

    run.own_shares = shares  # fastocclusion's own share of each explain (last_stats)
    return run, method


def call_rows(cfg: TorchConfig) -> list[int]:
    """The samples of each model call our explain makes on an eager PyTorch model: the base
    pass, then the chunked sweep (batch b holds the stream indices b + j * C), padding rows
    left out."""
    n, batch = cfg.n, cfg.batch_size
    total = n * windows(cfg)
    chunk = -(-total // batch)
    base = [min(batch, n - start) for start in range(0, n, batch)]
    return base + [-(-(total - b) // chunk) for b in range(chunk)]


def calls_alone(model, cfg: TorchConfig, rows: list[int], classes: int = 10):
    """The same calls as our explain (``rows`` samples each) on one pre-built batch, the
    model having ``classes`` outputs."""
    batch = torch.rand((cfg.batch_size,) + cfg.shape)
    targets = torch.eye(classes)[torch.zeros(cfg.batch_size, dtype=torch.long)]

    def run():
        with torch.inference_mode():
            for count in rows:
                (model(batch[:count]) * targets[:count]).sum(-1).numpy()

    return run


def captum_runner(model, cfg: TorchConfig, x, labels):
    try:
        from captum.attr import Occlusion as CaptumOcclusion
    except ImportError:
        return None
    method = CaptumOcclusion(model)
    inputs = torch.from_numpy(x)
    window = (cfg.shape[0],) + (cfg.patch,) * (len(cfg.shape) - 1)
    stride = (cfg.shape[0],) + (cfg.stride,) * (len(cfg.shape) - 1)
    ppe = max(1, cfg.batch_size // cfg.n)
    target = [int(v) for v in labels]

    def run():
        with torch.inference_mode():
            maps = method.attribute(
                inputs,
                sliding_window_shapes=window,
                strides=stride,
                target=target,
                perturbations_per_eval=ppe,
            )
        return maps[:, :1].numpy()  # every channel has the same value

    return run


def bench(cfg: TorchConfig, repeats: int) -> dict:
    model = build_model(cfg.model, cfg.shape)
    rng = np.random.default_rng(0)
    x = rng.random((cfg.n,) + cfg.shape, dtype=np.float32)
    labels = rng.integers(0, 10, cfg.n)
    run_ours, method = ours(model, cfg, x, labels)
    ours_maps = run_ours()  # warm-up
    calls = method.last_stats.model_calls
    rows = call_rows(cfg)
    assert len(rows) == calls, (rows, calls)
    runners = {"ours": run_ours, "calls": calls_alone(model, cfg, rows)}
    captum = captum_runner(model, cfg, x, labels)
    if captum is not None:
        runners["captum"] = captum
    results = {name: fn() for name, fn in runners.items() if name != "ours"}  # warm-up
    diff = None
    if "captum" in results:
        ref = results["captum"]
        diff = float(np.max(np.abs(ours_maps - ref)) / max(float(np.max(np.abs(ref))), 1e-30))
    times: dict[str, list[float]] = {name: [] for name in runners}
    run_ours.own_shares.clear()
    for _ in range(repeats):
        for name, fn in runners.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(v) for name, v in times.items()}
    best = {name: min(v) for name, v in times.items()}
    row = {
        "config": cfg.name,
        "model": cfg.model,
        "shape": cfg.shape,
        "n": cfg.n,
        "windows": windows(cfg),
        "calls": calls,
        "ours_s": med["ours"],
        "calls_s": med["calls"],
        "overhead": med["ours"] / med["calls"],
        "overhead_best": best["ours"] / best["calls"],
        "own_share": statistics.median(run_ours.own_shares),
    }
    if "captum" in med:
        row.update(
            captum_s=med["captum"], captum_over_ours=med["captum"] / med["ours"], max_rel_diff=diff
        )
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| config | model, input | N | patch/stride | calls | ours (s) | calls alone (s) | "
        "ours / calls | (fastest runs) | own work (% of explain) | Captum (s) | "
        "Captum / ours | max rel. diff |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cfg = next(c for c in CONFIGS if c.name == r["config"])
        captum = (
            f"{r['captum_s']:.3f} | {r['captum_over_ours']:.1f} | {r['max_rel_diff']:.1e}"
            if "captum_s" in r
            else "– | – | –"
        )
        lines.append(
            f"| {r['config']} | {r['model']}, {'x'.join(map(str, cfg.shape))} | {cfg.n} | "
            f"{cfg.patch}/{cfg.stride} | {r['calls']} | {r['ours_s']:.3f} | {r['calls_s']:.3f} | "
            f"{r['overhead']:.3f} | {r['overhead_best']:.3f} | {100 * r['own_share']:.1f} | "
            f"{captum} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=[c.name for c in CONFIGS])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(
        f"load average {load:.2f} on {os.cpu_count()} cores; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        file=sys.stderr,
    )
    rows = []
    for cfg in CONFIGS:
        if cfg.name in args.configs:
            rows.append(bench(cfg, args.repeats))
            print(json.dumps(rows[-1], default=str), file=sys.stderr)
    text = table(rows)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
