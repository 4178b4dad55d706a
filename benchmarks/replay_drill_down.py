"""Drill-down estimates replayed from recorded window values: tune ``approximate="auto"``'s
error estimate (engine.drill_down) without calling a model again.

    python benchmarks/replay_drill_down.py record vgg16-trained/4 resnet18-trained/4 ...
    python benchmarks/replay_drill_down.py replay vgg16-trained/4 ... [--variant MODULE]
        [--modes auto 0.2 ...]

``record`` runs bench_approximate's config once with ``{"drill_down": 1.0}`` (the coarse
pass, then every window swept exactly) and saves the coarse values and every window's exact
value (``--out``, default ~/.cache/fastocclusion-bench/replay). ``replay`` runs
``approximate="auto"`` (or each of ``--modes``) on a stand-in model of the same input and
output shapes, the sweeps answered from the recording (no model call, seconds), and prints
the share of windows computed exactly, the estimated SSIM and the true SSIM of the maps
against the exact ones (the front-end's own map assembly), and how often and by how much
the estimate overstated an input's true SSIM. ``--variant MODULE``: an importable copy
of engine/drill_down.py to replay instead (its ``drill_down``), to compare estimators on
the same recordings.

The recording patches ``fastocclusion.engine.approximate.drill_down`` (instrumentation,
as bench_incremental's PhaseTimer patches the runner) while it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_approximate  # noqa: E402
import trained_shapes  # noqa: E402
from bench_approximate import case  # noqa: E402

import fastocclusion.engine.approximate as approximate_module  # noqa: E402
from fastocclusion import Occlusion  # noqa: E402
from fastocclusion.engine import drill_down as drill_down_module  # noqa: E402
from fastocclusion.engine.similarity import ssim  # noqa: E402


class _Replayed(Exception):
    """Ends a replayed explain once its drill-down is measured."""


def _path(out: Path, name: str) -> Path:
    return out / f"{name.replace('/', '_')}.npz"


def record(name: str, out: Path) -> None:
    """Saves the coarse values and every window's exact value of config ``name``."""
    c = case(name)
    original = approximate_module.drill_down
    parts: dict[str, list[np.ndarray]] = {"pairs": [], "values": [], "coarse": []}

    def recording(geometry: Any, approximation: Any, n: int, sweep_values: Any, assemble: Any):
        def values(g: Any, pairs: np.ndarray | None, tau: float | None) -> np.ndarray:
            result = sweep_values(g, pairs, tau)
            if pairs is None:
                parts["coarse"].append(result.copy())
            else:
                parts["pairs"].append(pairs.copy())
                parts["values"].append(result.reshape(len(pairs), -1).copy())
            return result

        return original(geometry, approximation, n, values, assemble)

    approximate_module.drill_down = recording
    try:
        Occlusion(c.make(), approximate={"drill_down": 1.0}, **c.options).explain(c.x, c.targets)
    finally:
        approximate_module.drill_down = original
    out.mkdir(parents=True, exist_ok=True)
    np.savez(
        _path(out, name), coarse=parts["coarse"][0], pairs=np.concatenate(parts["pairs"]),
        values=np.concatenate(parts["values"]),
    )  # fmt: skip
    print(f"{name}: recorded {len(np.concatenate(parts['pairs']))} windows", flush=True)


def replay(name: str, out: Path, variant: str | None, mode: str = "auto") -> dict[str, float]:
    """``approximate=mode`` ("auto", or bench_approximate's modes: 0.2 for a drill-down
    share) on config ``name``'s recording: the share of windows computed exactly, the
    estimated and true SSIM (the lowest and the mean over the inputs), and how far the
    estimate overstated an input's true SSIM (the most; 0 when never)."""
    c = case(name)
    x, classes = c.x, c.classes
    data = np.load(_path(out, name))
    coarse, pairs, recorded = data["coarse"], data["pairs"], data["values"]
    module = importlib.import_module(variant) if variant else drill_down_module
    n, planes = x.shape[0], recorded.shape[1]
    found: dict[str, float] = {}
    original = approximate_module.drill_down

    def replayed(geometry: Any, approximation: Any, n_: int, sweep_values: Any, assemble: Any):
        exact = np.zeros((n, planes, int(geometry.grid().num_windows)))
        exact[pairs[:, 0], :, pairs[:, 1]] = recorded

        def values(g: Any, chosen: np.ndarray | None, tau: float | None) -> np.ndarray:
            return coarse if chosen is None else exact[chosen[:, 0], :, chosen[:, 1]]

        result = module.drill_down(geometry, approximation, n, values, assemble)
        counts = tuple(int(c) for c in geometry.grid().counts)
        approximated = result.values.reshape((n, planes) + counts)
        truth = exact.reshape((n, planes) + counts)
        scores = [
            ssim(np.asarray(assemble(approximated[i])), np.asarray(assemble(truth[i])))
            for i in range(n)
        ]
        above = result.estimated_ssims - np.asarray(scores)
        found.update(share=result.exact_share, estimated=result.estimated_ssim,
                     lowest=float(np.min(scores)), mean=float(np.mean(scores)),
                     overstated=float(np.max(above, initial=0.0)), inputs=float(n),
                     overstated_inputs=float(np.sum(above > 0)))  # fmt: skip
        raise _Replayed  # no sweep ran: nothing for the explain to finish

    def stand_in(batch: Any) -> np.ndarray:  # the sweeps are answered from the recording
        return np.zeros((len(batch), classes), dtype=np.float32)

    approximate_module.drill_down = replayed
    try:
        option = bench_approximate.mode_option(mode)
        Occlusion(stand_in, approximate=option, **c.options).explain(x, c.targets)
    except _Replayed:
        pass
    finally:
        approximate_module.drill_down = original
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("record", "replay"))
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--out", type=Path, default=trained_shapes.CACHE / "replay")
    parser.add_argument("--variant")
    parser.add_argument("--modes", nargs="+", default=["auto"],
                        help="bench_approximate's modes to replay (auto, 0.2, ...)")  # fmt: skip
    args = parser.parse_args()
    for name in args.configs:
        if args.action == "record":
            record(name, args.out)
            continue
        for mode in args.modes:
            r = replay(name, args.out, args.variant, mode)
            print(f"{name} {mode}: exact {r['share']:.0%}, estimated SSIM {r['estimated']:.3f}, "
                  f"true {r['lowest']:.3f} (lowest), {r['mean']:.3f} (mean); estimate above "
                  f"the truth for {r['overstated_inputs']:.0f} of {r['inputs']:.0f} inputs, "
                  f"by {r['overstated']:.3f} at most", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
