"""Random channels-first CNNs made of every layer kind exact incremental inference
supports (design §8), for test_incremental.py: convolutions of any kernel, stride, padding
('same' too), dilation and groups (depthwise included), batch norm in eval mode with
random statistics, activations as modules, functions and methods (in place too), max and
average pooling (padding, dilation, ceil_mode, count_include_pad), zero padding,
identity and dropout in eval mode, residual sums with and without a projection,
channel concatenations, products with numbers; then a head (global pooling or a flatten)
and a linear layer."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class Residual(nn.Module):
    """x + body(x), or proj(x) + body(x) when the body changes the shape."""

    def __init__(self, body: nn.Module, proj: nn.Module | None = None) -> None:
        super().__init__()
        self.body, self.proj = body, proj

    def forward(self, x):
        skip = x if self.proj is None else self.proj(x)
        out = self.body(x)
        out += skip  # traced as an addition
        return F.relu(out)


class Concat(nn.Module):
    """torch.cat([a(x), b(x)], dim=1) of two same-sized branches."""

    def __init__(self, a: nn.Module, b: nn.Module) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], dim=1)


class Functional(nn.Module):
    """Pointwise steps written as functions and methods, and a product with a number."""

    def __init__(self, kind: int) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x):
        if self.kind == 0:
            return torch.sigmoid(x) * 2.0 - 0.5
        if self.kind == 1:
            return x.relu().add(0.25)
        if self.kind == 2:
            return F.leaky_relu(x, 0.1).clamp(-2.0, 3.0)
        return F.max_pool2d(torch.tanh(x), 3, 1, 1)


class Head(nn.Module):
    def __init__(self, channels: int, size: tuple[int, int], outputs: int, pooled: bool) -> None:
        super().__init__()
        self.pooled = pooled
        features = channels if pooled else channels * size[0] * size[1]
        self.linear = nn.Linear(features, outputs)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(x, 1).flatten(1) if self.pooled else x.flatten(1)
        return self.linear(x)


def _odd_conv(rng, cin, cout, stride=1):
    k = int(rng.choice([1, 3, 5]))
    return nn.Conv2d(cin, cout, k, stride, k // 2, bias=bool(rng.integers(2)))


def _random_bn(channels: int, rng) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels)
    bn.running_mean = torch.from_numpy(rng.normal(0, 0.3, channels).astype(np.float32))
    bn.running_var = torch.from_numpy(rng.uniform(0.5, 2, channels).astype(np.float32))
    bn.weight.data = torch.from_numpy(rng.uniform(0.5, 1.5, channels).astype(np.float32))
    bn.bias.data = torch.from_numpy(rng.normal(0, 0.2, channels).astype(np.float32))
    return bn


ACTIVATIONS = [
    lambda c: nn.ReLU(inplace=True), lambda c: nn.LeakyReLU(0.2), lambda c: nn.GELU(),
    lambda c: nn.SiLU(), lambda c: nn.Tanh(), lambda c: nn.ReLU6(), lambda c: nn.Hardswish(),
    lambda c: nn.ELU(), lambda c: nn.PReLU(c), lambda c: nn.Sigmoid(),
]  # fmt: skip


def random_layer(rng, channels: int, size: tuple[int, int]):
    """(a random supported layer, its output channels, its output size), or None when the
    map is too small for the layer drawn."""
    kind = rng.integers(10)
    h, w = size
    if kind == 0 or kind == 1:  # any convolution
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 3)))
        dilation = (int(rng.integers(1, 3)), 1)
        span = [d * (kk - 1) + 1 for kk, d in zip(k, dilation)]
        if stride == (1, 1) and rng.integers(3) == 0:
            padding, out = "same", (h, w)
        else:
            padding = (int(rng.integers(0, span[0])), int(rng.integers(0, span[1])))
            out = tuple(
                (n + 2 * p - s_) // st + 1 for n, p, s_, st in zip(size, padding, span, stride)
            )
        groups = int(rng.choice([1, channels])) if channels > 1 else 1
        cout = channels if groups == channels and rng.integers(2) else int(rng.integers(2, 7))
        cout = cout // groups * groups or groups
        layer = nn.Conv2d(channels, cout, k, stride, padding, dilation, groups)
        return (layer, cout, out) if min(out) >= 1 else None
    if kind == 2:
        return _random_bn(channels, rng), channels, size
    if kind == 3:
        return ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))](channels), channels, size
    if kind == 4:  # max pooling
        k, s, d = int(rng.integers(2, 4)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
        p = int(rng.integers(0, k // 2 + 1)) if d == 1 else 0  # no window of padding only
        layer = nn.MaxPool2d(k, s, p, d, ceil_mode=bool(rng.integers(2)))
        if min(size) + 2 * p < d * (k - 1) + 1:
            return None
        return layer, channels, tuple(layer(torch.zeros(1, 1, h, w)).shape[2:])
    if kind == 5:  # average pooling
        k, s = int(rng.integers(2, 4)), int(rng.integers(1, 3))
        p = int(rng.integers(0, k // 2 + 1))
        layer = nn.AvgPool2d(k, s, p, count_include_pad=bool(p > 0 or rng.integers(2)))
        out = ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        return (layer, channels, out) if min(out) >= 1 else None
    if kind == 6:
        pad = tuple(int(v) for v in rng.integers(0, 3, 4))
        return nn.ZeroPad2d(pad), channels, (h + pad[2] + pad[3], w + pad[0] + pad[1])
    if kind == 7:  # residual block (with a strided projection now and then)
        stride = int(rng.integers(1, 3))
        cout = int(rng.integers(2, 6))
        body = nn.Sequential(_odd_conv(rng, channels, cout, stride), _random_bn(cout, rng),
                             nn.ReLU(), _odd_conv(rng, cout, cout))  # fmt: skip
        proj = None if stride == 1 and cout == channels else nn.Conv2d(channels, cout, 1, stride)
        return Residual(body, proj), cout, ((h - 1) // stride + 1, (w - 1) // stride + 1)
    if kind == 8:
        a, b = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        branch = nn.Sequential(_odd_conv(rng, channels, b), nn.ReLU(inplace=True))
        return Concat(_odd_conv(rng, channels, a), branch), a + b, size
    return (
        rng.choice(
            [nn.Identity(), nn.Dropout(0.5), nn.Dropout2d(0.3), Functional(int(rng.integers(4)))]
        ),
        channels,
        size,
    )


def random_cnn(seed: int, shape: tuple[int, int, int], outputs: int = 4, layers: int = 6):
    """A random CNN over (C, H, W) inputs, in eval mode."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    channels, size = shape[0], shape[1:]
    body: list[nn.Module] = []
    while len(body) < layers:
        drawn = random_layer(rng, channels, size)
        if drawn is not None and min(drawn[2]) <= 40:
            layer, channels, size = drawn
            body.append(layer)
    body.append(Head(channels, size, outputs, pooled=bool(rng.integers(2))))
    return nn.Sequential(*body).eval()


