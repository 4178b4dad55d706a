"""VGG-16 and ResNet-18 with trained weights, for benchmarks whose maps must mean something:
random weights give noise-like occlusion maps, and trained ImageNet weights cannot be
downloaded on the benchmark machines. Both networks (bench_incremental's VGG-16,
bench_torch's ResNet-18, two logits) are trained here, on the CPU, on the demo's synthetic
task (fastocclusion.demo.make_dataset: a bright square or disc on noise, trained as two
independent detectors with a sigmoid loss), at 64x64 with shapes of half side 5-12,
gray replicated to three channels; both end in a global average pooling, so the same
weights run at 224x224.

Explained: 224x224 scenes of several such shapes (``scene``), their square detector's logit;
the pointing game asks whether a map's highest pixel lies on a square.

    python benchmarks/trained_shapes.py [--kinds vgg16 resnet18]   # trains, caches, checks

Weights are cached under $FASTOCCLUSION_BENCH_CACHE (default ~/.cache/fastocclusion-bench),
keyed by the network, the seed and the training settings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_incremental import vgg16  # noqa: E402
from bench_torch import resnet18  # noqa: E402

from fastocclusion.demo import make_dataset  # noqa: E402

TRAIN_SIZE = 64
RADII = (5, 12)
SQUARE = 0  # the demo's class 0; 1 is the disc
SETTINGS = {"vgg16": (3000, 3, 1e-3), "resnet18": (3000, 2, 1e-3)}  # samples, epochs, rate
CACHE = Path(
    os.environ.get("FASTOCCLUSION_BENCH_CACHE", Path.home() / ".cache" / "fastocclusion-bench")
)


def shapes(n: int, rng: np.random.Generator, size: int = TRAIN_SIZE):
    """(images (n, 3, size, size) float32, labels (n,), masks (n, size, size)): the demo's
    images at ``size`` with half sides RADII, gray in three channels."""
    images, labels, masks = make_dataset(n, rng, size, RADII)
    return np.ascontiguousarray(np.repeat(images.transpose(0, 3, 1, 2), 3, axis=1)), labels, masks


def scene(rng: np.random.Generator, size: int = 224, count: int = 6):
    """One (1, 3, size, size) image of ``count`` shapes (at least one square; a later shape
    drawn over an earlier one) on the demo's noise, and the (size, size) mask of its squares
    as drawn."""
    images, labels, masks = shapes(count, rng, size)
    while not (labels == SQUARE).any():
        images, labels, masks = shapes(count, rng, size)
    image = images[:1].copy()
    squares = np.zeros((size, size), dtype=bool)
    for i in range(count):
        image[0][:, masks[i]] = images[i][:, masks[i]]
        squares = (squares & ~masks[i]) | (masks[i] if labels[i] == SQUARE else False)
    return image, squares


def build(kind: str) -> nn.Module:
    """The network as benchmarked (bench_incremental's VGG-16, bench_torch's ResNet-18), two
    logits, untrained."""
    torch.manual_seed(0)
    return vgg16(classes=2) if kind == "vgg16" else resnet18(classes=2)


def _trainable(kind: str) -> nn.Module:
    """What is trained: ResNet-18 itself; VGG-16 with a batch norm after each convolution
    (without, from scratch, it does not learn: the loss stayed at log 2 for a whole epoch),
    folded into the convolutions afterwards (``_folded``)."""
    model = build(kind)
    if kind != "vgg16":
        return model
    layers: list[nn.Module] = []
    for module in model:
        layers.append(module)
        if isinstance(module, nn.Conv2d):
            layers.append(nn.BatchNorm2d(module.out_channels))
    return nn.Sequential(*layers)


def _folded(trained: nn.Module) -> nn.Module:
    """VGG-16 as benchmarked, each convolution computing what the trained convolution and
    its batch norm (in eval) compute: w * g / s and (b - mean) * g / s + beta, where
    s = sqrt(var + eps)."""
    model = build("vgg16")
    modules = list(trained)
    plain = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
    pairs = [(m, modules[i + 1]) for i, m in enumerate(modules) if isinstance(m, nn.Conv2d)]
    linear = [m for m in modules if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for target, (conv, norm) in zip(plain, pairs):
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            target.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
            target.bias.copy_((conv.bias - norm.running_mean) * scale + norm.bias)
        plain[-1].weight.copy_(linear[0].weight)
        plain[-1].bias.copy_(linear[0].bias)
    return model.eval()


def train(kind: str, seed: int = 0) -> nn.Module:
    """``kind`` ("vgg16", "resnet18") trained on SETTINGS[kind] samples of ``shapes``
    (Adam, sigmoid loss, batch 32), in eval mode."""
    samples, epochs, rate = SETTINGS[kind]
    model = _trainable(kind)
    x, y, _ = shapes(samples, np.random.default_rng([seed, 1]))
    x, targets = torch.from_numpy(x), torch.from_numpy(np.eye(2, dtype=np.float32)[y])
    optimizer = torch.optim.Adam(model.parameters(), lr=rate)
    loss_of = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(samples, generator=generator)
        start, total = time.perf_counter(), 0.0
        for at in range(0, samples, 32):
            rows = order[at : at + 32]
            optimizer.zero_grad()
            loss = loss_of(model(x[rows]), targets[rows])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        print(f"{kind} epoch {epoch + 1}/{epochs}: loss {total / samples:.4f} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)  # fmt: skip
    model.eval()
    if kind != "vgg16":
        return model
    folded = _folded(model)
    with torch.inference_mode():
        probe = torch.from_numpy(x[:8].numpy())
        expected, got = model(probe), folded(probe)
    difference = float((got - expected).abs().max() / expected.abs().max())
    if difference > 1e-4:
        raise AssertionError(f"the folded VGG-16 differs from the trained one: {difference:.3g}")
    return folded


def trained(kind: str, seed: int = 0) -> nn.Module:
    """The trained network from the cache, trained (and cached) when absent."""
    samples, epochs, rate = SETTINGS[kind]
    path = (
        CACHE
        / f"{kind}-shapes{TRAIN_SIZE}-r{RADII[0]}-{RADII[1]}-{samples}x{epochs}-{rate}-s{seed}.pt"
    )
    model = build(kind)
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    model = train(kind, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model


def accuracy(model: nn.Module, seed: int = 0) -> float:
    """Held-out accuracy on 500 images of ``shapes``."""
    x, y, _ = shapes(500, np.random.default_rng([seed, 2]))
    with torch.inference_mode():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=list(SETTINGS))
    args = parser.parse_args()
    for kind in args.kinds:
        model = trained(kind)
        print(f"{kind}: held-out accuracy {accuracy(model):.3f}")


if __name__ == "__main__":
    main()
