"""A differential fuzz of exact incremental inference on PyTorch: random CNNs mixing the
local layers (incremental_models), steps a trace gets wrong or cannot classify
(hostile_torch), hooks on modules, on the model and global ones, and attributes changed
between two explains of the same explainers. Every network is explained with
incremental "auto", True and False: auto and True equal False (<= 1e-4 of the largest map
value) or True raises a ValueError. A fixed budget of networks (``FASTOCCLUSION_FUZZ_NETS``,
default 60) keeps it in CI; the last test checks the tally (how many ran incrementally,
none wrong)."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from fastocclusion import Occlusion  # noqa: E402

from .hostile_torch import KINDS, change_attributes, hostile_step  # noqa: E402
from .incremental_models import Head, random_layer  # noqa: E402

pytestmark = pytest.mark.torch

NETWORKS = int(os.environ.get("FASTOCCLUSION_FUZZ_NETS", "60"))
OPTIONS = dict(batch_size=16, patch_size=4, patch_stride=3, data_format="channels_first")
TALLY = {"networks": 0, "incremental": 0, "refused": 0, "hooked": 0, "hostile": 0}


def _hook(kind: int):
    """A forward hook that changes outputs (0, 1) or a pre-hook that changes inputs (2)."""
    if kind == 0:
        return "forward", lambda module, args, out: out * 1.5 + 0.1
    if kind == 1:
        return "forward", lambda module, args, out: torch.softmax(out.flatten(1), -1).view_as(out)
    return "pre", lambda module, args: (args[0] * 0.5,)


def random_network(seed: int) -> tuple[nn.Module, dict]:
    """A random CNN over (3, 16, 16) inputs with hostile steps and hooks now and then."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    channels, size, body = 3, (16, 16), []
    info = {"hostile": [], "hooks": 0, "global": False}
    while len(body) < int(rng.integers(3, 7)):
        if rng.random() < 0.3:
            kind = KINDS[int(rng.integers(len(KINDS)))]
            if kind == "chunk_swap" and channels % 2:
                continue
            body.append(hostile_step(kind, channels))
            info["hostile"].append(kind)
            continue
        drawn = random_layer(rng, channels, size)
        if drawn is not None and min(drawn[2]) <= 24:
            layer, channels, size = drawn
            body.append(layer)
    if getattr(body[0], "inplace", False):  # would write into the batch: refused in every mode
        body[0].inplace = False
    body.append(Head(channels, size, 4, pooled=bool(rng.integers(2))))
    model = nn.Sequential(*body).eval()
    for _ in range(int(rng.integers(0, 3)) if rng.random() < 0.25 else 0):
        modules = list(model.modules())
        target = modules[int(rng.integers(len(modules)))]
        where, hook = _hook(int(rng.integers(3)))
        if where == "forward":
            target.register_forward_hook(hook)
        else:
            target.register_forward_pre_hook(hook)
        info["hooks"] += 1
    info["global"] = bool(rng.random() < 0.05)
    return model, info


def explain_all(model, x, methods=None):
    """{incremental: maps or the ValueError} for auto, True and False (the explainers kept,
    for a second explain)."""
    methods = methods or {
        inc: Occlusion(model, incremental=inc, **OPTIONS) for inc in ("auto", True, False)
    }
    results = {}
    for incremental, method in methods.items():
        try:
            results[incremental] = (method.explain(x).numpy(), method.last_stats)
        except ValueError as error:
            if incremental is not True:
                raise
            results[incremental] = error
    return methods, results


def check(results, seed, stage):
    reference = results[False][0]
    scale = max(float(np.abs(reference).max()), 1e-12)
    for incremental in ("auto", True):
        result = results[incremental]
        if isinstance(result, ValueError):
            assert str(result).startswith("incremental: True is invalid here"), result
            TALLY["refused"] += stage == 0
            continue
        difference = float(np.abs(result[0] - reference).max())
        assert difference <= 1e-4 * scale, (
            f"seed {seed} ({stage}): incremental={incremental!r} differs from False by "
            f"{difference:.3g} (max |map| {scale:.3g}); {result[1].incremental_note}"
        )
        if incremental is True and stage == 0 and result[1].incremental_layers:
            TALLY["incremental"] += 1


@pytest.mark.parametrize("seed", range(NETWORKS))
def test_auto_and_true_equal_false_or_true_refuses(eager_auto, seed):
    model, info = random_network(seed)
    x = torch.from_numpy(np.random.default_rng(seed).normal(size=(2, 3, 16, 16))).float()
    handle = None
    if info["global"]:
        handle = torch.nn.modules.module.register_module_forward_hook(
            lambda module, args, out: out * 1.25 if isinstance(module, nn.ReLU) else None
        )
    try:
        methods, results = explain_all(model, x)
        check(results, seed, 0)
        change_attributes(model, 0.5)  # then the same explainers again
        check(explain_all(model, x, methods)[1], seed, 1)
    finally:
        if handle is not None:
            handle.remove()
    TALLY["networks"] += 1
    TALLY["hooked"] += bool(info["hooks"] or info["global"])
    TALLY["hostile"] += bool(info["hostile"])


def test_the_tally():
    """Runs last (file order): a fuzz that refused everywhere would prove nothing."""
    if TALLY["networks"] < NETWORKS:
        pytest.fail(f"only {TALLY['networks']} of {NETWORKS} networks ran: {TALLY}")
    print(f"\nincremental fuzz (torch): {TALLY}, 0 wrong maps")
    assert TALLY["incremental"] >= NETWORKS // 3, TALLY
    assert TALLY["hooked"] > 0 and TALLY["hostile"] > 0, TALLY