# -- maps of one to three axes ------------------------------------------------------------

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVG_POOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
_CONSTANT_PAD = {1: nn.ConstantPad1d, 2: nn.ConstantPad2d, 3: nn.ConstantPad3d}
_DROPOUT = {1: nn.Dropout1d, 2: nn.Dropout2d, 3: nn.Dropout3d}


class HeadNd(nn.Module):
    """The mean over every map axis (or a flatten), then a linear layer."""

    def __init__(self, features: int, outputs: int, pooled: bool) -> None:
        super().__init__()
        self.pooled = pooled
        self.linear = nn.Linear(features, outputs)

    def forward(self, x):
        x = x.flatten(2).mean(2) if self.pooled else x.flatten(1)
        return self.linear(x)


def _random_bn_nd(channels: int, axes: int, rng) -> nn.Module:
    bn = _BATCH_NORM[axes](channels)
    bn.running_mean = torch.from_numpy(rng.normal(0, 0.3, channels).astype(np.float32))
    bn.running_var = torch.from_numpy(rng.uniform(0.5, 2, channels).astype(np.float32))
    bn.weight.data = torch.from_numpy(rng.uniform(0.5, 1.5, channels).astype(np.float32))
    bn.bias.data = torch.from_numpy(rng.normal(0, 0.2, channels).astype(np.float32))
    return bn


def _per_axis(rng, low: int, high: int, axes: int) -> tuple[int, ...]:
    return tuple(int(v) for v in rng.integers(low, high, axes))


def _out_size(size, kernel, stride, padding, dilation) -> tuple[int, ...]:
    return tuple(
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, k, s, p, d in zip(size, kernel, stride, padding, dilation)
    )


def random_layer_nd(rng, channels: int, size: tuple[int, ...]):
    """(a random supported layer over maps of len(size) axes, its output channels, its
    output size), or None when the map is too small for the layer drawn."""
    axes, kind = len(size), int(rng.integers(10))
    if kind in (0, 1):  # any convolution: kernel, stride, padding, dilation, groups per axis
        k, stride = _per_axis(rng, 1, 4, axes), _per_axis(rng, 1, 3, axes)
        dilation = _per_axis(rng, 1, 3, axes)
        padding = tuple(int(rng.integers(0, d * (kk - 1) + 1)) for kk, d in zip(k, dilation))
        groups = int(rng.choice([1, channels])) if channels > 1 else 1
        cout = channels if groups == channels and rng.integers(2) else int(rng.integers(2, 6))
        cout = cout // groups * groups or groups
        out = _out_size(size, k, stride, padding, dilation)
        layer = _CONV[axes](channels, cout, k, stride, padding, dilation, groups,
                            bias=bool(rng.integers(2)))  # fmt: skip
        return (layer, cout, out) if min(out) >= 1 else None
    if kind == 2:
        return _random_bn_nd(channels, axes, rng), channels, size
    if kind == 3:
        return ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))](channels), channels, size
    if kind == 4:  # max pooling (ceil mode too)
        k, s, d = int(rng.integers(2, 4)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
        p = int(rng.integers(0, k // 2 + 1)) if d == 1 else 0
        if min(size) < d * (k - 1) + 1:  # PyTorch's 3-D pools want the kernel inside the map
            return None
        layer = _MAX_POOL[axes](k, s, p, d, ceil_mode=bool(rng.integers(2)))
        out = tuple(layer(torch.zeros((1, 1) + tuple(size))).shape[2:])
        return layer, channels, out
    if kind == 5:  # average pooling
        k, s = int(rng.integers(2, 4)), int(rng.integers(1, 3))
        p = int(rng.integers(0, k // 2 + 1))
        if min(size) < k:
            return None
        layer = _AVG_POOL[axes](k, s, p, count_include_pad=bool(p > 0 or rng.integers(2)))
        out = _out_size(size, (k,) * axes, (s,) * axes, (p,) * axes, (1,) * axes)
        return (layer, channels, out) if min(out) >= 1 else None
    if kind == 6:  # constant padding of every axis (the last axis first, as F.pad reads it)
        pad = _per_axis(rng, 0, 3, 2 * axes)
        value = float(rng.choice([0.0, 0.5]))
        grown = tuple(n + pad[2 * (axes - 1 - a)] + pad[2 * (axes - 1 - a) + 1]
                      for a, n in enumerate(size))  # fmt: skip
        return _CONSTANT_PAD[axes](pad, value), channels, grown
    if kind == 7:  # residual block (with a strided projection now and then)
        stride = int(rng.integers(1, 3))
        cout = int(rng.integers(2, 5))
        conv = _CONV[axes]
        body = nn.Sequential(conv(channels, cout, 3, stride, 1), _random_bn_nd(cout, axes, rng),
                             nn.ReLU(), conv(cout, cout, 3, 1, 1))  # fmt: skip
        proj = None if stride == 1 and cout == channels else conv(channels, cout, 1, stride)
        return Residual(body, proj), cout, tuple((n - 1) // stride + 1 for n in size)
    if kind == 8:
        a, b = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        conv = _CONV[axes]
        branch = nn.Sequential(conv(channels, b, 3, 1, 1), nn.ReLU(inplace=True))
        return Concat(conv(channels, a, 1), branch), a + b, size
    return (
        rng.choice([nn.Identity(), nn.Dropout(0.5), _DROPOUT[axes](0.3)]),
        channels,
        size,
    )


def random_cnn_nd(seed: int, shape: tuple[int, ...], outputs: int = 3, layers: int = 5):
    """A random CNN over (C, *axes) inputs of one to three map axes, in eval mode."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    channels, size = shape[0], tuple(shape[1:])
    body: list[nn.Module] = []
    while len(body) < layers:
        drawn = random_layer_nd(rng, channels, size)
        if drawn is not None and max(drawn[2]) <= 40:
            layer, channels, size = drawn
            body.append(layer)
    if getattr(body[0], "inplace", False):  # would write into the batch: refused in every mode
        body[0].inplace = False
    pooled = bool(rng.integers(2))
    features = channels if pooled else channels * int(np.prod(size))
    body.append(HeadNd(features, outputs, pooled))
    return nn.Sequential(*body).eval()
